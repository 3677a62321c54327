// Hot reload through the real `loupe serve` binary on loopback: clients keep predicting over
// keep-alive connections while new versions are written, a corrupt version is dropped in, the
// server gets SIGHUP and repository-API loads. Every answer must be a 200 and equal, bit for bit,
// what exactly one version computes for that input.
import FoundationEssentials
import Synchronization
import Testing
import LoupeData
import LoupeEngine
#if canImport(Glibc)
import Glibc
#endif

@Suite(.serialized) struct ReloadEndToEndTests {
    @Test func reloadsUnderLoadWithoutAFailedOrMixedResponse() throws {
        let scratch = try TempDir()
        let repo = scratch.path + "/models"
        let versions = 1...5
        var expected: [Int: [Float]] = [:]
        var files: [Int: ModelFile] = [:]
        let probe = ReloadE2E.images(count: 1, seed: 1234)
        for v in versions {
            files[v] = ReloadE2E.modelFile(seed: UInt64(v))
            expected[v] = ReloadE2E.predict(files[v]!, pixels: probe)
        }
        try ReloadE2E.write(files[1]!, repo: repo, name: "fashion", version: 1)

        let server = try ServeProcess(models: repo, settings: [
            "models.poll_interval_ms=50", "models.stable_after_ms=100",
            "repository_api.enabled=true", "repository_api.token=t0ken", "logging.access_log=false",
        ])
        try server.waitReady()

        let stop = Atomic<Bool>(false)
        let progress = Atomic<Int>(0)
        struct Tally: Sendable { var ok = 0; var failed: [String] = []; var mixed: [String] = []; var seen: Set<Int> = [] }
        let tally = Mutex(Tally())
        let port = server.port
        let expectedByVersion = expected
        var clients: [ReloadE2E.Thread] = []
        for _ in 0..<4 {
            clients.append(ReloadE2E.Thread {
                var local = Tally()
                var connection: ReloadE2E.Connection? = nil
                while !stop.load(ordering: .relaxed) {
                    if connection == nil { connection = try? ReloadE2E.Connection(port: port, receiveTimeout: 30) }
                    guard let c = connection,
                          let r = try? c.request("POST", "/predict", headers: [("Content-Type", "application/octet-stream")], body: probe)
                    else { local.failed.append("no response (connection failed)"); connection = nil; continue }
                    if r.closes { connection = nil }
                    guard r.status == 200, let answer = try? JSONDecoder().decode(ReloadE2E.PredictAnswer.self, from: Data(r.body)) else {
                        local.failed.append("status \(r.status): \(String(decoding: r.body.prefix(200), as: UTF8.self))")
                        continue
                    }
                    local.ok += 1
                    local.seen.insert(answer.model_version)
                    progress.add(1, ordering: .relaxed)
                    let want = expectedByVersion[answer.model_version] ?? []
                    let got = answer.predictions.first?.probabilities ?? []
                    if got.count != want.count || zip(got, want).contains(where: { abs($0 - $1) > 1e-6 }) {
                        local.mixed.append("version \(answer.model_version) answered \(got.prefix(3)) instead of \(want.prefix(3))")
                    }
                }
                tally.withLock { t in
                    t.ok += local.ok; t.failed += local.failed; t.mixed += local.mixed; t.seen.formUnion(local.seen)
                }
            })
        }
        func letClientsRun(_ n: Int = 30) {
            let target = progress.load(ordering: .relaxed) + n
            var waited = 0.0
            while progress.load(ordering: .relaxed) < target, waited < 30 { usleep(2000); waited += 0.002 }
        }
        func waitForVersion(_ v: Int) -> Bool {
            for _ in 0..<1500 {
                if let r = try? ReloadE2E.Connection(port: port, receiveTimeout: 30).request("GET", "/v2/models/fashion/versions/\(v)/ready"),
                   r.status == 200 { return true }
                usleep(10_000)
            }
            return false
        }
        letClientsRun()
        // 2: picked up by polling.
        try ReloadE2E.write(files[2]!, repo: repo, name: "fashion", version: 2)
        #expect(waitForVersion(2))
        letClientsRun()
        // A corrupt 3: refused, 2 keeps serving; then the real 3 replaces it (polling).
        try FileManagerLite.mkdirs(repo + "/fashion/3")
        var corrupt = try files[3]!.encode()
        corrupt[corrupt.count - 100] ^= 0xFF
        try ReloadE2E.writeAtomically(corrupt, to: repo + "/fashion/3/model.loupe")
        let refused = try ReloadE2E.Connection(port: port, receiveTimeout: 30).request("POST", "/v2/repository/models/fashion/load",
                                                                   headers: [("Authorization", "Bearer t0ken")])
        #expect(refused.status == 400)
        #expect(String(decoding: refused.body, as: UTF8.self).contains("still serving version 2"))
        // /health says what failed and why; a request for that version is told the reason too.
        let health = String(decoding: try ReloadE2E.Connection(port: port, receiveTimeout: 30).request("GET", "/health").body, as: UTF8.self)
        #expect(health.contains(#""load_failures":[{"model":"fashion","version":3,"state":"UNAVAILABLE","reason":""#), "\(health)")
        let asked = try ReloadE2E.Connection(port: port, receiveTimeout: 30).request("GET", "/v2/models/fashion/versions/3")
        #expect(asked.status == 404)
        #expect(String(decoding: asked.body, as: UTF8.self).contains("version 3 failed to load: "))
        letClientsRun(60)
        try ReloadE2E.write(files[3]!, repo: repo, name: "fashion", version: 3)
        #expect(waitForVersion(3))
        let healed = String(decoding: try ReloadE2E.Connection(port: port, receiveTimeout: 30).request("GET", "/health").body, as: UTF8.self)
        #expect(!healed.contains("load_failures"), "\(healed)")
        letClientsRun()
        // 4: SIGHUP.
        try ReloadE2E.write(files[4]!, repo: repo, name: "fashion", version: 4)
        server.process.signal(SIGHUP)
        #expect(waitForVersion(4))
        letClientsRun()
        // 5: the repository API.
        try ReloadE2E.write(files[5]!, repo: repo, name: "fashion", version: 5)
        let unauthorized = try ReloadE2E.Connection(port: port, receiveTimeout: 30).request("POST", "/v2/repository/models/fashion/load")
        #expect(unauthorized.status == 401)
        let load = try ReloadE2E.Connection(port: port, receiveTimeout: 30).request("POST", "/v2/repository/models/fashion/load",
                                                                headers: [("Authorization", "Bearer t0ken")])
        #expect(load.status == 200, "\(String(decoding: load.body, as: UTF8.self))")
        letClientsRun()
        // Roll back by removing 5.
        ReloadE2E.removeTree(repo + "/fashion/5")
        #expect(waitForVersion(4))
        letClientsRun()
        stop.store(true, ordering: .relaxed)
        for c in clients { c.join() }

        let t = tally.withLock { $0 }
        #expect(t.failed.isEmpty, "\(t.failed.count) failed requests, e.g. \(t.failed.prefix(3))")
        #expect(t.mixed.isEmpty, "\(t.mixed.prefix(3))")
        #expect(t.ok > 100)
        #expect(t.seen.isSuperset(of: [1, 2, 3, 4, 5]), "versions answered: \(t.seen.sorted())")
        let metrics = String(decoding: try ReloadE2E.Connection(port: port, receiveTimeout: 30).request("GET", "/metrics").body, as: UTF8.self)
        #expect(metrics.contains("loupe_model_reloads_total{model=\"fashion\",result=\"failure\"} 1"))
        #expect(metrics.contains("loupe_model_info{model=\"fashion\",version=\"4\",sha256=\"\(files[4]!.sha256Hex)\",precision=\"fp32\"} 1"))
        #expect(metrics.contains("loupe_drift_window_images{model=\"fashion\"}"))
        #expect(try ReloadE2E.Connection(port: port, receiveTimeout: 30).request("GET", "/health/ready").status == 200)

        // Readiness follows unload and load through the repository API.
        let auth = [("Authorization", "Bearer t0ken")]
        #expect(try ReloadE2E.Connection(port: port, receiveTimeout: 30).request("POST", "/v2/repository/models/fashion/unload", headers: auth).status == 200)
        #expect(try ReloadE2E.Connection(port: port, receiveTimeout: 30).request("GET", "/health/ready").status == 503)
        #expect(try ReloadE2E.Connection(port: port, receiveTimeout: 30).request("GET", "/v2/models/fashion/ready").status != 200)
        let index = try ReloadE2E.Connection(port: port, receiveTimeout: 30).request("POST", "/v2/repository/index", headers: auth)
        #expect(String(decoding: index.body, as: UTF8.self).contains("\"state\":\"UNLOADED\""))
        #expect(try ReloadE2E.Connection(port: port, receiveTimeout: 30).request("POST", "/v2/repository/models/fashion/load", headers: auth).status == 200)
        #expect(try ReloadE2E.Connection(port: port, receiveTimeout: 30).request("GET", "/health/ready").status == 200)
        #expect(try ReloadE2E.Connection(port: port, receiveTimeout: 30).request("GET", "/v2/models/fashion/ready").status == 200)
    }
}

@Suite(.serialized) struct ReloadTritonClientTests {
    /// The official KServe v2 client against the repository extension (CI installs it).
    @Test func tritonClientRepositoryIndexLoadUnload() throws {
        var python: String? = nil
        for dir in (getenv("PATH").map { String(cString: $0) } ?? "/usr/bin:/bin").split(separator: ":") where python == nil {
            if access("\(dir)/python3", X_OK) == 0 { python = "\(dir)/python3" }
        }
        let interpreter = try #require(python, "python3 is not installed (CI installs it)")
        let scratch = try TempDir()
        let repo = scratch.path + "/models"
        try ReloadE2E.write(ReloadE2E.modelFile(seed: 1), repo: repo, name: "fashion", version: 1)
        try ReloadE2E.write(ReloadE2E.modelFile(seed: 2), repo: repo, name: "fashion", version: 2)
        let server = try ServeProcess(models: repo, settings: [
            "models.stable_after_ms=0", "repository_api.enabled=true", "repository_api.token=t0ken", "logging.access_log=false",
        ])
        try server.waitReady()
        let script = CLIProcess.repositoryRoot + "/Tests/EndToEndTests/python/reload_repository_check.py"
        let output = try CLIProcess.run(interpreter, [script, "127.0.0.1:\(server.port)", "fashion", "t0ken"], timeout: 120)
        #expect(output.status == 0, "tritonclient repository check failed: \(output.output)")
        #expect(output.output.contains("\"ok\": true"))
    }
}

/// Helpers of this file (processes, temp dirs and the binary come from ServeSupport / CLIProcess).
enum ReloadE2E {
    struct PredictAnswer: Decodable {
        struct Prediction: Decodable { var probabilities: [Float] }
        var model_version: Int
        var predictions: [Prediction]
    }

    static func images(count: Int, seed: UInt64) -> [UInt8] {
        var state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
        return (0..<(count * 784)).map { _ in
            state ^= state << 13; state ^= state >> 7; state ^= state << 17
            return UInt8(truncatingIfNeeded: state >> 24)
        }
    }

    static func network(seed: UInt64) -> Sequential {
        try! Sequential(architecture: Architecture(inputShape: [28, 28, 1], layers: [.flatten, .dense(units: 10, activation: .softmax)]),
                        seed: seed)
    }

    static func predict(_ file: ModelFile, pixels: [UInt8]) -> [Float] {
        let net = try! Sequential(architecture: file.header.architecture, parameters: file.parameters)
        var ws = net.makeWorkspace(maxBatch: 1)
        return net.predict(pixels.map { Float($0) / 255 }, count: pixels.count / 784, workspace: &ws, threads: 1)
    }

    /// A small seeded model with golden samples computed from itself.
    static func modelFile(seed: UInt64) -> ModelFile {
        let net = network(seed: seed)
        let golden = images(count: 3, seed: seed &+ 17)
        var ws = net.makeWorkspace(maxBatch: 3)
        let p = net.predict(golden.map { Float($0) / 255 }, count: 3, workspace: &ws, threads: 1)
        let samples = (0..<3).map { i -> GoldenSample in
            let row = Array(p[(i * 10)..<((i + 1) * 10)])
            return GoldenSample(pixels: Array(golden[(i * 784)..<((i + 1) * 784)]), label: nil,
                                expectedClass: row.indices.max { row[$0] < row[$1] }!, probabilities: row)
        }
        let header = ModelHeader(architecture: net.architecture, labels: (0..<10).map { "c\($0)" },
                                 parameterCount: net.parameters.count,
                                 tensors: try! ModelFile.expectedTensors(for: net.architecture),
                                 training: TrainingMetadata(dataset: "synthetic", epochs: 0, seed: seed),
                                 goldenSamples: samples,
                                 inputStatistics: InputStatistics.compute(images: images(count: 20, seed: seed), labels: (0..<20).map { UInt8($0 % 10) },
                                                                          count: 20, pixelsPerImage: 784, classCount: 10))
        return try! ModelFile(header: header, parameters: net.parameters)
    }

    static func write(_ file: ModelFile, repo: String, name: String, version: Int) throws {
        try FileManagerLite.mkdirs("\(repo)/\(name)/\(version)")
        try file.write(to: "\(repo)/\(name)/\(version)/model.loupe")
    }

    static func writeAtomically(_ bytes: [UInt8], to path: String) throws {
        try FileIO.writeAtomically(bytes, to: path)
    }

    static func removeTree(_ path: String) {
        var st = stat()
        guard lstat(path, &st) == 0 else { return }
        if st.st_mode & S_IFMT == S_IFDIR, let d = opendir(path) {
            var names: [String] = []
            while let e = readdir(d) {
                let n = withUnsafePointer(to: e.pointee.d_name) { $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) } }
                if n != "." && n != ".." { names.append(n) }
            }
            closedir(d)
            for n in names { removeTree(path + "/" + n) }
            rmdir(path)
        } else {
            unlink(path)
        }
    }

    typealias Connection = TestClient

    /// A real thread (Dispatch workers may all be busy with other tests).
    final class Thread: @unchecked Sendable {
        private var thread = pthread_t()
        private let body: @Sendable () -> Void
        init(_ body: @escaping @Sendable () -> Void) {
            self.body = body
            let box = Unmanaged.passRetained(self).toOpaque()
            precondition(pthread_create(&thread, nil, { raw in
                Unmanaged<Thread>.fromOpaque(raw!).takeRetainedValue().body()
                return nil
            }, box) == 0)
        }
        func join() { pthread_join(thread, nil) }
    }
}

enum FileManagerLite {
    static func mkdirs(_ path: String) throws {
        var current = path.hasPrefix("/") ? "" : "."
        for part in path.split(separator: "/") {
            current += "/" + part
            if mkdir(current, 0o755) != 0 && errno != EEXIST { throw E2EError("mkdir \(current) failed") }
        }
    }
}
