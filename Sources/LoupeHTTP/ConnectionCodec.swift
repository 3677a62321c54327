// The seam between the connection state machine and the protocol code (parser, serializer).
// The state machine sees only `RequestDecoder` and `ResponseEncoder`.
//
// BOOTSTRAP: until httpcore's HTTPParser lands this file carries a minimal, permissive reader
// (Content-Length bodies only) so the runtime can be tested; it is replaced by calls into
// HTTPParser / the response serializer.

/// What the connection learns from the bytes of one request.
enum DecodeResult {
    /// Not enough bytes for the next step.
    case needMore
    /// The head is complete; a body may follow.
    case head(expectContinue: Bool, hasBody: Bool)
    /// The whole request (head + body) is in.
    case request(HTTPRequest, keepAlive: Bool)
    /// The bytes are not acceptable HTTP; answer `status` and close.
    case error(status: Int, code: String, message: String)
}

struct DecoderLimits {
    var maxRequestLineBytes: Int
    var maxHeaderBytes: Int
    var maxHeaderCount: Int
    var maxBodyBytes: Int
}

struct RequestDecoder {
    let limits: DecoderLimits
    private var buffer: [UInt8] = []
    private var start = 0
    private var pendingHead: HTTPRequest? = nil
    private var pendingKeepAlive = true
    private var bodyLength = 0

    init(limits: DecoderLimits) { self.limits = limits }

    /// Bytes received but not yet part of a returned request.
    var bufferedByteCount: Int { buffer.count - start }
    var isMidRequest: Bool { pendingHead != nil || bufferedByteCount > 0 }

    mutating func append(_ bytes: UnsafeRawBufferPointer) {
        if start > 0 && start == buffer.count { buffer.removeAll(keepingCapacity: true); start = 0 }
        buffer.append(contentsOf: bytes)
    }

    mutating func next() -> DecodeResult {
        if var request = pendingHead {
            guard buffer.count - start >= bodyLength else { return .needMore }
            request.body = Array(buffer[start ..< start + bodyLength])
            start += bodyLength
            pendingHead = nil
            compact()
            return .request(request, keepAlive: pendingKeepAlive)
        }
        // Find the end of the head.
        var i = start
        var end = -1
        while i + 3 < buffer.count {
            if buffer[i] == 13 && buffer[i + 1] == 10 && buffer[i + 2] == 13 && buffer[i + 3] == 10 { end = i; break }
            i += 1
        }
        if end < 0 {
            if buffer.count - start > limits.maxHeaderBytes {
                return .error(status: 431, code: "headers_too_large", message: "The request head is larger than \(limits.maxHeaderBytes) bytes.")
            }
            return .needMore
        }
        if end - start > limits.maxHeaderBytes {
            return .error(status: 431, code: "headers_too_large", message: "The request head is larger than \(limits.maxHeaderBytes) bytes.")
        }
        let head = String(decoding: buffer[start ..< end], as: UTF8.self)
        start = end + 4
        var lines = head.split(separator: "\r\n", omittingEmptySubsequences: false)
        guard !lines.isEmpty else { return .error(status: 400, code: "bad_request", message: "Empty request.") }
        let requestLine = lines.removeFirst().split(separator: " ")
        guard requestLine.count == 3 else {
            return .error(status: 400, code: "bad_request_line", message: "The request line is malformed.")
        }
        let version: (Int, Int)
        switch requestLine[2] {
        case "HTTP/1.1": version = (1, 1)
        case "HTTP/1.0": version = (1, 0)
        default: return .error(status: 505, code: "http_version_not_supported", message: "Only HTTP/1.0 and HTTP/1.1 are supported.")
        }
        var headers = HTTPHeaders()
        for line in lines {
            guard let colon = line.firstIndex(of: ":") else {
                return .error(status: 400, code: "bad_header", message: "A header field is malformed.")
            }
            headers.add(String(line[..<colon]), String(line[line.index(after: colon)...].drop { $0 == " " || $0 == "\t" }))
        }
        let method: HTTPMethod
        switch requestLine[0] {
        case "GET": method = .GET
        case "HEAD": method = .HEAD
        case "POST": method = .POST
        case "PUT": method = .PUT
        case "DELETE": method = .DELETE
        default: method = .other(String(requestLine[0]))
        }
        let target = String(requestLine[1])
        let path = target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? target
        var request = HTTPRequest(method: method, target: target, path: path, version: version, headers: headers)
        request.query = []
        let connection = (headers["connection"] ?? "").lowercased()
        pendingKeepAlive = version == (1, 1) ? !connection.contains("close") : connection.contains("keep-alive")
        if headers["transfer-encoding"] != nil {
            return .error(status: 501, code: "not_implemented", message: "Transfer-Encoding is not supported yet.")
        }
        let length = Int(headers["content-length"] ?? "0") ?? -1
        guard length >= 0 else { return .error(status: 400, code: "bad_content_length", message: "Content-Length is malformed.") }
        guard length <= limits.maxBodyBytes else {
            return .error(status: 413, code: "body_too_large", message: "The body is larger than the limit of \(limits.maxBodyBytes) bytes.")
        }
        bodyLength = length
        pendingHead = request
        let expect = (headers["expect"] ?? "").lowercased() == "100-continue"
        return .head(expectContinue: expect && version == (1, 1), hasBody: length > 0)
    }

    private mutating func compact() {
        if start == buffer.count { buffer.removeAll(keepingCapacity: buffer.capacity <= 64 << 10); start = 0 }
        else if start > 32 << 10 { buffer.removeFirst(start); start = 0 }
    }
}

/// Serializes responses.
enum ResponseEncoder {
    static func encode(_ response: HTTPResponse, headRequest: Bool, keepAlive: Bool, acceptEncoding: String?,
                       date: String, serverName: String?, gzipMinimumBytes: Int) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(128 + response.body.count)
        out.append(contentsOf: "HTTP/1.1 \(response.status) \(reason(response.status))\r\n".utf8)
        for (name, value) in response.headers {
            if HTTPHeaders.equal(name, "content-length") || HTTPHeaders.equal(name, "connection") { continue }
            out.append(contentsOf: name.utf8); out.append(contentsOf: ": ".utf8); out.append(contentsOf: value.utf8)
            out.append(contentsOf: "\r\n".utf8)
        }
        if let serverName { out.append(contentsOf: "Server: \(serverName)\r\n".utf8) }
        out.append(contentsOf: "Date: \(date)\r\n".utf8)
        if !(response.status == 204 || response.status == 304 || (100..<200).contains(response.status)) {
            out.append(contentsOf: "Content-Length: \(response.body.count)\r\n".utf8)
        }
        if !keepAlive { out.append(contentsOf: "Connection: close\r\n".utf8) }
        out.append(contentsOf: "\r\n".utf8)
        if !headRequest { out.append(contentsOf: response.body) }
        return out
    }

    static func reason(_ status: Int) -> String {
        switch status {
        case 100: "Continue"
        case 200: "OK"
        case 201: "Created"
        case 204: "No Content"
        case 400: "Bad Request"
        case 404: "Not Found"
        case 405: "Method Not Allowed"
        case 408: "Request Timeout"
        case 411: "Length Required"
        case 413: "Content Too Large"
        case 414: "URI Too Long"
        case 415: "Unsupported Media Type"
        case 431: "Request Header Fields Too Large"
        case 500: "Internal Server Error"
        case 501: "Not Implemented"
        case 503: "Service Unavailable"
        case 505: "HTTP Version Not Supported"
        default: "Status"
        }
    }
}
