// Safe promotion in the repository: which version answers a request without a version (the primary,
// or a canary candidate by the request's key), the models with a candidate under judgement, and the
// two actions — promote (the candidate becomes the primary; the old primary is dropped once the
// version policy no longer selects it) and roll back (the candidate, or without one the primary, is
// remembered by its file state like a failed load and never served or re-candidated until its file
// changes). Both run a pass for that model on the repository's queue, so they are serialized with
// reloads and publish one new snapshot. Deciding *when* is PromotionMonitor's job.
import LoupeData

extension ModelRepository {
    /// `key` is only computed for a model in canary mode with a candidate.
    public func route(named name: String?, key: @autoclosure () -> UInt64) -> RoutedModel? {
        let snap = snapshot
        guard let name = name ?? snap.defaultModel, let served = snap.served[name] else { return nil }
        guard let candidate = served.candidate else { return RoutedModel(model: served.latest) }
        let policy = served.promotion
        if policy.mode == .canary, CanaryRouting.answersWithCandidate(key: key(), percent: policy.canaryPercent) {
            return RoutedModel(model: candidate, other: served.latest, candidateAnswered: true, sampleRate: policy.shadowSampleRate)
        }
        return RoutedModel(model: served.latest, other: candidate, candidateAnswered: false, sampleRate: policy.shadowSampleRate)
    }

    public func promotionSlots() -> [PromotionSlot] {
        let snap = snapshot
        return snap.served.keys.sorted().compactMap { name in
            let served = snap.served[name]!
            guard let c = served.candidate else { return nil }
            return PromotionSlot(model: name, serving: served.latest.version, candidate: c.version, policy: served.promotion)
        }
    }

    /// Makes the candidate of `model` the version requests without a version get. `version`, when
    /// given, must be the candidate (a decision taken on older evidence is refused).
    public func promote(model: String, version: Int?) -> PromotionAction {
        queue.sync {
            guard let served = snapshot.served[model] else { return Self.notServed(model) }
            guard let candidate = served.candidate else {
                return .refused(status: 409, code: "no_candidate",
                                "model '\(model)' has no candidate version: version \(served.latest.version) already serves requests without a version (promotion.mode \(served.promotion.mode.rawValue))")
            }
            if let version, version != candidate.version {
                return .refused(status: 409, code: "not_candidate",
                                "version \(version) of '\(model)' is not the candidate; the candidate is version \(candidate.version)")
            }
            let from = served.latest.version
            control.withLock { $0.primaries[model] = candidate.version }
            pass(only: model)
            let now = snapshot.served[model]?.latest.version ?? candidate.version
            return .done("model '\(model)' version \(candidate.version) promoted: it serves requests without a version (was version \(from))", version: candidate.version, serving: now)
        }
    }

    /// Rolls back `model`: its candidate when it has one (the primary keeps serving), else its
    /// primary (the next version the policy selects on disk serves instead). `version`, when given,
    /// must be the version that would be rolled back.
    public func rollback(model: String, version: Int?, reason: String) -> PromotionAction {
        queue.sync {
            guard let served = snapshot.served[model] else { return Self.notServed(model) }
            let target = served.candidate ?? served.latest
            if let version, version != target.version {
                return .refused(status: 409, code: "not_candidate",
                                served.candidate != nil
                                    ? "version \(version) of '\(model)' is not the candidate; the candidate is version \(target.version)"
                                    : "version \(version) of '\(model)' does not serve requests without a version; version \(target.version) does")
            }
            let key = VersionKey(name: model, version: target.version)
            if served.candidate == nil {
                // Rolling back the primary needs another version on disk to fall back to.
                let others = control.withLock { c in
                    (c.lastScan[model] ?? [:]).keys.filter { v in
                        v != target.version && c.rolledBack[VersionKey(name: model, version: v)] == nil
                            && c.failures[VersionKey(name: model, version: v)] == nil
                    }
                }
                if others.isEmpty {
                    return .refused(status: 409, code: "nothing_to_roll_back_to",
                                    "model '\(model)' has no other version in the repository to roll back to; version \(target.version) keeps serving")
                }
            }
            control.withLock { $0.rolledBack[key] = RollbackMemo(identity: target.fileIdentity, reason: reason, sha256: target.sha256) }
            let result = pass(only: model, keepServing: true)
            guard !result.abandoned, let now = snapshot.served[model]?.latest else {
                // Nothing else would serve (the policy selects nothing else, or what it selects does
                // not load): the pass published nothing, so the model never stopped serving; forget the memo.
                control.withLock { _ = $0.rolledBack.removeValue(forKey: key) }
                let failed = result.events.filter { if case .failed = $0.outcome { true } else { false } }
                let why = failed.isEmpty ? "is selected by the version policy \(configuration.policy(for: model))"
                    : "can serve (\(failed.map(\.description).joined(separator: "; ")))"
                logger.warning("rollback of model \(model) version \(target.version) refused: no other version \(why); version \(target.version) keeps serving, nothing was unloaded")
                return .refused(status: 409, code: "nothing_to_roll_back_to",
                                "no other version of '\(model)' \(why); version \(target.version) keeps serving")
            }
            return .done("model '\(model)' version \(target.version) rolled back (\(reason)); version \(now.version) serves requests without a version",
                         version: target.version, serving: now.version)
        }
    }

    private static func notServed(_ model: String) -> PromotionAction {
        guard ModelRepositoryLayout.isValidName(model) else {
            return .refused(status: 400, code: "invalid_model_name", ModelRepositoryLayout.invalidNameMessage(model))
        }
        return .refused(status: 404, code: "model_not_found", "model '\(model)' is not served")
    }

    /// The promotion state file: which version serves each model, so that a restart keeps serving
    /// it beside a candidate that was still being judged (instead of taking the newest version on
    /// disk), and the rollback memo — each rolled-back version with the file state it had and why —
    /// so that a restart neither serves nor re-candidates a rolled-back file, and a later rollback of
    /// the serving version falls back past it. Hidden in the repository root (names starting with a
    /// dot are not models). Written atomically when it changes, once some model uses shadow or canary
    /// or a version was rolled back; a read-only repository keeps the state in memory.
    ///
    ///     {"serving":{"fashion":2},
    ///      "rolled_back":{"fashion":[{"version":3,"reason":"manual rollback","device":"2049",
    ///                     "inode":"131","size":"2790000","mtime_ns":"…","ctime_ns":"…"}]}}
    ///
    /// (file-state numbers are decimal strings: nanosecond times exceed a JSON number's exact range).
    static let promotionStateFile = ".loupe-promotion.json"

    var promotionEnabled: Bool {
        configuration.promotion.mode != .immediate || configuration.promotionPolicies.values.contains { $0.mode != .immediate }
    }

    /// Reads the serving versions and the rollback memo recorded by an earlier run (start-up, before
    /// the first pass). The serving versions apply only when some model uses shadow or canary.
    func loadPromotionState() {
        guard let bytes = try? FileIO.readFile(configuration.root + "/" + Self.promotionStateFile, maxBytes: 1 << 20),
              let document = try? JSONReader.parse(bytes), document.objectValue != nil else { return }
        var primaries: [String: Int] = [:]
        if promotionEnabled, let serving = document["serving"]?.objectValue {
            for (name, value) in serving where ModelRepositoryLayout.isValidName(name) {
                if let n = Self.positiveInt(value) { primaries[name] = n }
            }
        }
        var rolledBack: [VersionKey: RollbackMemo] = [:]
        for (name, list) in document["rolled_back"]?.objectValue ?? [] where ModelRepositoryLayout.isValidName(name) {
            for entry in list.arrayValue ?? [] {
                func number<T: FixedWidthInteger>(_ key: String, _: T.Type) -> T? { entry[key]?.stringValue.flatMap { T($0) } }
                guard let version = entry["version"].flatMap(Self.positiveInt),
                      let device = number("device", UInt64.self), let inode = number("inode", UInt64.self),
                      let size = number("size", Int64.self), let mtime = number("mtime_ns", Int64.self),
                      let ctime = number("ctime_ns", Int64.self) else { continue }
                let sha256 = entry["sha256"]?.stringValue.flatMap { $0.utf8.count == 64 && $0.utf8.allSatisfy { ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) } ? $0 : nil }
                rolledBack[VersionKey(name: name, version: version)] = RollbackMemo(
                    identity: FileIdentity(device: device, inode: inode, size: size, mtimeNanoseconds: mtime, ctimeNanoseconds: ctime),
                    reason: entry["reason"]?.stringValue ?? "rolled back before a restart", sha256: sha256)
            }
        }
        control.withLock { c in
            c.primaries = primaries
            c.rolledBack = rolledBack
            c.savedState = Self.renderPromotionState(primaries: primaries, rolledBack: rolledBack)
        }
        if !primaries.isEmpty {
            logger.info("promotion state read: serving versions \(primaries.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ", "))")
        }
        if !rolledBack.isEmpty {
            logger.info("promotion state read: rolled-back versions \(rolledBack.keys.sorted { ($0.name, $0.version) < ($1.name, $1.version) }.map { "\($0.name)=\($0.version)" }.joined(separator: ", ")) stay out until their files change")
        }
    }

    private static func positiveInt(_ value: JSONValue) -> Int? {
        guard let n = value.numberValue, n >= 1, n == n.rounded(), n < 1e15 else { return nil }
        return Int(n)
    }

    /// The state file's bytes: models and versions sorted, so equal states give equal bytes.
    static func renderPromotionState(primaries: [String: Int], rolledBack: [VersionKey: RollbackMemo]) -> [UInt8] {
        var w = JSONWriter()
        w.raw("{"); w.key("serving"); w.raw("{")
        for (i, (name, version)) in primaries.sorted(by: { $0.key < $1.key }).enumerated() {
            if i > 0 { w.raw(",") }
            w.key(name); w.int(version)
        }
        w.raw("}")
        if !rolledBack.isEmpty {
            w.raw(","); w.key("rolled_back"); w.raw("{")
            let byModel = Dictionary(grouping: rolledBack, by: { $0.key.name })
            for (i, name) in byModel.keys.sorted().enumerated() {
                if i > 0 { w.raw(",") }
                w.key(name); w.raw("[")
                for (j, (key, value)) in byModel[name]!.sorted(by: { $0.key.version < $1.key.version }).enumerated() {
                    let f = value.identity
                    if j > 0 { w.raw(",") }
                    w.raw("{"); w.key("version"); w.int(key.version)
                    w.raw(","); w.key("reason"); w.string(value.reason)
                    w.raw(","); w.key("device"); w.string(String(f.device))
                    w.raw(","); w.key("inode"); w.string(String(f.inode))
                    w.raw(","); w.key("size"); w.string(String(f.size))
                    w.raw(","); w.key("mtime_ns"); w.string(String(f.mtimeNanoseconds))
                    w.raw(","); w.key("ctime_ns"); w.string(String(f.ctimeNanoseconds))
                    if let sha256 = value.sha256 { w.raw(","); w.key("sha256"); w.string(sha256) }
                    w.raw("}")
                }
                w.raw("]")
            }
            w.raw("}")
        }
        w.raw("}\n")
        return w.bytes
    }

    /// Writes the state when it changed (atomically; a failure is logged once).
    func savePromotionState() {
        let enabled = promotionEnabled
        let bytes: [UInt8]? = control.withLock { c in
            // Immediate mode everywhere and nothing ever rolled back: no file.
            guard enabled || !c.rolledBack.isEmpty || c.savedState != nil else { return nil }
            let bytes = Self.renderPromotionState(primaries: c.primaries, rolledBack: c.rolledBack)
            guard bytes != c.savedState else { return nil }
            c.savedState = bytes
            return bytes
        }
        guard let bytes else { return }
        let path = configuration.root + "/" + Self.promotionStateFile
        do {
            try FileIO.writeAtomically(bytes, to: path)
            control.withLock { _ = $0.warned.remove("promotion-state") }
        } catch {
            warnOnce("promotion-state", "cannot write the promotion state file \(path) (\(error)); after a restart the newest version on disk serves requests without a version and rolled-back versions are judged again")
        }
    }
}
