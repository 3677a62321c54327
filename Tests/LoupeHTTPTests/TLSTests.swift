// TLS over loopback: a certificate made at test time by the `openssl` CLI, `curl` as the client.

#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import LoupeHTTP

/// Runs a program (looked up in PATH), returns its exit status and stdout+stderr.
func runProcess(_ arguments: [String]) -> (status: Int32, output: String) {
    var fds: [Int32] = [0, 0]
    guard pipe(&fds) == 0 else { return (-1, "pipe failed") }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    posix_spawn_file_actions_adddup2(&actions, fds[1], 1)
    posix_spawn_file_actions_adddup2(&actions, fds[1], 2)
    posix_spawn_file_actions_addclose(&actions, fds[0])
    var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
    defer { for p in argv { free(p) } }
    var pid: pid_t = 0
    let rc = posix_spawnp(&pid, arguments[0], &actions, nil, &argv, environ)
    posix_spawn_file_actions_destroy(&actions)
    close(fds[1])
    var output: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = chunk.withUnsafeMutableBytes { read(fds[0], $0.baseAddress, $0.count) }
        if n <= 0 { break }
        output.append(contentsOf: chunk[0..<n])
    }
    close(fds[0])
    guard rc == 0 else { return (-1, "spawn failed: \(rc)") }
    var status: Int32 = 0
    waitpid(pid, &status, 0)
    let exitCode = (status & 0x7f) == 0 ? (status >> 8) & 0xff : -1
    return (exitCode, String(decoding: output, as: UTF8.self))
}

func makeTemporaryDirectory() -> String {
    var template = Array("/tmp/loupe-tls-XXXXXX".utf8CString)
    let path = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
    return String(cString: path!)
}

@Suite struct TLSTests {
    /// (certificate, key) in a fresh temp dir, made by `openssl req`.
    static func makeCertificate() throws -> (cert: String, key: String) {
        let dir = makeTemporaryDirectory()
        let cert = dir + "/cert.pem", key = dir + "/key.pem"
        let r = runProcess(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                            "-nodes", "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=localhost"])
        try #require(r.status == 0, "openssl req failed: \(r.output)")
        return (cert, key)
    }

    @Test func servesHTTPSWithKeepAlive() throws {
        let (cert, key) = try Self.makeCertificate()
        let server = try makeServer { $0.tls = TLSConfiguration(certificateChainPath: cert, privateKeyPath: key) }
        defer { server.shutdown(deadline: .seconds(1)) }
        let base = "https://127.0.0.1:\(server.port)"
        // Two URLs in one curl run reuse the connection (keep-alive over TLS).
        let r = runProcess(["curl", "-sS", "-k", "--http1.1", "--max-time", "10",
                            "\(base)/one", "\(base)/two", "-d", "abc"])
        #expect(r.status == 0, "\(r.output)")
        #expect(r.output == "POST /one 3POST /two 3")
        #expect(server.stats.acceptedTotal == 1)
        let tls13 = runProcess(["curl", "-sS", "-k", "--http1.1", "--tlsv1.3", "--max-time", "10", "\(base)/v13"])
        #expect(tls13.output == "GET /v13 0")
        let tls12 = runProcess(["curl", "-sS", "-k", "--http1.1", "--tlsv1.2", "--tls-max", "1.2", "--max-time", "10", "\(base)/v12"])
        #expect(tls12.output == "GET /v12 0")
    }

    @Test func refusesOldProtocolsAndPlainHTTP() throws {
        let (cert, key) = try Self.makeCertificate()
        let server = try makeServer { $0.tls = TLSConfiguration(certificateChainPath: cert, privateKeyPath: key) }
        defer { server.shutdown(deadline: .seconds(1)) }
        let old = runProcess(["openssl", "s_client", "-connect", "127.0.0.1:\(server.port)", "-tls1_1",
                              "-cipher", "DEFAULT@SECLEVEL=0"])
        #expect(old.status != 0)
        // Plain HTTP to the TLS port gets no HTTP answer, and the server stays up.
        let plain = try TestClient(port: server.port, receiveTimeout: 5)
        plain.send(get("/"))
        #expect(throws: (any Error).self) { _ = try plain.readResponse() }
        let again = runProcess(["curl", "-sS", "-k", "--max-time", "10", "https://127.0.0.1:\(server.port)/ok"])
        #expect(again.output == "GET /ok 0")
    }

    @Test func largeBodiesBothWaysOverTLS() throws {
        let (cert, key) = try Self.makeCertificate()
        let big = [UInt8](repeating: 97, count: 4 << 20)
        let server = try makeServer({ $0.tls = TLSConfiguration(certificateChainPath: cert, privateKeyPath: key) }) { request, sink in
            sink.respond(HTTPResponse(status: 200, body: request.method == .GET ? big : Array("\(request.body.count)".utf8)))
        }
        defer { server.shutdown(deadline: .seconds(1)) }
        let dir = makeTemporaryDirectory()
        let upload = dir + "/upload.bin"
        let f = fopen(upload, "w")
        _ = [UInt8](repeating: 98, count: 1 << 20).withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, f) }
        fclose(f)
        let down = runProcess(["curl", "-sS", "-k", "--max-time", "20", "-o", "/dev/null", "-w", "%{size_download}",
                               "https://127.0.0.1:\(server.port)/big"])
        #expect(down.output == "\(4 << 20)")
        let up = runProcess(["curl", "-sS", "-k", "--max-time", "20", "--data-binary", "@" + upload,
                             "https://127.0.0.1:\(server.port)/up"])
        #expect(up.output == "\(1 << 20)")
    }

    @Test func badCertificatePathIsAnError() throws {
        var configuration = HTTPServerConfiguration(host: "127.0.0.1", port: 0)
        configuration.tls = TLSConfiguration(certificateChainPath: "/nonexistent/cert.pem", privateKeyPath: "/nonexistent/key.pem")
        #expect(throws: TLSError.self) { _ = try HTTPServer(configuration: configuration, handler: echoHandler) }
    }
}
