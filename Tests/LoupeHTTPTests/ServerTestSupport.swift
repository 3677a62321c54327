// A small blocking HTTP/1.1 client over a real loopback socket, for the server tests.

#if canImport(Glibc)
import Glibc
#endif
import Dispatch
@testable import LoupeHTTP

struct TestResponse {
    var status: Int
    var headers: [(String, String)]
    var body: [UInt8]
    func header(_ name: String) -> String? { headers.first { $0.0.lowercased() == name.lowercased() }?.1 }
    var text: String { String(decoding: body, as: UTF8.self) }
}

enum TestClientError: Error { case connect(Int32), timeout, closed, malformed(String) }

final class TestClient {
    let fd: Int32
    private var buffer: [UInt8] = []

    init(port: Int, receiveTimeout: Double = 5) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        if rc != 0 { let e = errno; close(fd); throw TestClientError.connect(e) }
        setReceiveTimeout(receiveTimeout)
    }

    deinit { close(fd) }

    func setReceiveTimeout(_ seconds: Double) {
        var tv = timeval(tv_sec: Int(seconds), tv_usec: Int((seconds - Double(Int(seconds))) * 1e6))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    func send(_ text: String) { send(Array(text.utf8)) }

    func send(_ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return }
            offset += n
        }
    }

    /// Closes with RST (SO_LINGER 0).
    func reset() {
        var l = linger(l_onoff: 1, l_linger: 0)
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, socklen_t(MemoryLayout<linger>.size))
        shutdown(fd, Int32(SHUT_RDWR))
    }

    func shutdownWrite() { shutdown(fd, Int32(SHUT_WR)) }

    /// Reads more bytes; false on EOF. Throws on timeout.
    private func fill() throws -> Bool {
        var chunk = [UInt8](repeating: 0, count: 65536)
        let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n < 0 {
            if errno == EAGAIN || errno == EWOULDBLOCK { throw TestClientError.timeout }
            if errno == ECONNRESET { return false }
            throw TestClientError.closed
        }
        if n == 0 { return false }
        buffer.append(contentsOf: chunk[0..<n])
        return true
    }

    /// True when the server closed the connection (EOF or reset) with nothing more to read.
    func isClosedByPeer() throws -> Bool {
        if !buffer.isEmpty { return false }
        return try !fill()
    }

    func readHead() throws -> (status: Int, headers: [(String, String)]) {
        while true {
            if let end = findCRLFCRLF() {
                let text = String(decoding: buffer[0..<end], as: UTF8.self)
                buffer.removeFirst(end + 4)
                var lines = text.split(separator: "\r\n").map(String.init)
                let statusLine = lines.removeFirst().split(separator: " ")
                guard statusLine.count >= 2, let status = Int(statusLine[1]) else { throw TestClientError.malformed(text) }
                let headers = lines.map { line -> (String, String) in
                    let parts = line.split(separator: ":", maxSplits: 1)
                    return (String(parts[0]), parts.count > 1 ? String(parts[1].drop { $0 == " " }) : "")
                }
                return (status, headers)
            }
            if try !fill() { throw TestClientError.closed }
        }
    }

    func readResponse(head: Bool = false) throws -> TestResponse {
        let (status, headers) = try readHead()
        var response = TestResponse(status: status, headers: headers, body: [])
        if status < 200 || head { return response }
        let length = Int(response.header("content-length") ?? "0") ?? 0
        while buffer.count < length { if try !fill() { throw TestClientError.closed } }
        response.body = Array(buffer[0..<length])
        buffer.removeFirst(length)
        return response
    }

    private func findCRLFCRLF() -> Int? {
        guard buffer.count >= 4 else { return nil }
        for i in 0...(buffer.count - 4) where buffer[i] == 13 && buffer[i + 1] == 10 && buffer[i + 2] == 13 && buffer[i + 3] == 10 {
            return i
        }
        return nil
    }
}

/// A server on 127.0.0.1 port 0 with small limits, shut down by `stop()`.
func makeServer(_ tweak: (inout HTTPServerConfiguration) -> Void = { _ in },
                handler: @escaping HTTPHandler = echoHandler) throws -> HTTPServer {
    var configuration = HTTPServerConfiguration(host: "127.0.0.1", port: 0)
    configuration.eventLoopThreads = 2
    configuration.handlerThreads = 2
    tweak(&configuration)
    let server = try HTTPServer(configuration: configuration, handler: handler)
    try server.start()
    return server
}

/// Answers "METHOD path body-length" with a text body.
let echoHandler: HTTPHandler = { request, sink in
    var response = HTTPResponse(status: 200, body: Array("\(request.method) \(request.path) \(request.body.count)".utf8))
    response.headers.add("Content-Type", "text/plain")
    sink.respond(response)
}


/// Polls `condition` every 10 ms for up to `timeout` seconds.
func eventually(_ timeout: Double = 5, _ condition: () -> Bool) -> Bool {
    var waited = 0.0
    while waited < timeout {
        if condition() { return true }
        sleepSeconds(0.01)
        waited += 0.01
    }
    return condition()
}

func get(_ path: String, host: String = "t") -> String { "GET \(path) HTTP/1.1\r\nHost: \(host)\r\n\r\n" }

/// `makeServer` with default settings and this handler.
func serve(_ handler: @escaping HTTPHandler) throws -> HTTPServer {
    try makeServer({ _ in }, handler: handler)
}
