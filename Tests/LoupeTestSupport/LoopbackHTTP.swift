// The one HTTP/1.1 test client of every test target: blocking, over a real loopback socket.
// `TestClient` is a keep-alive connection (send raw bytes or whole requests, read responses one by
// one: Content-Length or chunked bodies, HEAD, interim 1xx); `HTTP.request` is one request on a
// connection of its own (`Connection: close`), read to the server's close. `freePort()` finds a port.
#if canImport(Glibc)
import Glibc
#endif

public struct TestResponse: Sendable {
    public var status: Int
    /// Header fields as received (names in the server's case).
    public var headers: [(String, String)]
    public var body: [UInt8]
    public init(status: Int, headers: [(String, String)], body: [UInt8]) {
        self.status = status; self.headers = headers; self.body = body
    }
    /// First value of `name` (case-insensitive), or nil.
    public func header(_ name: String) -> String? { headers.first { $0.0.lowercased() == name.lowercased() }?.1 }
    public var text: String { String(decoding: body, as: UTF8.self) }
    /// The server said it closes the connection after this response.
    public var closes: Bool { header("connection")?.lowercased() == "close" }
}

public enum TestClientError: Error, CustomStringConvertible {
    case connect(Int32), timeout, closed, malformed(String)
    public var description: String {
        switch self {
        case .connect(let e): "connect: \(String(cString: strerror(e)))"
        case .timeout: "no answer before the receive timeout"
        case .closed: "the server closed the connection"
        case .malformed(let text): "malformed response: \(text)"
        }
    }
}

/// A TCP socket connected to 127.0.0.1:`port` with a receive timeout, or the errno of the failure.
public func connectLoopback(port: Int, receiveTimeout: Double) -> Result<Int32, TestClientError> {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return .failure(.connect(errno)) }
    setReceiveTimeout(fd, receiveTimeout)
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = in_port_t(UInt16(port).bigEndian)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    let rc = withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    if rc != 0 { let e = errno; close(fd); return .failure(.connect(e)) }
    return .success(fd)
}

private func setReceiveTimeout(_ fd: Int32, _ seconds: Double) {
    var tv = timeval(tv_sec: Int(seconds), tv_usec: Int((seconds - Double(Int(seconds))) * 1e6))
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
}

/// A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0, read, closed).
public func freePort() -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    addr.sin_port = 0
    _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
    var bound = sockaddr_in()
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &bound) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
    return Int(UInt16(bigEndian: bound.sin_port))
}

/// One keep-alive connection.
public final class TestClient {
    public let fd: Int32
    private var buffer: [UInt8] = []

    public init(port: Int, receiveTimeout: Double = 5) throws {
        switch connectLoopback(port: port, receiveTimeout: receiveTimeout) {
        case .success(let fd): self.fd = fd
        case .failure(let error): throw error
        }
    }

    deinit { close(fd) }

    public func setReceiveTimeout(_ seconds: Double) { LoupeTestSupport.setReceiveTimeout(fd, seconds) }

    public func send(_ text: String) { send(Array(text.utf8)) }

    public func send(_ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return }
            offset += n
        }
    }

    /// Sends one request (with Content-Length) and reads its response.
    public func request(_ method: String, _ target: String, headers: [(String, String)] = [], body: [UInt8] = []) throws -> TestResponse {
        var head = "\(method) \(target) HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: \(body.count)\r\n"
        for (k, v) in headers { head += "\(k): \(v)\r\n" }
        send(Array((head + "\r\n").utf8) + body)
        return try readResponse(head: method == "HEAD")
    }

    /// Closes with RST (SO_LINGER 0).
    public func reset() {
        var l = linger(l_onoff: 1, l_linger: 0)
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, socklen_t(MemoryLayout<linger>.size))
        shutdown(fd, Int32(SHUT_RDWR))
    }

    public func shutdownWrite() { shutdown(fd, Int32(SHUT_WR)) }

    /// Reads more bytes; false on EOF or reset. Throws on timeout.
    private func fill() throws -> Bool {
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN || errno == EWOULDBLOCK { throw TestClientError.timeout }
                if errno == ECONNRESET { return false }
                throw TestClientError.closed
            }
            if n == 0 { return false }
            buffer.append(contentsOf: chunk[0..<n])
            return true
        }
    }

    private func fill(_ count: Int) throws { while buffer.count < count { if try !fill() { throw TestClientError.closed } } }

    /// True when the server closed the connection (EOF or reset) with nothing more to read.
    public func isClosedByPeer() throws -> Bool {
        if !buffer.isEmpty { return false }
        return try !fill()
    }

    /// Everything until the server closes the connection.
    public func readToEnd() throws -> [UInt8] {
        while try fill() {}
        defer { buffer.removeAll() }
        return buffer
    }

    public func readHead() throws -> (status: Int, headers: [(String, String)]) {
        let end = try readUntil([13, 10, 13, 10])
        let text = String(decoding: buffer[0..<end], as: UTF8.self)
        buffer.removeFirst(end + 4)
        var lines = text.split(separator: "\r\n", omittingEmptySubsequences: false).map(String.init)
        let statusLine = lines.removeFirst().split(separator: " ")
        guard statusLine.count >= 2, let status = Int(statusLine[1]) else { throw TestClientError.malformed(text) }
        let headers = lines.compactMap { line -> (String, String)? in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            return (String(line[..<colon]), String(line[line.index(after: colon)...].drop { $0 == " " || $0 == "\t" }))
        }
        return (status, headers)
    }

    /// The next response: its head, then (unless `head` or a 1xx/204/304) a Content-Length or chunked body.
    public func readResponse(head: Bool = false) throws -> TestResponse {
        let (status, headers) = try readHead()
        var response = TestResponse(status: status, headers: headers, body: [])
        if status < 200 || status == 204 || status == 304 || head { return response }
        if response.header("transfer-encoding")?.lowercased().contains("chunked") == true {
            while true {
                let end = try readUntil([13, 10])
                let size = Int(String(decoding: buffer[..<end], as: UTF8.self).split(separator: ";").first ?? "", radix: 16) ?? 0
                buffer.removeFirst(end + 2)
                try fill(size + 2)
                response.body += buffer[..<size]
                buffer.removeFirst(size + 2)
                if size == 0 { break }
            }
        } else {
            let length = Int(response.header("content-length") ?? "0") ?? 0
            try fill(length)
            response.body = Array(buffer[0..<length])
            buffer.removeFirst(length)
        }
        return response
    }

    private func readUntil(_ marker: [UInt8]) throws -> Int {
        var from = 0
        while true {
            if buffer.count >= marker.count {
                for i in from...(buffer.count - marker.count) where buffer[i..<(i + marker.count)].elementsEqual(marker) { return i }
                from = buffer.count - marker.count + 1
            }
            if try !fill() { throw TestClientError.closed }
        }
    }
}

/// One request per connection (`Connection: close`), read to the server's close.
public enum HTTP {
    public static func request(port: Int, _ method: String, _ target: String, headers: [(String, String)] = [],
                               body: [UInt8] = [], timeout: Double = 30) throws -> TestResponse {
        var head = "\(method) \(target) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n"
        for (k, v) in headers { head += "\(k): \(v)\r\n" }
        if !body.isEmpty || method == "POST" { head += "Content-Length: \(body.count)\r\n" }
        head += "\r\n"
        let client = try TestClient(port: port, receiveTimeout: timeout)
        client.send(Array(head.utf8) + body)
        return try client.readResponse(head: method == "HEAD")
    }

    /// Sends `raw` on a new connection and returns every byte read until the server closes it.
    public static func exchange(port: Int, _ raw: [UInt8], timeout: Double = 30) throws -> [UInt8] {
        let client = try TestClient(port: port, receiveTimeout: timeout)
        client.send(raw)
        return try client.readToEnd()
    }
}
