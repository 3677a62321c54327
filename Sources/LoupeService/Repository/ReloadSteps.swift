// Carrying out one model's reload steps (ReloadPlanner's plan, for ReloadPass.swift): keep what
// serves, wait for a file still being written to settle, announce and load a version (read, verify,
// build, self-test), and record each outcome — failure memo, rollback memo, counters, events, logs.
import Logging
import LoupeData

extension ModelRepository {
    /// What executing one model's steps gave.
    struct StepsOutcome {
        var keep: [Int: LoadedModel] = [:]
        var visited: [Int: VersionStatus] = [:]
        var lastFailure: String? = nil
        var pending = false
        var settleLeft: Double? = nil
    }

    /// Carries out a model's steps, newest first, until `limit` versions serve: keeps, loads (once
    /// settled), records failures. Each load is announced (published as loading) first.
    func execute(name: String, steps: [ReloadPlanner.Step], limit: Int, candidates: [Int: Candidate],
                 previous: [Int: LoadedModel], publication next: inout Publication, events: inout [ReloadEvent]) -> StepsOutcome {
        var out = StepsOutcome()
        for step in steps {
            if out.keep.count >= limit { break }
            let v = step.version
            let key = VersionKey(name: name, version: v)
            switch step {
            case .keep:
                out.keep[v] = previous[v]!
            case .rolledBack(_, let reason):
                out.visited[v] = VersionStatus(version: v, state: .unavailable, reason: "rolled back: \(reason)", sha256: nil)
            case .failedBefore(_, let reason):
                out.lastFailure = "version \(v): \(reason)"
                out.visited[v] = VersionStatus(version: v, state: .unavailable, reason: reason, sha256: nil, failed: true)
                if let current = previous[v] { out.keep[v] = current }   // old content of this version keeps serving
            case .load:
                let candidate = candidates[v]!
                if let left = settleTimeLeft(key, candidate.identity) {
                    out.pending = true
                    out.settleLeft = min(out.settleLeft ?? left, left)
                    events.append(ReloadEvent(model: name, version: v, outcome: .pending))
                    warnOnce("settling:\(candidate.path)", level: .info,
                             "model \(name) version \(v) is still being written; it is loaded once unchanged for \(configuration.stableAfterSeconds) s")
                    out.visited[v] = VersionStatus(version: v, state: .loading, reason: "waiting for the file to settle", sha256: nil)
                    if let current = previous[v] { out.keep[v] = current }
                    continue
                }
                // Announce the load (readiness does not change: what serves keeps serving).
                var announcing = next.statuses[name] ?? ModelStatus(name: name, state: .loading, reason: nil, versions: [])
                announcing.versions.removeAll { $0.version == v }
                announcing.versions.append(VersionStatus(version: v, state: .loading, reason: nil, sha256: nil))
                announcing.versions.sort { $0.version > $1.version }
                if next.served[name] == nil { announcing.state = .loading }
                next.statuses[name] = announcing
                publish(next)
                load(name: name, version: v, candidate: candidate, previous: previous[v], into: &out, events: &events)
            }
        }
        return out
    }

    /// Loads one version (read, verify, build, self-test) and records the outcome.
    func load(name: String, version v: Int, candidate: Candidate, previous current: LoadedModel?,
              into out: inout StepsOutcome, events: inout [ReloadEvent]) {
        let key = VersionKey(name: name, version: v)
        do throws(ModelLoadError) {
            let loaded = try ModelLoader.load(name: name, version: v, path: candidate.path, expected: candidate.identity,
                                              configuration: configuration,
                                              drift: { driftWindow(name: name, header: $0) })
            // A rolled-back version's file in another state (the planner compares file states only) with the same
            // content — the volume mounted again under another device number, the repository restored or copied —
            // is still the rolled-back model: it stays out, and the memo takes the new file state.
            let memo: RollbackMemo? = control.withLock { c in
                guard var m = c.rolledBack[key], m.sha256 == loaded.sha256 else { return nil }
                m.identity = candidate.identity
                c.rolledBack[key] = m
                c.failures[key] = nil
                c.warned.remove("settling:\(candidate.path)")
                return m
            }
            if let memo {
                out.visited[v] = VersionStatus(version: v, state: .unavailable, reason: "rolled back: \(memo.reason)", sha256: nil)
                logger.info("model \(name) version \(v): its file changed state but holds the rolled-back content (same SHA-256); it stays rolled back",
                            metadata: ["sha256": "\(loaded.sha256)"])
                return
            }
            out.keep[v] = loaded
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
            out.pending = true
            out.settleLeft = min(out.settleLeft ?? configuration.stableAfterSeconds, configuration.stableAfterSeconds)
            events.append(ReloadEvent(model: name, version: v, outcome: .pending))
            out.visited[v] = VersionStatus(version: v, state: .loading, reason: "waiting for the file to settle", sha256: nil)
            if let current { out.keep[v] = current }
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
            out.lastFailure = "version \(v): \(reason)"
            out.visited[v] = VersionStatus(version: v, state: .unavailable, reason: reason, sha256: nil, failed: true)
            if let current {
                out.keep[v] = current
                logger.error("model \(name) version \(v) failed to load; its previous file keeps serving",
                             metadata: ["reason": "\(reason)"])
            } else {
                logger.error("model \(name) version \(v) failed to load", metadata: ["reason": "\(reason)"])
            }
            events.append(ReloadEvent(model: name, version: v, outcome: .failed(reason)))
        }
    }
}
