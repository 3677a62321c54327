// What one reload pass does with one model, decided without a file system, a clock or a load:
// from the versions found on disk (with their file states), the versions served now, the failure
// memo, whether the model was unloaded through the API, and its version policy. The repository's
// executor (`ModelRepository.pass`) carries a plan out — settling, loading, counting, logging —
// and `status` builds the model's status from what happened. Both are pure, so the policy
// rules are unit-tested without files (RepositoryPlannerTests).

enum ReloadPlanner {
    /// One version's decision; a plan lists them newest first.
    enum Step: Equatable {
        /// Served and its file unchanged: keep serving it.
        case keep(Int)
        /// Its current file state failed to load before (retried only once the file changes);
        /// content loaded earlier from this version, if any, keeps serving.
        case failedBefore(Int, reason: String)
        /// New or changed: load it once the file has settled.
        case load(Int)
        /// This file state was rolled back (safe promotion, or the repository API): not served, and
        /// not a candidate again until the file changes.
        case rolledBack(Int, reason: String)

        var version: Int {
            switch self { case .keep(let v), .failedBefore(let v, _), .load(let v), .rolledBack(let v, _): return v }
        }
    }

    enum Plan: Equatable {
        /// Unloaded through the repository API: serve nothing; the versions on disk show as unloaded.
        case unloaded(onDisk: [Int])
        /// Nothing on disk and nothing served: forget the model.
        case forget
        /// All its files are gone but versions are loaded: they keep serving from memory.
        case serveWithoutFiles
        /// Walk `steps` in order until `limit` versions serve. `pinnedMissing`: versions the
        /// policy names that are not on disk.
        case versions(steps: [Step], limit: Int, pinnedMissing: [Int])
    }

    static func plan(onDisk: [Int: FileIdentity]?, served: [Int: FileIdentity],
                     failures: [Int: (identity: FileIdentity, reason: String)], unloaded: Bool,
                     policy: VersionPolicy, rolledBack: [Int: (identity: FileIdentity, reason: String)] = [:]) -> Plan {
        if unloaded { return .unloaded(onDisk: (onDisk ?? [:]).keys.sorted(by: >)) }
        guard let onDisk else { return served.isEmpty ? .forget : .serveWithoutFiles }
        let wanted: [Int]
        var limit = Int.max
        var pinnedMissing: [Int] = []
        switch policy {
        case .all: wanted = onDisk.keys.sorted(by: >)
        case .specific(let list):
            wanted = list.filter { onDisk[$0] != nil }.sorted(by: >)
            pinnedMissing = list.filter { onDisk[$0] == nil }
        case .latest(let n): wanted = onDisk.keys.sorted(by: >); limit = n
        }
        let steps = wanted.map { v -> Step in
            let identity = onDisk[v]!
            if let back = rolledBack[v], back.identity == identity { return .rolledBack(v, reason: back.reason) }
            if served[v] == identity { return .keep(v) }
            if let failed = failures[v], failed.identity == identity { return .failedBefore(v, reason: failed.reason) }
            return .load(v)
        }
        return .versions(steps: steps, limit: limit, pinnedMissing: pinnedMissing)
    }

    /// The model's status after its steps ran. `serving`: versions served now, with their
    /// SHA-256; `visited`: the status of each version whose step did not end in a fresh serve
    /// (failures, files settling, pinned but missing); `missing`: served versions whose files are
    /// gone; `lastFailure`: the newest failure's sentence; `pending`: a file is still settling.
    static func status(name: String, policy: VersionPolicy, onDisk: Set<Int>, serving: [Int: String],
                       visited: [Int: VersionStatus], missing: Set<Int>, lastFailure: String?, pending: Bool) -> ModelStatus {
        var versionStatus = visited
        for (v, sha) in serving {
            versionStatus[v] = VersionStatus(version: v, state: .ready,
                                             reason: missing.contains(v) ? ModelRepository.missingFileReason : visited[v]?.reason,
                                             sha256: sha, failed: visited[v]?.failed ?? false, fileMissing: missing.contains(v))
        }
        for v in onDisk where versionStatus[v] == nil {
            versionStatus[v] = VersionStatus(version: v, state: .unavailable, reason: "not selected by the version policy \(policy)", sha256: nil)
        }
        let versions = versionStatus.values.sorted { $0.version > $1.version }
        if !serving.isEmpty {
            return ModelStatus(name: name, state: .ready, reason: lastFailure ?? (missing.isEmpty ? nil : ModelRepository.missingFileReason),
                               versions: versions)
        }
        let reason = lastFailure ?? (pending ? "waiting for the file to settle"
            : onDisk.isEmpty ? "no version directory with a model.loupe" : "no version selected by the version policy \(policy)")
        return ModelStatus(name: name, state: pending && lastFailure == nil ? .loading : .unavailable, reason: reason, versions: versions)
    }

    /// Safe promotion's arrangement of a model's served versions after its steps ran: which one
    /// requests without a version get (the primary) and which newer one is judged (the candidate).
    /// `kept`: versions serving after the steps; `heldPrimary`: the primary before this pass;
    /// `canHold`: that primary is still loaded and its file still on disk (not rolled back), so it
    /// may keep serving beside a candidate even when the version policy alone would drop it.
    struct Arrangement: Equatable {
        var primary: Int
        var candidate: Int?
        /// Keep serving `primary` although the steps did not keep it.
        var hold: Bool
    }

    static func arrange(mode: PromotionMode, kept: Set<Int>, heldPrimary: Int?, canHold: Bool) -> Arrangement? {
        guard let newest = kept.max() else {
            // Nothing newer serves; the held primary may still (its file unchanged, its steps skipped).
            return nil
        }
        guard mode != .immediate, let held = heldPrimary, newest > held else {
            // Immediate mode, the first version, or nothing newer than the primary: the newest serves.
            return Arrangement(primary: newest, candidate: nil, hold: false)
        }
        if kept.contains(held) { return Arrangement(primary: held, candidate: newest, hold: false) }
        if canHold { return Arrangement(primary: held, candidate: newest, hold: true) }
        return Arrangement(primary: newest, candidate: nil, hold: false)   // the primary is gone: nothing to judge against
    }
}
