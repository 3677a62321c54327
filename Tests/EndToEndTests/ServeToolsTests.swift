// `loupe serve` against the tools its users bring: the official KServe v2 Python client
// (tritonclient[http]), promtool, and a real Prometheus server scraping it. CI installs them
// (.ci/run: apt prometheus, pip -r .ci/requirements.txt); a missing tool fails the test.
import FoundationEssentials
import Glibc
import Testing

@Suite(.serialized) struct ServeToolsTests {
    static func which(_ tool: String) -> String? {
        for dir in (getenv("PATH").map { String(cString: $0) } ?? "/usr/bin:/bin").split(separator: ":") {
            let p = "\(dir)/\(tool)"
            if access(p, X_OK) == 0 { return p }
        }
        return nil
    }

    static func require(_ tool: String) throws -> String {
        guard let p = which(tool) else { throw E2EError("\(tool) is not installed (CI installs it via .ci/run)") }
        return p
    }

    /// The KServe Python SDK's v2 REST client: is_server_live / is_server_ready / is_model_ready
    /// return True (they read the Open Inference Protocol's {"live": true} / {"ready": true}), and
    /// its infer, with the SDK's default tensor encoding, gets the same probabilities as /predict.
    @Test func kserveSDKHealthAndInfer() throws {
        let python = try Self.require("python3")
        let repo = try E2E.makeRepository()
        let server = try ServeProcess(models: repo.path)
        try server.waitReady()
        let n = 3
        let (pixels, _) = try E2E.testImages(n)
        let dir = try TempDir()
        try dir.write("pixels.bin", pixels)
        let script = E2E.root + "/Tests/EndToEndTests/python/kserve_sdk_check.py"
        let run = try ChildProcess([python, script, "http://127.0.0.1:\(server.port)", "fashion", dir.path + "/pixels.bin"], logPath: dir.path + "/out.json")
        #expect(run.wait(seconds: 120) == 0, "KServe SDK check failed: \(run.log)")
        struct Result: Decodable { var ok: Bool; var n: Int; var live: Bool; var ready: Bool; var probabilities: [[Float]] }
        let line = run.log.split(separator: "\n").last { $0.hasPrefix("{") }.map(String.init) ?? ""
        let result = try JSONDecoder().decode(Result.self, from: Data(line.utf8))
        #expect(result.ok && result.n == n && result.live && result.ready)
        let r = try HTTP.request(port: server.port, "POST", "/predict", headers: [("Content-Type", "application/octet-stream")], body: pixels)
        let predicted = try decode(PredictBody.self, r).predictions.flatMap(\.probabilities)
        #expect(close(result.probabilities.flatMap { $0 }, predicted))
    }

    @Test func tritonClientServerModelAndInfer() throws {
        let python = try Self.require("python3")
        let repo = try E2E.makeRepository()
        let server = try ServeProcess(models: repo.path)
        try server.waitReady()
        let n = 5
        let (pixels, _) = try E2E.testImages(n)
        let dir = try TempDir()
        try dir.write("pixels.bin", pixels)
        let script = E2E.root + "/Tests/EndToEndTests/python/triton_client_check.py"
        let run = try ChildProcess([python, script, "127.0.0.1:\(server.port)", "fashion", dir.path + "/pixels.bin"], logPath: dir.path + "/out.json")
        let code = run.wait(seconds: 120)
        let output = run.log
        #expect(code == 0, "tritonclient check failed: \(output)")
        struct Result: Decodable { var ok: Bool; var n: Int; var probabilities: [[Float]] }
        let line = output.split(separator: "\n").last { $0.hasPrefix("{") }.map(String.init) ?? ""
        let result = try JSONDecoder().decode(Result.self, from: Data(line.utf8))
        #expect(result.ok && result.n == n)
        // The client's probabilities equal the server's /predict for the same images.
        let r = try HTTP.request(port: server.port, "POST", "/predict", headers: [("Content-Type", "application/octet-stream")], body: pixels)
        let predicted = try decode(PredictBody.self, r).predictions.flatMap(\.probabilities)
        #expect(close(result.probabilities.flatMap { $0 }, predicted))
    }

    /// TLS from the configuration: a self-signed certificate made with the openssl CLI, checked with curl.
    @Test func tlsWithCertificateAndKey() throws {
        let openssl = try Self.require("openssl"), curl = try Self.require("curl")
        let dir = try TempDir()
        let make = try ChildProcess([openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                                     "-keyout", dir.path + "/key.pem", "-out", dir.path + "/cert.pem", "-days", "1",
                                     "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"], logPath: dir.path + "/openssl.log")
        #expect(make.wait(seconds: 30) == 0, "openssl: \(make.log)")
        let repo = try E2E.makeRepository()
        let server = try ServeProcess(models: repo.path, arguments: ["--tls-cert", dir.path + "/cert.pem", "--tls-key", dir.path + "/key.pem"])
        let get = try ChildProcess([curl, "-sS", "--cacert", dir.path + "/cert.pem", "-o", dir.path + "/body", "-w", "%{http_code}",
                                    "https://127.0.0.1:\(server.port)/health/live"], logPath: dir.path + "/curl.log")
        #expect(get.wait(seconds: 30) == 0)
        #expect(get.log == "200", "curl: \(get.log)")
        #expect(dir.read("body").contains("alive"))
        // Plain HTTP to the TLS port gets no HTTP answer.
        #expect((try? HTTP.request(port: server.port, "GET", "/health/live", timeout: 5))?.status != 200)
    }

    /// Exercises every metric family, then checks the exposition with promtool.
    @Test func promtoolAcceptsMetrics() throws {
        let promtool = try Self.require("promtool")
        let repo = try E2E.makeRepository()
        let server = try ServeProcess(models: repo.path)
        try server.waitReady()
        let (pixels, _) = try E2E.testImages(3)
        _ = try HTTP.request(port: server.port, "POST", "/predict", headers: [("Content-Type", "application/octet-stream")], body: pixels)
        _ = try HTTP.request(port: server.port, "POST", "/predict", headers: [("Content-Type", "image/png")], body: [1, 2, 3])
        _ = try HTTP.request(port: server.port, "GET", "/no/such/thing")
        let metrics = try HTTP.request(port: server.port, "GET", "/metrics")
        #expect(metrics.status == 200)
        #expect(metrics.header("Content-Type")?.hasPrefix("text/plain; version=0.0.4") == true)
        let dir = try TempDir()
        try dir.write("metrics.txt", metrics.body)
        let check = try ChildProcess(["/bin/sh", "-c", "'\(promtool)' check metrics < '\(dir.path)/metrics.txt'"], logPath: dir.path + "/promtool.txt")
        #expect(check.wait(seconds: 30) == 0, "promtool: \(check.log)")
        let text = metrics.text
        for family in ["loupe_http_requests_total", "loupe_http_request_duration_seconds_bucket", "loupe_inference_duration_seconds_bucket",
                       "loupe_queue_duration_seconds_bucket", "loupe_batch_size_bucket", "loupe_http_requests_in_flight", "loupe_queue_depth",
                       "loupe_rejected_requests_total", "loupe_model_info", "loupe_predictions_total", "loupe_prediction_confidence_bucket",
                       "loupe_start_to_ready_seconds", "process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds",
                       "process_start_time_seconds"] {
            #expect(text.contains(family), "missing \(family)")
        }
        // gzip when asked.
        let gz = try HTTP.request(port: server.port, "GET", "/metrics", headers: [("Accept-Encoding", "gzip")])
        #expect(gz.header("Content-Encoding") == "gzip")
        #expect(gz.body.starts(with: [0x1F, 0x8B]))
    }

    /// A real Prometheus server on loopback scrapes the service; its query API returns a loupe_ series.
    @Test func prometheusScrapesTheService() throws {
        let prometheus = try Self.require("prometheus")
        let repo = try E2E.makeRepository()
        let server = try ServeProcess(models: repo.path)
        try server.waitReady()
        let dir = try TempDir()
        let promPort = freePort()
        try dir.write("prometheus.yml", Array("""
            global:
              scrape_interval: 1s
            scrape_configs:
              - job_name: loupe
                static_configs:
                  - targets: ["127.0.0.1:\(server.port)"]
            """.utf8))
        try dir.mkdir("data")
        let prom = try ChildProcess([prometheus, "--config.file=\(dir.path)/prometheus.yml", "--storage.tsdb.path=\(dir.path)/data",
                                     "--web.listen-address=127.0.0.1:\(promPort)"], logPath: dir.path + "/prometheus.log")
        defer { prom.signal(SIGTERM); prom.wait(seconds: 10) }
        let deadline = now() + 60
        var found = false
        var last = ""
        while now() < deadline && !found {
            usleep(500_000)
            guard let r = try? HTTP.request(port: promPort, "GET", "/api/v1/query?query=loupe_http_requests_total", timeout: 5) else { continue }
            last = r.text
            found = r.status == 200 && last.contains("\"__name__\":\"loupe_http_requests_total\"") && last.contains("\"job\":\"loupe\"")
        }
        #expect(found, "Prometheus never returned the series; last answer: \(last.prefix(300)); log: \(prom.log.suffix(500))")
        let up = try HTTP.request(port: promPort, "GET", "/api/v1/query?query=up%7Bjob%3D%22loupe%22%7D")
        #expect(up.text.contains("\"value\":[") && up.text.contains("\"1\"]"), "up: \(up.text)")
    }
}
