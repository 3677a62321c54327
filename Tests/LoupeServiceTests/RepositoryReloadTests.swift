import Dispatch
import Synchronization
import Testing
import LoupeData
import LoupeEngine
import LoupeHTTP
@testable import LoupeService
#if canImport(Glibc)
import Glibc
#endif

/// Reloads under load: many threads resolve and predict while versions come and go.
@Suite struct RepositoryReloadTests {
    struct Tally: Sendable {
        var requests = 0
        var unresolved = 0
        var inconsistent: [String] = []
        var versionsSeen: Set<Int> = []
    }

    @Test func reloadUnderConcurrentLoadFailsNoRequestAndNeverMixesVersions() throws {
        let repo = TempRepository(); defer { repo.remove() }
        let versions = 1...7
        var files: [Int: ModelFile] = [:]
        var expected: [Int: [Float]] = [:]
        for v in versions {
            files[v] = RepoFixture.file(seed: UInt64(v))
            expected[v] = RepoFixture.expectedProbe(seed: UInt64(v))
        }
        let shas = files.mapValues(\.sha256Hex)
        repo.write(files[1]!, name: "m", version: 1)
        // Poll fast as well, so the poller and explicit reloads race each other.
        let models = ModelRepository(configuration: .testing(root: repo.root, poll: 0.005), logger: .discarding)
        models.start()
        defer { models.stop() }

        let stop = Atomic<Bool>(false)
        let progress = Atomic<Int>(0)
        let tally = Mutex(Tally())
        let expectedProbe = expected
        var threads: [TestThread] = []
        for _ in 0..<4 {
            threads.append(TestThread {
                var workspaces: [ObjectIdentifier: InferenceWorkspace] = [:]
                var local = Tally()
                while !stop.load(ordering: .relaxed) || local.requests < 50 {
                    local.requests += 1
                    // One resolve per request; everything after uses that one LoadedModel.
                    guard let m = models.resolve(model: "m", version: nil) else { local.unresolved += 1; continue }
                    var ws = workspaces[ObjectIdentifier(m)] ?? m.model.makeWorkspace(maxBatch: 2)
                    let out = m.model.predict(RepoFixture.probe, count: 2, workspace: &ws, threads: 1)
                    workspaces[ObjectIdentifier(m)] = ws
                    local.versionsSeen.insert(m.version)
                    progress.add(1, ordering: .relaxed)
                    if out != expectedProbe[m.version] || m.sha256 != shas[m.version] {
                        local.inconsistent.append("version \(m.version) answered like another version")
                    }
                }
                tally.withLock { t in
                    t.requests += local.requests; t.unresolved += local.unresolved
                    t.inconsistent += local.inconsistent; t.versionsSeen.formUnion(local.versionsSeen)
                }
            })
        }
        /// Lets the workers answer some requests with what is served now (bounded wait).
        func letWorkersRun() {
            let target = progress.load(ordering: .relaxed) + 40
            var waited = 0.0
            while progress.load(ordering: .relaxed) < target, waited < 20 { sleepSeconds(0.002); waited += 0.002 }
        }
        letWorkersRun()
        for v in versions.dropFirst() {
            repo.write(files[v]!, name: "m", version: v)
            if v == 4 {   // a broken version in between changes nothing
                repo.mkdir("m", "5")
                TempRepository.writeBytes(Array(try files[5]!.encode().prefix(500)), to: repo.path("m", "5", "model.loupe"))
                models.reload()
                repo.write(files[5]!, name: "m", version: 5)
            }
            models.reload()
            letWorkersRun()
        }
        stop.store(true, ordering: .relaxed)
        for t in threads { t.join() }
        let t = tally.withLock { $0 }
        #expect(t.unresolved == 0)
        #expect(t.inconsistent.isEmpty, "\(t.inconsistent.prefix(3))")
        #expect(t.requests >= 200)
        #expect(t.versionsSeen.count >= 5, "\(t.versionsSeen)")
        #expect(models.resolve(model: "m", version: nil)?.version == 7)
    }

    /// A writer rewrites the served file in place, in chunks, with pauses shorter or longer than
    /// the settle time, truncating first or overwriting over the old bytes. Only complete files
    /// are ever served.
    @Test(arguments: [(0.03, true), (0.03, false), (0.25, true), (0.25, false)])
    func aChunkedInPlaceWriterNeverGetsAPartialModelLoaded(pause: Double, truncate: Bool) throws {
        let repo = TempRepository(); defer { repo.remove() }
        let old = RepoFixture.file(seed: 1), new = RepoFixture.file(seed: 2)
        let path = repo.write(old, name: "m", version: 1)
        TempRepository.age(path)
        let models = ModelRepository(configuration: .testing(root: repo.root, poll: 0.01, stable: 0.12), logger: .discarding)
        models.start()
        defer { models.stop() }
        #expect(models.resolve(model: "m", version: nil)?.sha256 == old.sha256Hex)

        let stop = Atomic<Bool>(false)
        let seen = Mutex<Set<String>>([])
        let observer = TestThread {
            while !stop.load(ordering: .relaxed) {
                if let m = models.resolve(model: "m", version: nil) { seen.withLock { _ = $0.insert(m.sha256) } }
                else { seen.withLock { _ = $0.insert("nothing served") } }
                usleep(500)
            }
        }
        let bytes = try new.encode()
        let fd = open(path, truncate ? (O_WRONLY | O_TRUNC) : O_WRONLY)
        #expect(fd >= 0)
        let chunks = 5
        let size = (bytes.count + chunks - 1) / chunks
        for i in 0..<chunks {
            let part = Array(bytes[(i * size)..<min(bytes.count, (i + 1) * size)])
            _ = part.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            sleepSeconds(pause)
        }
        // Overwriting a longer file leaves its tail: cut it at the new length, as such a writer must
        // (the two files differ in length when their golden samples' probabilities print differently).
        if !truncate { #expect(ftruncate(fd, off_t(bytes.count)) == 0) }
        close(fd)
        // Wait (bounded) for the finished file to be picked up.
        var waited = 0.0
        while models.resolve(model: "m", version: nil)?.sha256 != new.sha256Hex, waited < 20 {
            sleepSeconds(0.02); waited += 0.02
        }
        stop.store(true, ordering: .relaxed)
        observer.join()
        #expect(models.resolve(model: "m", version: nil)?.sha256 == new.sha256Hex)
        let shas = seen.withLock { $0 }
        #expect(shas.isSubset(of: [old.sha256Hex, new.sha256Hex]), "served something else: \(shas)")
    }
}

@Suite struct RepositoryMetricsAndAPITests {
    func repository(api: Bool = true, token: String? = "s3cret") -> (TempRepository, ModelRepository, ModelFile) {
        let repo = TempRepository()
        let file = RepoFixture.file(seed: 1)
        repo.write(file, name: "fashion", version: 1)
        var config = RepositoryConfiguration.testing(root: repo.root)
        config.apiEnabled = api
        config.apiToken = token
        config.driftWindow = 50
        let models = ModelRepository(configuration: config, logger: .discarding)
        models.start()
        return (repo, models, file)
    }

    @Test func metricsDescribeServedVersionsReloadsAndDrift() throws {
        let (repo, models, file) = repository()
        defer { repo.remove() }
        let registry = MetricsRegistry()
        models.registerMetrics(on: registry)
        let m = try #require(models.resolve(model: nil, version: nil))
        // Traffic like the training set for half the window, then all-black images.
        let images = RepoFixture.images(count: 25, seed: 4)
        m.recordPredictions(pixels: images, predictedClasses: (0..<25).map { $0 % 10 })
        for _ in 0..<25 { m.recordPrediction(pixels: [UInt8](repeating: 0, count: 784), predictedClass: 3) }
        // A failed version, for the failure counter.
        repo.mkdir("fashion", "2")
        TempRepository.writeBytes([1, 2, 3], to: repo.path("fashion", "2", "model.loupe"))
        models.reload()

        let text = registry.render()
        #expect(text.contains("loupe_model_info{model=\"fashion\",version=\"1\",sha256=\"\(file.sha256Hex)\",precision=\"fp32\"} 1\n"))
        #expect(text.contains("loupe_model_ready{model=\"fashion\"} 1\n"))
        #expect(text.contains("loupe_model_reloads_total{model=\"fashion\",result=\"success\"} 1\n"))
        #expect(text.contains("loupe_model_reloads_total{model=\"fashion\",result=\"failure\"} 1\n"))
        #expect(text.contains("loupe_model_last_reload_timestamp_seconds{model=\"fashion\"} "))
        #expect(text.contains("loupe_model_load_duration_seconds{model=\"fashion\",version=\"1\"} "))
        #expect(text.contains("loupe_drift_window_images{model=\"fashion\"} 50\n"))
        #expect(text.contains("loupe_drift_psi{model=\"fashion\",feature=\"predicted_class\"} "))
        #expect(text.contains("loupe_drift_psi{model=\"fashion\",feature=\"intensity\"} "))
        #expect(text.contains("loupe_drift_mean_intensity{model=\"fashion\",source=\"training\"} "))
        #expect(text.contains("loupe_drift_class_share{model=\"fashion\",class=\"class3\",source=\"live\"} "))
        // Every sample line belongs to a family announced with HELP and TYPE.
        var typed: Set<String> = []
        for line in text.split(separator: "\n") {
            if line.hasPrefix("# TYPE ") { typed.insert(String(line.split(separator: " ")[2])) }
            else if !line.hasPrefix("#") {
                let name = String(line.prefix { $0 != "{" && $0 != " " })
                #expect(typed.contains(name), "\(name) has no TYPE line")
            }
        }
        let drift = m.drift.summary()
        #expect(drift.intensityPSI! > 0.25)   // half the window is black: the population moved
        #expect(drift.liveClassShare[3] > 0.5)
    }

    func call(_ models: ModelRepository, _ template: String, model: String? = nil, body: String = "",
              auth: String? = "Bearer s3cret") -> HTTPResponse {
        let route = RepositoryRoutes.routes(models).first { $0.template == template }!
        var headers = HTTPHeaders()
        if let auth { headers.add("Authorization", auth) }
        let path = template.replacingOccurrences("{m}", model ?? "")
        let request = HTTPRequest(method: .POST, target: path, path: path, headers: headers, body: Array(body.utf8),
                                  pathParameters: model.map { ["m": $0] } ?? [:], routeTemplate: template)
        let sink = RepoCapturingSink()
        route.handler(request, sink)
        return sink.wait()!
    }

    @Test func repositoryAPIIsOffByDefault() {
        let (repo, models, _) = repository(api: false)
        defer { repo.remove() }
        #expect(RepositoryRoutes.routes(models).isEmpty)
    }

    @Test func repositoryAPIIndexLoadUnloadWithBearerToken() throws {
        let (repo, models, _) = repository()
        defer { repo.remove() }
        #expect(call(models, "/v2/repository/index", auth: nil).status == 401)
        #expect(call(models, "/v2/repository/index", auth: "Bearer wrong").status == 401)
        #expect(call(models, "/v2/repository/index", auth: "Basic s3cret").status == 401)

        repo.write(RepoFixture.file(seed: 2), name: "fashion", version: 2)   // not loaded until asked
        let index = call(models, "/v2/repository/index")
        #expect(index.status == 200)
        let list = try JSONReader.parse(index.body).arrayValue ?? []
        #expect(list.count == 2)
        #expect(list.contains { $0["version"]?.stringValue == "1" && $0["state"]?.stringValue == "READY" })
        #expect(list.contains { $0["version"]?.stringValue == "2" && $0["state"]?.stringValue == "UNAVAILABLE" })
        let readyOnly = try JSONReader.parse(call(models, "/v2/repository/index", body: "{\"ready\": true}").body)
        #expect(readyOnly.arrayValue?.count == 1)
        #expect(call(models, "/v2/repository/index", body: "{nope").status == 400)

        #expect(call(models, "/v2/repository/models/{m}/load", model: "fashion").status == 200)
        #expect(models.resolve(model: "fashion", version: nil)?.version == 2)
        #expect(call(models, "/v2/repository/models/{m}/load", model: "absent").status == 404)
        #expect(call(models, "/v2/repository/models/{m}/load", model: "..").status == 400)
        #expect(call(models, "/v2/repository/models/{m}/load", model: "fashion", body: #"{"parameters":{"config":"{}"}}"#).status == 400)
        #expect(call(models, "/v2/repository/models/{m}/load", model: "fashion", body: #"{"parameters":{"file:1/model.loupe":"AA=="}}"#).status == 400)
        #expect(call(models, "/v2/repository/models/{m}/load", model: "fashion", body: "{}").status == 200)

        #expect(call(models, "/v2/repository/models/{m}/unload", model: "fashion").status == 200)
        #expect(!models.isReady(model: "fashion"))
        #expect(call(models, "/v2/repository/models/{m}/unload", model: "absent").status == 404)
        #expect(call(models, "/v2/repository/models/{m}/load", model: "fashion").status == 200)
        #expect(models.isReady(model: "fashion"))

        // A load whose new version fails says so (400) while the old version keeps serving.
        repo.mkdir("fashion", "3")
        TempRepository.writeBytes([0], to: repo.path("fashion", "3", "model.loupe"))
        let failed = call(models, "/v2/repository/models/{m}/load", model: "fashion")
        #expect(failed.status == 400)
        #expect(String(decoding: failed.body, as: UTF8.self).contains("still serving version 2"))
        #expect(models.resolve(model: "fashion", version: nil)?.version == 2)
        // Also when the poller (here: a plain reload) met the bad file first.
        TempRepository.writeBytes([0, 1], to: repo.path("fashion", "3", "model.loupe"))
        models.reload()
        let again = call(models, "/v2/repository/models/{m}/load", model: "fashion")
        #expect(again.status == 400)
        #expect(String(decoding: again.body, as: UTF8.self).contains("version 3 failed to load"))
    }

    /// Bodies of the wrong shape are 400s with a sentence, not read as if empty: a `ready` that is
    /// not a boolean would otherwise list every version as if false, an array or a `parameters` that
    /// is not an object would be taken for no body at all.
    @Test func repositoryAPIBodiesOfTheWrongTypeAreRefused() throws {
        let (repo, models, _) = repository()
        defer { repo.remove() }
        for body in [#"{"ready": "true"}"#, #"{"ready": 1}"#, "[]", #""ready""#] {
            let r = call(models, "/v2/repository/index", body: body)
            #expect(r.status == 400, "\(body)")
            #expect(String(decoding: r.body, as: UTF8.self).contains("{\\\"ready\\\": true}"), "\(body): \(String(decoding: r.body, as: UTF8.self))")
        }
        #expect(call(models, "/v2/repository/index", body: #"{"ready": false}"#).status == 200)
        for body in ["[]", "3", #"{"parameters": []}"#, #"{"parameters": "config"}"#] {
            let r = call(models, "/v2/repository/models/{m}/load", model: "fashion", body: body)
            #expect(r.status == 400, "\(body)")
            #expect(String(decoding: r.body, as: UTF8.self).contains("invalid_json") || String(decoding: r.body, as: UTF8.self).contains("invalid_parameter"), "\(body)")
        }
        #expect(call(models, "/v2/repository/models/{m}/load", model: "fashion", body: #"{"parameters": {}}"#).status == 200)
    }

    @Test func seamForTheService() throws {
        let (repo, models, file) = repository()
        defer { repo.remove() }
        let provider: any ModelProvider = models
        #expect(provider.isReady)
        #expect(provider.modelNames == ["fashion"])
        let m = try #require(provider.model(named: nil, version: nil))
        #expect(m.sha256 == file.sha256Hex)
        #expect(m.inputShape == [28, 28, 1] && m.inputCount == 784 && m.outputCount == 10)
        #expect(abs(m.normalization.scale - 1 / 255) < 1e-9 && m.normalization.offset == 0)
        let runner = m.makeRunner(maxBatch: 2)
        #expect(runner.predict(RepoFixture.probe, count: 2, threads: 1) == RepoFixture.expectedProbe(seed: 1))
        #expect(provider.servedModels().count == 1)
        // The service reports predictions through the protocol; they reach the drift window.
        m.observe(pixels: [UInt8](repeating: 255, count: 2 * 784), predictedClasses: [4, 4])
        let drift = try #require(models.resolve(model: nil, version: nil)).drift.summary()
        #expect(drift.images == 2 && drift.liveClassShare[4] == 1 && drift.liveInkFraction == 1)
        // FP32 inputs are turned back into pixels for the same statistics.
        m.observe(normalized: [Float](repeating: 0, count: 784), predictedClasses: [1])
        let after = try #require(models.resolve(model: nil, version: nil)).drift.summary()
        #expect(after.images == 3 && abs(after.liveMeanIntensity! - 2.0 / 3) < 1e-9)
        let loaded = try #require(models.resolve(model: nil, version: nil))
        #expect(loaded.normalization.pixels(fromNormalized: [0, Float(128) / 255, 1, 2, -1, .nan]) == [0, 128, 255, 255, 0, 0])
    }
}
