// The HTTP/1.1 request parser (RFC 9112): pure and incremental. Bytes go in, parts come out:
// `.head`, then zero or more `.body`, then `.end`. The parser owns no socket and no clock.
//
// How it works: a head (and a trailer section) is first located by a cheap byte scan that also
// enforces the size limits and the CRLF rules, then parsed in one pass over contiguous bytes —
// straight from the caller's buffer when the whole head arrived in one read (the common case),
// otherwise from a small reassembly buffer. Body bytes are never copied: `.body` parts are
// slices of the caller's array. Chunked framing is a byte-level state machine.
// Protocol choices are written down in docs/http.md.

/// Size limits; every default is here. Exceeding one is an `HTTPParseError` with its status.
public struct HTTPParserLimits: Sendable, Hashable {
    /// Longest request line (method SP target SP version, without CRLF). Longer → 414.
    public var maxRequestLineBytes: Int
    /// Largest header section after the request line (field lines with their CRLFs); also
    /// applies to a trailer section. Larger → 431.
    public var maxHeaderBytes: Int
    /// Most header field lines (and most trailer field lines). More → 431.
    public var maxHeaderCount: Int
    /// Largest body. Checked against Content-Length before any body byte is read; enforced on
    /// the running total for chunked bodies before each chunk's data is read. Larger → 413.
    public var maxBodyBytes: Int
    /// Longest chunk-size line including chunk extensions. Longer → 400.
    public var maxChunkLineBytes: Int

    public init(maxRequestLineBytes: Int = 8 * 1024, maxHeaderBytes: Int = 16 * 1024, maxHeaderCount: Int = 100,
                maxBodyBytes: Int = 16 * 1024 * 1024, maxChunkLineBytes: Int = 1024) {
        self.maxRequestLineBytes = maxRequestLineBytes
        self.maxHeaderBytes = maxHeaderBytes
        self.maxHeaderCount = maxHeaderCount
        self.maxBodyBytes = maxBodyBytes
        self.maxChunkLineBytes = maxChunkLineBytes
    }

    public static let `default` = HTTPParserLimits()
}

/// How the body of a request is delimited.
public enum HTTPBodyFraming: Sendable, Hashable {
    /// No body (no Content-Length, no Transfer-Encoding).
    case none
    case contentLength(Int)
    case chunked
}

/// A parsed request head.
public struct HTTPRequestHead: Sendable, Equatable {
    public var method: HTTPMethod
    /// The request target exactly as sent (origin-form, absolute-form or "*").
    public var target: String
    /// Percent-decoded path ("/v2/models/a b/infer"); "*" for an asterisk-form OPTIONS.
    public var path: String
    /// Percent-decoded query items in order, '+' decoded as space ("a=1&b" → [("a","1"),("b","")]).
    public var query: [(name: String, value: String)]
    /// The version as received. HTTP/1.x with x > 1 is treated as HTTP/1.1.
    public var version: (major: Int, minor: Int)
    public var headers: HTTPHeaders
    /// The authority the request is for: the absolute-form target's authority if any, else the Host field.
    public var host: String?
    /// Whether the connection may carry another request after this one (HTTP/1.1 unless
    /// `Connection: close`; HTTP/1.0 only with `Connection: keep-alive`).
    public var keepAlive: Bool
    /// `Expect: 100-continue` on an HTTP/1.1 request: send `100 Continue` before reading the body.
    public var expectContinue: Bool
    public var bodyFraming: HTTPBodyFraming

    public var contentLength: Int? { if case .contentLength(let n) = bodyFraming { n } else { nil } }
    public var isChunked: Bool { bodyFraming == .chunked }
    /// Whether body parts may follow this head.
    public var hasBody: Bool {
        switch bodyFraming {
        case .none: false
        case .contentLength(let n): n > 0
        case .chunked: true
        }
    }

    public init(method: HTTPMethod, target: String, path: String, query: [(name: String, value: String)] = [],
                version: (major: Int, minor: Int) = (1, 1), headers: HTTPHeaders = HTTPHeaders(), host: String? = nil,
                keepAlive: Bool = true, expectContinue: Bool = false, bodyFraming: HTTPBodyFraming = .none) {
        self.method = method; self.target = target; self.path = path; self.query = query; self.version = version
        self.headers = headers; self.host = host; self.keepAlive = keepAlive; self.expectContinue = expectContinue
        self.bodyFraming = bodyFraming
    }

    /// The request handed to handlers, once the body is collected.
    public func makeRequest(body: [UInt8], remoteAddress: String = "") -> HTTPRequest {
        HTTPRequest(head: self, body: body, remoteAddress: remoteAddress)
    }

    public static func == (a: HTTPRequestHead, b: HTTPRequestHead) -> Bool {
        a.method == b.method && a.target == b.target && a.path == b.path
            && a.query.elementsEqual(b.query, by: { $0.name == $1.name && $0.value == $1.value })
            && a.version == b.version && a.headers == b.headers && a.host == b.host && a.keepAlive == b.keepAlive
            && a.expectContinue == b.expectContinue && a.bodyFraming == b.bodyFraming
    }
}

/// One step of a request. For every request: one `.head`, zero or more non-empty `.body`
/// slices (in order, never copied: they share storage with the fed array), one `.end`.
public enum HTTPPart: Sendable, Equatable {
    case head(HTTPRequestHead)
    case body(ArraySlice<UInt8>)
    case end(trailers: HTTPHeaders)
}

/// Where the parser stands, for the connection's timeouts and EOF handling.
public enum HTTPParserPhase: Sendable, Hashable {
    /// Between requests: no byte of a next request has arrived (idle keep-alive timeout applies).
    case idle
    /// Some bytes of a head have arrived (header read timeout applies).
    case head
    /// Reading a body or trailers (body read timeout applies).
    case body
    /// A request without keep-alive has ended; further bytes are ignored.
    case closed
    /// A parse error was thrown; further feeds rethrow it.
    case failed
}

public struct HTTPParser: Sendable {
    public let limits: HTTPParserLimits

    private enum State: Sendable {
        case head
        case fixedBody(remaining: Int)
        case chunkLine
        case chunkData(remaining: Int)
        case chunkDataCR
        case chunkDataLF
        case trailers
        case closed
        case failed(HTTPParseError)
    }

    /// Progress of the scan for the blank line that ends a head or trailer section.
    private struct SectionScan: Sendable {
        var lineLength = 0      // bytes of the current line so far, CR excluded
        var sawCR = false
        var lines = 0           // complete non-empty lines
        var sectionBytes = 0    // bytes of the complete field lines (CRLF included) after the request line
        var started = false     // a byte of a (non-blank) line has been seen
    }

    private enum ChunkPhase: Sendable {
        case size, afterSize, nameStart, name, afterName, valueStart, token, quoted, quotedEscape, lineFeed
    }

    private struct ChunkLine: Sendable {
        var size = 0
        var digits = 0
        var lineBytes = 0
        var phase = ChunkPhase.size
    }

    private var state = State.head
    private var buffer: [UInt8] = []
    private var scan = SectionScan()
    private var chunk = ChunkLine()
    private var bodyTotal = 0
    private var keepAlive = true

    public init(limits: HTTPParserLimits = .default) {
        self.limits = limits
    }

    public var phase: HTTPParserPhase {
        switch state {
        case .head: scan.started || scan.sawCR || !buffer.isEmpty ? .head : .idle
        case .fixedBody, .chunkLine, .chunkData, .chunkDataCR, .chunkDataLF, .trailers: .body
        case .closed: .closed
        case .failed: .failed
        }
    }

    /// Feeds bytes and appends the parts they complete to `parts`.
    ///
    /// - Returns: how many bytes were consumed: all of them, unless `stopAfterMessage` is true
    ///   and a request ended before the last byte (feed the rest again later).
    /// - Throws: the first protocol violation. Parts completed before it are already in
    ///   `parts` (earlier pipelined requests are valid and should be answered first); the parser
    ///   then stays failed. Bytes after a request without keep-alive are consumed and ignored.
    @discardableResult
    public mutating func feed(_ bytes: ArraySlice<UInt8>, into parts: inout [HTTPPart],
                              stopAfterMessage: Bool = false) throws(HTTPParseError) -> Int {
        if case .failed(let error) = state { throw error }
        let outcome: (consumed: Int, error: HTTPParseError?) = bytes.withUnsafeBufferPointer { buf in
            var consumed = 0
            do throws(HTTPParseError) {
                try run(buf, bytes, &parts, stopAfterMessage, &consumed)
                return (consumed, nil)
            } catch {
                return (consumed, error)
            }
        }
        if let error = outcome.error {
            state = .failed(error)
            buffer = []
            throw error
        }
        return outcome.consumed
    }

    /// Convenience: feeds bytes and returns the parts they complete.
    public mutating func feed(_ bytes: ArraySlice<UInt8>) throws(HTTPParseError) -> [HTTPPart] {
        var parts: [HTTPPart] = []
        try feed(bytes, into: &parts)
        return parts
    }

    public mutating func feed(_ bytes: [UInt8]) throws(HTTPParseError) -> [HTTPPart] {
        try feed(bytes[...])
    }

    // MARK: - The driver

    private mutating func run(_ buf: UnsafeBufferPointer<UInt8>, _ bytes: ArraySlice<UInt8>, _ parts: inout [HTTPPart],
                              _ stopAfterMessage: Bool, _ consumed: inout Int) throws(HTTPParseError) {
        let n = buf.count
        var i = 0
        defer { consumed = i }
        while i < n {
            switch state {
            case .head:
                var start = i
                guard let end = try scanSection(buf, from: i, start: &start, isHead: true) else {
                    if start < n { buffer.append(contentsOf: UnsafeBufferPointer(rebasing: buf[start..<n])) }
                    i = n
                    return
                }
                let head: HTTPRequestHead
                let fieldCount = max(0, scan.lines - 1)
                if buffer.isEmpty {
                    head = try Self.parseHead(UnsafeBufferPointer(rebasing: buf[start..<end]), limits, fieldCount: fieldCount)
                } else {
                    buffer.append(contentsOf: UnsafeBufferPointer(rebasing: buf[start..<end]))
                    let limits = self.limits
                    let result = buffer.withUnsafeBufferPointer { b in
                        Result { () throws(HTTPParseError) in try Self.parseHead(b, limits, fieldCount: fieldCount) }
                    }
                    buffer.removeAll(keepingCapacity: true)
                    head = try result.get()
                }
                scan = SectionScan()
                i = end
                keepAlive = head.keepAlive
                let framing = head.bodyFraming
                parts.append(.head(consume head))
                switch framing {
                case .none, .contentLength(0):
                    finishMessage(HTTPHeaders(), &parts)
                    if stopAfterMessage { return }
                case .contentLength(let length):
                    state = .fixedBody(remaining: length)
                case .chunked:
                    bodyTotal = 0
                    chunk = ChunkLine()
                    state = .chunkLine
                }

            case .fixedBody(let remaining):
                let take = min(remaining, n - i)
                let base = bytes.startIndex + i
                parts.append(.body(bytes[base ..< base + take]))
                i += take
                if take == remaining {
                    finishMessage(HTTPHeaders(), &parts)
                    if stopAfterMessage { return }
                } else {
                    state = .fixedBody(remaining: remaining - take)
                }

            case .chunkLine:
                i = try scanChunkLine(buf, from: i)

            case .chunkData(let remaining):
                let take = min(remaining, n - i)
                let base = bytes.startIndex + i
                parts.append(.body(bytes[base ..< base + take]))
                i += take
                state = take == remaining ? .chunkDataCR : .chunkData(remaining: remaining - take)

            case .chunkDataCR:
                guard buf[i] == CR else { throw .invalidChunkTerminator }
                i += 1
                state = .chunkDataLF

            case .chunkDataLF:
                guard buf[i] == LF else { throw .invalidChunkTerminator }
                i += 1
                chunk = ChunkLine()
                state = .chunkLine

            case .trailers:
                var start = i
                guard let end = try scanSection(buf, from: i, start: &start, isHead: false) else {
                    buffer.append(contentsOf: UnsafeBufferPointer(rebasing: buf[i..<n]))
                    i = n
                    return
                }
                let trailers: HTTPHeaders
                if buffer.isEmpty {
                    trailers = try Self.parseTrailers(UnsafeBufferPointer(rebasing: buf[i..<end]))
                } else {
                    buffer.append(contentsOf: UnsafeBufferPointer(rebasing: buf[i..<end]))
                    let result = buffer.withUnsafeBufferPointer { b in
                        Result { () throws(HTTPParseError) in try Self.parseTrailers(b) }
                    }
                    buffer.removeAll(keepingCapacity: true)
                    trailers = try result.get()
                }
                scan = SectionScan()
                i = end
                finishMessage(trailers, &parts)
                if stopAfterMessage { return }

            case .closed:
                i = n

            case .failed(let error):
                throw error
            }
        }
    }

    private mutating func finishMessage(_ trailers: HTTPHeaders, _ parts: inout [HTTPPart]) {
        parts.append(.end(trailers: trailers))
        state = keepAlive ? .head : .closed
    }

    /// Scans `buf[from...]` for the blank line that ends a head (or trailer) section, enforcing
    /// CRLF line endings and the size limits as bytes arrive. Returns the offset just past that
    /// blank line, or nil when the input ran out first. In a head, blank lines before the request
    /// line are skipped (RFC 9112 §2.2) by moving `start` past them.
    private mutating func scanSection(_ buf: UnsafeBufferPointer<UInt8>, from: Int, start: inout Int,
                                      isHead: Bool) throws(HTTPParseError) -> Int? {
        var s = scan
        defer { scan = s }
        let n = buf.count
        let maxLine = limits.maxRequestLineBytes, maxSection = limits.maxHeaderBytes, maxCount = limits.maxHeaderCount
        var i = from
        while i < n {
            if !s.sawCR {
                // A run of bytes that are neither CR nor LF, counted at once (eight at a time) with
                // the limit checked at its end: the length only grows within the run, so the error
                // is the one a byte-by-byte check throws.
                var k = i
                if let base = buf.baseAddress {
                    let raw = UnsafeRawPointer(base)
                    while k + 8 <= n {
                        let x = raw.loadUnaligned(fromByteOffset: k, as: UInt64.self)
                        if wordHasByte(x, CR) | wordHasByte(x, LF) != 0 { break }
                        k += 8
                    }
                }
                while k < n && buf[k] != CR && buf[k] != LF { k += 1 }
                if k > i {
                    s.lineLength += k - i
                    s.started = true
                    i = k
                    if isHead && s.lines == 0 {
                        if s.lineLength > maxLine { throw .requestLineTooLong(limit: maxLine) }
                    } else if s.sectionBytes + s.lineLength > maxSection {
                        throw .headerSectionTooLarge(limit: maxSection)
                    }
                    continue
                }
            }
            let b = buf[i]
            i += 1
            if s.sawCR {
                guard b == LF else { throw .bareCarriageReturn }
                s.sawCR = false
                if s.lineLength == 0 {
                    if isHead && s.lines == 0 {
                        // A blank line before the request line: ignore it.
                        start = i
                        s.started = false
                        buffer.removeAll(keepingCapacity: true)
                        continue
                    }
                    return i
                }
                if !(isHead && s.lines == 0) {
                    // A field line, counted with its CRLF.
                    s.sectionBytes += s.lineLength + 2
                    if s.sectionBytes > maxSection { throw .headerSectionTooLarge(limit: maxSection) }
                }
                s.lines += 1
                s.lineLength = 0
                if (isHead ? s.lines - 1 : s.lines) > maxCount { throw .tooManyHeaders(limit: maxCount) }
                continue
            }
            if b == CR {
                s.sawCR = true
                continue
            } else if b == LF {
                throw .bareLineFeed
            }
            s.lineLength += 1
            s.started = true
            if isHead && s.lines == 0 {
                if s.lineLength > maxLine { throw .requestLineTooLong(limit: maxLine) }
            } else if s.sectionBytes + s.lineLength > maxSection {
                throw .headerSectionTooLarge(limit: maxSection)
            }
        }
        return nil
    }

    /// Runs the chunk-size line state machine (RFC 9112 §7.1: chunk-size [chunk-ext] CRLF).
    private mutating func scanChunkLine(_ buf: UnsafeBufferPointer<UInt8>, from: Int) throws(HTTPParseError) -> Int {
        var c = chunk
        defer { chunk = c }
        let n = buf.count
        let maxLine = limits.maxChunkLineBytes
        var i = from
        while i < n {
            let b = buf[i]
            i += 1
            c.lineBytes += 1
            if c.lineBytes > maxLine { throw .chunkLineTooLong(limit: maxLine) }
            switch c.phase {
            case .size:
                if let v = PercentDecoding.hexValue(b) {
                    if c.size > (Int.max >> 4) { throw .chunkSizeOverflow }
                    c.size = c.size << 4 | Int(v)
                    c.digits += 1
                    continue
                }
                guard c.digits > 0 else { throw .invalidChunkSize }
                switch b {
                case SP, HTAB: c.phase = .afterSize
                case SEMI: c.phase = .nameStart
                case CR: c.phase = .lineFeed
                default: throw .invalidChunkSize
                }
            case .afterSize:
                switch b {
                case SP, HTAB: break
                case SEMI: c.phase = .nameStart
                case CR: c.phase = .lineFeed
                default: throw .invalidChunkExtension
                }
            case .nameStart:
                if isTokenByte(b) { c.phase = .name } else if b != SP && b != HTAB { throw .invalidChunkExtension }
            case .name:
                if isTokenByte(b) { break }
                switch b {
                case SP, HTAB: c.phase = .afterName
                case EQUALS: c.phase = .valueStart
                case SEMI: c.phase = .nameStart
                case CR: c.phase = .lineFeed
                default: throw .invalidChunkExtension
                }
            case .afterName:
                switch b {
                case SP, HTAB: break
                case EQUALS: c.phase = .valueStart
                case SEMI: c.phase = .nameStart
                case CR: c.phase = .lineFeed
                default: throw .invalidChunkExtension
                }
            case .valueStart:
                if isTokenByte(b) { c.phase = .token } else if b == DQUOTE { c.phase = .quoted }
                else if b != SP && b != HTAB { throw .invalidChunkExtension }
            case .token:
                if isTokenByte(b) { break }
                switch b {
                case SP, HTAB: c.phase = .afterSize
                case SEMI: c.phase = .nameStart
                case CR: c.phase = .lineFeed
                default: throw .invalidChunkExtension
                }
            case .quoted:
                if b == DQUOTE { c.phase = .afterSize }
                else if b == BACKSLASH { c.phase = .quotedEscape }
                else if !(b == HTAB || b >= 0x20) || b == 0x7F { throw .invalidChunkExtension }
            case .quotedEscape:
                guard b == HTAB || (b >= 0x20 && b != 0x7F) else { throw .invalidChunkExtension }
                c.phase = .quoted
            case .lineFeed:
                guard b == LF else { throw .bareCarriageReturn }
                if c.size == 0 {
                    scan = SectionScan()
                    state = .trailers
                } else {
                    if c.size > limits.maxBodyBytes - bodyTotal { throw .bodyTooLarge(limit: limits.maxBodyBytes) }
                    bodyTotal += c.size
                    state = .chunkData(remaining: c.size)
                }
                return i
            }
        }
        return i
    }

    // MARK: - Head parsing (the section is complete: every CR is followed by LF)

    static func parseHead(_ p: UnsafeBufferPointer<UInt8>, _ limits: HTTPParserLimits,
                          fieldCount: Int = 0) throws(HTTPParseError) -> HTTPRequestHead {
        // Request line: method SP request-target SP HTTP-version CRLF (single spaces only).
        var i = 0
        while isTokenByte(p[i]) { i += 1 }
        let methodEnd = i
        guard methodEnd > 0 else { throw p[i] == SP || p[i] == CR ? .invalidRequestLine : .invalidMethod }
        guard p[i] == SP else { throw p[i] == CR || p[i] == HTAB ? .invalidRequestLine : .invalidMethod }
        let method = parseMethod(p, methodEnd)
        // Other methods are passed on (a router may serve them; Router answers 501 when none does).
        if method == .other("CONNECT") { throw .methodNotImplemented }
        i += 1
        let targetStart = i
        while p[i] > SP && p[i] < 0x7F { i += 1 }
        let targetEnd = i
        guard targetEnd > targetStart else { throw .invalidRequestLine }
        guard p[i] == SP else { throw p[i] == CR ? .invalidRequestLine : .invalidTarget }
        i += 1
        // HTTP-version = "HTTP/" DIGIT "." DIGIT, case-sensitive, then CRLF.
        guard i + 9 < p.count, p[i] == 0x48, p[i + 1] == 0x54, p[i + 2] == 0x54, p[i + 3] == 0x50, p[i + 4] == 0x2F,
              p[i + 6] == 0x2E, isDigit(p[i + 5]), isDigit(p[i + 7]) else { throw .invalidVersion }
        guard p[i + 8] == CR else { throw p[i + 8] == SP ? .invalidRequestLine : .invalidVersion }
        let major = Int(p[i + 5] &- 0x30), minor = Int(p[i + 7] &- 0x30)
        guard major == 1 else { throw .unsupportedVersion }
        let isHTTP11 = minor >= 1
        i += 10

        // Header fields.
        var fields: [HTTPField] = []
        // One slot more than the request carries: a server commonly adds a field of its own (a
        // request id) before the handler runs, and a full array would be copied to grow.
        fields.reserveCapacity(fieldCount + 1)
        var hostCount = 0
        var hostValue: String? = nil
        var contentLength: Int? = nil
        var sawTransferEncoding = false
        var chunkedCount = 0, otherCodings = 0
        var lastIsChunked = false
        var connectionClose = false, connectionKeepAlive = false
        var expectContinue = false

        while let f = try nextField(p, &i) {
            let name = String(decoding: UnsafeBufferPointer(rebasing: p[f.nameStart..<f.nameEnd]), as: UTF8.self)
            let value = String(decoding: UnsafeBufferPointer(rebasing: p[f.valueStart..<f.valueEnd]), as: UTF8.self)
            fields.append(HTTPField(name: name, value: value))
            switch f.nameEnd - f.nameStart {
            case 4 where equalsLowercase(p, f.nameStart, f.nameEnd, "host"):
                hostCount += 1
                if hostCount > 1 { throw .duplicateHost }
                guard isValidHost(p, f.valueStart, f.valueEnd) else { throw .invalidHost }
                hostValue = value
            case 14 where equalsLowercase(p, f.nameStart, f.nameEnd, "content-length"):
                let length = try parseContentLength(p, f.valueStart, f.valueEnd, limits)
                if let previous = contentLength, previous != length { throw .conflictingContentLength }
                contentLength = length
            case 17 where equalsLowercase(p, f.nameStart, f.nameEnd, "transfer-encoding"):
                sawTransferEncoding = true
                try forEachListElement(p, f.valueStart, f.valueEnd) { (s: Int, e: Int) throws(HTTPParseError) in
                    // transfer-coding = token *( OWS ";" OWS transfer-parameter )
                    var k = s
                    while k < e && isTokenByte(p[k]) { k += 1 }
                    guard k > s else { throw .unsupportedTransferCoding }
                    if k - s == 7 && equalsLowercase(p, s, k, "chunked") {
                        // chunked takes no parameters.
                        guard k == e else { throw .chunkedNotFinal }
                        chunkedCount += 1
                        lastIsChunked = true
                    } else {
                        otherCodings += 1
                        lastIsChunked = false
                    }
                }
            case 10 where equalsLowercase(p, f.nameStart, f.nameEnd, "connection"):
                try forEachListElement(p, f.valueStart, f.valueEnd) { (s: Int, e: Int) throws(HTTPParseError) in
                    if e - s == 5 && equalsLowercase(p, s, e, "close") { connectionClose = true }
                    else if e - s == 10 && equalsLowercase(p, s, e, "keep-alive") { connectionKeepAlive = true }
                }
            case 6 where equalsLowercase(p, f.nameStart, f.nameEnd, "expect"):
                guard f.valueEnd - f.valueStart == 12 && equalsLowercase(p, f.valueStart, f.valueEnd, "100-continue") else {
                    throw .unsupportedExpectation
                }
                // An HTTP/1.0 client cannot mean it (RFC 9110 §10.1.1): ignore it there.
                expectContinue = isHTTP11
            default:
                break
            }
        }

        // Framing (RFC 9112 §6.3).
        var framing = HTTPBodyFraming.none
        if sawTransferEncoding {
            if contentLength != nil { throw .contentLengthWithTransferEncoding }
            if !isHTTP11 { throw .transferEncodingInHTTP10 }
            // A coding other than chunked (gzip, identity, …) is one this server does not
            // implement: 501 (RFC 9112 §6.1), as nginx answers; then chunked must be there once, last.
            if otherCodings > 0 { throw .unsupportedTransferCoding }
            if chunkedCount != 1 || !lastIsChunked { throw .chunkedNotFinal }
            framing = .chunked
        } else if let length = contentLength {
            framing = .contentLength(length)
        }
        if isHTTP11 && hostCount == 0 { throw .missingHost }

        // Request target (RFC 9112 §3.2).
        let target = String(decoding: UnsafeBufferPointer(rebasing: p[targetStart..<targetEnd]), as: UTF8.self)
        var pathStart = targetStart
        var authority: String? = nil
        if p[targetStart] == SLASH {
            // origin-form
        } else if targetEnd - targetStart == 1 && p[targetStart] == 0x2A {
            guard method == .OPTIONS else { throw .invalidTarget }
            pathStart = targetEnd
        } else {
            // absolute-form: http(s)://authority[path-abempty][?query]
            var k = targetStart
            if targetEnd - k > 7 && equalsLowercase(p, k, k + 7, "http://") { k += 7 }
            else if targetEnd - k > 8 && equalsLowercase(p, k, k + 8, "https://") { k += 8 }
            else { throw .invalidTarget }
            let authorityStart = k
            while k < targetEnd && p[k] != SLASH && p[k] != QUESTION { k += 1 }
            guard k > authorityStart, isValidHost(p, authorityStart, k) else { throw .invalidTarget }
            authority = String(decoding: UnsafeBufferPointer(rebasing: p[authorityStart..<k]), as: UTF8.self)
            pathStart = k
        }
        var queryStart = pathStart
        while queryStart < targetEnd && p[queryStart] != QUESTION {
            if p[queryStart] == HASH { throw .invalidTarget }
            queryStart += 1
        }
        let path: String
        if pathStart == targetEnd && authority == nil {
            path = "*"
        } else if pathStart == queryStart {
            path = "/"
        } else if pathStart == targetStart && queryStart == targetEnd && !containsByte(p, pathStart, queryStart, PERCENT) {
            path = target
        } else {
            guard let decoded = PercentDecoding.decode(p, pathStart, queryStart, plusAsSpace: false) else {
                throw .invalidPercentEncoding
            }
            path = decoded
        }
        var query: [(name: String, value: String)] = []
        if queryStart < targetEnd {
            var k = queryStart + 1
            while k < targetEnd {
                var e = k
                var eq = -1
                while e < targetEnd && p[e] != AMPERSAND {
                    if p[e] == HASH { throw .invalidTarget }
                    if p[e] == EQUALS && eq < 0 { eq = e }
                    e += 1
                }
                if e > k {
                    let nameEnd = eq < 0 ? e : eq
                    guard let name = PercentDecoding.decode(p, k, nameEnd, plusAsSpace: true),
                          let value = eq < 0 ? "" : PercentDecoding.decode(p, eq + 1, e, plusAsSpace: true) else {
                        throw .invalidPercentEncoding
                    }
                    query.append((name: name, value: value))
                }
                k = e + 1
            }
        }

        let keepAlive = isHTTP11 ? !connectionClose : (connectionKeepAlive && !connectionClose)
        if case .contentLength(let length) = framing, length > limits.maxBodyBytes {
            throw .bodyTooLarge(limit: limits.maxBodyBytes)
        }
        return HTTPRequestHead(method: method, target: target, path: path, query: query, version: (major, minor),
                               headers: HTTPHeaders(fields: fields), host: authority ?? hostValue,
                               keepAlive: keepAlive, expectContinue: expectContinue, bodyFraming: framing)
    }

    static func parseTrailers(_ p: UnsafeBufferPointer<UInt8>) throws(HTTPParseError) -> HTTPHeaders {
        var i = 0
        var fields: [HTTPField] = []
        while let f = try nextField(p, &i) {
            fields.append(HTTPField(name: String(decoding: UnsafeBufferPointer(rebasing: p[f.nameStart..<f.nameEnd]), as: UTF8.self),
                                    value: String(decoding: UnsafeBufferPointer(rebasing: p[f.valueStart..<f.valueEnd]), as: UTF8.self)))
        }
        return HTTPHeaders(fields: fields)
    }

    /// Parses the field line at `i` (field-name ":" OWS field-value OWS CRLF), validating it, and
    /// moves `i` past it. Returns nil at the blank line that ends the section.
    @inline(__always)
    static func nextField(_ p: UnsafeBufferPointer<UInt8>, _ i: inout Int)
        throws(HTTPParseError) -> (nameStart: Int, nameEnd: Int, valueStart: Int, valueEnd: Int)? {
        var k = i
        if p[k] == CR { i = k + 2; return nil }
        let nameStart = k
        while isTokenByte(p[k]) { k += 1 }
        let nameEnd = k
        guard p[k] == COLON, nameEnd > nameStart else {
            if nameEnd == nameStart && (p[k] == SP || p[k] == HTAB) { throw .obsoleteLineFolding }
            if nameEnd > nameStart && (p[k] == SP || p[k] == HTAB) { throw .whitespaceBeforeColon }
            throw .invalidHeaderName
        }
        k += 1
        while p[k] == SP || p[k] == HTAB { k += 1 }
        let valueStart = k
        var valueEnd = k
        // field-value: VCHAR / obs-text / SP / HTAB. No other control character, NUL included.
        while true {
            let b = p[k]
            if b > SP && b != 0x7F {
                k += 1
                valueEnd = k
            } else if b == SP || b == HTAB {
                k += 1
            } else if b == CR {
                break
            } else {
                throw .invalidHeaderValue
            }
        }
        i = k + 2
        return (nameStart, nameEnd, valueStart, valueEnd)
    }

    /// Content-Length = 1*DIGIT, or a list of identical values (RFC 9110 §8.6).
    static func parseContentLength(_ p: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int,
                                   _ limits: HTTPParserLimits) throws(HTTPParseError) -> Int {
        var result: Int? = nil
        var overflow = false
        try forEachListElement(p, start, end, allowEmpty: false) { (s: Int, e: Int) throws(HTTPParseError) in
            var v = 0
            for k in s..<e {
                guard isDigit(p[k]) else { throw .invalidContentLength }
                let (m, o1) = v.multipliedReportingOverflow(by: 10)
                let (a, o2) = m.addingReportingOverflow(Int(p[k] &- 0x30))
                if o1 || o2 { overflow = true; v = Int.max } else { v = a }
            }
            if let r = result, r != v { throw .conflictingContentLength }
            result = v
        }
        guard let length = result else { throw .invalidContentLength }
        // A length that does not fit in 63 bits is not a length: 400, as nginx, Go and hyper answer.
        if overflow { throw .invalidContentLength }
        return length
    }

    /// Calls `body` with the bounds of each element of a comma-separated list (RFC 9110 §5.6.1),
    /// OWS trimmed. Empty elements are skipped, or rejected as an invalid Content-Length.
    @inline(__always)
    static func forEachListElement(_ p: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int, allowEmpty: Bool = true,
                                   _ body: (Int, Int) throws(HTTPParseError) -> Void) throws(HTTPParseError) {
        var k = start
        while k <= end {
            var e = k
            while e < end && p[e] != COMMA { e += 1 }
            var s = k, t = e
            while s < t && (p[s] == SP || p[s] == HTAB) { s += 1 }
            while t > s && (p[t - 1] == SP || p[t - 1] == HTAB) { t -= 1 }
            if t > s { try body(s, t) } else if !allowEmpty { throw .invalidContentLength }
            k = e + 1
        }
    }

    static func parseMethod(_ p: UnsafeBufferPointer<UInt8>, _ end: Int) -> HTTPMethod {
        switch end {
        case 3:
            if equalsExact(p, 0, end, "GET") { return .GET }
            if equalsExact(p, 0, end, "PUT") { return .PUT }
        case 4:
            if equalsExact(p, 0, end, "POST") { return .POST }
            if equalsExact(p, 0, end, "HEAD") { return .HEAD }
        case 5:
            if equalsExact(p, 0, end, "PATCH") { return .PATCH }
        case 6:
            if equalsExact(p, 0, end, "DELETE") { return .DELETE }
        case 7:
            if equalsExact(p, 0, end, "OPTIONS") { return .OPTIONS }
        default:
            break
        }
        return .other(String(decoding: UnsafeBufferPointer(rebasing: p[0..<end]), as: UTF8.self))
    }

    /// uri-host [ ":" port ] with uri-host a reg-name, IPv4 or IP-literal; empty is allowed (RFC 9112 §3.2).
    static func isValidHost(_ p: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int) -> Bool {
        var k = start
        if k < end && p[k] == 0x5B {  // IP-literal "[...]"
            while k < end && p[k] != 0x5D {
                let b = p[k]
                guard isHexDigit(b) || b == COLON || b == 0x2E || b == 0x5B || isUnreserved(b) || isSubDelim(b) else { return false }
                k += 1
            }
            guard k < end else { return false }
            k += 1
        } else {
            while k < end && p[k] != COLON {
                let b = p[k]
                guard isUnreserved(b) || isSubDelim(b) || b == PERCENT else { return false }
                k += 1
            }
        }
        if k < end {
            guard p[k] == COLON else { return false }
            k += 1
            while k < end {
                guard isDigit(p[k]) else { return false }
                k += 1
            }
        }
        return true
    }
}

// MARK: - Byte classes

let CR: UInt8 = 0x0D, LF: UInt8 = 0x0A, SP: UInt8 = 0x20, HTAB: UInt8 = 0x09
let COLON: UInt8 = 0x3A, SEMI: UInt8 = 0x3B, COMMA: UInt8 = 0x2C, EQUALS: UInt8 = 0x3D, DQUOTE: UInt8 = 0x22
let BACKSLASH: UInt8 = 0x5C, SLASH: UInt8 = 0x2F, QUESTION: UInt8 = 0x3F, HASH: UInt8 = 0x23
let PERCENT: UInt8 = 0x25, AMPERSAND: UInt8 = 0x26

/// tchar (RFC 9110 §5.6.2): one bit per ASCII byte (a test with no branch per character class;
/// held to the RFC's list, `isTokenByteReference`, for every byte by the tests).
@inline(__always)
func isTokenByte(_ b: UInt8) -> Bool {
    let low: UInt64 = 0x03FF_6CFA_0000_0000    // DIGIT ! # $ % & ' * + - .
    let high: UInt64 = 0x57FF_FFFF_C7FF_FFFE   // ALPHA ^ _ ` | ~
    return b < 0x80 && ((b < 0x40 ? low : high) >> UInt64(b & 0x3F)) & 1 != 0
}

/// tchar as the RFC lists it: the plain reference of `isTokenByte`.
func isTokenByteReference(_ b: UInt8) -> Bool {
    switch b {
    case 0x30...0x39, 0x41...0x5A, 0x61...0x7A: true
    case 0x21, 0x23, 0x24, 0x25, 0x26, 0x27, 0x2A, 0x2B, 0x2D, 0x2E, 0x5E, 0x5F, 0x60, 0x7C, 0x7E: true
    default: false
    }
}

/// Nonzero when some byte of the word `x` equals `b` (exact as a test of "any"): the eight-at-a-time
/// scans' test (head sections, JSON escapes, field values).
@inline(__always)
func wordHasByte(_ x: UInt64, _ b: UInt8) -> UInt64 {
    let ones: UInt64 = 0x0101_0101_0101_0101
    let y = x ^ (ones &* UInt64(b))
    return (y &- ones) & ~y & (ones &* 0x80)
}

/// Nonzero when some byte of the word `x` is below `b` (`b` ≤ 0x80; exact as a test of "any"): the
/// control-byte test of the eight-at-a-time scans (field values, JSON escapes).
@inline(__always)
func wordHasByteBelow(_ x: UInt64, _ b: UInt8) -> UInt64 {
    let ones: UInt64 = 0x0101_0101_0101_0101
    return (x &- ones &* UInt64(b)) & ~x & (ones &* 0x80)
}

@inline(__always) func isDigit(_ b: UInt8) -> Bool { b &- 0x30 < 10 }
@inline(__always) func isHexDigit(_ b: UInt8) -> Bool { PercentDecoding.hexValue(b) != nil }
@inline(__always)
func isUnreserved(_ b: UInt8) -> Bool {
    switch b {
    case 0x30...0x39, 0x41...0x5A, 0x61...0x7A, 0x2D, 0x2E, 0x5F, 0x7E: true
    default: false
    }
}
@inline(__always)
func isSubDelim(_ b: UInt8) -> Bool {
    switch b {
    case 0x21, 0x24, 0x26, 0x27, 0x28, 0x29, 0x2A, 0x2B, 0x2C, 0x3B, 0x3D: true
    default: false
    }
}

@inline(__always)
func containsByte(_ p: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int, _ byte: UInt8) -> Bool {
    var k = start
    while k < end { if p[k] == byte { return true }; k += 1 }
    return false
}

/// Whether `p[start..<end]` equals the ASCII `lower`, ignoring the case of `p`'s letters.
@inline(__always)
func equalsLowercase(_ p: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int, _ lower: StaticString) -> Bool {
    guard end - start == lower.utf8CodeUnitCount else { return false }
    let s = lower.utf8Start
    for k in 0..<(end - start) {
        var b = p[start + k]
        if b >= 0x41 && b <= 0x5A { b |= 0x20 }
        if b != s[k] { return false }
    }
    return true
}

@inline(__always)
func equalsExact(_ p: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int, _ text: StaticString) -> Bool {
    guard end - start == text.utf8CodeUnitCount else { return false }
    let s = text.utf8Start
    for k in 0..<(end - start) where p[start + k] != s[k] { return false }
    return true
}
