// What the repository reports: model and version states (Triton's names), statuses, lookup
// results, reload events, and the immutable snapshot requests read.
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
        /// What a request without a version gets: the highest served version, or under safe
        /// promotion the promoted (serving) one while a newer candidate is judged.
        let latest: LoadedModel
        /// Safe promotion: the newer version being judged (shadow or canary), served beside `latest`.
        var candidate: LoadedModel? = nil
        /// The model's promotion settings (mode, canary share, sampling, rules).
        var promotion = PromotionPolicy()
    }
    let served: [String: Served]
    let statuses: [String: ModelStatus]
    let defaultModel: String?
    /// Strict readiness (KServe/Triton): at least one model is served (loaded, verified,
    /// self-tested) and every model the repository lists has either a served version or a final
    /// failure — none is still loading with nothing served. Draining is the service's.
    let isReady: Bool

    init(served: [String: Served], statuses: [String: ModelStatus], configuredDefault: String?) {
        self.served = served
        self.statuses = statuses
        if let configuredDefault { defaultModel = configuredDefault } else { defaultModel = served.keys.min() }
        isReady = !served.isEmpty && statuses.values.allSatisfy { $0.state != .loading || served[$0.name] != nil }
    }

    static let empty = RepositorySnapshot(served: [:], statuses: [:], configuredDefault: nil)
}
