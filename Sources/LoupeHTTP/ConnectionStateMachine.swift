// The connection as a state machine: bytes, responses, write completions and the clock go in;
// an action comes out (wait for bytes, run this request, close). Output bytes accumulate in
// `output`; the socket code writes them and reports progress. Nothing here touches a socket or
// reads the clock, so every path (timeouts included) is testable with plain values.
//
// Requests on one connection are handled one at a time: the next request is not parsed until
// the previous response has been written out. That gives responses in request order under
// pipelining and bounds memory per connection (one request and one response at a time).

struct ConnectionTimeouts {
    var headerRead: UInt64
    var bodyRead: UInt64
    var minimumBodyBytesPerSecond: Double
    var bodyRateGrace: UInt64
    var keepAliveIdle: UInt64
    var write: UInt64
    var linger: UInt64
    /// While draining, an idle keep-alive connection is closed only once it has been idle this
    /// long: its client, told keep-alive by the last response, may be sending the next request
    /// right now (a client in a request loop turns around in microseconds to milliseconds).
    var drainIdleGrace: UInt64

    init(_ c: HTTPServerConfiguration) {
        func ns(_ s: Double) -> UInt64 { s <= 0 ? .max : UInt64(s * 1e9) }
        headerRead = ns(c.headerReadTimeout)
        bodyRead = ns(c.bodyReadTimeout)
        minimumBodyBytesPerSecond = c.minimumBodyBytesPerSecond
        bodyRateGrace = ns(c.minimumBodyRateGracePeriod)
        keepAliveIdle = ns(c.keepAliveIdleTimeout)
        write = ns(c.writeTimeout)
        linger = 2_000_000_000
        drainIdleGrace = 1_000_000_000
    }
}

/// Why a connection was closed (for stats).
enum CloseReason: Equatable {
    case peerClosed, keepAliveIdle, headerTimeout, bodyTimeout, writeTimeout, protocolError
    case requestLimit, requestedByClient, shutdown, ioError
}

struct ConnectionStateMachine {
    enum Phase: Equatable {
        /// Waiting for (the rest of) a request head. `idle`: no byte of it has arrived yet.
        case awaitingHead(idle: Bool)
        case readingBody
        /// A handler owns the request; waiting for `responseReady`.
        case handling
        /// The response is in `output`; waiting for it to be written.
        case writing
        /// Output done, write side shut; discarding input until EOF or the linger deadline.
        case lingering
        case closed
    }

    enum Action {
        /// Nothing to do until more bytes arrive (or output drains, or a timer fires).
        case none
        /// Hand this request to the handler; `serial` identifies it for the response.
        case dispatch(HTTPRequest, serial: UInt64, keepAlive: Bool)
        /// All output is written: shut the write side and linger (error or `Connection: close`).
        case shutdownWrite
        /// Close the socket now (peer gone, timeout, done).
        case close
    }

    let timeouts: ConnectionTimeouts
    let maxRequests: Int
    private(set) var phase: Phase = .awaitingHead(idle: true)
    private(set) var decoder: RequestDecoder
    /// Bytes waiting to be written (interim 100 responses, responses, error responses).
    private(set) var output: [UInt8] = []
    private var outputOffset = 0
    private var closeAfterOutput = false
    private(set) var closeReason: CloseReason? = nil
    private(set) var requestsStarted = 0
    private(set) var serial: UInt64 = 0
    private(set) var draining = false
    /// When the current phase's clock started, and the last time bytes moved.
    private var phaseStart: UInt64
    private var lastProgress: UInt64
    private var bodyBytesReceived = 0
    /// The parse error code that closed the connection, if any (for stats).
    private(set) var errorCode: String? = nil
    private var currentKeepAlive = true
    /// Renders error responses (parse errors, 408).
    let writer: ResponseWriter

    init(timeouts: ConnectionTimeouts, limits: HTTPParserLimits, maxRequests: Int, writer: ResponseWriter, now: UInt64) {
        self.timeouts = timeouts
        self.maxRequests = maxRequests
        self.decoder = RequestDecoder(limits: limits)
        self.writer = writer
        phaseStart = now
        lastProgress = now
    }

    var hasOutput: Bool { outputOffset < output.count }
    var wantsInput: Bool {
        switch phase {
        case .awaitingHead, .readingBody, .lingering: true
        default: false
        }
    }
    var isClosed: Bool { phase == .closed }
    /// Idle between requests: nothing of a request received, nothing in flight.
    var isIdle: Bool { phase == .awaitingHead(idle: true) && !decoder.isMidRequest && !hasOutput }

    /// The instant at which `timeout(now:)` must be called, or .max.
    var deadline: UInt64 {
        switch phase {
        case .awaitingHead(let idle):
            if idle && requestsStarted > 0 {
                let idleLimit = draining ? min(timeouts.keepAliveIdle, timeouts.drainIdleGrace) : timeouts.keepAliveIdle
                return sat(phaseStart, idleLimit)
            }
            return sat(phaseStart, timeouts.headerRead)
        case .readingBody:
            var d = sat(lastProgress, timeouts.bodyRead)
            if timeouts.minimumBodyBytesPerSecond > 0 {
                // The instant at which the average rate since the body began drops below the
                // minimum, given the bytes so far (checked again then).
                let received = Double(bodyBytesReceived)
                let allowed = UInt64(max(0, received / timeouts.minimumBodyBytesPerSecond) * 1e9)
                let rateDeadline = sat(phaseStart, max(timeouts.bodyRateGrace, allowed))
                d = min(d, rateDeadline)
            }
            return d
        case .handling: return .max
        case .writing: return hasOutput ? sat(lastProgress, timeouts.write) : .max
        case .lingering: return sat(phaseStart, timeouts.linger)
        case .closed: return .max
        }
    }

    private func sat(_ a: UInt64, _ b: UInt64) -> UInt64 { let (r, o) = a.addingReportingOverflow(b); return o ? .max : r }

    // MARK: inputs

    /// Bytes arrived from the peer.
    mutating func received(_ bytes: UnsafeRawBufferPointer, now: UInt64) -> Action {
        switch phase {
        case .lingering, .closed, .handling, .writing:
            // Lingering discards input; during handling/writing the driver does not read.
            return .none
        case .awaitingHead(let idle):
            if idle && !bytes.isEmpty { phase = .awaitingHead(idle: false); phaseStart = now }
        case .readingBody:
            bodyBytesReceived += bytes.count
        }
        lastProgress = now
        decoder.append(bytes)
        return process(now: now)
    }

    /// The peer closed its side (read returned 0).
    mutating func peerClosed(now: UInt64) -> Action {
        switch phase {
        case .handling, .writing:
            // Still answer what was asked (a client may half-close after its request); the
            // connection closes after that output.
            closeAfterOutput = true
            currentKeepAlive = false
            return .none
        default:
            closeReason = closeReason ?? .peerClosed
            phase = .closed
            return .close
        }
    }

    /// Parses what is buffered. Called after input and after a response was fully written.
    mutating func process(now: UInt64) -> Action {
        while true {
            switch phase {
            case .awaitingHead, .readingBody: break
            default: return .none
            }
            if case .awaitingHead(idle: true) = phase, decoder.isMidRequest {
                phase = .awaitingHead(idle: false)
                phaseStart = now
            }
            switch decoder.next() {
            case .needMore:
                return .none
            case .head(let expectContinue):
                // A body follows and has not fully arrived.
                phase = .readingBody
                phaseStart = now
                lastProgress = now
                bodyBytesReceived = 0
                if expectContinue { output.append(contentsOf: ResponseWriter.continueResponse) }
                continue
            case .request(let request, let wantsKeepAlive):
                requestsStarted += 1
                serial &+= 1
                currentKeepAlive = wantsKeepAlive && !draining && !closeAfterOutput
                    && (maxRequests <= 0 || requestsStarted < maxRequests)
                if !currentKeepAlive && closeReason == nil {
                    closeReason = draining ? .shutdown : (wantsKeepAlive ? .requestLimit : .requestedByClient)
                }
                phase = .handling
                return .dispatch(request, serial: serial, keepAlive: currentKeepAlive)
            case .error(let error):
                return fail(.parse(error), reason: .protocolError)
            }
        }
    }

    /// The handler's response for request `serial`, already serialized.
    mutating func responseReady(_ bytes: [UInt8], keepAlive: Bool, now: UInt64) -> Action {
        guard phase == .handling else { return .none }
        if output.isEmpty { output = bytes } else { output.append(contentsOf: bytes) }
        return responseQueued(keepAlive: keepAlive, now: now)
    }

    /// The handler's response, serialized by `write` straight onto the end of the output buffer,
    /// which is kept between responses (no buffer per response); `write` returns true when the
    /// connection must close after it. Not called when no response is awaited.
    mutating func responseReady(now: UInt64, write: (inout [UInt8]) -> Bool) -> Action {
        guard phase == .handling else { return .none }
        let close = write(&output)
        return responseQueued(keepAlive: !close, now: now)
    }

    private mutating func responseQueued(keepAlive: Bool, now: UInt64) -> Action {
        closeAfterOutput = closeAfterOutput || !keepAlive || !currentKeepAlive
        if closeAfterOutput && closeReason == nil { closeReason = .shutdown }
        phase = .writing
        lastProgress = now
        return .none
    }

    /// The socket accepted `count` more output bytes.
    mutating func wrote(_ count: Int, now: UInt64) {
        outputOffset += count
        if count > 0 { lastProgress = now }
        if outputOffset >= output.count {
            output.removeAll(keepingCapacity: output.capacity <= RequestDecoder.retainedCapacity)
            outputOffset = 0
        }
    }

    /// Unwritten output, for the socket code: the buffer and where the unwritten part starts.
    var pendingOutput: (bytes: [UInt8], offset: Int) { (output, outputOffset) }

    func withPendingOutput<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try output.withUnsafeBytes { try body(UnsafeRawBufferPointer(rebasing: $0[outputOffset...])) }
    }

    /// Everything in `output` has been written.
    mutating func outputDrained(now: UInt64) -> Action {
        if closeAfterOutput {
            if phase == .handling { return .none }   // e.g. the 100 Continue of a request we will still answer
            phase = .lingering
            phaseStart = now
            return .shutdownWrite
        }
        if phase == .writing {
            // The response said keep-alive, so its client may already be sending the next request:
            // even while draining, wait for it (answered with `Connection: close`) rather than
            // closing under it. The keep-alive idle timeout and the drain deadline bound the wait.
            phase = .awaitingHead(idle: true)
            phaseStart = now
            lastProgress = now
            return process(now: now)
        }
        return .none
    }

    /// Graceful shutdown (the listener has closed): a keep-alive connection with nothing in flight
    /// closes now if it has been idle for `drainIdleGrace` (else when it has, unless a request
    /// comes first); every other connection closes only after the response to the last request it
    /// sent. Requests parsed from here on are answered with `Connection: close`. A connection that
    /// has not sent its first request yet (accepted just before the listener closed; its request
    /// may be on the wire) stays open for it, within the header timeout. A response already being
    /// written keeps the framing it was serialized with: one that said keep-alive is followed by
    /// waiting for the next request (see `outputDrained`), never by a close under the client.
    mutating func beginDrain(now: UInt64) -> Action {
        draining = true
        if phase == .lingering || (isIdle && requestsStarted > 0 && now >= sat(phaseStart, timeouts.drainIdleGrace)) {
            closeReason = closeReason ?? .shutdown
            phase = .closed
            return .close
        }
        return .none
    }

    /// The clock passed `deadline`.
    mutating func timeout(now: UInt64) -> Action {
        guard now >= deadline else { return .none }
        switch phase {
        case .awaitingHead(let idle):
            if idle && !decoder.isMidRequest {
                closeReason = draining ? .shutdown : (requestsStarted > 0 ? .keepAliveIdle : .headerTimeout)
                phase = .closed
                return .close
            }
            return fail(.timeout("The request head did not arrive in time."), reason: .headerTimeout)
        case .readingBody:
            return fail(.timeout("The request body did not arrive in time or arrived too slowly."), reason: .bodyTimeout)
        case .writing:
            closeReason = .writeTimeout
            phase = .closed
            return .close
        case .lingering:
            phase = .closed
            return .close
        case .handling, .closed:
            return .none
        }
    }

    /// An I/O error: the connection is gone.
    mutating func failed() {
        closeReason = closeReason ?? .ioError
        phase = .closed
    }

    private enum Failure { case parse(HTTPParseError), timeout(String) }

    private mutating func fail(_ failure: Failure, reason: CloseReason) -> Action {
        closeReason = reason
        // A response is never in progress while parsing (one request at a time), so the error
        // response can always be sent.
        switch failure {
        case .parse(let error):
            errorCode = error.code
            writer.writeError(error, into: &output)
        case .timeout(let message):
            writer.write(HTTPResponse.jsonError(status: 408, message: message, code: "request_timeout"),
                         context: .parseFailure, into: &output)
        }
        closeAfterOutput = true
        phase = .writing
        return .none
    }
}
