// The reload pass, run on the repository's queue only: scan the disk, plan each model
// (ReloadPlanner, pure), execute the plan (ReloadSteps.swift: settle, load, verify, self-test,
// count, log), arrange the primary and a promotion candidate, build the statuses, publish once.
import Dispatch
import Logging
import LoupeData
import Synchronization

extension ModelRepository {
    /// A pass that waits for files still being written (start, SIGHUP, the API): passes repeat,
    /// sleeping until the earliest settle time, for at most a few `stable_after` periods. Only the
    /// last pass's `pending` events are reported.
    @discardableResult
    func settlingPass(only: String?) -> [ReloadEvent] {
        let limit = 4 * configuration.stableAfterSeconds + 0.05
        var waited = 0.0
        var events: [ReloadEvent] = []
        while true {
            let result = pass(only: only)
            events.removeAll { $0.outcome == .pending }
            events += result.events
            guard let left = result.settleLeft, waited < limit else { return events }
            let nap = min(left + 0.005, limit - waited)
            sleepSeconds(max(0.001, nap))
            waited += nap
        }
    }

    /// One pass: scan, plan and execute each model (`only`: just that one), publish once.
    /// Returns what happened and, when a file is still settling, the seconds until it may have
    /// (a follow-up pass is scheduled for then). `keepServing` (with `only`; a rollback): when the
    /// model served before and would serve nothing after, nothing is published — what served
    /// keeps serving, its primary is kept — and `abandoned` is true (the caller undoes its change).
    @discardableResult
    func pass(only: String?, keepServing: Bool = false) -> (events: [ReloadEvent], settleLeft: Double?, abandoned: Bool) {
        let now = Double(RepositoryFileSystem.nowNanoseconds()) / 1e9
        guard let root = RepositoryFileSystem.realPath(configuration.root),
              RepositoryFileSystem.kind(root) == .directory else {
            counters.withLock { $0.scanErrors += 1; $0.lastScan = now }
            warnOnce("root:" + configuration.root, "model repository \(configuration.root) does not exist or is not a directory")
            return ([], nil, false)
        }
        let found: [String: [Int: Candidate]]
        var unreadable: Set<String> = []
        do { found = try scan(root: root, unreadable: &unreadable) } catch {
            counters.withLock { $0.scanErrors += 1; $0.lastScan = now }
            logger.error("cannot scan the model repository: \(error)")
            return ([], nil, false)
        }
        counters.withLock { $0.lastScan = now }
        control.withLock { c in
            var seen = found
            for name in unreadable { seen[name] = c.lastScan[name] }   // what was last read of it
            c.lastScan = seen
        }

        let old = snapshot
        let primaryBefore = only.flatMap { name in control.withLock { $0.primaries[name] } }
        var next = Publication(served: old.served, statuses: old.statuses)
        var events: [ReloadEvent] = []
        var settleLeft: Double? = nil
        var dropped: [ReloadEvent] = []   // versions the policy no longer serves: unloaded only if published
        let (unloaded, failures, rolledBack) = control.withLock { ($0.unloadedByRequest, $0.failures, $0.rolledBack) }

        var names = Set(found.keys).union(old.served.keys).union(old.statuses.keys)
        if let only { names = names.intersection([only]) }
        // Strict readiness: a model the repository lists counts as loading from the moment it is
        // found, so the server is not ready while one model has loaded and another has not begun.
        var listed = false
        for name in names where next.statuses[name] == nil && !unloaded.contains(name) && !(found[name] ?? [:]).isEmpty {
            next.statuses[name] = ModelStatus(name: name, state: .loading, reason: "found; not loaded yet", versions: [])
            listed = true
        }
        if listed { publish(next) }

        // A model whose directory could not be listed is neither changed nor gone: it keeps its
        // status, what serves and its bookkeeping until it can be read (the scan logged why).
        for name in names.sorted() where !unreadable.contains(name) {
            let previous = old.served[name]?.versions ?? [:]
            let candidates = found[name]
            let plan = ReloadPlanner.plan(
                onDisk: candidates?.mapValues(\.identity), served: previous.mapValues(\.fileIdentity),
                failures: Dictionary(uniqueKeysWithValues: failures.filter { $0.key.name == name }.map { ($0.key.version, $0.value) }),
                unloaded: unloaded.contains(name), policy: configuration.policy(for: name),
                rolledBack: Dictionary(uniqueKeysWithValues: rolledBack.filter { $0.key.name == name }.map { ($0.key.version, ($0.value.identity, $0.value.reason)) }))
            switch plan {
            case .unloaded(let onDisk):
                for v in previous.keys.sorted() { events.append(ReloadEvent(model: name, version: v, outcome: .unloaded)) }
                next.served[name] = nil
                // The primary is kept: a load through the API serves it again beside the candidate
                // still being judged (as a restart does), rather than the newest version unjudged.
                next.statuses[name] = ModelStatus(name: name, state: .unloaded, reason: "unloaded through the repository API",
                                                  versions: onDisk.map { VersionStatus(version: $0, state: .unloaded, reason: nil, sha256: nil) })
            case .forget:
                next.served[name] = nil
                next.statuses[name] = nil
                control.withLock { _ = $0.primaries.removeValue(forKey: name) }
            case .serveWithoutFiles:
                // The model's files are all gone (deleted, a volume unmounted): what is loaded keeps
                // serving — a vanished file never takes a serving model down. Only the repository
                // API's unload, or a new good version, ends it.
                next.statuses[name] = Self.servingWithoutFiles(name, previous)
                warnOnce("missing:\(name)", "model \(name): its files are gone from the repository; the loaded version keeps serving")
            case let .versions(steps, limit, pinnedMissing):
                let before = events.count
                defer { dropped += events[before...].filter { $0.outcome == .unloaded } }
                let left = applyVersions(name: name, steps: steps, limit: limit, pinnedMissing: pinnedMissing, candidates: candidates,
                                         previous: previous, oldCandidate: old.served[name]?.candidate?.version, rolledBack: rolledBack,
                                         publication: &next, events: &events)
                if let left { settleLeft = min(settleLeft ?? left, left) }
            }
        }
        if keepServing, let only, old.served[only] != nil, next.served[only] == nil {
            // Loads announced on the way changed only statuses; put those back too.
            publish(Publication(served: old.served, statuses: old.statuses))
            control.withLock { $0.primaries[only] = primaryBefore }
            return (events, nil, true)
        }
        publish(next)
        for e in dropped { logger.info("model \(e.model) version \(e.version.map { String($0) } ?? "?") unloaded") }
        if let left = settleLeft { scheduleFollowUp(after: left + 0.01) }
        // Forget bookkeeping of versions that are gone (not of models that could not be read).
        control.withLock { c in
            func kept(_ key: VersionKey) -> Bool { found[key.name]?[key.version] != nil || unreadable.contains(key.name) }
            c.failures = c.failures.filter { kept($0.key) }
            c.observed = c.observed.filter { kept($0.key) }
            c.rolledBack = c.rolledBack.filter { kept($0.key) }
        }
        savePromotionState()
        return (events, settleLeft, false)
    }

    /// A model whose plan chose versions: executes the steps, keeps loaded copies whose files
    /// vanished while nothing else would serve, arranges the primary and a promotion candidate,
    /// and builds its status. Returns the seconds until a settling file may have settled.
    func applyVersions(name: String, steps: [ReloadPlanner.Step], limit: Int, pinnedMissing: [Int], candidates: [Int: Candidate]?,
                       previous: [Int: LoadedModel], oldCandidate: Int?, rolledBack: [VersionKey: RollbackMemo],
                       publication next: inout Publication, events: inout [ReloadEvent]) -> Double? {
        let outcome = execute(name: name, steps: steps, limit: limit, candidates: candidates ?? [:],
                              previous: previous, publication: &next, events: &events)
        var visited = outcome.visited
        for v in pinnedMissing {
            visited[v] = VersionStatus(version: v, state: .unavailable,
                                       reason: "pinned by the version policy but not in the repository", sha256: nil, failed: true)
        }
        var keep = outcome.keep
        // Files that vanished while nothing else of the model would serve: keep the loaded
        // copies (when another version is on disk, the policy chooses among those, as
        // TF Serving does: deleting a version directory is how its users roll back).
        var missing: Set<Int> = []
        if keep.isEmpty {
            for (v, current) in previous where candidates?[v] == nil {
                keep[v] = current
                missing.insert(v)
            }
            if !missing.isEmpty {
                warnOnce("missing:\(name)", "model \(name): the file of version(s) \(missing.sorted()) is gone from the repository; the loaded copy keeps serving")
            }
        }
        if missing.isEmpty { control.withLock { _ = $0.warned.remove("missing:\(name)") } }
        // Safe promotion: the primary keeps serving requests without a version while a newer
        // version is judged beside it (held even when the version policy alone would drop it).
        let promotion = configuration.promotion(for: name)
        let held = control.withLock { $0.primaries[name] }
        var canHold = false
        var heldModel: LoadedModel? = nil
        if let h = held, promotion.mode != .immediate, keep[h] == nil, (keep.keys.max() ?? 0) > h,
           let file = candidates?[h], rolledBack[VersionKey(name: name, version: h)]?.identity != file.identity {
            if let current = previous[h] {
                heldModel = current
            } else {
                // Not loaded (a restart: the serving version recorded in the promotion state file
                // is older than what the policy selects): load it to keep serving beside the candidate.
                var extra = StepsOutcome()
                load(name: name, version: h, candidate: file, previous: nil, into: &extra, events: &events)
                heldModel = extra.keep[h]
                for (v, status) in extra.visited { visited[v] = status }
            }
            canHold = heldModel != nil
        }
        let arrangement = ReloadPlanner.arrange(mode: promotion.mode, kept: Set(keep.keys), heldPrimary: held, canHold: canHold)
        if let a = arrangement, a.hold { keep[a.primary] = heldModel! }
        for v in previous.keys.sorted() where keep[v] == nil {
            events.append(ReloadEvent(model: name, version: v, outcome: .unloaded))   // logged by pass once published
        }
        next.served[name] = arrangement.map {
            RepositorySnapshot.Served(versions: keep, latest: keep[$0.primary]!, candidate: $0.candidate.map { keep[$0]! },
                                      promotion: promotion)
        }
        control.withLock { $0.primaries[name] = arrangement?.primary }
        if let a = arrangement, let c = a.candidate, oldCandidate != c {
            logger.notice("model \(name) version \(c) is a \(promotion.mode.rawValue) candidate; version \(a.primary) keeps serving requests without a version until the promotion rules decide",
                          metadata: ["model": "\(name)", "candidate": .stringConvertible(c), "serving": .stringConvertible(a.primary), "mode": "\(promotion.mode.rawValue)"])
        }
        var status = ReloadPlanner.status(
            name: name, policy: configuration.policy(for: name), onDisk: Set((candidates ?? [:]).keys),
            serving: keep.mapValues(\.sha256), visited: visited, missing: missing,
            lastFailure: outcome.lastFailure, pending: outcome.pending)
        if let c = arrangement?.candidate, let i = status.versions.firstIndex(where: { $0.version == c }) {
            status.versions[i].reason = "\(promotion.mode.rawValue) candidate: judged beside version \(arrangement!.primary), which serves requests without a version"
        }
        next.statuses[name] = status
        return outcome.settleLeft
    }

    /// What a pass is about to publish.
    struct Publication {
        var served: [String: RepositorySnapshot.Served]
        var statuses: [String: ModelStatus]
    }
}
