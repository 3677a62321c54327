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

/// Lifecycle state of a model or one of its versions (the names Triton's repository index uses).
public enum ModelState: String, Sendable, Equatable {
    /// Being read, verified and self-tested; nothing of it served yet.
    case loading = "LOADING"
    /// Served.
    case ready = "READY"
    /// Not served: failed to load, not selected by the version policy, or no versions present.
    case unavailable = "UNAVAILABLE"
    /// Unloaded through the repository API; stays so until loaded again.
    case unloaded = "UNLOADED"
}

public struct VersionStatus: Sendable, Equatable {
    public var version: Int
    public var state: ModelState
    /// Why it is not ready (load failure, policy, settling file), or nil.
    public var reason: String?
    /// SHA-256 of the served file when ready.
    public var sha256: String?
    /// The file failed to load (verify, build or self-test); `reason` says why. A ready version
    /// can carry this too: its previous content keeps serving while the changed file is refused.
    public var failed: Bool = false
    /// Served from memory while its file is gone from the repository (see `pass`).
    public var fileMissing: Bool = false
}

public struct ModelStatus: Sendable, Equatable {
    public var name: String
    /// ready when at least one version is served.
    public var state: ModelState
    public var reason: String?
    /// Every version found on disk or served, newest first.
    public var versions: [VersionStatus]
    /// Served versions, newest first.
    public var servedVersions: [Int] { versions.filter { $0.state == .ready }.map(\.version) }
}

/// What `lookup(model:version:)` found, with enough detail for a helpful 404/503.
public enum ModelResolution: Sendable {
    case found(LoadedModel)
    /// No model was named and there is no default (no model is served).
    case noDefaultModel
    /// The name is invalid or not in the repository.
    case unknownModel(String)
    /// The model is known but nothing of it is served (loading, failed, unloaded).
    case notReady(String, state: ModelState, reason: String?)
    /// The model is served, but not in that version.
    case versionNotServed(String, version: Int, served: [Int])
}

/// One thing a reload pass did.
public struct ReloadEvent: Sendable, Equatable, CustomStringConvertible {
    public enum Outcome: Sendable, Equatable {
        case loaded(sha256: String)
        case failed(String)
        /// No longer served (removed from disk, dropped by the policy, or unloaded).
        case unloaded
        /// The file is still changing; it is loaded once it has settled.
        case pending
    }
    public var model: String
    public var version: Int?
    public var outcome: Outcome
    public var description: String {
        let v = version.map { " version \($0)" } ?? ""
        switch outcome {
        case .loaded(let sha): return "\(model)\(v) loaded (sha256 \(sha.prefix(12)))"
        case .failed(let why): return "\(model)\(v) failed to load: \(why)"
        case .unloaded: return "\(model)\(v) unloaded"
        case .pending: return "\(model)\(v) is still being written; loading it once it settles"
        }
    }
}

/// An immutable view of what is served; replaced as a whole on every change.
final class RepositorySnapshot: Sendable {
    struct Served: Sendable {
        /// Served versions by number.
        let versions: [Int: LoadedModel]
        /// The highest served version (what a request without a version gets).
        let latest: LoadedModel
    }
    let served: [String: Served]
    let statuses: [String: ModelStatus]
    let defaultModel: String?

    init(served: [String: Served], statuses: [String: ModelStatus], configuredDefault: String?) {
        self.served = served
        self.statuses = statuses
        if let configuredDefault { defaultModel = configuredDefault } else { defaultModel = served.keys.min() }
    }

    static let empty = RepositorySnapshot(served: [:], statuses: [:], configuredDefault: nil)
}

public final class ModelRepository: Sendable {
    public let configuration: RepositoryConfiguration
    let logger: Logger

    /// The published snapshot: the one reference every request reads (under a tiny lock).
    private let published: Mutex<RepositorySnapshot>
    /// Reload passes run one at a time on this queue.
    private let queue = DispatchQueue(label: "loupe.repository.reload")
    private let control = Mutex(Control())
    private let counters = Mutex(Counters())
    private let driftWindows = Mutex<[String: DriftWindow]>([:])
    private let timer = Mutex<TimerBox?>(nil)

    struct VersionKey: Hashable { var name: String; var version: Int }
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

    private var snapshot: RepositorySnapshot { published.withLock { $0 } }
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
            guard ModelNaming.isValidName(name) else { return .unknownModel(name) }
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
        queue.sync { pass(only: nil, waitForSettling: true) }
    }

    /// One pass of the kind the poller runs (files still settling are left for a follow-up).
    @discardableResult
    func pollOnce() -> [ReloadEvent] {
        queue.sync { pass(only: nil, waitForSettling: false) }
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
            pass(only: nil, waitForSettling: true)
        }
    }

    /// What `load(model:)` did.
    public struct LoadOutcome: Sendable {
        /// The model is served and none of the versions its policy wants failed.
        public var ok: Bool
        /// The name is valid but not in the repository.
        public var notFound: Bool
        public var events: [ReloadEvent]
        /// A sentence for the caller: what serves, or why not.
        public var message: String
    }

    /// Loads (or reloads) one model now, clearing an earlier unload.
    public func load(model: String) -> LoadOutcome {
        guard ModelNaming.isValidName(model) else {
            return LoadOutcome(ok: false, notFound: false, events: [],
                               message: "\"\(model)\" is not a valid model name ([A-Za-z0-9_.-], not starting with a dot)")
        }
        return queue.sync {
            control.withLock { _ = $0.unloadedByRequest.remove(model) }
            let events = pass(only: model, waitForSettling: true)
            // Versions the policy wants whose current file failed to load, in this pass or an
            // earlier one (the poller may have tried the file first).
            let failures: [ReloadEvent] = control.withLock { c in
                (status(model: model)?.versions ?? []).compactMap { v in
                    let key = VersionKey(name: model, version: v.version)
                    guard v.state == .unavailable, let failed = c.failures[key],
                          c.lastScan[model]?[v.version]?.identity == failed.identity else { return nil }
                    return ReloadEvent(model: model, version: v.version, outcome: .failed(failed.reason))
                }
            }
            let served = snapshot.served[model]
            if served == nil, control.withLock({ $0.lastScan[model] == nil }) {
                return LoadOutcome(ok: false, notFound: true, events: events, message: "model \"\(model)\" is not in the repository")
            }
            if let served, failures.isEmpty {
                let versions = served.versions.keys.sorted(by: >).map(String.init).joined(separator: ", ")
                return LoadOutcome(ok: true, notFound: false, events: events, message: "model \"\(model)\" serves version \(versions)")
            }
            var message = failures.map(\.description).joined(separator: "; ")
            if message.isEmpty { message = status(model: model)?.reason ?? "model \"\(model)\" has no version to serve" }
            if let served {
                message += "; still serving version " + served.versions.keys.sorted(by: >).map(String.init).joined(separator: ", ")
            }
            return LoadOutcome(ok: false, notFound: false, events: events, message: message)
        }
    }

    /// Stops serving a model until `load(model:)` (polling and SIGHUP leave it unloaded).
    /// Requests already holding one of its versions finish with it.
    public func unload(model: String) -> (ok: Bool, message: String) {
        guard ModelNaming.isValidName(model) else {
            return (false, "\"\(model)\" is not a valid model name ([A-Za-z0-9_.-], not starting with a dot)")
        }
        return queue.sync {
            let known = snapshot.statuses[model] != nil || control.withLock { $0.lastScan[model] != nil }
            guard known else { return (false, "model \"\(model)\" is not in the repository") }
            control.withLock { _ = $0.unloadedByRequest.insert(model) }
            pass(only: model, waitForSettling: false)
            return (true, "model \"\(model)\" unloaded")
        }
    }

    /// Status of every model, merged with a fresh scan of the disk (without loading anything):
    /// versions that appeared since the last pass are listed as not loaded yet.
    func indexStatuses() -> [ModelStatus] {
        queue.sync {
            var statuses = snapshot.statuses
            guard let root = RepositoryFileSystem.realPath(configuration.root),
                  let found = try? scan(root: root) else { return statuses.values.sorted { $0.name < $1.name } }
            for (name, versions) in found {
                var status = statuses[name] ?? ModelStatus(name: name, state: .unavailable, reason: "not loaded yet", versions: [])
                for v in versions.keys where !status.versions.contains(where: { $0.version == v }) {
                    status.versions.append(VersionStatus(version: v, state: .unavailable, reason: "not loaded yet", sha256: nil))
                }
                status.versions.sort { $0.version > $1.version }
                statuses[name] = status
            }
            return statuses.values.sorted { $0.name < $1.name }
        }
    }

    private func startPolling() {
        let interval = configuration.pollIntervalSeconds
        guard interval > 0 else { return }
        let source = DispatchSource.makeTimerSource(queue: queue)
        let nanos = Int(min(interval, 86_400) * 1e9)
        source.schedule(deadline: .now() + .nanoseconds(nanos), repeating: .nanoseconds(nanos), leeway: .milliseconds(50))
        source.setEventHandler { [weak self] in self?.pass(only: nil, waitForSettling: false) }
        timer.withLock { box in
            box?.source.cancel()
            box = TimerBox(source)
        }
        source.resume()
    }

    /// A pass for files that were still settling, `delay` seconds from now (one at a time).
    private func scheduleFollowUp(after delay: Double) {
        let first = control.withLock { c in
            defer { c.followUpScheduled = true }
            return !c.followUpScheduled
        }
        guard first else { return }
        let nanos = Int(max(0.01, delay) * 1e9)
        queue.asyncAfter(deadline: .now() + .nanoseconds(nanos)) { [weak self] in
            guard let self else { return }
            self.control.withLock { $0.followUpScheduled = false }
            self.pass(only: nil, waitForSettling: false)
        }
    }

    // MARK: The reload pass (runs on `queue` only)

    private func scan(root: String) throws -> [String: [Int: Candidate]] {
        var result: [String: [Int: Candidate]] = [:]
        for entry in try RepositoryFileSystem.list(root) {
            guard ModelNaming.isValidName(entry) else {
                if !entry.hasPrefix(".") { warnOnce(root + "/" + entry, "ignoring \"\(entry)\": not a valid model name") }
                continue
            }
            let directory = root + "/" + entry
            guard let real = RepositoryFileSystem.realPath(directory) else { continue }
            guard RepositoryFileSystem.isInside(real, root: root) else {
                warnOnce(directory, "ignoring \(directory): it leads outside the repository (to \(real))")
                continue
            }
            guard RepositoryFileSystem.kind(real) == .directory else { continue }
            var versions: [Int: Candidate] = [:]
            let entries: [String]
            do { entries = try RepositoryFileSystem.list(real) } catch {
                warnOnce(directory, "cannot list \(directory): \(error)")
                continue
            }
            for versionEntry in entries {
                guard let version = ModelNaming.parseVersion(versionEntry) else { continue }
                let file = real + "/" + versionEntry + "/model.loupe"
                guard let realFile = RepositoryFileSystem.realPath(file) else { continue }   // not written yet
                guard RepositoryFileSystem.isInside(realFile, root: root) else {
                    warnOnce(file, "ignoring \(file): it leads outside the repository (to \(realFile))")
                    continue
                }
                guard RepositoryFileSystem.kind(realFile) == .regularFile,
                      let identity = RepositoryFileSystem.identity(realFile) else {
                    warnOnce(file, "ignoring \(file): not a regular file")
                    continue
                }
                versions[version] = Candidate(path: realFile, identity: identity)
            }
            result[entry] = versions
        }
        return result
    }

    /// Logs `message` the first time `key` is seen (per process; settled versions forget theirs).
    private func warnOnce(_ key: String, level: Logger.Level = .warning, _ message: String) {
        let first = control.withLock { $0.warned.insert(key).inserted }
        if first { logger.log(level: level, "\(message)") }
    }

    /// nil when the file state has settled (unchanged for `stable_after`), else the seconds
    /// left until it may have.
    private func settleTimeLeft(_ key: VersionKey, _ identity: FileIdentity) -> Double? {
        let settle = Int64(configuration.stableAfterSeconds * 1e9)
        guard settle > 0 else { return nil }
        let now = RepositoryFileSystem.nowNanoseconds()
        let lastChange = max(identity.mtimeNanoseconds, identity.ctimeNanoseconds)
        if lastChange <= now, now - lastChange >= settle { return nil }
        // Not quiet by its timestamps (or they lie in the future): require the same state to be
        // seen for `settle` across passes.
        let since: Int64 = control.withLock { c in
            if let seen = c.observed[key], seen.identity == identity { return seen.since }
            c.observed[key] = (identity, now)
            return now
        }
        if now - since >= settle { return nil }
        let byTimestamp = lastChange <= now ? settle - (now - lastChange) : settle
        return Double(min(byTimestamp, settle - (now - since))) / 1e9
    }

    @discardableResult
    private func pass(only: String?, waitForSettling: Bool) -> [ReloadEvent] {
        let now = Double(RepositoryFileSystem.nowNanoseconds()) / 1e9
        guard let root = RepositoryFileSystem.realPath(configuration.root),
              RepositoryFileSystem.kind(root) == .directory else {
            counters.withLock { $0.scanErrors += 1; $0.lastScan = now }
            warnOnce("root:" + configuration.root, "model repository \(configuration.root) does not exist or is not a directory")
            return []
        }
        let found: [String: [Int: Candidate]]
        do { found = try scan(root: root) } catch {
            counters.withLock { $0.scanErrors += 1; $0.lastScan = now }
            logger.error("cannot scan the model repository: \(error)")
            return []
        }
        counters.withLock { $0.lastScan = now }
        control.withLock { $0.lastScan = found }

        let old = snapshot
        var served = old.served
        var statuses = old.statuses
        var events: [ReloadEvent] = []
        var settleLeft: Double? = nil
        let unloaded = control.withLock { $0.unloadedByRequest }

        var names = Set(found.keys).union(old.served.keys).union(old.statuses.keys)
        if let only { names = names.intersection([only]) }
        // Strict readiness: a model the repository lists counts as loading from the moment it is
        // found, so the server is not ready while one model has loaded and another has not begun.
        var listed = false
        for name in names where statuses[name] == nil && !unloaded.contains(name) && !(found[name] ?? [:]).isEmpty {
            statuses[name] = ModelStatus(name: name, state: .loading, reason: "found; not loaded yet", versions: [])
            listed = true
        }
        if listed { publish(served: served, statuses: statuses) }

        for name in names.sorted() {
            let previous = old.served[name]?.versions ?? [:]
            if unloaded.contains(name) {
                for v in previous.keys.sorted() { events.append(ReloadEvent(model: name, version: v, outcome: .unloaded)) }
                served[name] = nil
                statuses[name] = ModelStatus(name: name, state: .unloaded, reason: "unloaded through the repository API",
                                             versions: (found[name] ?? [:]).keys.sorted(by: >).map {
                                                 VersionStatus(version: $0, state: .unloaded, reason: nil, sha256: nil) })
                continue
            }
            guard let candidates = found[name] else {
                // The model's files are all gone (deleted, a volume unmounted): what is loaded keeps
                // serving — a vanished file never takes a serving model down. Only the repository
                // API's unload, or a new good version, ends it.
                if previous.isEmpty {
                    served[name] = nil
                    statuses[name] = nil
                } else {
                    statuses[name] = Self.servingWithoutFiles(name, previous)
                    warnOnce("missing:\(name)", "model \(name): its files are gone from the repository; the loaded version keeps serving")
                }
                continue
            }
            let policy = configuration.policy(for: name)
            var keep: [Int: LoadedModel] = [:]
            var versionStatus: [Int: VersionStatus] = [:]
            let wanted: [Int]
            var limit = Int.max
            switch policy {
            case .all: wanted = candidates.keys.sorted(by: >)
            case .specific(let list):
                wanted = list.filter { candidates[$0] != nil }.sorted(by: >)
                for v in list where candidates[v] == nil {
                    versionStatus[v] = VersionStatus(version: v, state: .unavailable,
                                                     reason: "pinned by the version policy but not in the repository", sha256: nil, failed: true)
                }
            case .latest(let n): wanted = candidates.keys.sorted(by: >); limit = n
            }
            var lastFailure: String? = nil
            var pending = false
            for v in wanted {
                if keep.count >= limit { break }
                let key = VersionKey(name: name, version: v)
                var candidate = candidates[v]!
                if let current = previous[v], current.fileIdentity == candidate.identity {
                    keep[v] = current
                    continue
                }
                if let failed = control.withLock({ $0.failures[key] }), failed.identity == candidate.identity {
                    lastFailure = "version \(v): \(failed.reason)"
                    versionStatus[v] = VersionStatus(version: v, state: .unavailable, reason: failed.reason, sha256: nil, failed: true)
                    if let current = previous[v] { keep[v] = current }   // old content of this version keeps serving
                    continue
                }
                // New or changed: wait until the file has settled.
                var left = settleTimeLeft(key, candidate.identity)
                var waited = 0.0
                while let l = left, waitForSettling, waited < 4 * configuration.stableAfterSeconds + 0.05 {
                    let nap = min(l + 0.005, 4 * configuration.stableAfterSeconds + 0.05 - waited)
                    usleep(UInt32(max(1000, nap * 1e6)))
                    waited += nap
                    guard let identity = RepositoryFileSystem.identity(candidate.path) else { break }
                    candidate.identity = identity
                    left = settleTimeLeft(key, identity)
                }
                if let l = left {
                    pending = true
                    settleLeft = min(settleLeft ?? l, l)
                    events.append(ReloadEvent(model: name, version: v, outcome: .pending))
                    warnOnce("settling:\(candidate.path)", level: .info,
                             "model \(name) version \(v) is still being written; it is loaded once unchanged for \(configuration.stableAfterSeconds) s")
                    versionStatus[v] = VersionStatus(version: v, state: .loading, reason: "waiting for the file to settle", sha256: nil)
                    if let current = previous[v] { keep[v] = current }
                    continue
                }
                // Announce the load (readiness does not change: what serves keeps serving).
                var announcing = statuses[name] ?? ModelStatus(name: name, state: .loading, reason: nil, versions: [])
                announcing.versions.removeAll { $0.version == v }
                announcing.versions.append(VersionStatus(version: v, state: .loading, reason: nil, sha256: nil))
                announcing.versions.sort { $0.version > $1.version }
                if served[name] == nil { announcing.state = .loading }
                statuses[name] = announcing
                publish(served: served, statuses: statuses)

                do throws(ModelLoadError) {
                    let loaded = try ModelLoader.load(name: name, version: v, path: candidate.path, expected: candidate.identity,
                                                      configuration: configuration,
                                                      drift: { driftWindow(name: name, header: $0) })
                    keep[v] = loaded
                    control.withLock { c in
                        c.failures[key] = nil
                        c.observed[key] = nil
                        c.warned.remove("settling:\(candidate.path)")
                    }
                    counters.withLock { c in
                        c.models[name, default: ModelCounters()].reloads.success += 1
                        c.models[name, default: ModelCounters()].lastSuccess = loaded.loadedAt
                        c.models[name, default: ModelCounters()].lastSucceeded = true
                    }
                    events.append(ReloadEvent(model: name, version: v, outcome: .loaded(sha256: loaded.sha256)))
                    logger.info("model \(name) version \(v) loaded",
                                metadata: ["sha256": "\(loaded.sha256)",
                                          "load_seconds": .stringConvertible((loaded.loadDuration * 1e6).rounded() / 1e6)])
                } catch where error.fileChanged {
                    // Still being written: like an unsettled file, retried once quiet.
                    pending = true
                    settleLeft = min(settleLeft ?? configuration.stableAfterSeconds, configuration.stableAfterSeconds)
                    events.append(ReloadEvent(model: name, version: v, outcome: .pending))
                    versionStatus[v] = VersionStatus(version: v, state: .loading, reason: "waiting for the file to settle", sha256: nil)
                    if let current = previous[v] { keep[v] = current }
                } catch {
                    let reason = error.description
                    control.withLock { c in
                        c.failures[key] = (candidate.identity, reason)
                        c.observed[key] = nil
                        c.warned.remove("settling:\(candidate.path)")
                    }
                    counters.withLock { c in
                        c.models[name, default: ModelCounters()].reloads.failure += 1
                        c.models[name, default: ModelCounters()].lastSucceeded = false
                    }
                    lastFailure = "version \(v): \(reason)"
                    versionStatus[v] = VersionStatus(version: v, state: .unavailable, reason: reason, sha256: nil, failed: true)
                    if let current = previous[v] {
                        keep[v] = current
                        logger.error("model \(name) version \(v) failed to load; its previous file keeps serving",
                                     metadata: ["reason": "\(reason)"])
                    } else {
                        logger.error("model \(name) version \(v) failed to load", metadata: ["reason": "\(reason)"])
                    }
                    events.append(ReloadEvent(model: name, version: v, outcome: .failed(reason)))
                }
            }
            // Files that vanished while nothing else of the model would serve: keep the loaded
            // copies (when another version is on disk, the policy chooses among those, as
            // TF Serving does: deleting a version directory is how its users roll back).
            var missing: Set<Int> = []
            if keep.isEmpty {
                for (v, current) in previous where candidates[v] == nil {
                    keep[v] = current
                    missing.insert(v)
                }
                if !missing.isEmpty {
                    warnOnce("missing:\(name)", "model \(name): the file of version(s) \(missing.sorted()) is gone from the repository; the loaded copy keeps serving")
                }
            }
            if missing.isEmpty { control.withLock { _ = $0.warned.remove("missing:\(name)") } }
            for v in previous.keys.sorted() where keep[v] == nil {
                events.append(ReloadEvent(model: name, version: v, outcome: .unloaded))
                logger.info("model \(name) version \(v) unloaded")
            }
            // Status of every version present.
            for (v, m) in keep {
                versionStatus[v] = VersionStatus(version: v, state: .ready,
                                                 reason: missing.contains(v) ? Self.missingFileReason : versionStatus[v]?.reason,
                                                 sha256: m.sha256, failed: versionStatus[v]?.failed ?? false,
                                                 fileMissing: missing.contains(v))
            }
            for v in candidates.keys where versionStatus[v] == nil {
                versionStatus[v] = VersionStatus(version: v, state: .unavailable, reason: "not selected by the version policy \(policy)", sha256: nil)
            }
            let versions = versionStatus.values.sorted { $0.version > $1.version }
            if let top = keep.keys.max() {
                served[name] = RepositorySnapshot.Served(versions: keep, latest: keep[top]!)
                statuses[name] = ModelStatus(name: name, state: .ready, reason: lastFailure ?? (missing.isEmpty ? nil : Self.missingFileReason),
                                             versions: versions)
            } else {
                served[name] = nil
                let reason = lastFailure ?? (pending ? "waiting for the file to settle"
                    : candidates.isEmpty ? "no version directory with a model.loupe" : "no version selected by the version policy \(policy)")
                statuses[name] = ModelStatus(name: name, state: pending && lastFailure == nil ? .loading : .unavailable,
                                             reason: reason, versions: versions)
            }
        }
        publish(served: served, statuses: statuses)
        if let left = settleLeft { scheduleFollowUp(after: left + 0.01) }
        // Forget bookkeeping of versions that are gone.
        control.withLock { c in
            c.failures = c.failures.filter { found[$0.key.name]?[$0.key.version] != nil }
            c.observed = c.observed.filter { found[$0.key.name]?[$0.key.version] != nil }
        }
        return events
    }

    static let missingFileReason = "the file is gone from the repository; the loaded copy keeps serving until it is unloaded through the repository API or a new version replaces it"

    /// The status of a model served from memory after all its files vanished.
    static func servingWithoutFiles(_ name: String, _ versions: [Int: LoadedModel]) -> ModelStatus {
        ModelStatus(name: name, state: .ready, reason: missingFileReason, versions: versions.keys.sorted(by: >).map {
            VersionStatus(version: $0, state: .ready, reason: missingFileReason, sha256: versions[$0]!.sha256, fileMissing: true)
        })
    }

    private func publish(served: [String: RepositorySnapshot.Served], statuses: [String: ModelStatus]) {
        let next = RepositorySnapshot(served: served, statuses: statuses, configuredDefault: configuration.defaultModel)
        published.withLock { $0 = next }
        // Drift compares with the training statistics of the version requests get by default.
        for model in served.values {
            model.latest.drift.setReference(DriftReference(header: model.latest.header))
        }
    }

    /// The drift window of a model name, shared by its versions (created with the first one).
    private func driftWindow(name: String, header: ModelHeader) -> DriftWindow {
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
