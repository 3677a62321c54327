import Synchronization
import Testing
import LoupeData
import LoupeEngine
import LoupeHTTP
@testable import LoupeService
#if canImport(Glibc)
import Glibc
#endif

@Suite struct RepositoryTests {
    @Test func servesTheLatestVersionByDefault() {
        let repo = TempRepository(); defer { repo.remove() }
        let v1 = RepoFixture.file(seed: 1), v2 = RepoFixture.file(seed: 2)
        repo.write(v1, name: "fashion", version: 1)
        repo.write(v2, name: "fashion", version: 2)
        repo.mkdir("fashion", "notaversion")
        repo.mkdir("fashion", "007")
        let models = ModelRepository(configuration: .testing(root: repo.root), logger: .discarding)
        #expect(!models.isReady())
        #expect(models.resolve(model: nil, version: nil) == nil)
        models.start()
        let m = models.resolve(model: nil, version: nil)
        #expect(m?.name == "fashion")
        #expect(m?.version == 2)
        #expect(m?.sha256 == v2.sha256Hex)
        #expect(models.resolve(model: "fashion", version: 1) == nil)
        #expect(models.resolve(model: "fashion", version: 2) === m)
        #expect(models.isReady(model: "fashion"))
        #expect(models.status(model: "fashion")?.state == .ready)
        #expect(models.status(model: "fashion")?.versions.map(\.version) == [2, 1])
        #expect(m!.loadDuration > 0 && m!.loadedAt > 1_700_000_000)
        if case .versionNotServed(_, let v, let served) = models.lookup(model: "fashion", version: 1) {
            #expect(v == 1 && served == [2])
        } else { Issue.record("expected versionNotServed") }
    }

    @Test func versionPoliciesAllAndPinned() {
        let repo = TempRepository(); defer { repo.remove() }
        for v in 1...3 { repo.write(RepoFixture.file(seed: UInt64(v)), name: "m", version: v) }
        var config = RepositoryConfiguration.testing(root: repo.root)
        config.versionPolicy = .all
        let all = ModelRepository(configuration: config, logger: .discarding)
        all.start()
        #expect(all.status(model: "m")?.servedVersions == [3, 2, 1])
        #expect(all.resolve(model: "m", version: nil)?.version == 3)

        config.versionPolicy = .latest(count: 2)
        let two = ModelRepository(configuration: config, logger: .discarding)
        two.start()
        #expect(two.status(model: "m")?.servedVersions == [3, 2])

        config.versionPolicy = .latest(count: 1)
        config.policies["m"] = .specific([1, 5])
        let pinned = ModelRepository(configuration: config, logger: .discarding)
        pinned.start()
        #expect(pinned.status(model: "m")?.servedVersions == [1])
        #expect(pinned.resolve(model: "m", version: nil)?.version == 1)
        let missing = pinned.status(model: "m")?.versions.first { $0.version == 5 }
        #expect(missing?.state == .unavailable)
    }

    @Test func severalModelsAndTheDefault() {
        let repo = TempRepository(); defer { repo.remove() }
        repo.write(RepoFixture.file(seed: 1), name: "beta", version: 1)
        repo.write(RepoFixture.file(seed: 2), name: "alpha", version: 3)
        let first = ModelRepository(configuration: .testing(root: repo.root), logger: .discarding)
        first.start()
        #expect(first.servedModelNames == ["alpha", "beta"])
        #expect(first.resolve(model: nil, version: nil)?.name == "alpha")
        #expect(first.resolve(model: "beta", version: nil)?.version == 1)
        var config = RepositoryConfiguration.testing(root: repo.root)
        config.defaultModel = "beta"
        let configured = ModelRepository(configuration: config, logger: .discarding)
        configured.start()
        #expect(configured.resolve(model: nil, version: nil)?.name == "beta")
        config.defaultModel = "gamma"
        let absent = ModelRepository(configuration: config, logger: .discarding)
        absent.start()
        #expect(absent.resolve(model: nil, version: nil) == nil)
        #expect(absent.resolve(model: "alpha", version: nil) != nil)
    }

    /// Each kind of bad new version: the old one keeps serving, the failure is counted and explained.
    @Test(arguments: ["corrupt", "truncated", "wrong-shape", "self-test", "no-golden", "empty", "garbage"])
    func badVersionKeepsTheOldOneServing(_ kind: String) throws {
        let repo = TempRepository(); defer { repo.remove() }
        let good = RepoFixture.file(seed: 1)
        repo.write(good, name: "m", version: 1)
        let models = ModelRepository(configuration: .testing(root: repo.root), logger: .discarding)
        models.start()
        #expect(models.resolve(model: "m", version: nil)?.sha256 == good.sha256Hex)

        repo.mkdir("m", "2")
        let target = repo.path("m", "2", "model.loupe")
        var bytes = try RepoFixture.file(seed: 2).encode()
        let expectedStage: String
        switch kind {
        case "corrupt": bytes[bytes.count / 2] ^= 0x40; expectedStage = "verify"
        case "truncated": bytes.removeLast(1000); expectedStage = "verify"
        case "wrong-shape": bytes = try RepoFixture.file(seed: 2, inputShape: [14, 14, 2]).encode(); expectedStage = "verify"   // 2 channels: not an image the server can feed
        case "self-test": bytes = try RepoFixture.file(seed: 2, tamperGolden: true).encode(); expectedStage = "self-test"
        case "no-golden": bytes = try RepoFixture.file(seed: 2, golden: 0).encode(); expectedStage = "self-test"
        case "empty": bytes = []; expectedStage = "verify"
        default: bytes = Array("not a model at all".utf8); expectedStage = "verify"
        }
        TempRepository.writeBytes(bytes, to: target)
        let events = models.reload()
        #expect(events.contains { if case .failed(let why) = $0.outcome { why.hasPrefix(expectedStage) } else { false } },
                "\(events)")
        let serving = models.resolve(model: "m", version: nil)
        #expect(serving?.version == 1)
        #expect(serving?.sha256 == good.sha256Hex)
        #expect(models.isReady(model: "m"))
        let status = models.status(model: "m")
        #expect(status?.state == .ready)
        #expect(status?.versions.first { $0.version == 2 }?.state == .unavailable)
        #expect(models.countersCopy.models["m"]?.reloads.failure == 1)

        // The same bad file is not retried (or counted) on every pass.
        models.reload()
        #expect(models.countersCopy.models["m"]?.reloads.failure == 1)

        // Fixing the file brings version 2 in.
        let fixed = RepoFixture.file(seed: 2)
        try fixed.write(to: target)
        models.reload()
        #expect(models.resolve(model: "m", version: nil)?.sha256 == fixed.sha256Hex)
        #expect(models.countersCopy.models["m"]?.reloads.success == 2)
    }

    @Test func aBadRewriteOfTheServedVersionKeepsItsOldContent() throws {
        let repo = TempRepository(); defer { repo.remove() }
        let good = RepoFixture.file(seed: 1)
        let path = repo.write(good, name: "m", version: 1)
        let models = ModelRepository(configuration: .testing(root: repo.root), logger: .discarding)
        models.start()
        var bytes = try RepoFixture.file(seed: 5).encode()
        bytes[100] ^= 1
        TempRepository.writeBytes(bytes, to: path)
        models.reload()
        #expect(models.resolve(model: "m", version: 1)?.sha256 == good.sha256Hex)
        // A valid rewrite replaces it.
        let next = RepoFixture.file(seed: 6)
        try next.write(to: path)
        models.reload()
        #expect(models.resolve(model: "m", version: 1)?.sha256 == next.sha256Hex)
    }

    @Test func firstLoadFailingLeavesTheModelUnavailableAndNotReady() {
        let repo = TempRepository(); defer { repo.remove() }
        repo.mkdir("m", "1")
        TempRepository.writeBytes(Array("junk".utf8), to: repo.path("m", "1", "model.loupe"))
        let models = ModelRepository(configuration: .testing(root: repo.root), logger: .discarding)
        models.start()
        #expect(!models.isReady())
        #expect(!models.isReady(model: "m"))
        #expect(models.status(model: "m")?.state == .unavailable)
        #expect(models.status(model: "m")?.reason?.contains("verify") == true)
        if case .notReady(let name, let state, _) = models.lookup(model: "m", version: nil) {
            #expect(name == "m" && state == .unavailable)
        } else { Issue.record("expected notReady") }
    }

    @Test func latestFallsBackToTheNewestVersionThatLoads() {
        let repo = TempRepository(); defer { repo.remove() }
        repo.write(RepoFixture.file(seed: 1), name: "m", version: 1)
        repo.mkdir("m", "2")
        TempRepository.writeBytes(Array("junk".utf8), to: repo.path("m", "2", "model.loupe"))
        let models = ModelRepository(configuration: .testing(root: repo.root), logger: .discarding)
        models.start()
        #expect(models.resolve(model: "m", version: nil)?.version == 1)
    }

    @Test func removingTheNewestVersionRollsBack() {
        let repo = TempRepository(); defer { repo.remove() }
        let v1 = RepoFixture.file(seed: 1)
        repo.write(v1, name: "m", version: 1)
        repo.write(RepoFixture.file(seed: 2), name: "m", version: 2)
        let models = ModelRepository(configuration: .testing(root: repo.root), logger: .discarding)
        models.start()
        let before = models.resolve(model: "m", version: nil)
        #expect(before?.version == 2)
        TempRepository.removeTree(repo.path("m", "2"))
        let events = models.reload()
        #expect(events.contains(ReloadEvent(model: "m", version: 1, outcome: .loaded(sha256: v1.sha256Hex))))
        #expect(events.contains(ReloadEvent(model: "m", version: 2, outcome: .unloaded)))
        #expect(models.resolve(model: "m", version: nil)?.version == 1)
        // A request that resolved version 2 before keeps a working model.
        var ws = before!.model.makeWorkspace(maxBatch: 2)
        #expect(before!.model.predict(RepoFixture.probe, count: 2, workspace: &ws, threads: 1) == RepoFixture.expectedProbe(seed: 2))
        // Removing the whole model does not take it down: the loaded version keeps serving, and
        // its status and /health say the file is missing…
        TempRepository.removeTree(repo.path("m"))
        let gone = models.reload()
        #expect(!gone.contains { $0.outcome == .unloaded })
        #expect(models.resolve(model: "m", version: nil)?.version == 1)
        #expect(models.status(model: "m")?.state == .ready)
        #expect(models.status(model: "m")?.versions.map(\.fileMissing) == [true])
        #expect(models.missingFiles().map(\.version) == [1])
        #expect((models as any ModelProvider).isReady)
        let generation = models.publishedGeneration
        // …until it is unloaded through the API.
        #expect(models.unload(model: "m").ok)
        #expect(models.resolve(model: "m", version: nil) == nil)
        #expect(!(models as any ModelProvider).isReady)
        // A publication moves the number /health keeps its models part by.
        #expect(models.publishedGeneration != generation)
        #expect(models.publishedGeneration != nil)
    }

    @Test func aDeletedModelFileKeepsServingUntilANewVersionReplacesIt() {
        let repo = TempRepository(); defer { repo.remove() }
        let v1 = RepoFixture.file(seed: 1)
        let path = repo.write(v1, name: "m", version: 1)
        let models = ModelRepository(configuration: .testing(root: repo.root), logger: .discarding)
        models.start()
        TempRepository.removeTree(path)   // rm models/m/1/model.loupe: the version directory stays
        for _ in 0..<2 {                  // and stays so across passes
            models.reload()
            #expect(models.resolve(model: "m", version: nil)?.sha256 == v1.sha256Hex)
            #expect(models.missingFiles().map(\.version) == [1])
        }
        var text = MetricsWriter()
        models.writeMetrics(into: &text)
        #expect(text.text.contains("loupe_model_file_missing{model=\"m\",version=\"1\"} 1"))
        #expect(text.text.contains("loupe_model_last_reload_successful{model=\"m\"} 1"))
        // A new good version replaces it, and the missing one is gone.
        let v2 = RepoFixture.file(seed: 2)
        repo.write(v2, name: "m", version: 2)
        models.reload()
        #expect(models.resolve(model: "m", version: nil)?.sha256 == v2.sha256Hex)
        #expect(models.missingFiles().isEmpty)
        #expect(models.status(model: "m")?.reason == nil)
    }

    @Test func aFailedLoadSetsLastReloadSuccessfulToZero() throws {
        let repo = TempRepository(); defer { repo.remove() }
        repo.write(RepoFixture.file(seed: 1), name: "m", version: 1)
        let models = ModelRepository(configuration: .testing(root: repo.root), logger: .discarding)
        models.start()
        var bad = try RepoFixture.file(seed: 2).encode()
        bad[bad.count / 2] ^= 0xFF
        TempRepository.writeBytes(bad, to: repo.mkdir("m", "2") + "/model.loupe")
        models.reload()
        var text = MetricsWriter()
        models.writeMetrics(into: &text)
        #expect(text.text.contains("loupe_model_last_reload_successful{model=\"m\"} 0"))
        #expect(text.text.contains("loupe_model_last_reload_success_timestamp_seconds{model=\"m\"}"))
        #expect(models.resolve(model: "m", version: nil)?.version == 1)
    }

    @Test func strictReadinessWaitsForEveryListedModel() throws {
        let repo = TempRepository(); defer { repo.remove() }
        repo.write(RepoFixture.file(seed: 1), name: "a", version: 1)
        repo.write(RepoFixture.file(seed: 2), name: "b", version: 1)
        let models = ModelRepository(configuration: .testing(root: repo.root), logger: .discarding)
        let provider: any ModelProvider = models
        // Watch readiness while the first pass loads "a" then "b": it may only turn true once
        // both have their final state.
        let seenEarly = Mutex(false)
        let watcher = TestThread {
            let until = monotonicNanoseconds() + 20_000_000_000
            while monotonicNanoseconds() < until {
                if provider.isReady {
                    if models.resolve(model: "b", version: nil) == nil { seenEarly.withLock { $0 = true } }
                    return
                }
            }
        }
        models.start()
        watcher.join()
        #expect(!seenEarly.withLock { $0 }, "ready while b was still loading")
        #expect(provider.isReady)
        // A model that failed for good does not hold readiness back.
        var bad = try RepoFixture.file(seed: 3).encode()
        bad[bad.count / 2] ^= 0xFF
        TempRepository.writeBytes(bad, to: repo.mkdir("c", "1") + "/model.loupe")
        models.reload()
        #expect(models.status(model: "c")?.state == .unavailable)
        #expect(provider.isReady)
    }

    @Test func aVanishedRootUnloadsNothing() {
        let repo = TempRepository(); defer { repo.remove() }
        repo.write(RepoFixture.file(seed: 1), name: "m", version: 1)
        let models = ModelRepository(configuration: .testing(root: repo.root), logger: .discarding)
        models.start()
        rename(repo.root, repo.root + ".gone")
        defer { rename(repo.root + ".gone", repo.root) }
        models.reload()
        #expect(models.resolve(model: "m", version: nil)?.version == 1)
        #expect(models.countersCopy.scanErrors == 1)
    }

    @Test func unloadHoldsUntilLoad() {
        let repo = TempRepository(); defer { repo.remove() }
        repo.write(RepoFixture.file(seed: 1), name: "m", version: 1)
        let models = ModelRepository(configuration: .testing(root: repo.root), logger: .discarding)
        models.start()
        #expect(models.unload(model: "m").ok)
        #expect(!models.isReady(model: "m"))
        #expect(models.status(model: "m")?.state == .unloaded)
        models.reload()   // polling and SIGHUP leave it unloaded
        #expect(!models.isReady(model: "m"))
        #expect(!models.unload(model: "nope").ok)
        let loaded = models.load(model: "m")
        #expect(loaded.ok, "\(loaded.message)")
        #expect(models.isReady(model: "m"))
        let bad = models.load(model: "absent")
        #expect(!bad.ok && bad.notFound && bad.message.contains("not in the repository"))
    }

    @Test func traversalAndSymlinksOutOfTheRepositoryAreRefused() throws {
        let repo = TempRepository(); defer { repo.remove() }
        let outside = TempRepository(); defer { outside.remove() }
        outside.write(RepoFixture.file(seed: 9), name: "evil", version: 1)
        repo.write(RepoFixture.file(seed: 1), name: "good", version: 1)
        // A model directory that is a symlink leading outside.
        symlink(outside.path("evil"), repo.path("evil"))
        // A version whose model.loupe is a symlink to a file outside.
        repo.mkdir("sneaky", "1")
        symlink(outside.path("evil", "1", "model.loupe"), repo.path("sneaky", "1", "model.loupe"))
        // A version directory that is a symlink leading outside.
        repo.mkdir("sneaky2")
        symlink(outside.path("evil", "1"), repo.path("sneaky2", "1"))
        // A symlink that stays inside is fine.
        symlink(repo.path("good"), repo.path("alias"))
        // Invalid names on disk are ignored.
        repo.write(RepoFixture.file(seed: 3), name: "bad name", version: 1)

        let models = ModelRepository(configuration: .testing(root: repo.root), logger: .discarding)
        models.start()
        #expect(models.servedModelNames == ["alias", "good"])
        #expect(models.resolve(model: "evil", version: nil) == nil)
        #expect(models.resolve(model: "sneaky", version: 1) == nil)
        #expect(models.resolve(model: "sneaky2", version: 1) == nil)
        for name in ["../good", "..", ".", "/etc/passwd", "good/1", "good/../good", repo.path("good"), "bad name", "%2e%2e"] {
            #expect(models.resolve(model: name, version: nil) == nil, "\(name)")
            #expect(!models.load(model: name).ok, "\(name)")
            #expect(!models.unload(model: name).ok, "\(name)")
        }
        #expect(models.resolve(model: "good", version: -1) == nil)
        #expect(models.resolve(model: "good", version: 0) == nil)
    }

    @Test func aFileThatChangedSinceTheScanIsRetriedNotCondemned() throws {
        let repo = TempRepository(); defer { repo.remove() }
        let path = repo.write(RepoFixture.file(seed: 1), name: "m", version: 1)
        var stale = try #require(RepositoryFileSystem.identity(path))
        stale.size += 1
        let window = DriftWindow(reference: DriftReference(labels: RepoFixture.labels), capacity: 4)
        do {
            _ = try ModelLoader.load(name: "m", version: 1, path: path, expected: stale,
                                     configuration: .testing(root: repo.root), drift: { _ in window })
            Issue.record("expected a fileChanged error")
        } catch {
            #expect(error.fileChanged && error.stage == .read)
        }
        let fresh = RepositoryFileSystem.identity(path)
        let loaded = try ModelLoader.load(name: "m", version: 1, path: path, expected: fresh,
                                          configuration: .testing(root: repo.root), drift: { _ in window })
        #expect(loaded.version == 1)
    }

    /// An architecture's activation workspace is computed from its shapes at load: over
    /// models.max_workspace_bytes for the configured batch, the version is refused with a sentence before
    /// any activation is allocated (a small-parameter model with huge activations could exhaust memory).
    @Test func aModelWhoseWorkspaceIsOverTheLimitIsRefusedAtLoad() throws {
        let repo = TempRepository(); defer { repo.remove() }
        let path = repo.write(RepoFixture.file(seed: 1), name: "m", version: 1)
        let window = DriftWindow(reference: DriftReference(labels: RepoFixture.labels), capacity: 4)
        let model = RepoFixture.model(seed: 1)
        let need = model.inferenceWorkspaceBytes(maxBatch: 64, threads: 2) + model.explanationWorkspaceBytes
        var c = RepositoryConfiguration.testing(root: repo.root)
        c.workspaceBatch = 64; c.workspaceThreads = 2; c.maxWorkspaceBytes = need - 1
        do {
            _ = try ModelLoader.load(name: "m", version: 1, path: path, expected: RepositoryFileSystem.identity(path), configuration: c, drift: { _ in window })
            Issue.record("expected the workspace limit to refuse the model")
        } catch {
            #expect(error.stage == .build)
            #expect(error.message.hasPrefix("its activations need ") && error.message.contains("for batches of 64 images (batching.max_batch_size) on 2 threads")
                    && error.message.contains("over models.max_workspace_bytes"), "\(error.message)")
        }
        c.maxWorkspaceBytes = need
        #expect(try ModelLoader.load(name: "m", version: 1, path: path, expected: RepositoryFileSystem.identity(path), configuration: c,
                                     drift: { _ in window }).version == 1)
        #expect(RepositoryConfiguration().maxWorkspaceBytes == ServiceConfiguration().repositoryConfiguration.maxWorkspaceBytes)
    }

    /// The limit counts the explanation workspace (allocated on the first /explain, beside the inference one): a limit
    /// that holds the inference workspace alone refuses the model, naming both parts.
    @Test func theWorkspaceLimitCountsTheExplanationWorkspace() throws {
        let repo = TempRepository(); defer { repo.remove() }
        let path = repo.write(RepoFixture.file(seed: 1), name: "m", version: 1)
        let window = DriftWindow(reference: DriftReference(labels: RepoFixture.labels), capacity: 4)
        let model = RepoFixture.model(seed: 1)
        let inference = model.inferenceWorkspaceBytes(maxBatch: 64, threads: 1), explanation = model.explanationWorkspaceBytes
        #expect(explanation > 0)
        var c = RepositoryConfiguration.testing(root: repo.root)
        c.workspaceBatch = 64; c.workspaceThreads = 1; c.maxWorkspaceBytes = inference + explanation - 1
        #expect(c.maxWorkspaceBytes >= inference)
        do {
            _ = try ModelLoader.load(name: "m", version: 1, path: path, expected: RepositoryFileSystem.identity(path), configuration: c, drift: { _ in window })
            Issue.record("expected the workspace limit to count the explanation workspace")
        } catch {
            #expect(error.message.contains("for explanations (64 images at a time, made on the first /explain)"), "\(error.message)")
        }
    }

    /// An int8 version is checked with what its int8 scratch allocates, not the fp32 figure: a limit between the two
    /// serves it.
    @Test func anInt8ModelIsCheckedWithItsOwnWorkspace() throws {
        let repo = TempRepository(); defer { repo.remove() }
        let (file, int8) = try QuantizedServingTests.quantizedFile()
        let path = repo.write(file, name: "m", version: 1)
        let window = DriftWindow(reference: DriftReference(labels: RepoFixture.labels), capacity: 4)
        let fp32 = try Sequential(architecture: int8.architecture, parameters: int8.parameters)
        let batch = 4096
        let int8Need = int8.inferenceWorkspaceBytes(maxBatch: batch, threads: 1) + int8.explanationWorkspaceBytes
        let fp32Need = fp32.inferenceWorkspaceBytes(maxBatch: batch, threads: 1) + fp32.explanationWorkspaceBytes
        #expect(int8Need < fp32Need)
        var c = RepositoryConfiguration.testing(root: repo.root)
        c.workspaceBatch = batch; c.workspaceThreads = 1; c.maxWorkspaceBytes = int8Need
        let loaded = try ModelLoader.load(name: "m", version: 1, path: path, expected: RepositoryFileSystem.identity(path), configuration: c,
                                          drift: { _ in window })
        #expect(loaded.model.precision == "int8")
        c.maxWorkspaceBytes = int8Need - 1
        #expect(throws: ModelLoadError.self) {
            _ = try ModelLoader.load(name: "m", version: 1, path: path, expected: RepositoryFileSystem.identity(path), configuration: c, drift: { _ in window })
        }
    }

    @Test func aFileStillBeingWrittenWaitsUntilItSettles() throws {
        let repo = TempRepository(); defer { repo.remove() }
        let v1 = RepoFixture.file(seed: 1)
        repo.write(v1, name: "m", version: 1)
        TempRepository.age(repo.path("m", "1", "model.loupe"))
        let models = ModelRepository(configuration: .testing(root: repo.root, stable: 0.3), logger: .discarding)
        models.start()
        #expect(models.resolve(model: "m", version: nil)?.version == 1)
        // v2's timestamps lie in the future (clock skew, or touched), so only seeing the same file
        // state for the settle time counts: a non-waiting pass (the poller's) leaves it pending.
        let v2 = repo.write(RepoFixture.file(seed: 2), name: "m", version: 2)
        TempRepository.age(v2, seconds: -3600)
        models.pollOnce()
        #expect(models.resolve(model: "m", version: nil)?.version == 1)
        #expect(models.status(model: "m")?.versions.first { $0.version == 2 }?.state == .loading)
        // A waiting pass (SIGHUP, API) loads it once settled.
        models.reload()
        #expect(models.resolve(model: "m", version: nil)?.version == 2)
    }
}
