// What a hostile or unusual client meets, with the real binary on loopback (issue 10's list):
// framing the server does not implement, lengths that do not fit, echoed bytes, the keep-alive
// request limit, and the headers every response carries.
import Glibc
import LoupeData
import Testing

/// Sends `raw` on a new connection and parses what comes back before the server closes it.
func rawExchange(port: Int, _ raw: String) throws -> HTTPReply {
    let client = try TestClient(port: port, receiveTimeout: 10)
    client.send(raw)
    return try client.readResponse()
}

@Suite(.serialized) struct HostileClientEndToEndTests {
    @Test func framingTheServerDoesNotImplementIsRefusedClearly() throws {
        let repo = try E2E.makeRepository()
        let server = try ServeProcess(models: repo.path)
        try server.waitReady()
        let host = "Host: 127.0.0.1\r\n"
        // Transfer-Encoding other than chunked (identity, gzip): 501 (RFC 9112 §6.1).
        for coding in ["identity", "gzip", "gzip, chunked"] {
            let r = try rawExchange(port: server.port, "POST /predict HTTP/1.1\r\n\(host)Transfer-Encoding: \(coding)\r\n\r\n")
            #expect(r.status == 501, "Transfer-Encoding: \(coding)")
            #expect(r.text.contains("\"code\":\"unsupported_transfer_coding\""))
        }
        // A method nobody routes: 501, not 404/405.
        let brew = try rawExchange(port: server.port, "BREW /predict HTTP/1.1\r\n\(host)\r\n")
        #expect(brew.status == 501)
        #expect(brew.text.contains("\"code\":\"method_not_implemented\""))
        // A Content-Length past 2^63: 400, not 413 (it is no length at all).
        let huge = try rawExchange(port: server.port, "POST /predict HTTP/1.1\r\n\(host)Content-Length: 99999999999999999999999\r\n\r\n")
        #expect(huge.status == 400)
        #expect(huge.text.contains("\"code\":\"invalid_content_length\""))
        // Every response, errors included, says nosniff.
        for r in [brew, huge] { #expect(r.header("X-Content-Type-Options") == "nosniff") }
        #expect(try HTTP.request(port: server.port, "GET", "/health").header("X-Content-Type-Options") == "nosniff")
    }

    @Test func echoedRequestBytesAreEscapedAndShort() throws {
        let repo = try E2E.makeRepository()
        let server = try ServeProcess(models: repo.path)
        try server.waitReady()
        let script = "%3Cscript%3Ealert(1)%3C/script%3E" + String(repeating: "A", count: 300)
        for (method, target, headers) in [("GET", "/" + script, [(String, String)]()),
                                          ("POST", "/predict?top_k=" + script, [("Content-Type", "image/png")]),
                                          ("POST", "/predict", [("Content-Type", "text/<script>" + String(repeating: "B", count: 300))])] {
            let r = try HTTP.request(port: server.port, method, target, headers: headers, body: [1])
            #expect((400..<500).contains(r.status), "\(method) \(target.prefix(40))")
            #expect(!r.text.contains("<script>"), "\(r.text)")
            #expect(r.body.count < 400, "the error quotes at most 64 bytes of the request: \(r.text)")
            #expect(r.header("Content-Type") == "application/json")
        }
    }

    @Test func jsonWithRepeatedKeysOrInvalidUTF8IsRefused() throws {
        let repo = try E2E.makeRepository()
        let server = try ServeProcess(models: repo.path)
        try server.waitReady()
        let zeros = "[" + Array(repeating: "0", count: 784).joined(separator: ",") + "]"
        let json = [("Content-Type", "application/json")]
        // The well-formed body works…
        #expect(try HTTP.request(port: server.port, "POST", "/predict", headers: json, body: Array("{\"instances\":[\(zeros)]}".utf8)).status == 200)
        // …repeated keys, on /predict and in a v2 tensor, are refused naming the key.
        let dupPredict = try HTTP.request(port: server.port, "POST", "/predict", headers: json,
                                          body: Array("{\"instances\":[\(zeros)],\"instances\":[]}".utf8))
        #expect(dupPredict.status == 400)
        #expect(dupPredict.text.contains("instances") && dupPredict.text.contains("more than once"), "\(dupPredict.text)")
        let dupV2 = try HTTP.request(port: server.port, "POST", "/v2/models/fashion/infer", headers: json, body: Array(
            "{\"inputs\":[{\"name\":\"input\",\"shape\":[1,784],\"datatype\":\"UINT8\",\"datatype\":\"FP32\",\"data\":\(zeros)}]}".utf8))
        #expect(dupV2.status == 400)
        #expect(dupV2.text.contains("datatype") && dupV2.text.contains("more than once"), "\(dupV2.text)")
        // Invalid UTF-8 in a field the server ignores.
        let badUTF8 = Array("{\"instances\":[\(zeros)],\"note\":\"".utf8) + [0xC3, 0x28] + Array("\"}".utf8)
        let r = try HTTP.request(port: server.port, "POST", "/predict", headers: json, body: badUTF8)
        #expect(r.status == 400)
        #expect(r.text.contains("not valid UTF-8"), "\(r.text)")
    }

    /// `rm models/fashion/1/model.loupe` under a running server: it keeps serving the loaded
    /// version, and says in /health and /metrics that the file is missing.
    @Test func aDeletedModelFileDoesNotTakeTheModelDown() throws {
        let repo = try E2E.makeRepository()
        let server = try ServeProcess(models: repo.path, settings: ["models.poll_interval_ms=50", "models.stable_after_ms=0"])
        try server.waitReady()
        #expect(unlink(repo.path + "/fashion/1/model.loupe") == 0)
        let (pixels, _) = try E2E.testImages(1)
        var health = try HTTP.request(port: server.port, "GET", "/health")
        let deadline = now() + 10
        while !health.text.contains("missing_files") && now() < deadline {
            usleep(50_000)
            health = try HTTP.request(port: server.port, "GET", "/health")
        }
        #expect(health.status == 200)
        #expect(health.text.contains("\"missing_files\":[{\"model\":\"fashion\",\"version\":1"), "\(health.text)")
        #expect(try HTTP.request(port: server.port, "GET", "/health/ready").status == 200)
        let predict = try HTTP.request(port: server.port, "POST", "/predict", headers: [("Content-Type", "application/octet-stream")], body: pixels)
        #expect(predict.status == 200)
        let metrics = try HTTP.request(port: server.port, "GET", "/metrics").text
        #expect(metrics.contains("loupe_model_file_missing{model=\"fashion\",version=\"1\"} 1"))
        #expect(metrics.contains("loupe_model_last_reload_successful{model=\"fashion\"} 1"))
        #expect(metrics.contains("loupe_model_ready{model=\"fashion\"} 1"))
    }

    /// metrics.port moves /metrics to a listener of its own (here on 127.0.0.1), off the main one.
    @Test func metricsCanHaveAListenerOfTheirOwn() throws {
        let metricsPort = freePort()   // the server binds it right after
        let repo = try E2E.makeRepository()
        let server = try ServeProcess(models: repo.path, settings: ["metrics.port=\(metricsPort)", "metrics.host=127.0.0.1"])
        try server.waitReady()
        #expect(server.log.contains("\"msg\":\"metrics listening\""))
        #expect(try HTTP.request(port: server.port, "GET", "/metrics").status == 404)
        let scrape = try HTTP.request(port: metricsPort, "GET", "/metrics")
        #expect(scrape.status == 200)
        #expect(scrape.text.contains("loupe_ready 1"))
        #expect(try HTTP.request(port: metricsPort, "POST", "/predict").status == 404, "the metrics listener serves /metrics only")
    }

    /// Content-Encoding on requests: gzip and deflate bodies are inflated (bounded by
    /// limits.max_body_bytes: a zip bomb gets 413), an unknown encoding gets 415 naming it.
    @Test func compressedRequestBodies() throws {
        let repo = try E2E.makeRepository()
        let server = try ServeProcess(models: repo.path, settings: ["limits.max_body_bytes=1048576"])
        try server.waitReady()
        let (pixels, _) = try E2E.testImages(2)
        let raw = [("Content-Type", "application/octet-stream")]
        let plain = try HTTP.request(port: server.port, "POST", "/predict", headers: raw, body: pixels)
        #expect(plain.status == 200)
        for (coding, body) in [("gzip", Deflate.gzip(pixels)), ("deflate", Deflate.zlib(pixels))] {
            let r = try HTTP.request(port: server.port, "POST", "/predict", headers: raw + [("Content-Encoding", coding)], body: body)
            #expect(r.status == 200, "\(coding): \(r.text)")
            #expect(r.text == plain.text, "\(coding) gave another answer")
        }
        // 64 MiB of zeros in ~64 KiB of gzip: refused at the 1 MiB limit.
        let bomb = Deflate.gzip([UInt8](repeating: 0, count: 64 << 20))
        let big = try HTTP.request(port: server.port, "POST", "/predict", headers: raw + [("Content-Encoding", "gzip")], body: bomb)
        #expect(big.status == 413)
        #expect(big.text.contains("limits.max_body_bytes"), "\(big.text)")
        let br = try HTTP.request(port: server.port, "POST", "/predict", headers: raw + [("Content-Encoding", "br")], body: pixels)
        #expect(br.status == 415)
        #expect(br.text.contains("'br' is not supported"), "\(br.text)")
        let corrupt = try HTTP.request(port: server.port, "POST", "/predict", headers: raw + [("Content-Encoding", "gzip")], body: pixels)
        #expect(corrupt.status == 400)
        #expect(corrupt.text.contains("invalid_content_encoding"))
    }

    /// W3C trace context: a valid traceparent keeps its trace id (new span), a missing or
    /// malformed one starts a new trace; the access log line carries the trace id.
    @Test func traceContextIsFollowed() throws {
        let repo = try E2E.makeRepository()
        let server = try ServeProcess(models: repo.path)
        try server.waitReady()
        let incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        let r = try HTTP.request(port: server.port, "GET", "/health/live", headers: [("traceparent", incoming)])
        let parts = (r.header("traceparent") ?? "").split(separator: "-")
        #expect(parts.count == 4 && parts[0] == "00" && parts[1] == "4bf92f3577b34da6a3ce929d0e0e4736" && parts[3] == "01", "\(parts)")
        #expect(parts.count == 4 && parts[2].count == 16 && parts[2] != "00f067aa0ba902b7", "a new span for this server")
        for header in [[], [("traceparent", "00-00000000000000000000000000000000-00f067aa0ba902b7-01")], [("traceparent", "garbage")]] {
            let fresh = (try HTTP.request(port: server.port, "GET", "/health/live", headers: header).header("traceparent") ?? "").split(separator: "-")
            #expect(fresh.count == 4 && fresh[1].count == 32 && fresh[1] != "4bf92f3577b34da6a3ce929d0e0e4736" && fresh[1].contains { $0 != "0" })
        }
        #expect(server.process.waitForLine(containing: "\"trace_id\":\"4bf92f3577b34da6a3ce929d0e0e4736\"") != nil, "\(server.log)")
    }

    /// CORS is off by default; with allowed origins, those origins (only) get the headers, and a
    /// preflight gets the methods and headers the API uses.
    @Test func corsForConfiguredOriginsOnly() throws {
        let repo = try E2E.makeRepository()
        let off = try ServeProcess(models: repo.path)
        try off.waitReady()
        #expect(try HTTP.request(port: off.port, "GET", "/health", headers: [("Origin", "https://app.example")]).header("Access-Control-Allow-Origin") == nil)
        let on = try ServeProcess(models: repo.path, settings: ["server.cors.allowed_origins=https://app.example"])
        try on.waitReady()
        let allowed = try HTTP.request(port: on.port, "GET", "/health", headers: [("Origin", "https://app.example")])
        #expect(allowed.header("Access-Control-Allow-Origin") == "https://app.example")
        #expect(allowed.header("Access-Control-Expose-Headers")?.contains("X-Request-ID") == true)
        #expect(try HTTP.request(port: on.port, "GET", "/health", headers: [("Origin", "https://evil.example")]).header("Access-Control-Allow-Origin") == nil)
        let preflight = try HTTP.request(port: on.port, "OPTIONS", "/predict", headers: [
            ("Origin", "https://app.example"), ("Access-Control-Request-Method", "POST"), ("Access-Control-Request-Headers", "content-type")])
        #expect(preflight.status == 204)
        #expect(preflight.header("Access-Control-Allow-Origin") == "https://app.example")
        #expect(preflight.header("Access-Control-Allow-Methods")?.contains("POST") == true)
        #expect(preflight.header("Access-Control-Allow-Headers")?.contains("Content-Type") == true)
    }

    @Test func keepAliveRequestLimitClosesWithTheLastResponse() throws {
        let repo = try E2E.makeRepository()
        let server = try ServeProcess(models: repo.path, settings: ["limits.max_requests_per_connection=3"])
        try server.waitReady()
        let client = KeepAliveClient(port: server.port)
        var seen: [KeepAliveOutcome] = []
        for _ in 0..<4 { seen.append(client.send("GET", "/health/live", headers: [], body: [])) }
        // Three on the first connection (the third says close), the fourth on a new one.
        #expect(seen == [.answered(status: 200, close: false), .answered(status: 200, close: false),
                         .answered(status: 200, close: true), .answered(status: 200, close: false)])
        #expect(client.requestsOnConnection == 1)
    }

    /// A 68-byte request whose PNG header claims 4096×4096 16-bit RGBA (134 MB of pixels) with a
    /// 20-byte IDAT, sent as 64 concurrent copies, 4 rounds: every copy gets 400 and the server's
    /// peak RSS (VmHWM) grows by less than 64 MiB. /health/live keeps answering meanwhile; its
    /// latency is measured and printed (not asserted: timing is for benchmarks).
    @Test func pngHeadersThatClaimHugeImagesCostNoMemory() throws {
        let repo = try E2E.makeRepository()
        let server = try ServeProcess(models: repo.path)
        try server.waitReady()
        let (pixels, _) = try E2E.testImages(1)
        _ = try HTTP.request(port: server.port, "POST", "/predict", headers: [("Content-Type", "image/png")],
                             body: PNGWriter.gray(width: 28, height: 28, pixels: pixels))
        let zeros = [UInt8](repeating: 0, count: 4000)
        let stored: [UInt8] = [0x78, 0x01, 1, UInt8(4000 & 0xFF), UInt8(4000 >> 8), UInt8(~4000 & 0xFF), UInt8((~4000 >> 8) & 0xFF)] + zeros
        var ihdr = PNGWriter.be32(4096) + PNGWriter.be32(4096)
        ihdr += [16, 6, 0, 0, 0]
        let bomb = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + PNGWriter.chunk("IHDR", ihdr)
            + PNGWriter.chunk("IDAT", Array(stored.prefix(20))) + PNGWriter.chunk("IEND", [])
        let before = try vmHWMKiB(server.process.pid)
        let started = now()
        let results = onThreads(65) { i -> [Double] in
            if i == 64 {
                var latencies: [Double] = []
                while now() - started < 30 && latencies.count < 400 {
                    let t = now()
                    guard let r = try? HTTP.request(port: server.port, "GET", "/health/live"), r.status == 200 else { return [-1] }
                    latencies.append(now() - t)
                    usleep(2_000)
                }
                return latencies
            }
            var statuses: [Double] = []
            for _ in 0..<4 {
                let r = try? HTTP.request(port: server.port, "POST", "/predict", headers: [("Content-Type", "image/png")], body: bomb)
                statuses.append(Double(r?.status ?? 0))
            }
            return statuses
        }
        let after = try vmHWMKiB(server.process.pid)
        let statuses = results.prefix(64).flatMap { $0 }
        #expect(statuses.allSatisfy { $0 == 400 }, "statuses: \(Set(statuses))")
        let latencies = results[64].sorted()
        #expect(!latencies.contains(-1), "/health/live failed during the attack")
        #expect((after - before) < 64 * 1024, "VmHWM grew by \((after - before) / 1024) MiB (from \(before / 1024) MiB)")
        let p = { (q: Double) in latencies.isEmpty ? 0 : latencies[min(latencies.count - 1, Int(q * Double(latencies.count)))] * 1000 }
        print("claims-huge PNG × 64 concurrent × 4: VmHWM \(before / 1024) → \(after / 1024) MiB; /health/live p50 \(p(0.5)) ms, p99 \(p(0.99)) ms over \(latencies.count) probes")
        // Past the dimension limit: 413 with the limit named, before any decoding.
        var wide = PNGWriter.be32(5000) + PNGWriter.be32(10)
        wide += [8, 0, 0, 0, 0]
        let tooWide = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + PNGWriter.chunk("IHDR", wide) + PNGWriter.chunk("IEND", [])
        let r = try HTTP.request(port: server.port, "POST", "/predict", headers: [("Content-Type", "image/png")], body: tooWide)
        #expect(r.status == 413)
        #expect(r.text.contains("\"code\":\"image_too_large\"") && r.text.contains("5000×10"), "\(r.text)")
    }

    @Test func theDecodeBudgetAnswersBusyNotInvalid() throws {
        let repo = try E2E.makeRepository()
        // 64 KiB for all decodes: a 400×400 PNG (160,000 pixels) cannot fit and is told to retry.
        let server = try ServeProcess(models: repo.path, settings: ["limits.decode_budget_bytes=65536"])
        try server.waitReady()
        let big = PNGWriter.gray(width: 400, height: 400, pixels: [UInt8](repeating: 7, count: 160_000))
        let r = try HTTP.request(port: server.port, "POST", "/predict?resize=true", headers: [("Content-Type", "image/png")], body: big)
        #expect(r.status == 503)
        #expect(r.header("Retry-After") == "1")
        #expect(r.text.contains("\"code\":\"decode_budget_exhausted\""), "\(r.text)")
        // A 28×28 image still fits.
        let (pixels, _) = try E2E.testImages(1)
        let ok = try HTTP.request(port: server.port, "POST", "/predict", headers: [("Content-Type", "image/png")],
                                  body: PNGWriter.gray(width: 28, height: 28, pixels: pixels))
        #expect(ok.status == 200)
    }
}

/// Peak resident set size of a process (VmHWM in /proc/<pid>/status), KiB.
func vmHWMKiB(_ pid: pid_t) throws -> Int {
    // /proc files report size 0, so read them line by line rather than by their size.
    guard let f = fopen("/proc/\(pid)/status", "r") else { throw E2EError("cannot read /proc/\(pid)/status") }
    defer { fclose(f) }
    var line = [CChar](repeating: 0, count: 256)
    while fgets(&line, 256, f) != nil {
        let s = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        if s.hasPrefix("VmHWM:") { return Int(s.dropFirst(6).filter { $0.isNumber }) ?? 0 }
    }
    throw E2EError("no VmHWM in /proc/\(pid)/status")
}
