// Safe promotion with a real repository on real files (shadow, canary, immediate; promote, roll back,
// the rollback memo), canary routing's split and stickiness, and the shadow queue's bound.
import LoupeData
import Synchronization
import Testing
@testable import LoupeService
#if canImport(Glibc)
import Glibc
#endif

@Suite(.serialized) struct PromotionRepositoryTests {
    func repository(_ mode: PromotionMode, percent: Double = 10) -> (TempRepository, ModelRepository) {
        let dir = TempRepository()
        var c = RepositoryConfiguration.testing(root: dir.root)
        c.promotion.mode = mode
        c.promotion.canaryPercent = percent
        let repo = ModelRepository(configuration: c, logger: .discarding)
        dir.write(RepoFixture.file(seed: 1), name: "m", version: 1)
        repo.reload()
        return (dir, repo)
    }

    @Test func shadowCandidateIsJudgedBesideTheServingVersionAndARollbackIsRemembered() {
        let (dir, repo) = repository(.shadow)
        defer { dir.remove() }
        dir.write(RepoFixture.file(seed: 2), name: "m", version: 2)
        repo.reload()
        #expect(repo.resolve(model: "m", version: nil)?.version == 1)       // requests without a version
        #expect(repo.resolve(model: "m", version: 2)?.version == 2)         // the candidate is loaded
        let routed = repo.route(named: "m", key: 42)!
        #expect(routed.model.version == 1 && routed.other?.version == 2 && !routed.candidateAnswered)
        #expect(repo.promotionSlots().map { [$0.serving, $0.candidate] } == [[1, 2]])
        #expect(repo.status(model: "m")?.versions.first { $0.version == 2 }?.reason?.contains("shadow candidate") == true)

        guard case .done(_, let version, let serving) = repo.rollback(model: "m", version: 2, reason: "agreement: 40%") else {
            Issue.record("rollback refused"); return
        }
        #expect(version == 2 && serving == 1)
        #expect(repo.resolve(model: "m", version: 2) == nil && repo.promotionSlots().isEmpty)
        // The next passes (poll, SIGHUP) do not re-candidate it …
        repo.reload()
        #expect(repo.promotionSlots().isEmpty && repo.resolve(model: "m", version: nil)?.version == 1)
        #expect(repo.status(model: "m")?.versions.first { $0.version == 2 }?.reason == "rolled back: agreement: 40%")
        // … until its file changes.
        dir.write(RepoFixture.file(seed: 3), name: "m", version: 2)
        repo.reload()
        #expect(repo.promotionSlots().map(\.candidate) == [2])

        guard case .done(_, 2, 2) = repo.promote(model: "m", version: 2) else { Issue.record("promote refused"); return }
        #expect(repo.resolve(model: "m", version: nil)?.version == 2)
        #expect(repo.resolve(model: "m", version: 1) == nil)                // latest: the old primary is dropped
        #expect(repo.promotionSlots().isEmpty)
        #expect(repo.promote(model: "m", version: nil) == .refused(status: 409, code: "no_candidate",
            "model 'm' has no candidate version: version 2 already serves requests without a version (promotion.mode shadow)"))
    }

    /// A restart keeps serving the promoted version beside a candidate still being judged (the
    /// promotion state file), instead of taking the newest version on disk.
    @Test func aRestartKeepsTheServingVersionFromTheStateFile() throws {
        let (dir, repo) = repository(.canary)
        defer { dir.remove() }
        _ = repo.start()
        dir.write(RepoFixture.file(seed: 2), name: "m", version: 2)
        repo.reload()
        #expect(repo.promotionSlots().map { [$0.serving, $0.candidate] } == [[1, 2]])
        #expect(String(decoding: try FileIO.readFile(dir.path(".loupe-promotion.json")), as: UTF8.self) == "{\"serving\":{\"m\":1}}\n")

        let restarted = ModelRepository(configuration: repo.configuration, logger: .discarding)
        restarted.start()
        #expect(restarted.resolve(model: "m", version: nil)?.version == 1)
        #expect(restarted.promotionSlots().map { [$0.serving, $0.candidate] } == [[1, 2]])

        guard case .done = restarted.promote(model: "m", version: 2) else { Issue.record("promote refused"); return }
        let again = ModelRepository(configuration: repo.configuration, logger: .discarding)
        again.start()
        #expect(again.resolve(model: "m", version: nil)?.version == 2 && again.promotionSlots().isEmpty)

        // Immediate mode neither reads nor writes the file.
        var immediate = repo.configuration
        immediate.promotion.mode = .immediate
        let plain = ModelRepository(configuration: immediate, logger: .discarding)
        TempRepository.removeTree(dir.path(".loupe-promotion.json"))
        plain.start()
        #expect(plain.resolve(model: "m", version: nil)?.version == 2)
        #expect((try? FileIO.readFile(dir.path(".loupe-promotion.json"))) == nil)
    }

    /// The rollback memo is in the state file: a restart neither serves nor re-candidates a
    /// rolled-back file (until it changes), in any mode, and a memo for a vanished version is dropped.
    /// The rollback memo follows the content, not only the file state: the rolled-back file in a new state with the
    /// same bytes (what a volume mounted again under another device number, or a restored or copied repository, gives)
    /// stays rolled back — in immediate mode too, and across a restart — while other content is judged again.
    @Test func aRolledBackFileInANewStateWithTheSameContentStaysRolledBack() throws {
        let (dir, repo) = repository(.immediate)
        defer { dir.remove() }
        let path = dir.write(RepoFixture.file(seed: 2), name: "m", version: 2)
        repo.reload()
        let sha = try #require(repo.resolve(model: "m", version: nil)).sha256
        #expect(repo.resolve(model: "m", version: nil)?.version == 2)
        guard case .done(_, 2, 1) = repo.rollback(model: "m", version: 2, reason: "manual rollback") else {
            Issue.record("rollback refused"); return
        }
        let bytes = try FileIO.readFile(path)
        let statePath = dir.path(".loupe-promotion.json")
        let before = String(decoding: try FileIO.readFile(statePath), as: UTF8.self)
        #expect(before.contains("\"sha256\":\"\(sha)\""), "\(before)")
        try FileIO.writeAtomically(bytes, to: path)   // same bytes, another inode and ctime
        repo.reload()
        #expect(repo.resolve(model: "m", version: nil)?.version == 1)
        #expect(repo.resolve(model: "m", version: 2) == nil)
        #expect(repo.status(model: "m")?.versions.first { $0.version == 2 }?.reason == "rolled back: manual rollback")
        let after = String(decoding: try FileIO.readFile(statePath), as: UTF8.self)
        #expect(after != before && after.contains("\"sha256\":\"\(sha)\""), "the memo takes the new file state: \(after)")

        try FileIO.writeAtomically(bytes, to: path)
        let restarted = ModelRepository(configuration: repo.configuration, logger: .discarding)
        restarted.start()
        #expect(restarted.resolve(model: "m", version: nil)?.version == 1)
        #expect(restarted.resolve(model: "m", version: 2) == nil)
        // Other content under version 2 is a new model: it serves (immediate mode).
        dir.write(RepoFixture.file(seed: 3), name: "m", version: 2)
        restarted.reload()
        #expect(restarted.resolve(model: "m", version: nil)?.version == 2)
    }

    @Test func aRestartKeepsTheRollbackMemo() throws {
        let (dir, repo) = repository(.canary)
        defer { dir.remove() }
        _ = repo.start()
        dir.write(RepoFixture.file(seed: 2), name: "m", version: 2)
        repo.reload()
        guard case .done(_, 2, 1) = repo.rollback(model: "m", version: 2, reason: "agreement: 40%") else {
            Issue.record("rollback refused"); return
        }
        let state = String(decoding: try FileIO.readFile(dir.path(".loupe-promotion.json")), as: UTF8.self)
        #expect(state.hasPrefix(#"{"serving":{"m":1},"rolled_back":{"m":[{"version":2,"reason":"agreement: 40%","device":""#), "\(state)")

        let restarted = ModelRepository(configuration: repo.configuration, logger: .discarding)
        restarted.start()
        #expect(restarted.resolve(model: "m", version: nil)?.version == 1 && restarted.promotionSlots().isEmpty)
        #expect(restarted.status(model: "m")?.versions.first { $0.version == 2 }?.reason == "rolled back: agreement: 40%")
        // Rolling back the serving version now has nothing to fall back to (2 is remembered).
        guard case .refused(409, "nothing_to_roll_back_to", _) = restarted.rollback(model: "m", version: nil, reason: "manual rollback") else {
            Issue.record("rolled back onto the remembered version"); return
        }
        // In immediate mode too (the memo is not about the mode).
        var immediate = repo.configuration
        immediate.promotion.mode = .immediate
        let plain = ModelRepository(configuration: immediate, logger: .discarding)
        plain.start()
        #expect(plain.resolve(model: "m", version: nil)?.version == 1)

        // A changed file is judged again; a deleted one leaves the file.
        dir.write(RepoFixture.file(seed: 3), name: "m", version: 2)
        restarted.reload()
        #expect(restarted.promotionSlots().map(\.candidate) == [2])
        TempRepository.removeTree(dir.path("m/2"))
        restarted.reload()
        #expect(String(decoding: try FileIO.readFile(dir.path(".loupe-promotion.json")), as: UTF8.self) == "{\"serving\":{\"m\":1}}\n")
    }

    /// Unloading and loading a model through the repository API is no way around the judgement: the
    /// version that served requests without a version serves them again, beside the same candidate —
    /// as after a restart (the promotion state file keeps it too).
    @Test func unloadAndLoadKeepTheServingVersionBesideTheCandidate() throws {
        let (dir, repo) = repository(.shadow)
        defer { dir.remove() }
        _ = repo.start()
        dir.write(RepoFixture.file(seed: 2), name: "m", version: 2)
        repo.reload()
        #expect(repo.promotionSlots().map { [$0.serving, $0.candidate] } == [[1, 2]])
        #expect(repo.unload(model: "m").ok && repo.resolve(model: "m", version: nil) == nil)
        #expect(String(decoding: try FileIO.readFile(dir.path(".loupe-promotion.json")), as: UTF8.self) == "{\"serving\":{\"m\":1}}\n")
        #expect(repo.load(model: "m").ok)
        #expect(repo.resolve(model: "m", version: nil)?.version == 1)
        #expect(repo.promotionSlots().map { [$0.serving, $0.candidate] } == [[1, 2]])
    }

    @Test func aStaleDecisionForAnotherCandidateIsRefused() {
        let (dir, repo) = repository(.canary)
        defer { dir.remove() }
        dir.write(RepoFixture.file(seed: 2), name: "m", version: 2)
        dir.write(RepoFixture.file(seed: 3), name: "m", version: 3)
        repo.reload()
        #expect(repo.promotionSlots().map { [$0.serving, $0.candidate] } == [[1, 3]])   // the newest is the candidate
        guard case .refused(409, "not_candidate", _) = repo.promote(model: "m", version: 2) else { Issue.record("accepted"); return }
        guard case .refused(404, "model_not_found", _) = repo.rollback(model: "nope", version: nil, reason: "x") else {
            Issue.record("unknown model accepted"); return
        }
        #expect(repo.resolve(model: "m", version: nil)?.version == 1)
    }

    @Test func immediateModeServesTheNewVersionAtOnceAndRollsBackToTheOneBefore() {
        let (dir, repo) = repository(.immediate)
        defer { dir.remove() }
        guard case .refused(409, "nothing_to_roll_back_to", _) = repo.rollback(model: "m", version: nil, reason: "manual rollback") else {
            Issue.record("rolled back the only version"); return
        }
        #expect(repo.resolve(model: "m", version: nil)?.version == 1)
        dir.write(RepoFixture.file(seed: 2), name: "m", version: 2)
        repo.reload()
        #expect(repo.resolve(model: "m", version: nil)?.version == 2 && repo.promotionSlots().isEmpty)
        guard case .done(_, 2, 1) = repo.rollback(model: "m", version: nil, reason: "manual rollback") else {
            Issue.record("rollback refused"); return
        }
        repo.reload()
        #expect(repo.resolve(model: "m", version: nil)?.version == 1)
    }

    /// Rolling back the serving version when the version to fall back to turns out not to load is
    /// refused without the model ever leaving the snapshot: the loaded copy keeps serving (the same
    /// object, not read and self-tested again), no extra load is counted and no memo is written.
    @Test func aRollbackOntoAVersionThatFailsToLoadNeverStopsServing() {
        let dir = TempRepository()
        defer { dir.remove() }
        dir.mkdir("m", "1")
        TempRepository.writeBytes(Array("not a model file".utf8), to: dir.path("m", "1", "model.loupe"))
        dir.write(RepoFixture.file(seed: 2), name: "m", version: 2)
        let log = CapturedLog()
        let repo = ModelRepository(configuration: .testing(root: dir.root), logger: log.logger)
        repo.reload()
        guard let serving = repo.resolve(model: "m", version: nil), serving.version == 2 else {
            Issue.record("version 2 does not serve"); return
        }
        #expect(repo.countersCopy.models["m"]?.reloads.success == 1)
        guard case .refused(409, "nothing_to_roll_back_to", let message) = repo.rollback(model: "m", version: nil, reason: "manual rollback") else {
            Issue.record("rolled back onto a version that does not load"); return
        }
        #expect(message.contains("m version 1 failed to load: verify:") && message.hasSuffix("version 2 keeps serving"), "\(message)")
        // The log says what happened: nothing was unloaded, the rollback was refused.
        #expect(!log.all.contains { $0.contains("unloaded") && !$0.contains("nothing was unloaded") }, "\(log.all)")
        #expect(log.all.contains { $0.hasPrefix("warning: rollback of model m version 2 refused: no other version can serve") }, "\(log.all)")
        #expect(repo.resolve(model: "m", version: nil) === serving)
        #expect(repo.countersCopy.models["m"]?.reloads.success == 1)
        #expect(repo.status(model: "m")?.state == .ready)
        #expect((try? FileIO.readFile(dir.path(".loupe-promotion.json"))) == nil)
        // The failed fallback is remembered like any failed load; the next pass changes nothing.
        repo.reload()
        #expect(repo.resolve(model: "m", version: nil) === serving)
    }

    /// A model directory that cannot be listed during a pass (EIO here, through the file-system
    /// layer's fault seam: tests run as root, whom chmod does not stop) is not a model that is gone:
    /// what serves, its status, its load failures and its rollback memo stay, the promotion state
    /// file is not rewritten without them, and the log says why. Once readable, nothing is judged again.
    @Test func aModelDirectoryThatCannotBeListedKeepsItsState() throws {
        let dir = TempRepository()
        defer { dir.remove() }
        var c = RepositoryConfiguration.testing(root: dir.root)
        c.promotion.mode = .immediate
        let log = CapturedLog()
        let repo = ModelRepository(configuration: c, logger: log.logger)
        dir.write(RepoFixture.file(seed: 1), name: "m", version: 1)
        dir.write(RepoFixture.file(seed: 2), name: "m", version: 2)
        dir.mkdir("m", "3")
        TempRepository.writeBytes(Array("not a model file".utf8), to: dir.path("m", "3", "model.loupe"))
        repo.reload()
        #expect(repo.resolve(model: "m", version: nil)?.version == 2)   // 3 failed to load
        guard case .done(_, 2, 1) = repo.rollback(model: "m", version: nil, reason: "manual rollback") else {
            Issue.record("rollback refused"); return
        }
        let state = try FileIO.readFile(dir.path(".loupe-promotion.json"))
        let status = repo.status(model: "m")
        let counts = (repo.countersCopy.models["m"]?.reloads).map { [$0.success, $0.failure] }

        let modelDirectory = try #require(RepositoryFileSystem.realPath(dir.path("m")))
        RepositoryFileSystem.listFailures.withLock { $0[modelDirectory] = EIO }
        defer { RepositoryFileSystem.listFailures.withLock { _ = $0.removeValue(forKey: modelDirectory) } }
        repo.reload()
        #expect(repo.resolve(model: "m", version: nil)?.version == 1)
        #expect(repo.status(model: "m") == status)
        #expect(try FileIO.readFile(dir.path(".loupe-promotion.json")) == state)
        #expect(log.all.contains { $0.hasPrefix("warning: cannot list \(dir.path("m")): opendir(\(modelDirectory)) failed: ") && $0.hasSuffix("model m keeps its previous state (what serves, load failures, rollbacks) until it can be read") }, "\(log.all)")

        RepositoryFileSystem.listFailures.withLock { _ = $0.removeValue(forKey: modelDirectory) }
        repo.reload()
        #expect(repo.resolve(model: "m", version: nil)?.version == 1)   // 2 stays rolled back
        #expect((repo.countersCopy.models["m"]?.reloads).map { [$0.success, $0.failure] } == counts)       // 3 is not tried again, 2 not reloaded
        #expect(repo.status(model: "m") == status)
    }

    @Test func canaryRoutingSplitsByKeyAndIsSticky() {
        let (dir, repo) = repository(.canary, percent: 25)
        defer { dir.remove() }
        dir.write(RepoFixture.file(seed: 2), name: "m", version: 2)
        repo.reload()
        var toCandidate = 0
        for client in 0..<4000 {
            let key = CanaryRouting.hash("client-\(client)")
            let first = repo.route(named: "m", key: key)!
            #expect(first.candidateAnswered == (first.model.version == 2))
            #expect(first.other?.version == (first.candidateAnswered ? 1 : 2))
            if first.candidateAnswered { toCandidate += 1 }
            #expect(repo.route(named: "m", key: key)!.model.version == first.model.version)   // sticky
        }
        // 25% of 4000 = 1000; binomial sd ≈ 27: ±5 sd.
        #expect(abs(toCandidate - 1000) < 140, "\(toCandidate) of 4000")
    }

    @Test func canaryShareBounds() {
        let keys = (0..<1000).map { CanaryRouting.hash("k\($0)") }
        #expect(keys.allSatisfy { !CanaryRouting.answersWithCandidate(key: $0, percent: 0) })
        #expect(keys.allSatisfy { CanaryRouting.answersWithCandidate(key: $0, percent: 100) })
        #expect(CanaryRouting.hash("") == 0xcbf2_9ce4_8422_2325 && CanaryRouting.hash("a") == 0xaf63_dc4c_8601_ec8c)   // FNV-1a test vectors
    }
}

@Suite struct ShadowRunnerTests {
    func job(_ a: FakeModel, _ b: FakeModel, images: Int, rate: Double = 1, id: String? = nil) -> ShadowRunner.Job {
        ShadowRunner.Job(routed: RoutedModel(model: a, other: b, candidateAnswered: false, sampleRate: rate),
                         input: [Float](repeating: 0.25, count: images * 4), pixels: nil, count: images,
                         answeredClasses: [Int](repeating: 2, count: images), requestID: id)
    }

    /// Offering never runs inference on the caller's thread: with the worker not started, nothing is
    /// classified, the queue holds at most its capacity and the rest is dropped and counted.
    @Test func offersAreBoundedAndNeverRunInferenceOnTheCallersThread() async throws {
        let serving = FakeModel(name: "m", version: 1), candidate = FakeModel(name: "m", version: 2)
        let tracker = PromotionTracker()
        let shadow = ShadowRunner(capacity: 10, tracker: tracker, window: PredictionWindow(capacityImages: 100, maxAgeSeconds: 60), seed: 1)
        var accepted = 0
        for i in 0..<20 where shadow.offer(job(serving, candidate, images: 3, id: "r\(i)")) { accepted += 1 }
        #expect(accepted == 3)                                      // 3 × 3 images ≤ 10 < 4 × 3
        #expect(candidate.batches.withLock { $0 }.isEmpty)          // no forward pass on this thread
        #expect(shadow.state.queued == 9 && shadow.state.highWater == 9 && shadow.state.dropped["m"] == 17)
        #expect(tracker.evidence(model: "m", pair: .init(candidate: 2, serving: 1)).dropped == 17)

        shadow.start()
        let deadline = monotonicSeconds() + 10
        while shadow.state.queued > 0 && monotonicSeconds() < deadline { sleepSeconds(0.005) }
        #expect(shadow.state.queued == 0)
        #expect(shadow.state.done[ModelVersion(model: "m", version: 2)] == 3)
        // The three queued copies are classified in one forward pass of 9 images.
        #expect(candidate.batches.withLock { $0 } == [9] && serving.batches.withLock { $0 }.isEmpty)
        // FakeModel: output = [s, s+1, s+2] with s = 4 × 0.25: top-1 is class 2, as answered.
        let e = tracker.evidence(model: "m", pair: .init(candidate: 2, serving: 1))
        #expect(e.compared == 9 && e.agreed == 9 && e.seen == 3 && e.candidateLatency.total == 3)
        #expect(shadow.window.peek(id: "r0")?.version == 2 && shadow.window.peek(id: "r0")?.classes == [2, 2, 2])
        shadow.stop()
    }

    /// The answer's forward-pass time travels with a queued copy and the worker records it (the
    /// request side takes no evidence lock for it); a copy that is not queued — queue full, or not
    /// sampled — records it on the offering side at once. Each answer counts exactly once.
    @Test func theAnswersLatencyCountsOnceWhetherItsCopyIsQueuedOrNot() {
        let serving = FakeModel(name: "m", version: 1), candidate = FakeModel(name: "m", version: 2)
        let tracker = PromotionTracker()
        let shadow = ShadowRunner(capacity: 4, tracker: tracker, window: PredictionWindow(capacityImages: 0, maxAgeSeconds: 1), seed: 3)
        let pair = PromotionTracker.Pair(candidate: 2, serving: 1)
        func timed(_ j: ShadowRunner.Job) -> ShadowRunner.Job { var j = j; j.answeredSeconds = 0.001; return j }
        #expect(shadow.offer(timed(job(serving, candidate, images: 2))) && shadow.offer(timed(job(serving, candidate, images: 2))))
        #expect(tracker.evidence(model: "m", pair: pair).servingLatency.total == 0)   // queued: not yet recorded
        #expect(!shadow.offer(timed(job(serving, candidate, images: 2))))              // the queue is full
        #expect(!shadow.offer(timed(job(serving, candidate, images: 1, rate: 0))))     // not sampled
        var e = tracker.evidence(model: "m", pair: pair)
        #expect(e.servingLatency.total == 2 && e.dropped == 1 && e.compared == 0)

        shadow.start()
        let deadline = monotonicSeconds() + 10
        while shadow.state.queued > 0 && monotonicSeconds() < deadline { sleepSeconds(0.005) }
        e = tracker.evidence(model: "m", pair: pair)
        #expect(e.servingLatency.total == 4 && e.compared == 4 && e.candidateLatency.total == 2 && e.seen == 2)
        shadow.stop()
    }

    /// A copy the other version drives to NaN/infinity is no prediction (the serving path answers such
    /// a request 422): it never agrees with the answer (argmax of a NaN row used to be class 0, "agreeing"
    /// with an answer of 0), matches no label, and is not kept for feedback by its request id.
    @Test func aCopyWhoseOutputsAreNotFiniteNeverAgreesAndIsNotKept() {
        let serving = FakeModel(name: "m", version: 1), candidate = FakeModel(name: "m", version: 2, overflowsOnWhite: true)
        let tracker = PromotionTracker()
        let shadow = ShadowRunner(capacity: 100, tracker: tracker, window: PredictionWindow(capacityImages: 100, maxAgeSeconds: 60), seed: 1)
        var white = ShadowRunner.Job(routed: RoutedModel(model: serving, other: candidate, candidateAnswered: false, sampleRate: 1),
                                     input: [1, 1, 1, 1], pixels: nil, count: 1, answeredClasses: [0], requestID: "nan")
        white.labels = [0]
        #expect(shadow.offer(white))
        shadow.start()
        let deadline = monotonicSeconds() + 10
        while shadow.state.queued > 0 && monotonicSeconds() < deadline { sleepSeconds(0.005) }
        while shadow.state.done[ModelVersion(model: "m", version: 2)] != 1 && monotonicSeconds() < deadline { sleepSeconds(0.005) }
        let e = tracker.evidence(model: "m", pair: .init(candidate: 2, serving: 1))
        #expect(e.compared == 1 && e.agreed == 0, "\(e)")
        #expect(e.candidateLabels == 1 && e.candidateCorrect == 0, "\(e)")
        #expect(shadow.window.peek(id: "nan") == nil)
        shadow.stop()
    }

    @Test func sampleRateZeroOffersNothingAndAHalfRateAboutHalf() {
        let a = FakeModel(name: "m", version: 1), b = FakeModel(name: "m", version: 2)
        let shadow = ShadowRunner(capacity: 1_000_000, tracker: PromotionTracker(), window: PredictionWindow(capacityImages: 0, maxAgeSeconds: 1), seed: 7)
        #expect(!(0..<100).contains { _ in shadow.offer(job(a, b, images: 1, rate: 0)) })
        let taken = (0..<4000).filter { _ in shadow.offer(job(a, b, images: 1, rate: 0.5)) }.count
        #expect(abs(taken - 2000) < 200, "\(taken)")   // sd ≈ 32
    }
}
