import LoupeData

/// Every setting of the model repository, with its default (the service fills it from the
/// `models.*`, `repository_api.*` and `drift.*` keys of Config/loupe.yaml; see docs/model-lifecycle.md).
public struct RepositoryConfiguration: Sendable, Equatable {
    /// Repository root holding `<name>/<version>/model.loupe` (`--models DIR`). Default "models".
    public var root: String = "models"
    /// Model used when a request names none. nil: the only model, or with several the first by name.
    public var defaultModel: String? = nil
    /// Policy for models without an entry in `policies`. Default: latest.
    public var versionPolicy: VersionPolicy = .default
    /// Per-model policy overrides, e.g. ["fashion": .specific([3])].
    public var policies: [String: VersionPolicy] = [:]
    /// Seconds between scans of the repository; 0 turns polling off (SIGHUP and the repository
    /// API still reload). Default 5.
    public var pollIntervalSeconds: Double = 5
    /// A new or changed file is loaded only once it has not been modified for this long (and did
    /// not change while it was read): a file still being written is never picked up. Default 0.5 s.
    public var stableAfterSeconds: Double = 0.5
    /// Files larger than this are refused. Default 256 MiB.
    public var maxModelBytes: Int = 256 << 20
    /// Run the golden-sample self-test before publishing a version. Default true.
    public var selfTest: Bool = true
    /// Largest allowed |p − p_recorded| for any class probability of any golden sample. The
    /// predicted classes must match exactly. Default 1e-4 (kernels differ by ISA in the last bits).
    public var selfTestTolerance: Float = 1e-4
    /// When set, versions with another input shape are refused. nil (the default) accepts every shape
    /// the service can feed: [H, W, C] images with C = 1 or 3 and H, W ≤ `maxInputSide`.
    public var requiredInputShape: [Int]? = nil
    /// Largest image height or width a served model may take (`models.max_input_side`). Default 256.
    public var maxInputSide: Int = 256
    /// Activation workspace one runner of a model may need (`models.max_workspace_bytes`), for batches of
    /// `workspaceBatch` images (`batching.max_batch_size`) on `workspaceThreads` threads (`inference.threads`):
    /// a model needing more is refused at load. Default 1 GiB.
    public var maxWorkspaceBytes: Int = 1 << 30
    public var workspaceBatch: Int = 64
    public var workspaceThreads: Int = 1
    /// Enable Triton's repository extension (`POST /v2/repository/index`,
    /// `/v2/repository/models/{m}/load|unload`). Default false.
    public var apiEnabled: Bool = false
    /// Bearer token required by the repository API when set (`Authorization: Bearer …`).
    public var apiToken: String? = nil
    /// Number of most recent images the drift statistics are computed over. Default 1000.
    public var driftWindow: Int = 1000
    /// How a new version reaches traffic, and the rules that promote or roll it back (`promotion.*`).
    public var promotion = PromotionPolicy()
    /// Per-model promotion settings (`promotion.models.<name>.*`).
    public var promotionPolicies: [String: PromotionPolicy] = [:]

    public init() {}

    /// The policy that applies to `model`.
    public func policy(for model: String) -> VersionPolicy { policies[model] ?? versionPolicy }

    /// The promotion settings that apply to `model`.
    public func promotion(for model: String) -> PromotionPolicy { promotionPolicies[model] ?? promotion }

    /// Sentences naming each invalid setting; empty when the configuration is usable.
    public func validationErrors() -> [String] {
        var errors: [String] = []
        if root.isEmpty { errors.append("repository.path must not be empty") }
        if let name = defaultModel, !ModelRepositoryLayout.isValidName(name) {
            errors.append("repository.default_model: " + ModelRepositoryLayout.invalidNameMessage(name))
        }
        for (name, policy) in policies {
            if !ModelRepositoryLayout.isValidName(name) { errors.append("repository.policies: " + ModelRepositoryLayout.invalidNameMessage(name)) }
            if case .latest(let n) = policy, n < 1 { errors.append("repository.policies.\(name): latest needs at least 1") }
        }
        if case .latest(let n) = versionPolicy, n < 1 { errors.append("repository.version_policy: latest needs at least 1") }
        if !(pollIntervalSeconds >= 0) { errors.append("repository.poll_interval_seconds must be ≥ 0, got \(pollIntervalSeconds)") }
        if !(stableAfterSeconds >= 0) { errors.append("repository.stable_after_ms must be ≥ 0") }
        if maxInputSide < 1 { errors.append("models.max_input_side must be at least 1, got \(maxInputSide)") }
        if maxModelBytes < 64 { errors.append("repository.max_model_bytes must be at least 64, got \(maxModelBytes)") }
        if !(selfTestTolerance >= 0) { errors.append("repository.self_test.probability_tolerance must be ≥ 0") }
        if driftWindow < 1 { errors.append("repository.drift.window must be at least 1, got \(driftWindow)") }
        if apiToken?.isEmpty == true { errors.append("repository.api.token must not be empty when set") }
        return errors
    }
}
