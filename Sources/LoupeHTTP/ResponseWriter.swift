// Response serialization (RFC 9112 §4, §6; RFC 9110 §6.6.1 Date, §8.4 content codings).
// Pure: bytes out, no socket. The connection code appends what this writes to its output buffer.
import Glibc
import LoupeSystem

/// What the writer needs to know about the request a response answers.
public struct HTTPResponseContext: Sendable {
    /// HEAD: headers as for GET, no body bytes.
    public var isHead: Bool
    /// The request's version; an HTTP/1.0 client gets no chunked framing and an explicit keep-alive.
    public var version: (major: Int, minor: Int)
    /// Whether the connection may stay open after this response (the request's keep-alive and the
    /// server's own wish, e.g. not when draining or at the per-connection request limit).
    public var keepAlive: Bool
    /// The request's Accept-Encoding value, if any.
    public var acceptEncoding: String?

    public init(isHead: Bool = false, version: (major: Int, minor: Int) = (1, 1), keepAlive: Bool = true,
                acceptEncoding: String? = nil) {
        self.isHead = isHead; self.version = version; self.keepAlive = keepAlive; self.acceptEncoding = acceptEncoding
    }

    public init(head: HTTPRequestHead) {
        self.init(isHead: head.method == .HEAD, version: head.version, keepAlive: head.keepAlive,
                  acceptEncoding: head.headers["accept-encoding"])
    }

    public init(request: borrowing HTTPRequest, keepAlive: Bool) {
        self.init(isHead: request.method == .HEAD, version: request.version, keepAlive: keepAlive,
                  acceptEncoding: request.headers["accept-encoding"])
    }

    /// For answering bytes that did not parse: HTTP/1.1, close afterwards.
    public static let parseFailure = HTTPResponseContext(keepAlive: false)
}

/// Every default of the writer in one place.
public struct ResponseWriterConfiguration: Sendable {
    /// `Server` header value; nil sends none. A handler's own `Server` header wins.
    public var serverName: String? = "Loupe"
    /// Compress responses with gzip when the client accepts it.
    public var gzipEnabled = true
    /// Bodies smaller than this are sent as they are (gzip's ~20-byte frame and the CPU are not worth it).
    public var gzipMinimumBytes = 1024
    /// zlib level 1…9; 5 is near level 6's ratio on JSON and text at a good deal less CPU.
    public var gzipLevel: Int32 = 5

    public init(serverName: String? = "Loupe", gzipEnabled: Bool = true, gzipMinimumBytes: Int = 1024, gzipLevel: Int32 = 5) {
        self.serverName = serverName; self.gzipEnabled = gzipEnabled
        self.gzipMinimumBytes = gzipMinimumBytes; self.gzipLevel = gzipLevel
    }
}

/// Source of the `Date` header: a per-second cache of the IMF-fixdate text.
public final class HTTPDateCache: Sendable {
    private let now: @Sendable () -> Int
    /// Each thread's own (no lock shared by the event loops at every response).
    private let cache = PerThread { Entry() }

    /// One thread's, never touched re-entrantly: no dynamic exclusivity check (see Connection).
    private final class Entry {
        @exclusivity(unchecked) var second = Int.min
        @exclusivity(unchecked) var bytes: [UInt8] = []
    }

    /// `now` returns seconds since the Unix epoch (default: the system clock).
    public init(now: @escaping @Sendable () -> Int = { Int(time(nil)) }) {
        self.now = now
    }

    public static let system = HTTPDateCache()

    /// "Sun, 06 Nov 1994 08:49:37 GMT" for the current second.
    public func current() -> [UInt8] {
        let second = now()
        return cache.withValue { c in
            if c.second != second { c.second = second; c.bytes = Self.imfFixdate(second) }
            return c.bytes
        }
    }

    /// IMF-fixdate (RFC 9110 §5.6.7) of a Unix time.
    public static func imfFixdate(_ epochSeconds: Int) -> [UInt8] {
        var t = time_t(epochSeconds)
        var tm = Glibc.tm()
        gmtime_r(&t, &tm)
        let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        var out: [UInt8] = []
        out.reserveCapacity(29)
        out.append(contentsOf: days[Int(tm.tm_wday)].utf8)
        out.append(contentsOf: ", ".utf8)
        appendTwoDigits(Int(tm.tm_mday), &out)
        out.append(SP)
        out.append(contentsOf: months[Int(tm.tm_mon)].utf8)
        out.append(SP)
        appendDecimal(Int(tm.tm_year) + 1900, into: &out)
        out.append(SP)
        appendTwoDigits(Int(tm.tm_hour), &out)
        out.append(COLON)
        appendTwoDigits(Int(tm.tm_min), &out)
        out.append(COLON)
        appendTwoDigits(Int(tm.tm_sec), &out)
        out.append(contentsOf: " GMT".utf8)
        return out
    }

    private static func appendTwoDigits(_ v: Int, _ out: inout [UInt8]) {
        out.append(0x30 + UInt8(v / 10))
        out.append(0x30 + UInt8(v % 10))
    }
}

/// Serializes responses: status line, `Date`, `Server`, framing (`Content-Length`; responses are
/// never streamed), `Connection`, gzip. Handlers' own framing headers are replaced, never trusted.
public struct ResponseWriter: Sendable {
    public let configuration: ResponseWriterConfiguration
    public let dates: HTTPDateCache

    public init(configuration: ResponseWriterConfiguration = ResponseWriterConfiguration(), dates: HTTPDateCache = .system) {
        self.configuration = configuration
        self.dates = dates
    }

    /// The interim response sent before reading the body of an `Expect: 100-continue` request.
    public static let continueResponse: [UInt8] = Array("HTTP/1.1 100 Continue\r\n\r\n".utf8)

    /// Appends the whole response to `out`. Returns true when the connection must close after it.
    @discardableResult
    public func write(_ response: HTTPResponse, context: HTTPResponseContext, into out: inout [UInt8]) -> Bool {
        let status = response.status
        let bodyAllowed = !(status < 200 || status == 204 || status == 304)
        var body = response.body
        var close = !context.keepAlive
        var contentEncodingSet = false
        var varySet = false
        var serverSet = false
        var contentType: String? = nil
        var declaredLength: String? = nil
        // Fields read in place by index (iterating copies each name and value: a retain and a
        // release of both, per loop).
        let fields = response.headers.fields
        for i in fields.indices {
            switch fields[i].name.utf8.count {
            case 10 where HTTPHeaders.equal(fields[i].name, "connection"):
                if headerListContains(fields[i].value, "close") { close = true }
            case 16 where HTTPHeaders.equal(fields[i].name, "content-encoding"): contentEncodingSet = true
            case 4 where HTTPHeaders.equal(fields[i].name, "vary"): varySet = true
            case 6 where HTTPHeaders.equal(fields[i].name, "server"): serverSet = true
            case 12 where HTTPHeaders.equal(fields[i].name, "content-type"): contentType = fields[i].value
            case 14 where HTTPHeaders.equal(fields[i].name, "content-length"): declaredLength = fields[i].value
            default: break
            }
        }

        // gzip: compressible type, big enough, not already encoded, and the client accepts it.
        var gzipped = false
        var addVary = false
        if configuration.gzipEnabled && bodyAllowed && status != 206 && !contentEncodingSet
            && body.count >= configuration.gzipMinimumBytes, let type = contentType, Self.isCompressible(type) {
            addVary = !varySet
            if let accept = context.acceptEncoding, Self.acceptsGzip(accept),
               let compressed = Gzip.compress(body, level: configuration.gzipLevel), compressed.count < body.count {
                body = compressed
                gzipped = true
            }
        }

        // The head is written through a cursor into memory sized for it, then appended at once.
        let date = dates.current()
        let server = serverSet ? nil : configuration.serverName
        var headBytes = Self.fixedHeadBytes + date.count + (server?.utf8.count ?? 0) + (declaredLength?.utf8.count ?? 0)
        for i in fields.indices { headBytes += fields[i].name.utf8.count + fields[i].value.utf8.count + 4 }
        out.reserveCapacity(out.count + headBytes + body.count)
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: headBytes) { buffer in
            var c = ByteCursor(buffer)
            Self.putStatusLine(status, &c)
            c.put("Date: "); date.withUnsafeBufferPointer { c.put($0) }; c.put("\r\n")
            if let server { c.put("Server: "); Self.putUTF8(server, &c); c.put("\r\n") }
            // Every response: browsers must not sniff a JSON error (which may echo request bytes)
            // into HTML or script.
            c.put("X-Content-Type-Options: nosniff\r\n")
            for i in fields.indices { Self.putWritable(fields[i].name, fields[i].value, &c) }
            if gzipped { c.put("Content-Encoding: gzip\r\n") }
            if addVary { c.put("Vary: Accept-Encoding\r\n") }
            if bodyAllowed {
                c.put("Content-Length: ")
                if context.isHead && body.isEmpty, let declared = declaredLength, isDecimal(declared) {
                    // A HEAD handler that states the length its GET would have.
                    Self.putUTF8(declared, &c)
                } else {
                    c.putDecimal(UInt(body.count))
                }
                c.put("\r\n")
            }
            if close {
                c.put("Connection: close\r\n")
            } else if context.version.minor == 0 {
                c.put("Connection: keep-alive\r\n")
            }
            c.put("\r\n")
            out.append(contentsOf: c.written)
        }
        if bodyAllowed && !context.isHead { out.append(contentsOf: body) }
        return close
    }

    /// The most a head takes besides Date, Server's value, a declared length and the handler's
    /// fields: status line 46 (3 digits, the longest reason phrase), "Date: " and CRLF 8,
    /// "Server: " and CRLF 10, nosniff 33, Content-Encoding 24, Vary 23, Content-Length 38 (20
    /// digits), Connection 24, the empty line 2 — 208, rounded up.
    static let fixedHeadBytes = 256

    /// Appends `name: value` CRLF when `isUserHeaderWritable` (its plain reference, in the tests)
    /// allows it (`putWritable` into an array: the tests' entry).
    static func appendWritable(_ name: String, _ value: String, into out: inout [UInt8]) {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: name.utf8.count + value.utf8.count + 4) { buffer in
            var c = ByteCursor(buffer)
            putWritable(name, value, &c)
            out.append(contentsOf: c.written)
        }
    }

    /// Writes `name: value` CRLF when `isUserHeaderWritable` allows it: the same rules, checked
    /// and copied over each string's bytes in one pass. Needs name + value + 4 bytes of room.
    static func putWritable(_ name: String, _ value: String, _ c: inout ByteCursor) {
        withUTF8Bytes(name) { n in
            withUTF8Bytes(value) { v in
                guard !n.isEmpty, !isForbiddenName(n), isTokenName(n) else { return }
                guard isFieldValue(v) else { return }
                c.put(n)
                c.put(": ")
                c.put(v)
                c.put("\r\n")
            }
        }
    }

    /// Whether every byte is a tchar (`isTokenByte`): eight bytes at a time while they are ASCII
    /// letters, digits or '-' (what field names are made of; the last word overlaps the one
    /// before), byte by byte from the start otherwise and for names under eight bytes.
    @inline(__always)
    static func isTokenName(_ n: UnsafeBufferPointer<UInt8>) -> Bool {
        if n.count >= 8, let base = n.baseAddress {
            let raw = UnsafeRawPointer(base)
            var i = 0
            while isAlphanumericOrDash(raw.loadUnaligned(fromByteOffset: min(i, n.count - 8), as: UInt64.self)) {
                if i >= n.count - 8 { return true }
                i += 8
            }
        }
        for b in n where !isTokenByte(b) { return false }
        return true
    }

    /// Whether all eight bytes of `x` are ASCII letters, digits or '-'. A byte's high bit marks it
    /// within a range: with every byte below 0x80, `v + (0x80 - lo)` reaches 0x80 exactly when
    /// v ≥ lo and `v + (0x7F - hi)` exactly when v > hi, and no sum carries into the next byte.
    @inline(__always)
    static func isAlphanumericOrDash(_ x: UInt64) -> Bool {
        let ones: UInt64 = 0x0101_0101_0101_0101, highs: UInt64 = 0x8080_8080_8080_8080
        if x & highs != 0 { return false }
        @inline(__always) func within(_ v: UInt64, _ lo: UInt64, _ hi: UInt64) -> UInt64 {
            (v &+ ones &* (0x80 - lo)) & ~(v &+ ones &* (0x7F - hi)) & highs
        }
        let digit = within(x, 0x30, 0x39)
        let letter = within(x | (ones &* 0x20), 0x61, 0x7A)   // 'A'…'Z' folded onto 'a'…'z'
        let dash = within(x, 0x2D, 0x2D)
        return digit | letter | dash == highs
    }

    /// Whether every byte may stand in a field value (HTAB, or SP and above but DEL; the rule of
    /// `isUserHeaderWritable`): eight bytes at a time while no word holds a byte below SP or a DEL,
    /// then byte by byte from the first word that does (HTAB is allowed) and for the tail.
    @inline(__always)
    static func isFieldValue(_ v: UnsafeBufferPointer<UInt8>) -> Bool {
        var i = 0
        if let base = v.baseAddress {
            let raw = UnsafeRawPointer(base)
            while i + 8 <= v.count {
                let x = raw.loadUnaligned(fromByteOffset: i, as: UInt64.self)
                if wordHasByteBelow(x, SP) | wordHasByte(x, 0x7F) != 0 { break }
                i += 8
            }
        }
        while i < v.count {
            let b = v[i]
            if !(b == HTAB || (b >= SP && b != 0x7F)) { return false }
            i += 1
        }
        return true
    }

    /// A String's UTF-8 (contiguous, or made so).
    private static func putUTF8(_ s: String, _ c: inout ByteCursor) {
        withUTF8Bytes(s) { c.put($0) }
    }

    /// Date, Connection, Content-Length, Transfer-Encoding (any case): the writer's own.
    private static func isForbiddenName(_ n: UnsafeBufferPointer<UInt8>) -> Bool {
        func equal(_ lower: StaticString) -> Bool {
            guard n.count == lower.utf8CodeUnitCount else { return false }
            for i in 0..<n.count {
                let b = n[i], l = lower.utf8Start[i]
                if b != l && !(b >= 0x41 && b <= 0x5A && b | 0x20 == l) { return false }
            }
            return true
        }
        switch n.count {
        case 4: return equal("date")
        case 10: return equal("connection")
        case 14: return equal("content-length")
        case 17: return equal("transfer-encoding")
        default: return false
        }
    }

    /// Appends the error answer for bytes that did not parse (JSON body, `Connection: close`).
    public func writeError(_ error: HTTPParseError, into out: inout [UInt8]) {
        write(HTTPResponse.parseError(error), context: .parseFailure, into: &out)
    }

    // MARK: - Rules

    /// Header fields a handler may not set: the writer owns framing, Date and Connection.
    /// Fields with an invalid name or a value containing CR, LF or another control character
    /// (response splitting) are dropped. The plain reference of `appendWritable` (the tests compare them).
    static func isUserHeaderWritable(_ name: String, _ value: String) -> Bool {
        let n = name.utf8
        guard !n.isEmpty, n.allSatisfy(isTokenByte) else { return false }
        switch n.count {
        case 4 where HTTPHeaders.equal(name, "date"): return false
        case 10 where HTTPHeaders.equal(name, "connection"): return false
        case 14 where HTTPHeaders.equal(name, "content-length"): return false
        case 17 where HTTPHeaders.equal(name, "transfer-encoding"): return false
        default: break
        }
        return value.utf8.allSatisfy { $0 == HTAB || ($0 >= SP && $0 != 0x7F) }
    }

    /// Types worth compressing: text/*, JSON, XML, JavaScript, Prometheus/OpenMetrics text, SVG.
    public static func isCompressible(_ contentType: String) -> Bool {
        var type = Substring(contentType)
        if let semi = type.firstIndex(of: ";") { type = type[..<semi] }
        let t = type.trimmingSpaces().lowercased()
        if t.hasPrefix("text/") { return true }
        switch t {
        case "application/json", "application/javascript", "application/xml", "application/x-ndjson",
             "application/openmetrics-text", "image/svg+xml", "application/problem+json":
            return true
        default:
            return t.hasSuffix("+json") || t.hasSuffix("+xml")
        }
    }

    /// Whether an Accept-Encoding value admits gzip (RFC 9110 §12.5.3): an explicit `gzip` or
    /// `x-gzip` with q > 0, else `*` with q > 0. No header means no compression.
    public static func acceptsGzip(_ acceptEncoding: String) -> Bool {
        var gzipQ: Double? = nil
        var starQ: Double? = nil
        for element in acceptEncoding.split(separator: ",") {
            var parts = element.split(separator: ";", omittingEmptySubsequences: false).makeIterator()
            guard let coding = parts.next()?.trimmingSpaces().lowercased(), !coding.isEmpty else { continue }
            var q = 1.0
            while let param = parts.next() {
                let p = param.trimmingSpaces()
                if p.count > 2, p.lowercased().hasPrefix("q=") {
                    q = Self.parseQValue(p.dropFirst(2)) ?? 0
                }
            }
            if coding == "gzip" || coding == "x-gzip" { gzipQ = max(gzipQ ?? 0, q) }
            else if coding == "*" { starQ = q }
        }
        if let q = gzipQ { return q > 0 }
        if let q = starQ { return q > 0 }
        return false
    }

    /// qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] ); nil when malformed.
    static func parseQValue(_ s: Substring) -> Double? {
        let u = Array(s.utf8)
        guard let first = u.first, first == 0x30 || first == 0x31 else { return nil }
        if u.count == 1 { return first == 0x31 ? 1 : 0 }
        guard u[1] == 0x2E, u.count <= 5 else { return nil }
        var frac = 0.0, scale = 0.1
        for d in u[2...] {
            guard isDigit(d) else { return nil }
            frac += Double(d - 0x30) * scale
            scale /= 10
        }
        if first == 0x31 { return frac == 0 ? 1 : nil }
        return frac
    }

    public static func reasonPhrase(_ status: Int) -> StaticString {
        switch status {
        case 100: "Continue"
        case 101: "Switching Protocols"
        case 200: "OK"
        case 201: "Created"
        case 202: "Accepted"
        case 204: "No Content"
        case 206: "Partial Content"
        case 301: "Moved Permanently"
        case 302: "Found"
        case 303: "See Other"
        case 304: "Not Modified"
        case 307: "Temporary Redirect"
        case 308: "Permanent Redirect"
        case 400: "Bad Request"
        case 401: "Unauthorized"
        case 403: "Forbidden"
        case 404: "Not Found"
        case 405: "Method Not Allowed"
        case 406: "Not Acceptable"
        case 408: "Request Timeout"
        case 409: "Conflict"
        case 410: "Gone"
        case 411: "Length Required"
        case 412: "Precondition Failed"
        case 413: "Content Too Large"
        case 414: "URI Too Long"
        case 415: "Unsupported Media Type"
        case 417: "Expectation Failed"
        case 422: "Unprocessable Content"
        case 425: "Too Early"
        case 426: "Upgrade Required"
        case 429: "Too Many Requests"
        case 431: "Request Header Fields Too Large"
        case 500: "Internal Server Error"
        case 501: "Not Implemented"
        case 502: "Bad Gateway"
        case 503: "Service Unavailable"
        case 504: "Gateway Timeout"
        case 505: "HTTP Version Not Supported"
        default: ""
        }
    }

    private static func putStatusLine(_ status: Int, _ c: inout ByteCursor) {
        if status == 200 {
            c.put("HTTP/1.1 200 OK\r\n")
            return
        }
        c.put("HTTP/1.1 ")
        c.putDecimal(UInt(min(max(status, 100), 999)))
        c.put(SP)
        c.put(Self.reasonPhrase(status))
        c.put("\r\n")
    }
}

extension HTTPResponse {
    /// A JSON error response: `{"error": "<message>", "code": "<code>"}`, with `errorCode` set.
    public static func jsonError(status: Int, message: String, code: String, headers: HTTPHeaders = HTTPHeaders()) -> HTTPResponse {
        var body: [UInt8] = []
        body.reserveCapacity(message.utf8.count + code.utf8.count + 32)
        appendStatic(&body, "{\"error\":")
        appendJSONString(message, to: &body)
        appendStatic(&body, ",\"code\":")
        appendJSONString(code, to: &body)
        appendStatic(&body, "}")
        var h = headers
        h.set("Content-Type", "application/json")
        return HTTPResponse(status: status, headers: h, body: body, errorCode: code)
    }

    /// The answer to a request that did not parse: its status, JSON body, `Connection: close`.
    public static func parseError(_ error: HTTPParseError) -> HTTPResponse {
        jsonError(status: error.status, message: error.description, code: error.code,
                  headers: HTTPHeaders([("Connection", "close")]))
    }
}

// MARK: - Byte helpers

@inline(__always)
func appendStatic(_ out: inout [UInt8], _ s: StaticString) {
    out.append(contentsOf: UnsafeBufferPointer(start: s.utf8Start, count: s.utf8CodeUnitCount))
}

func appendDecimal(_ value: Int, into out: inout [UInt8]) {
    if value < 0 { out.append(0x2D) }
    withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { d in
        out.append(contentsOf: d.prefix(writeDecimalDigits(value.magnitude, to: d.baseAddress!)))
    }
}

/// Request bytes quoted in an error message: at most `limit` bytes of UTF-8 (cut at a character
/// boundary, "…" marking the cut). Control characters become "?"; the JSON writer escapes the rest,
/// including `<`, `>` and `&`, so an echoed value can never become markup.
public func echoed(_ value: some StringProtocol, limit: Int = 64) -> String {
    var out = ""
    var bytes = 0
    for scalar in value.unicodeScalars {
        let size = String(scalar).utf8.count
        if bytes + size > limit { return out + "…" }
        bytes += size
        out.unicodeScalars.append(scalar.value < 0x20 || scalar.value == 0x7F ? "?" : scalar)
    }
    return out
}

/// Appends `s` as a JSON string literal: quote, backslash and control characters escaped, and
/// `<` `>` `&` too (HTML-safe output, as Go's encoder writes it: an error message quoting request
/// bytes can never read as markup). Escaped by `ByteCursor.putJSONString` (the one JSON string
/// escaper of the project; LoupeService's JSONWriter and access log call it) into a temporary of
/// at most 1 KiB, a piece of `jsonPieceBytes` input bytes at a time, each appended at once.
public func appendJSONString(_ s: String, to out: inout [UInt8]) {
    withUTF8Bytes(s) { buffer in
        let piece = min(buffer.count, jsonPieceBytes)
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: jsonStringBound(piece)) { temporary in
            var start = 0
            repeat {
                var c = ByteCursor(temporary)
                let end = min(start + piece, buffer.count)
                if start == 0 { c.put(DQUOTE) }
                c.putJSONEscaped(UnsafeBufferPointer(rebasing: buffer[start..<end]))
                if end == buffer.count { c.put(DQUOTE) }
                out.append(contentsOf: c.written)
                start = end
            } while start < buffer.count
        }
    }
}

/// Input bytes escaped per piece by `appendJSONString`: its temporary (6 × 170 + 2 bytes) stays
/// within the 1 KiB that is always taken from the stack.
let jsonPieceBytes = 170

/// The most bytes `putJSONString` writes for a string of `utf8Count` bytes: each byte escaped
/// as `\u00XX` (6), and the quotes.
@inlinable @inline(__always)
public func jsonStringBound(_ utf8Count: Int) -> Int { 6 * utf8Count + 2 }

extension ByteCursor {
    /// `s` as a JSON string literal (the escaping of `appendJSONString`); needs room for
    /// `jsonStringBound(s.utf8.count)` bytes.
    public mutating func putJSONString(_ s: String) {
        withUTF8Bytes(s) { putJSONString($0) }
    }

    /// The bytes of a JSON string literal, quotes included; needs `jsonStringBound(bytes.count)`.
    public mutating func putJSONString(_ bytes: UnsafeBufferPointer<UInt8>) {
        put(DQUOTE)
        putJSONEscaped(bytes)
        put(DQUOTE)
    }

    /// The escaped bytes without quotes: runs that need no escaping copied in bulk. Needs room for
    /// 6 bytes a byte.
    mutating func putJSONEscaped(_ buffer: UnsafeBufferPointer<UInt8>) {
        var runStart = 0
        while true {
            let i = firstJSONEscape(buffer, from: runStart)
            if i > runStart { put(UnsafeBufferPointer(rebasing: buffer[runStart..<i])) }
            if i == buffer.count { return }
            putJSONEscape(buffer[i])
            runStart = i + 1
        }
    }

    private mutating func putJSONEscape(_ c: UInt8) {
        switch c {
        case DQUOTE: put("\\\"")
        case BACKSLASH: put("\\\\")
        case LF: put("\\n")
        case CR: put("\\r")
        case HTAB: put("\\t")
        default:
            put("\\u00")
            putHex(UInt64(c), digits: 2)
        }
    }
}

/// The index of the first byte at or after `start` that a JSON string must escape (`jsonNeedsEscape`),
/// or `buffer.count`: eight bytes at a time while a word holds none of them, the last few bytes as
/// one word too (padded with bytes that need no escape), then byte by byte from a word that does.
@inline(__always) private func firstJSONEscape(_ buffer: UnsafeBufferPointer<UInt8>, from start: Int) -> Int {
    var i = start
    if let base = buffer.baseAddress {
        let raw = UnsafeRawPointer(base)
        let ones: UInt64 = 0x0101_0101_0101_0101
        @inline(__always) func needsEscape(_ x: UInt64) -> Bool {
            wordHasByteBelow(x, 0x20) | wordHasByte(x, DQUOTE) | wordHasByte(x, BACKSLASH) | wordHasByte(x, 0x3C) | wordHasByte(x, 0x3E)
                | wordHasByte(x, AMPERSAND) != 0
        }
        while i + 8 <= buffer.count {
            if needsEscape(raw.loadUnaligned(fromByteOffset: i, as: UInt64.self)) { break }
            i += 8
        }
        if i < buffer.count && buffer.count - i < 8 {
            var x: UInt64 = ones &* 0x61   // 'a'
            withUnsafeMutableBytes(of: &x) { $0.baseAddress!.copyMemory(from: raw + i, byteCount: buffer.count - i) }
            if !needsEscape(x) { return buffer.count }
        }
    }
    while i < buffer.count && !jsonNeedsEscape(buffer[i]) { i += 1 }
    return i
}

@inline(__always) private func jsonNeedsEscape(_ c: UInt8) -> Bool {
    c == DQUOTE || c == BACKSLASH || c < 0x20 || c == 0x3C || c == 0x3E || c == 0x26
}

/// Calls `body` with a String's UTF-8 in place (native and small strings), else with a contiguous
/// copy (a bridged or foreign string): no copy of the String itself, so no retain and release.
@inline(__always)
func withUTF8Bytes<R>(_ s: String, _ body: (UnsafeBufferPointer<UInt8>) -> R) -> R {
    if let result = s.utf8.withContiguousStorageIfAvailable(body) { return result }
    var s = s
    return s.withUTF8(body)
}

func isDecimal(_ s: String) -> Bool { !s.utf8.isEmpty && s.utf8.allSatisfy(isDigit) }

func headerListContains(_ value: String, _ token: String) -> Bool {
    value.split(separator: ",").contains { HTTPHeaders.equal(String($0.trimmingSpaces()), token) }
}

extension Substring {
    func trimmingSpaces() -> Substring {
        var s = self
        while let f = s.first, f == " " || f == "\t" { s.removeFirst() }
        while let l = s.last, l == " " || l == "\t" { s.removeLast() }
        return s
    }
}
