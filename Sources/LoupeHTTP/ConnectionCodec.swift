// The seam between the connection state machine and httpcore's pure protocol code: collects
// HTTPParser's parts into whole requests (bodies are bounded by the parser's maxBodyBytes).

/// What the connection learns from the bytes of one request.
enum DecodeResult {
    /// Not enough bytes for the next step.
    case needMore
    /// The head is complete and a body follows (not yet complete).
    case head(expectContinue: Bool)
    /// The whole request (head + body) is in.
    case request(HTTPRequest, keepAlive: Bool)
    /// The bytes are not acceptable HTTP: answer with the error's status and close.
    case error(HTTPParseError)
}

struct RequestDecoder {
    /// Buffers larger than this are freed once empty, so idle keep-alive connections stay small
    /// after a large request.
    static let retainedCapacity = 4096
    private var parser: HTTPParser
    /// Received bytes not yet fed to the parser (a pipelined request waits here while the
    /// previous one is being answered).
    private var pending: [UInt8] = []
    private var pendingStart = 0
    private var parts: [HTTPPart] = []
    private var head: HTTPRequestHead? = nil
    private var body: [UInt8] = []
    private var complete = false

    init(limits: HTTPParserLimits) {
        parser = HTTPParser(limits: limits)
        parts.reserveCapacity(4)
    }

    /// Some byte of a request has arrived that has not been answered yet.
    var isMidRequest: Bool {
        if case .some = head { return true }   // not `head != nil`, which copies the head to compare
        if pendingStart < pending.count { return true }
        switch parser.phase {
        case .head, .body: return true
        default: return false
        }
    }

    mutating func append(_ bytes: UnsafeRawBufferPointer) {
        if pendingStart == pending.count {
            pending.removeAll(keepingCapacity: pending.capacity <= Self.retainedCapacity)
            pendingStart = 0
        }
        pending.append(contentsOf: bytes)
    }

    mutating func next() -> DecodeResult {
        while true {
            if complete, let h = head.take() {
                // The head and body moved into the request, not copied (a copy retains and releases
                // every string of the head).
                var taken: [UInt8] = []
                swap(&taken, &body)
                complete = false
                let keepAlive = h.keepAlive
                return .request(HTTPRequest(head: h, body: taken), keepAlive: keepAlive)
            }
            guard pendingStart < pending.count else { return .needMore }
            // Emptied after each use (below), so only after a parse error is anything left here.
            if !parts.isEmpty { parts.removeAll(keepingCapacity: true) }
            do {
                pendingStart += try parser.feed(pending[pendingStart...], into: &parts, stopAfterMessage: true)
            } catch {
                return .error(error)
            }
            var newHead = false
            // Each part moved out of the array in order (swapped for an empty part): no copy of a
            // head, and no reordering of the array (a reverse moves every part twice).
            for k in parts.indices {
                var part = HTTPPart.end(trailers: HTTPHeaders())
                swap(&part, &parts[k])
                switch consume part {
                case .head(let h):
                    if let n = h.contentLength, n > 0 { body.reserveCapacity(n) }
                    head = h
                    newHead = true
                case .body(let slice):
                    body.append(contentsOf: slice)
                case .end:
                    complete = true
                }
            }
            // The empty parts left behind popped off (removeAll destroys an array of enums through the
            // runtime's generic witnesses, ≈ 170 instructions a call).
            while !parts.isEmpty { _ = parts.removeLast() }
            if pendingStart == pending.count {
                pending.removeAll(keepingCapacity: pending.capacity <= Self.retainedCapacity)
                pendingStart = 0
            }
            if newHead && !complete, let expectContinue = head?.expectContinue {
                return .head(expectContinue: expectContinue)
            }
        }
    }
}
