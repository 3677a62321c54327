// TLS over loopback: a certificate made at test time by the `openssl` CLI, `curl` as the client.

#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import LoupeHTTP

@Suite struct TLSTests {
    /// (certificate, key) in a fresh temp dir, made by `openssl req`.
    static func makeCertificate() throws -> (dir: TempDir, cert: String, key: String) {
        let dir = try TempDir()
        let cert = dir.path + "/cert.pem", key = dir.path + "/key.pem"
        let r = runProcess(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                            "-nodes", "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=localhost"])
        try #require(r.status == 0, "openssl req failed: \(r.output)")
        return (dir, cert, key)
    }

    @Test func servesHTTPSWithKeepAlive() throws {
        let (certificateDirectory, cert, key) = try Self.makeCertificate()
        defer { withExtendedLifetime(certificateDirectory) {} }
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
        let (certificateDirectory, cert, key) = try Self.makeCertificate()
        defer { withExtendedLifetime(certificateDirectory) {} }
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
        let (certificateDirectory, cert, key) = try Self.makeCertificate()
        defer { withExtendedLifetime(certificateDirectory) {} }
        let big = [UInt8](repeating: 97, count: 4 << 20)
        let server = try makeServer({ $0.tls = TLSConfiguration(certificateChainPath: cert, privateKeyPath: key) }) { request, sink in
            sink.respond(HTTPResponse(status: 200, body: request.method == .GET ? big : Array("\(request.body.count)".utf8)))
        }
        defer { server.shutdown(deadline: .seconds(1)) }
        let dir = try TempDir()
        let upload = dir.path + "/upload.bin"
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
