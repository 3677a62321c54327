import ArgumentParser
import COpenSSL
import LoupeService
#if canImport(Glibc)
import Glibc
#endif

/// `loupe healthcheck`: exit 0 when the server's readiness endpoint answers 200, else 1. For
/// Docker's HEALTHCHECK (the image has no curl): an HTTP/1.1 GET over a socket, through TLS when the
/// server serves TLS (so the image's HEALTHCHECK survives turning TLS on).
struct Healthcheck: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Exit 0 when the server's /health/ready answers 200, non-zero otherwise.",
        discussion: """
            The default URL is http://127.0.0.1:<port>/health/ready with the port `loupe serve` would use: \
            server.port from the same configuration (--config, else LOUPE_CONFIG; then LOUPE_SERVER_PORT), else 8080 — \
            https:// when that configuration turns TLS on (server.tls.certificate). http:// and https:// URLs; over TLS \
            the server's certificate is not verified (the probe checks a server's own listener, usually on loopback, \
            whose certificate names another host).
            """)

    @Option(help: "URL to check (default http://127.0.0.1:<server.port>/health/ready).")
    var url: String?
    @Option(help: "Configuration file to read server.port from (default: $LOUPE_CONFIG, if set).")
    var config: String?
    @Option(parsing: .unconditional, help: "Seconds to wait for the answer (0.001 to 3600).")
    var timeout: Double = 2
    @Flag(help: "Print nothing.")
    var quiet = false

    func validate() throws {
        // Under a microsecond the socket timeout would be zero, which means none: the probe would wait forever.
        guard timeout.isFinite, (0.001...3600).contains(timeout) else {
            throw ValidationError("--timeout must be a number of seconds from 0.001 to 3600, got \(timeout).")
        }
    }

    func run() throws {
        let target: String
        if let url {
            target = url
        } else {
            // The port serve would bind: the same file < environment precedence as `loupe serve`.
            let environment = environmentVariables()
            var warnings: [String] = []
            let serving: ServiceConfiguration
            do {
                serving = try ServiceConfiguration.load(file: config ?? environment["LOUPE_CONFIG"], environment: environment,
                                                        overrides: [], warnings: &warnings)
            } catch {
                if !quiet { print("healthcheck: \(error)") }
                throw ExitCode(1)
            }
            let scheme = serving.tlsCertificatePath.isEmpty ? "http" : "https"
            target = "\(scheme)://127.0.0.1:\(serving.port)/health/ready"
        }
        do {
            let status = try HealthProbe.get(target, timeoutSeconds: timeout)
            if !quiet { print("\(target): \(status)") }
            if status != 200 { throw ExitCode(1) }
        } catch let error as HealthProbe.Failure {
            // 1, not 2: Docker reserves exit code 2 for HEALTHCHECK commands.
            if !quiet { print("\(target): \(error.message)") }
            throw ExitCode(1)
        }
    }
}

enum HealthProbe {
    struct Failure: Error { var message: String }

    /// The status code of `GET url`.
    static func get(_ url: String, timeoutSeconds: Double) throws(Failure) -> Int {
        let tls = url.hasPrefix("https://")
        guard tls || url.hasPrefix("http://") else { throw Failure(message: "only http:// and https:// URLs are supported") }
        let rest = url.dropFirst(tls ? "https://".count : "http://".count)
        let hostPort = rest.prefix { $0 != "/" }
        let path = rest.dropFirst(hostPort.count).isEmpty ? "/" : String(rest.dropFirst(hostPort.count))
        var host = String(hostPort), port = tls ? "443" : "80"
        if hostPort.hasPrefix("["), let close = hostPort.firstIndex(of: "]") {
            host = String(hostPort[hostPort.index(after: hostPort.startIndex)..<close])
            let after = hostPort[hostPort.index(after: close)...]
            if after.hasPrefix(":") { port = String(after.dropFirst()) }
        } else if let colon = hostPort.lastIndex(of: ":") {
            host = String(hostPort[..<colon]); port = String(hostPort[hostPort.index(after: colon)...])
        }
        // getaddrinfo takes a numeric service past 65535 and keeps its low 16 bits: :70000 would probe port 4464.
        guard let number = UInt16(port), number > 0 else {
            throw Failure(message: "the port must be a number from 1 to 65535, got '\(port)'")
        }
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, port, &hints, &list) == 0, let info = list else {
            throw Failure(message: "cannot resolve \(host)")
        }
        defer { freeaddrinfo(list) }
        let fd = socket(info.pointee.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw Failure(message: "socket: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var tv = timeval(tv_sec: Int(timeoutSeconds), tv_usec: Int((timeoutSeconds - Double(Int(timeoutSeconds))) * 1e6))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        guard connect(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0 else {
            throw Failure(message: "cannot connect: \(String(cString: strerror(errno)))")
        }
        let request = Array("GET \(path) HTTP/1.1\r\nHost: \(hostPort)\r\nUser-Agent: loupe-healthcheck\r\nConnection: close\r\n\r\n".utf8)
        let session = tls ? try TLSClient(fd: fd) : nil
        var sent = 0
        while sent < request.count {
            let n: Int
            if let session {
                n = try session.write(request[sent...])
            } else {
                n = request[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                if n < 0 { if errno == EINTR { continue }; throw Failure(message: "send: \(String(cString: strerror(errno)))") }
            }
            sent += n
        }
        var response: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 1024)
        while !response.contains(0x0A) && response.count < 8192 {
            let n: Int
            if let session {
                n = try session.read(into: &buffer)
            } else {
                n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                if n < 0 { if errno == EINTR { continue }; throw Failure(message: "no answer: \(String(cString: strerror(errno)))") }
            }
            if n == 0 { break }
            response.append(contentsOf: buffer[0..<n])
        }
        let line = String(decoding: response.prefix { $0 != 0x0D && $0 != 0x0A }, as: UTF8.self)
        let parts = line.split(separator: " ")
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), let status = Int(parts[1]) else {
            throw Failure(message: "not an HTTP answer: '\(line.prefix(60))'")
        }
        return status
    }
}

/// A blocking TLS client session on a connected socket (the socket's send/receive timeouts bound
/// each call). The server's certificate is not verified: see `Healthcheck`'s discussion.
final class TLSClient {
    private let context: OpaquePointer
    private let ssl: OpaquePointer

    init(fd: Int32) throws(HealthProbe.Failure) {
        guard let method = TLS_client_method(), let context = SSL_CTX_new(method) else {
            throw HealthProbe.Failure(message: "TLS: cannot create a client context (\(Self.lastError()))")
        }
        SSL_CTX_set_verify(context, SSL_VERIFY_NONE, nil)
        guard let ssl = SSL_new(context) else {
            SSL_CTX_free(context)
            throw HealthProbe.Failure(message: "TLS: cannot create a session (\(Self.lastError()))")
        }
        self.context = context
        self.ssl = ssl
        guard SSL_set_fd(ssl, fd) == 1, SSL_connect(ssl) == 1 else {
            throw HealthProbe.Failure(message: "TLS handshake failed (\(Self.lastError())); is the server serving TLS on this port?")
        }
    }

    deinit {
        SSL_free(ssl)
        SSL_CTX_free(context)
    }

    func write(_ bytes: ArraySlice<UInt8>) throws(HealthProbe.Failure) -> Int {
        var n = 0
        let ok = bytes.withUnsafeBytes { SSL_write_ex(ssl, $0.baseAddress, $0.count, &n) }
        guard ok == 1 else { throw HealthProbe.Failure(message: "TLS send failed (\(Self.lastError()))") }
        return n
    }

    /// Bytes read into `buffer`; 0 at the end of the stream.
    func read(into buffer: inout [UInt8]) throws(HealthProbe.Failure) -> Int {
        var n = 0
        let ok = buffer.withUnsafeMutableBytes { SSL_read_ex(ssl, $0.baseAddress, $0.count, &n) }
        if ok == 1 { return n }
        if SSL_get_error(ssl, 0) == SSL_ERROR_ZERO_RETURN { return 0 }
        throw HealthProbe.Failure(message: "no answer over TLS (\(Self.lastError()))")
    }

    private static func lastError() -> String {
        let code = ERR_get_error()
        guard code != 0 else { return errno != 0 ? String(cString: strerror(errno)) : "no detail" }
        let size = 256
        var text = [CChar](repeating: 0, count: size)
        ERR_error_string_n(code, &text, size)
        return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
