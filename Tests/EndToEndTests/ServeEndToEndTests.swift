// `loupe serve` end to end: the real binary on loopback, real Fashion-MNIST test images.
import FoundationEssentials
import Glibc
import Testing

struct PredictBody: Decodable {
    struct TopK: Decodable { var `class`: Int; var label: String; var confidence: Float }
    struct Prediction: Decodable { var `class`: Int; var label: String; var confidence: Float; var top_k: [TopK]; var probabilities: [Float] }
    var model: String
    var model_version: Int
    var predictions: [Prediction]
}

struct OfflineBody: Decodable {
    struct Prediction: Decodable { var `class`: Int; var label: String; var confidence: Float; var probabilities: [Float] }
    var predictions: [Prediction]
}

struct ErrorBody: Decodable { var error: String; var code: String }

func decode<T: Decodable>(_ type: T.Type, _ reply: HTTPReply) throws -> T {
    do { return try JSONDecoder().decode(T.self, from: Data(reply.body)) } catch {
        throw E2EError("cannot decode \(T.self) from \(reply.status) \(reply.text.prefix(300)): \(error)")
    }
}

@Suite(.serialized) struct ServeEndToEndTests {
    /// Predictions over HTTP equal `loupe predict`'s offline output for the same PNG files, in every
    /// input encoding the server takes.
    @Test func predictionsEqualOfflinePredict() throws {
        let repo = try E2E.makeRepository()
        let server = try ServeProcess(models: repo.path)
        try server.waitReady()
        let n = 6
        let (pixels, _) = try E2E.testImages(n)
        let images = try TempDir()
        var paths: [String] = []
        var pngs: [[UInt8]] = []
        for i in 0..<n {
            let png = PNGWriter.gray(width: 28, height: 28, pixels: Array(pixels[(i * 784)..<((i + 1) * 784)]))
            try images.write("img\(i).png", png)
            paths.append(images.path + "/img\(i).png")
            pngs.append(png)
        }
        // Offline.
        let offline = try ChildProcess([try E2E.binary(), "predict", "--json", "--model", repo.path + "/fashion/1/model.loupe"] + paths,
                                       logPath: images.path + "/offline.json")
        #expect(offline.wait(seconds: 60) == 0)
        let expected = try JSONDecoder().decode(OfflineBody.self, from: Data(offline.log.utf8)).predictions
        #expect(expected.count == n)

        // One PNG per request.
        for i in 0..<n {
            let r = try HTTP.request(port: server.port, "POST", "/predict", headers: [("Content-Type", "image/png")], body: pngs[i])
            #expect(r.status == 200)
            let body = try decode(PredictBody.self, r)
            #expect(body.model == "fashion" && body.model_version == 1)
            #expect(body.predictions.count == 1)
            #expect(body.predictions[0].class == expected[i].class)
            #expect(body.predictions[0].label == expected[i].label)
            #expect(body.predictions[0].probabilities == expected[i].probabilities)
            #expect(r.header("Server-Timing")?.contains("inference;dur=") == true)
        }
        // Raw bytes, all images in one request.
        let raw = try HTTP.request(port: server.port, "POST", "/predict?top_k=10", headers: [("Content-Type", "application/octet-stream")],
                                   body: pixels)
        let rawBody = try decode(PredictBody.self, raw)
        #expect(rawBody.predictions.map(\.class) == expected.map(\.class))
        // Batches may take other kernel paths than single images: equal within float rounding.
        #expect(close(rawBody.predictions.flatMap(\.probabilities), expected.flatMap(\.probabilities)))
        #expect(rawBody.predictions[0].top_k.count == 10)
        // JSON instances: flat, 28×28, base64 PNG.
        var instances: [String] = []
        for i in 0..<n {
            let image = Array(pixels[(i * 784)..<((i + 1) * 784)])
            switch i % 3 {
            case 0: instances.append("[" + image.map(String.init).joined(separator: ",") + "]")
            case 1: instances.append("[" + (0..<28).map { r in "[" + image[(r * 28)..<(r * 28 + 28)].map(String.init).joined(separator: ",") + "]" }.joined(separator: ",") + "]")
            default: instances.append("{\"b64\":\"\(base64(pngs[i]))\"}")
            }
        }
        let json = try HTTP.request(port: server.port, "POST", "/predict", headers: [("Content-Type", "application/json")],
                                    body: Array("{\"instances\":[\(instances.joined(separator: ","))]}".utf8))
        #expect(close(try decode(PredictBody.self, json).predictions.flatMap(\.probabilities), expected.flatMap(\.probabilities)))
        // multipart/form-data, as `curl -F image=@a.png -F image=@b.png` sends it.
        var multipart: [UInt8] = []
        for i in 0..<2 {
            multipart += Array("--BOUNDARY\r\nContent-Disposition: form-data; name=\"image\"; filename=\"img\(i).png\"\r\nContent-Type: image/png\r\n\r\n".utf8)
            multipart += pngs[i] + Array("\r\n".utf8)
        }
        multipart += Array("--BOUNDARY--\r\n".utf8)
        let form = try HTTP.request(port: server.port, "POST", "/predict", headers: [("Content-Type", "multipart/form-data; boundary=BOUNDARY")], body: multipart)
        #expect(try decode(PredictBody.self, form).predictions.map(\.class) == expected.prefix(2).map(\.class))
        // KServe v2 infer, UINT8 [N,28,28,1].
        let data = pixels.map(String.init).joined(separator: ",")
        let infer = try HTTP.request(port: server.port, "POST", "/v2/models/fashion/infer",
                                     body: Array("{\"inputs\":[{\"name\":\"input\",\"datatype\":\"UINT8\",\"shape\":[\(n),28,28,1],\"data\":[\(data)]}]}".utf8))
        struct Infer: Decodable { struct Out: Decodable { var name: String; var shape: [Int]; var data: [Float] }; var model_name: String; var outputs: [Out] }
        let inferBody = try decode(Infer.self, infer)
        #expect(inferBody.outputs[0].shape == [n, 10])
        #expect(close(inferBody.outputs[0].data, expected.flatMap(\.probabilities)))
    }

    @Test func concurrentClientsAllGetTheirOwnAnswers() throws {
        let repo = try E2E.makeRepository()
        let server = try ServeProcess(models: repo.path, arguments: ["--set", "batching.max_queue_delay_us=2000"])
        try server.waitReady()
        let (pixels, _) = try E2E.testImages(16)
        // Reference: each image alone.
        var reference: [[Float]] = []
        for i in 0..<16 {
            let r = try HTTP.request(port: server.port, "POST", "/predict", headers: [("Content-Type", "application/octet-stream")],
                                     body: Array(pixels[(i * 784)..<((i + 1) * 784)]))
            reference.append(try decode(PredictBody.self, r).predictions[0].probabilities)
        }
        let port = server.port
        let reference2 = reference
        let outcomes = onThreads(16) { client -> Bool in
            var ok = true
            for k in 0..<10 {
                let i = (client + k) % 16
                guard let r = try? HTTP.request(port: port, "POST", "/predict", headers: [("Content-Type", "application/octet-stream")],
                                                body: Array(pixels[(i * 784)..<((i + 1) * 784)])) else { return false }
                ok = ok && r.status == 200
                if let p = try? decode(PredictBody.self, r).predictions[0].probabilities {
                    // Batched and unbatched runs agree within float rounding of summation order.
                    ok = ok && zip(p, reference2[i]).allSatisfy { abs($0 - $1) <= 1e-5 }
                } else { ok = false }
            }
            return ok
        }
        #expect(outcomes.allSatisfy { $0 })
        let metrics = try HTTP.request(port: port, "GET", "/metrics").text
        #expect(metrics.contains("loupe_batch_size_count"))
        #expect(metrics.contains("loupe_http_requests_total{route=\"/predict\",method=\"POST\",code=\"200\"} 176"))
    }

    @Test func everyErrorPathAnswersJSONAndTheServerStaysUp() throws {
        let repo = try E2E.makeRepository()
        let server = try ServeProcess(models: repo.path, arguments: ["--set", "limits.max_body_bytes=65536", "--set", "limits.max_images_per_request=8"])
        try server.waitReady()
        let p = server.port
        let (pixels, _) = try E2E.testImages(1)
        let big = PNGWriter.gray(width: 32, height: 32, pixels: [UInt8](repeating: 7, count: 1024))
        let cases: [(String, String, [(String, String)], [UInt8], Int, String, String)] = [
            ("POST", "/predict", [("Content-Type", "image/png")], Array("hello".utf8), 400, "invalid_image", "PNG"),
            ("POST", "/predict", [("Content-Type", "image/png")], Array(PNGWriter.gray(width: 28, height: 28, pixels: pixels).prefix(60)), 400, "invalid_image", "decoded"),
            ("POST", "/predict", [("Content-Type", "image/png")], big, 400, "wrong_image_size", "expected a 28×28 image, received 32×32"),
            ("POST", "/predict", [("Content-Type", "application/octet-stream")], [UInt8](repeating: 0, count: 700), 400, "wrong_input_size", "784"),
            ("POST", "/predict", [("Content-Type", "application/octet-stream")], [], 400, "empty_body", "empty"),
            ("POST", "/predict", [("Content-Type", "application/octet-stream")], [UInt8](repeating: 0, count: 784 * 9), 413, "payload_too_large", "at most 8"),
            ("POST", "/predict", [("Content-Type", "application/octet-stream")], [UInt8](repeating: 0, count: 70_000), 413, "", ""),
            ("POST", "/predict", [("Content-Type", "text/csv")], [1, 2], 415, "unsupported_media_type", "text/csv"),
            ("POST", "/predict", [("Content-Type", "application/json")], Array(#"{"instances":[[1,2]]}"#.utf8), 400, "wrong_input_size", "784"),
            ("POST", "/predict", [("Content-Type", "application/json")], Array(#"{"instances":[NaN]}"#.utf8), 400, "invalid_json", "JSON"),
            ("POST", "/predict?top_k=99", [("Content-Type", "application/octet-stream")], pixels, 400, "invalid_parameter", "top_k"),
            ("POST", "/predict?model=nope", [("Content-Type", "application/octet-stream")], pixels, 404, "model_not_found", "nope"),
            ("POST", "/v2/models/fashion/versions/9/infer", [], Array("{}".utf8), 404, "model_not_found", "version 9"),
            ("POST", "/v2/models/fashion/infer", [], Array(#"{"inputs":[{"name":"input","datatype":"FP32","shape":[1,27],"data":[0]}]}"#.utf8), 400, "invalid_shape", "[N,784]"),
            ("POST", "/v2/models/fashion/infer", [("Inference-Header-Content-Length", "10")], Array("{}".utf8), 400, "invalid_header", "Inference-Header-Content-Length"),
            ("GET", "/nowhere", [], [], 404, "not_found", "/nowhere"),
            ("DELETE", "/predict", [], [], 405, "method_not_allowed", "POST"),
        ]
        for (method, path, headers, body, status, code, phrase) in cases {
            let r = try HTTP.request(port: p, method, path, headers: headers, body: body)
            #expect(r.status == status, "\(method) \(path): \(r.status) \(r.text)")
            #expect(r.header("Content-Type")?.hasPrefix("application/json") == true, "\(method) \(path)")
            if !code.isEmpty {
                let e = try decode(ErrorBody.self, r)
                #expect(e.code == code, "\(method) \(path): \(e.code)")
                #expect(e.error.contains(phrase), "\(method) \(path): \(e.error)")
            }
            if status == 405 { #expect(r.header("Allow")?.contains("POST") == true) }
        }
        // HEAD wherever GET exists.
        for path in ["/health", "/health/live", "/health/ready", "/metrics", "/v2", "/v2/models/fashion", "/openapi.json"] {
            let r = try HTTP.request(port: p, "HEAD", path)
            #expect(r.status == 200, "HEAD \(path)")
            #expect(r.body.isEmpty)
        }
        // Still serving.
        #expect(try HTTP.request(port: p, "POST", "/predict", headers: [("Content-Type", "application/octet-stream")], body: pixels).status == 200)
        let metrics = try HTTP.request(port: p, "GET", "/metrics").text
        #expect(metrics.contains("loupe_rejected_requests_total{reason=\"wrong_image_size\"} 1"))
        #expect(metrics.contains("route=\"unmatched\""))
        #expect(!metrics.contains("/nowhere"))
    }

    @Test func requestIDsAndAccessLog() throws {
        let repo = try E2E.makeRepository()
        let server = try ServeProcess(models: repo.path)
        try server.waitReady()
        let r = try HTTP.request(port: server.port, "GET", "/health/live", headers: [("X-Request-ID", "trace-42")])
        #expect(r.header("X-Request-ID") == "trace-42")
        let generated = try HTTP.request(port: server.port, "GET", "/health/live")
        #expect((generated.header("X-Request-ID")?.count ?? 0) >= 8)
        usleep(100_000)
        let line = server.log.split(separator: "\n").first { $0.contains("\"request_id\":\"trace-42\"") }
        #expect(line?.contains("\"route\":\"/health/live\"") == true)
        #expect(line?.contains("\"status\":200") == true)
        // A number, not a string: "duration_ms":0.006.
        let duration = line.flatMap { l in l.firstRange(of: "\"duration_ms\":").map { l[$0.upperBound...].prefix { $0 != "," } } }
        #expect(duration.flatMap { Double($0) } != nil, "\(line ?? "no line")")
    }

    /// Start-to-ready is process start → ready, except when the process ran something else for
    /// more than a second first and then exec'd loupe (what `swift run` does after building): then
    /// it counts from loupe's own start, and says so in the log.
    @Test func startToReadyIgnoresALauncherThatExecsLoupe() throws {
        let repo = try E2E.makeRepository()
        let dir = try TempDir()
        let command = "sleep 1.3; exec '\(try E2E.binary())' serve --models '\(repo.path)' --host 127.0.0.1 --port 0 --log-format json"
        let process = try ChildProcess(["/bin/sh", "-c", command], logPath: dir.path + "/log")
        let line = try #require(process.waitForLine(containing: "\"msg\":\"ready\"", seconds: 30), "no ready line: \(process.log)")
        let ms = line.firstRange(of: "\"start_to_ready_ms\":").flatMap { Int(line[$0.upperBound...].prefix { $0.isNumber }) }
        #expect(ms.map { $0 < 1000 } == true, "\(line)")
        #expect(process.log.contains("\"seconds_before_loupe\":1"), "a number of seconds (the launcher slept 1.3 s): \(process.log)")
        process.signal(SIGKILL)
    }

    /// KServe FP32 tensors (model-ready values, not pixels) feed the drift window like pixel inputs:
    /// the pixels are recovered from the model's normalization.
    @Test func fp32TensorInputsFeedTheDriftWindow() throws {
        let repo = try E2E.makeRepository()
        let server = try ServeProcess(models: repo.path)
        try server.waitReady()
        let (pixels, _) = try E2E.testImages(3)
        let values = pixels.map { String(Double($0) / 255) }.joined(separator: ",")
        let body = #"{"inputs":[{"name":"input","shape":[3,784],"datatype":"FP32","data":[\#(values)]}]}"#
        let r = try HTTP.request(port: server.port, "POST", "/v2/models/fashion/infer", headers: [("Content-Type", "application/json")],
                                 body: Array(body.utf8))
        #expect(r.status == 200, "\(r.text.prefix(300))")
        let metrics = try HTTP.request(port: server.port, "GET", "/metrics").text
        #expect(metrics.contains(#"loupe_drift_window_images{model="fashion"} 3"#))
        let live = metrics.split(separator: "\n").first { $0.hasPrefix(#"loupe_drift_mean_intensity{model="fashion",source="live"}"#) }
        let expected = Double(pixels.reduce(0) { $0 + Int($1) }) / Double(pixels.count) / 255
        let reported = live.flatMap { Double($0.split(separator: " ").last ?? "") }
        #expect(reported.map { abs($0 - expected) < 1e-3 } == true, "\(String(describing: live)) vs \(expected)")
    }

    /// A stdout nobody reads does not stall requests: the server's stdout is a FIFO that the test
    /// stops reading after the "listening" line; 1,200 requests (≈ 300 KB of access log, several
    /// times a pipe's 64 KiB) are all answered promptly. Reading it afterwards yields every line,
    /// whole and in order, and the process still drains and exits 0.
    @Test func unreadStdoutDoesNotStallRequests() throws {
        let repo = try E2E.makeRepository()
        let dir = try TempDir()
        let fifo = dir.path + "/stdout"
        guard mkfifo(fifo, 0o600) == 0 else { throw E2EError("mkfifo") }
        let reader = open(fifo, O_RDONLY | O_NONBLOCK)
        guard reader >= 0 else { throw E2EError("open fifo") }
        defer { close(reader) }
        let process = try ChildProcess([try E2E.binary(), "serve", "--models", repo.path, "--host", "127.0.0.1", "--port", "0",
                                        "--log-format", "json", "--set", "shutdown.drain_delay_ms=200"], logPath: fifo)
        var text = ""
        func drain() {
            var buffer = [UInt8](repeating: 0, count: 65536)
            while true {
                let n = buffer.withUnsafeMutableBytes { read(reader, $0.baseAddress, $0.count) }
                if n <= 0 { break }
                text += String(decoding: buffer[0..<n], as: UTF8.self)
            }
        }
        var port: Int?
        let deadline = now() + 20
        while port == nil && now() < deadline {
            drain()
            if let r = text.firstRange(of: "\"address\":\"127.0.0.1:") { port = Int(text[r.upperBound...].prefix { $0.isNumber }) }
            usleep(10_000)
        }
        guard let port else { throw E2EError("no listening line; output:\n\(text)") }
        // From here on nobody reads stdout until every request has been answered.
        let start = now()
        for i in 0..<1200 {
            let r = try HTTP.request(port: port, "GET", "/health/live", headers: [("X-Request-ID", "fill-\(i)")], timeout: 5)
            #expect(r.status == 200)
            if r.status != 200 { break }
        }
        let elapsed = now() - start
        #expect(elapsed < 60, "1,200 requests took \(elapsed) s")
        // Now read it all: every access-log line arrives, whole and in request order.
        let readDeadline = now() + 10
        // Until the last request's line has arrived whole (a read may end inside a line).
        func lastLineIn() -> Bool {
            guard let r = text.range(of: "\"request_id\":\"fill-1199\"") else { return false }
            return text[r.upperBound...].contains("\n")
        }
        while now() < readDeadline && !lastLineIn() { drain(); usleep(10_000) }
        let ids = text.split(separator: "\n").compactMap { line -> Int? in
            guard line.hasPrefix("{"), line.hasSuffix("}"), let r = line.firstRange(of: "\"request_id\":\"fill-") else { return nil }
            return Int(line[r.upperBound...].prefix { $0.isNumber })
        }
        #expect(ids == Array(0..<1200))
        process.signal(SIGTERM)
        var code: Int32?
        let exitDeadline = now() + 30
        while code == nil && now() < exitDeadline { drain(); code = process.wait(seconds: 0.05) }
        #expect(code == 0)
    }

    /// SIGTERM with requests in flight: readiness turns 503 at once, requests keep being served
    /// through the drain delay, every request sent before the listener closed gets its answer,
    /// and the process exits 0.
    @Test func drainOnSIGTERMWithRequestsInFlight() throws {
        let repo = try E2E.makeRepository()
        let server = try ServeProcess(models: repo.path, arguments: [
            "--workers", "1", "--set", "shutdown.drain_delay_ms=700", "--set", "shutdown.deadline_ms=5000"])
        try server.waitReady()
        let port = server.port
        let (pixels, _) = try E2E.testImages(64)
        let started = now()
        // One thread sends SIGTERM while 8 clients keep 64-image requests in flight.
        let observed = SignalObservation()
        let results = onThreads(9) { i -> [Int] in
            if i == 8 {
                usleep(300_000)
                server.process.signal(SIGTERM)
                usleep(100_000)
                let ready = try? HTTP.request(port: port, "GET", "/health/ready")
                observed.ready = ready?.status ?? 0
                observed.code = ready.flatMap { try? decode(ErrorBody.self, $0).code }
                observed.live = (try? HTTP.request(port: port, "GET", "/health/live"))?.status ?? 0
                return []
            }
            var statuses: [Int] = []
            // Keep sending 64-image requests until the listener refuses connections.
            while now() - started < 10 {
                guard let r = try? HTTP.request(port: port, "POST", "/predict", headers: [("Content-Type", "application/octet-stream")], body: pixels) else { break }
                statuses.append(r.status)
            }
            return statuses
        }.flatMap { $0 }
        #expect(observed.ready == 503)
        #expect(observed.code == "draining")
        #expect(observed.live == 200)
        #expect(server.process.wait(seconds: 15) == 0)
        #expect(results.count > 8)
        #expect(results.allSatisfy { $0 == 200 }, "statuses: \(Set(results))")
        let log = server.log
        #expect(log.contains("\"msg\":\"draining\""))
        #expect(log.contains("\"unfinished_requests\":0"))
    }

    @Test func secondSignalExitsAtOnce() throws {
        let repo = try E2E.makeRepository()
        let server = try ServeProcess(models: repo.path, arguments: ["--set", "shutdown.drain_delay_ms=30000"])
        try server.waitReady()
        server.process.signal(SIGTERM)
        usleep(200_000)
        #expect(server.process.wait(seconds: 0.1) == nil)  // still draining
        server.process.signal(SIGINT)
        #expect(server.process.wait(seconds: 5) == 1)
    }

    /// Every thread of the server blocks SIGTERM, SIGINT and SIGHUP, so the kernel leaves them
    /// pending for the signal sources instead of handing one to a busy worker thread that would
    /// discard it (a lost SIGTERM means no drain, then SIGKILL).
    @Test func everyThreadLeavesSignalsToTheSignalSources() throws {
        let repo = try E2E.makeRepository()
        let server = try ServeProcess(models: repo.path)
        try server.waitReady()
        let (pixels, _) = try E2E.testImages(1)
        _ = try HTTP.request(port: server.port, "POST", "/predict", headers: [("Content-Type", "application/octet-stream")], body: pixels)
        let taskDir = "/proc/\(server.process.pid)/task"
        guard let dir = opendir(taskDir) else { throw E2EError("cannot list \(taskDir)") }
        var threads = 0
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            guard Int(name) != nil else { continue }
            let status = TempDirReader.read("\(taskDir)/\(name)/status")
            guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix("SigBlk:") }),
                  let mask = UInt64(String(line.dropFirst("SigBlk:".count).filter { !$0.isWhitespace }), radix: 16) else { continue }
            threads += 1
            let wanted: UInt64 = (1 << (UInt64(SIGTERM) - 1)) | (1 << (UInt64(SIGINT) - 1)) | (1 << (UInt64(SIGHUP) - 1))
            #expect(mask & wanted == wanted, "thread \(name) does not block SIGTERM/SIGINT/SIGHUP: SigBlk \(String(mask, radix: 16))")
        }
        closedir(dir)
        #expect(threads >= 4)
        server.process.signal(SIGTERM)
        #expect(server.process.wait(seconds: 15) == 0)
    }

    @Test func healthcheckCommand() throws {
        let repo = try E2E.makeRepository()
        let server = try ServeProcess(models: repo.path)
        try server.waitReady()
        let dir = try TempDir()
        let ok = try ChildProcess([try E2E.binary(), "healthcheck", "--url", "http://127.0.0.1:\(server.port)/health/ready"], logPath: dir.path + "/a")
        #expect(ok.wait(seconds: 10) == 0)
        let viaEnv = try ChildProcess([try E2E.binary(), "healthcheck"], environment: ["LOUPE_SERVER_PORT": String(server.port)], logPath: dir.path + "/b")
        #expect(viaEnv.wait(seconds: 10) == 0)
        // The port from a configuration file, the way serve reads it (LOUPE_CONFIG, or --config).
        try dir.write("loupe.yaml", Array("server:\n  port: \(server.port)\n".utf8))
        let viaFile = try ChildProcess([try E2E.binary(), "healthcheck"], environment: ["LOUPE_CONFIG": dir.path + "/loupe.yaml"], logPath: dir.path + "/e")
        #expect(viaFile.wait(seconds: 10) == 0)
        let viaFlag = try ChildProcess([try E2E.binary(), "healthcheck", "--config", dir.path + "/loupe.yaml"], logPath: dir.path + "/f")
        #expect(viaFlag.wait(seconds: 10) == 0)
        try dir.write("broken.yaml", Array("server:\n  port: many\n".utf8))
        let broken = try ChildProcess([try E2E.binary(), "healthcheck", "--config", dir.path + "/broken.yaml"], logPath: dir.path + "/g")
        #expect(broken.wait(seconds: 10) == 1)
        #expect(dir.read("g").contains("server.port"))
        let empty = try TempDir()
        let notReady = try ServeProcess(models: empty.path)
        let bad = try ChildProcess([try E2E.binary(), "healthcheck", "--url", "http://127.0.0.1:\(notReady.port)/health/ready"], logPath: dir.path + "/c")
        #expect(bad.wait(seconds: 10) == 1)
        notReady.process.signal(SIGKILL)
        let closed = try ChildProcess([try E2E.binary(), "healthcheck", "--url", "http://127.0.0.1:1/health/ready"], logPath: dir.path + "/d")
        #expect(closed.wait(seconds: 10) == 1)
    }

    /// `loupe healthcheck` against a TLS server: https:// URLs, and the default URL turns https when
    /// the configuration turns TLS on — so the image's HEALTHCHECK survives enabling TLS.
    @Test func healthcheckOverTLS() throws {
        let dir = try TempDir()
        let cert = dir.path + "/cert.pem", key = dir.path + "/key.pem"
        let made = runProcess(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                               "-nodes", "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=localhost"])
        try #require(made.status == 0, "openssl req failed: \(made.output)")
        let repo = try E2E.makeRepository()
        let server = try ServeProcess(models: repo.path, arguments: ["--tls-cert", cert, "--tls-key", key])
        let url = "https://127.0.0.1:\(server.port)/health/ready"
        // Ready once the healthcheck itself says so (the plain-HTTP readiness wait cannot talk TLS).
        var status: Int32 = -1
        let deadline = now() + 20
        var attempt = 0
        while now() < deadline {
            attempt += 1
            let probe = try ChildProcess([try E2E.binary(), "healthcheck", "--url", url], logPath: dir.path + "/probe-\(attempt)")
            status = probe.wait(seconds: 10) ?? -1
            if status == 0 { break }
            sleepSeconds(0.1)
        }
        #expect(status == 0, "healthcheck over TLS never succeeded: \(dir.read("probe-\(attempt)"))")
        #expect(dir.read("probe-\(attempt)").contains("\(url): 200"))
        // The default URL from the configuration serve reads: TLS on → https.
        let viaEnv = try ChildProcess([try E2E.binary(), "healthcheck"],
                                      environment: ["LOUPE_SERVER_PORT": String(server.port), "LOUPE_SERVER_TLS_CERTIFICATE": cert,
                                                    "LOUPE_SERVER_TLS_KEY": key], logPath: dir.path + "/env")
        #expect(viaEnv.wait(seconds: 10) == 0, "\(dir.read("env"))")
        // Plain HTTP to the TLS port fails (exit 1), as does https to a closed port.
        let plain = try ChildProcess([try E2E.binary(), "healthcheck", "--url", "http://127.0.0.1:\(server.port)/health/ready"], logPath: dir.path + "/plain")
        #expect(plain.wait(seconds: 10) == 1)
        let closed = try ChildProcess([try E2E.binary(), "healthcheck", "--url", "https://127.0.0.1:1/health/ready"], logPath: dir.path + "/closed")
        #expect(closed.wait(seconds: 10) == 1)
        server.process.signal(SIGKILL)
    }

    @Test func invalidConfigurationIsRefusedNamingTheKey() throws {
        let dir = try TempDir()
        try dir.write("bad.yaml", Array("batching:\n  max_batch_size: lots\n".utf8))
        let fromFile = try ChildProcess([try E2E.binary(), "serve", "--config", dir.path + "/bad.yaml"], logPath: dir.path + "/a")
        #expect(fromFile.wait(seconds: 10) != 0)
        #expect(fromFile.log.contains("batching.max_batch_size"))
        let fromEnv = try ChildProcess([try E2E.binary(), "serve"], environment: ["LOUPE_SERVER_PORT": "-3"], logPath: dir.path + "/b")
        #expect(fromEnv.wait(seconds: 10) != 0)
        #expect(fromEnv.log.contains("server.port") && fromEnv.log.contains("LOUPE_SERVER_PORT"))
        // Precedence: flag over environment over file.
        try dir.write("ok.yaml", Array("server:\n  port: 1111\nbatching:\n  max_batch_size: 8\n  queue_size: 99\n".utf8))
        let printed = try ChildProcess([try E2E.binary(), "serve", "--config", dir.path + "/ok.yaml", "--print-config", "--max-batch-size", "4"],
                                       environment: ["LOUPE_SERVER_PORT": "2222", "LOUPE_BATCHING_MAX_BATCH_SIZE": "16"], logPath: dir.path + "/c")
        #expect(printed.wait(seconds: 10) == 0)
        let text = printed.log
        #expect(text.contains("server.port: 2222\n"))
        #expect(text.contains("batching.max_batch_size: 4\n"))
        #expect(text.contains("batching.queue_size: 99\n"))
    }

    /// The lifecycle's repository API is mounted by `loupe serve` when enabled, behind its token.
    @Test func repositoryAPIWhenEnabled() throws {
        let repo = try E2E.makeRepository()
        let off = try ServeProcess(models: repo.path)
        try off.waitReady()
        #expect(try HTTP.request(port: off.port, "POST", "/v2/repository/index").status == 404)
        let on = try ServeProcess(models: repo.path, environment: ["LOUPE_REPOSITORY_API_ENABLED": "true", "LOUPE_REPOSITORY_API_TOKEN": "s3cret"])
        try on.waitReady()
        #expect(try HTTP.request(port: on.port, "POST", "/v2/repository/index").status == 401)
        let index = try HTTP.request(port: on.port, "POST", "/v2/repository/index", headers: [("Authorization", "Bearer s3cret")])
        #expect(index.status == 200)
        #expect(index.text.contains("\"name\":\"fashion\""))
        let unload = try HTTP.request(port: on.port, "POST", "/v2/repository/models/fashion/unload", headers: [("Authorization", "Bearer s3cret")])
        #expect(unload.status == 200)
        #expect(try HTTP.request(port: on.port, "GET", "/v2/models/fashion/ready").status != 200)
        #expect(try HTTP.request(port: on.port, "GET", "/health/ready").status == 503)
        let load = try HTTP.request(port: on.port, "POST", "/v2/repository/models/fashion/load", headers: [("Authorization", "Bearer s3cret")])
        #expect(load.status == 200)
        #expect(try HTTP.request(port: on.port, "GET", "/v2/models/fashion/ready").status == 200)
        #expect(try HTTP.request(port: on.port, "GET", "/v2").text.contains("model_repository"))
    }

    @Test func sighupReloadsTheRepository() throws {
        let repo = try E2E.makeRepository()
        let server = try ServeProcess(models: repo.path, arguments: ["--set", "models.poll_interval_ms=0", "--set", "models.stable_after_ms=0"])
        try server.waitReady()
        let second = try E2E.makeRepository(versions: [11])
        try repo.mkdir("fashion/2")
        guard system("cp '\(second.path)/fashion/1/model.loupe' '\(repo.path)/fashion/2/model.loupe'") == 0 else { throw E2EError("cp") }
        server.process.signal(SIGHUP)
        let deadline = now() + 10
        var version = 1
        while now() < deadline && version != 2 {
            usleep(50_000)
            let (pixels, _) = try E2E.testImages(1)
            let r = try HTTP.request(port: server.port, "POST", "/predict", headers: [("Content-Type", "application/octet-stream")], body: pixels)
            version = (try? decode(PredictBody.self, r).model_version) ?? 0
        }
        #expect(version == 2)
    }
}

func base64(_ bytes: [UInt8]) -> String {
    let table = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
    var out: [UInt8] = []
    var i = 0
    while i < bytes.count {
        let b0 = UInt32(bytes[i]), b1 = i + 1 < bytes.count ? UInt32(bytes[i + 1]) : 0, b2 = i + 2 < bytes.count ? UInt32(bytes[i + 2]) : 0
        let v = (b0 << 16) | (b1 << 8) | b2
        out.append(table[Int((v >> 18) & 63)]); out.append(table[Int((v >> 12) & 63)])
        out.append(i + 1 < bytes.count ? table[Int((v >> 6) & 63)] : UInt8(ascii: "="))
        out.append(i + 2 < bytes.count ? table[Int(v & 63)] : UInt8(ascii: "="))
        i += 3
    }
    return String(decoding: out, as: UTF8.self)
}

final class SignalObservation: @unchecked Sendable {
    var ready = 0
    var code: String?
    var live = 0
}

/// Element-wise equal within 1e-5 (absolute), and the same length.
func close(_ a: [Float], _ b: [Float], tolerance: Float = 1e-5) -> Bool {
    a.count == b.count && zip(a, b).allSatisfy { abs($0 - $1) <= tolerance }
}

enum TempDirReader {
    static func read(_ path: String) -> String {
        guard let f = fopen(path, "r") else { return "" }
        defer { fclose(f) }
        var out = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = fread(&buffer, 1, buffer.count, f)
            if n <= 0 { break }
            out += buffer[0..<n]
        }
        return String(decoding: out, as: UTF8.self)
    }
}
