// The model repository: `<root>/<name>/<version>/model.loupe`, scanned by polling, SIGHUP or the
// repository API; each new or changed version is read fully, verified (SHA-256, shapes), built and
// self-tested on its golden samples, and only then published with one atomic swap of an
// immutable snapshot. Requests resolve a `LoadedModel` from the snapshot once and keep it, so a
// response never mixes versions and a reload never fails a request. A version that fails to load
// leaves whatever was serving in place. See docs/model-lifecycle.md.
import Dispatch
import Logging
import LoupeData
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

public final class ModelRepository: Sendable {
    public let configuration: RepositoryConfiguration
    let logger: Logger

    /// The published snapshot: the one reference every request reads (under a tiny lock).
    let published: Mutex<RepositorySnapshot>
    /// Set inside `published`'s lock at each publication, read without it: the publication's
    /// number and the snapshot's strict readiness (what /health and readiness probes ask at every
    /// request: no lock and no reference count shared by the event loops).
    let generation = Atomic<UInt64>(0)
    let publishedReady = Atomic<Bool>(false)
    /// Reload passes run one at a time on this queue.
    let queue = DispatchQueue(label: "loupe.repository.reload")
    let control = Mutex(Control())
    let counters = Mutex(Counters())
    let driftWindows = Mutex<[String: DriftWindow]>([:])
    let timer = Mutex<TimerBox?>(nil)

    struct VersionKey: Hashable { var name: String; var version: Int }
    /// A rolled-back version: the file state it had, why, and the SHA-256 of its content. A file whose state differs
    /// (another device number once the volume is mounted again elsewhere, a restored or copied repository) but whose
    /// content is the same stays rolled back; only other content is judged again.
    struct RollbackMemo {
        var identity: FileIdentity
        var reason: String
        /// nil in a state file written before the content was recorded (then the file state alone decides).
        var sha256: String?
    }
    struct Candidate { var path: String; var identity: FileIdentity }

    struct Control {
        /// Versions whose file failed to load, with the file state that failed: retried only
        /// once the file changes.
        var failures: [VersionKey: (identity: FileIdentity, reason: String)] = [:]
        /// First time each not-yet-settled file state was seen.
        var observed: [VersionKey: (identity: FileIdentity, since: Int64)] = [:]
        var unloadedByRequest: Set<String> = []
        /// Paths already reported as skipped (logged once, not every poll).
        var warned: Set<String> = []
        var followUpScheduled = false
        var reloadScheduled = false
        /// Versions found by the last scan, per model.
        var lastScan: [String: [Int: Candidate]] = [:]
        /// Safe promotion: the version each model serves to requests without a version (its
        /// primary), held while a newer candidate is judged.
        var primaries: [String: Int] = [:]
        /// Versions rolled back, with the file state that was: never served or a candidate again
        /// until the file changes (like `failures`).
        var rolledBack: [VersionKey: RollbackMemo] = [:]
        /// The promotion state file's bytes as last read or written (nil: none yet).
        var savedState: [UInt8]? = nil
    }

    struct ModelCounters {
        var reloads: (success: UInt64, failure: UInt64) = (0, 0)
        /// Unix time of the last successful load.
        var lastSuccess: Double? = nil
        /// Whether the last load attempt succeeded (nil before any).
        var lastSucceeded: Bool? = nil
    }

    struct Counters {
        var models: [String: ModelCounters] = [:]
        var scanErrors: UInt64 = 0
        var lastScan: Double = 0
    }

    final class TimerBox: @unchecked Sendable {
        let source: any DispatchSourceTimer
        init(_ source: any DispatchSourceTimer) { self.source = source }
    }

    public init(configuration: RepositoryConfiguration, logger: Logger = Logger(label: "loupe.repository")) {
        self.configuration = configuration
        self.logger = logger
        self.published = Mutex(RepositorySnapshot.empty)
    }

    deinit {
        timer.withLock { $0?.source.cancel() }
    }

    // MARK: Requests (hot path)

    var snapshot: RepositorySnapshot { published.withLock { $0 } }
    var publishedSnapshot: RepositorySnapshot { snapshot }
    var countersCopy: (models: [String: ModelCounters], lastScan: Double, scanErrors: UInt64) {
        counters.withLock { ($0.models, $0.lastScan, $0.scanErrors) }
    }

    /// The served version `version` (nil: the latest served) of `model` (nil: the default model:
    /// the configured one, else the first served model by name). Names are only compared with
    /// what the repository serves; nothing here touches the file system.
    public func resolve(model: String?, version: Int?) -> LoadedModel? {
        let snap = snapshot
        guard let name = model ?? snap.defaultModel, let served = snap.served[name] else { return nil }
        guard let version else { return served.latest }
        return served.versions[version]
    }

    /// Like `resolve`, but says why nothing was found.
    public func lookup(model: String?, version: Int?) -> ModelResolution {
        let snap = snapshot
        guard let name = model ?? snap.defaultModel else { return .noDefaultModel }
        guard let served = snap.served[name] else {
            guard ModelRepositoryLayout.isValidName(name) else { return .unknownModel(name) }
            if let status = snap.statuses[name] { return .notReady(name, state: status.state, reason: status.reason) }
            return .unknownModel(name)
        }
        guard let version else { return .found(served.latest) }
        if let m = served.versions[version] { return .found(m) }
        return .versionNotServed(name, version: version, served: served.versions.keys.sorted(by: >))
    }

    /// Names of the models that have a status (served, loading, failed or unloaded), sorted.
    public var modelNames: [String] { snapshot.statuses.keys.sorted() }

    /// Names of the models with at least one served version, sorted.
    public var servedModelNames: [String] { snapshot.served.keys.sorted() }

    /// The model a request without a model name gets, if any.
    public var defaultModelName: String? { snapshot.defaultModel }

    /// True when `model` (nil: the default model) has a served version (`version` nil: any).
    public func isReady(model: String? = nil, version: Int? = nil) -> Bool {
        resolve(model: model, version: version) != nil
    }

    public func status(model: String) -> ModelStatus? { snapshot.statuses[model] }

    /// Status of every model, sorted by name.
    public var statuses: [ModelStatus] { snapshot.statuses.values.sorted { $0.name < $1.name } }

    /// Every served version, by model then version.
    public var loadedModels: [LoadedModel] {
        let snap = snapshot
        return snap.served.keys.sorted().flatMap { name in
            snap.served[name]!.versions.values.sorted { $0.version < $1.version }
        }
    }

    // MARK: Triggers

    /// Loads what the repository holds now (waiting briefly for files still being written) and
    /// starts polling when `poll_interval` > 0. Call once at start.
    @discardableResult
    public func start() -> [ReloadEvent] {
        loadPromotionState()
        let events = reload()
        startPolling()
        return events
    }

    /// Stops polling; served models stay published.
    public func stop() {
        timer.withLock { box in
            box?.source.cancel()
            box = nil
        }
    }

    /// A full reload pass now (SIGHUP, `POST /v2/repository/index` callers, tests): scans, loads
    /// new and changed versions, unloads removed ones, publishes once. Waits for files that are
    /// still being written to settle (at most a few `stable_after` periods). Serialized with
    /// every other pass.
    @discardableResult
    public func reload() -> [ReloadEvent] {
        queue.sync { settlingPass(only: nil) }
    }

    /// The poller's pass (files still settling are left for a follow-up pass); runs on the
    /// repository's queue.
    @discardableResult
    func pollOnce() -> [ReloadEvent] {
        dispatchPrecondition(condition: .notOnQueue(queue))
        return queue.sync { pass(only: nil).events }
    }

    /// Schedules a reload pass on the repository's queue and returns at once; requests made
    /// while one is waiting are merged into it. For signal handlers.
    public func scheduleReload() {
        let first = control.withLock { c in
            defer { c.reloadScheduled = true }
            return !c.reloadScheduled
        }
        guard first else { return }
        queue.async { [self] in
            control.withLock { $0.reloadScheduled = false }
            settlingPass(only: nil)
        }
    }

    func startPolling() {
        let interval = configuration.pollIntervalSeconds
        guard interval > 0 else { return }
        let source = DispatchSource.makeTimerSource(queue: queue)
        let nanos = Int(min(interval, 86_400) * 1e9)
        source.schedule(deadline: .now() + .nanoseconds(nanos), repeating: .nanoseconds(nanos), leeway: .milliseconds(50))
        source.setEventHandler { [weak self] in self?.pass(only: nil) }
        timer.withLock { box in
            box?.source.cancel()
            box = TimerBox(source)
        }
        source.resume()
    }

    /// A pass for files that were still settling, `delay` seconds from now (one at a time).
    func scheduleFollowUp(after delay: Double) {
        let first = control.withLock { c in
            defer { c.followUpScheduled = true }
            return !c.followUpScheduled
        }
        guard first else { return }
        let nanos = Int(max(0.01, delay) * 1e9)
        queue.asyncAfter(deadline: .now() + .nanoseconds(nanos)) { [weak self] in
            guard let self else { return }
            self.control.withLock { $0.followUpScheduled = false }
            self.pass(only: nil)
        }
    }

    static let missingFileReason = "the file is gone from the repository; the loaded copy keeps serving until it is unloaded through the repository API or a new version replaces it"

    /// The status of a model served from memory after all its files vanished.
    static func servingWithoutFiles(_ name: String, _ versions: [Int: LoadedModel]) -> ModelStatus {
        ModelStatus(name: name, state: .ready, reason: missingFileReason, versions: versions.keys.sorted(by: >).map {
            VersionStatus(version: $0, state: .ready, reason: missingFileReason, sha256: versions[$0]!.sha256, fileMissing: true)
        })
    }

    func publish(_ publication: Publication) {
        let next = RepositorySnapshot(served: publication.served, statuses: publication.statuses, configuredDefault: configuration.defaultModel)
        published.withLock {
            $0 = next
            publishedReady.store(next.isReady, ordering: .releasing)
            generation.wrappingAdd(1, ordering: .releasing)
        }
        // Drift compares with the training statistics of the version requests get by default.
        for model in publication.served.values {
            model.latest.drift.setReference(DriftReference(header: model.latest.header))
        }
    }

    /// The drift window of a model name, shared by its versions (created with the first one).
    func driftWindow(name: String, header: ModelHeader) -> DriftWindow {
        driftWindows.withLock { windows in
            if let w = windows[name] { return w }
            let w = DriftWindow(reference: DriftReference(header: header), capacity: configuration.driftWindow)
            windows[name] = w
            return w
        }
    }
}

extension Logger {
    /// Drops everything (tests that fail loads on purpose; embedding without logs).
    static let discarding = Logger(label: "loupe.discard", factory: { _ in SwiftLogNoOpLogHandler() })
}
