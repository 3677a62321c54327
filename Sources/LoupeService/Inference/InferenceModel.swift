import LoupeData
import LoupeEngine

// What the service needs from a servable model, independent of where it came from (the model
// repository, or a test's fixture). A model hands each inference worker its own `ModelRunner`,
// which owns the scratch memory for batches up to a size, so workers never share mutable state.

/// A loaded, verified model ready to serve. Instances are immutable and compared by identity:
/// a reload publishes a new instance.
public protocol InferenceModel: AnyObject, Sendable {
    var name: String { get }
    var version: Int { get }
    /// Hex SHA-256 of the model file.
    var sha256: String { get }
    /// Class labels, `outputCount` of them.
    var labels: [String] { get }
    /// Input shape without the batch dimension, e.g. [28, 28, 1] (NHWC).
    var inputShape: [Int] { get }
    var inputCount: Int { get }
    var outputCount: Int { get }
    /// Pixel (0…255) → model input: `pixel * scale + offset` (the model file's normalization).
    var normalization: Normalization { get }
    /// "fp32", or "int8" for a quantized model (docs/model-format.md §12).
    var precision: String { get }
    /// True when the network ends in logits (a linear last layer, e.g. an imported graph): the runner's
    /// outputs are then logits, which v2 infer returns as they are, and the batcher adds softmax
    /// probabilities for everything that ranks or reports confidence. Default false.
    var outputsAreLogits: Bool { get }
    /// The KServe v2 tensor names and the input layout the v2 metadata shows: the source graph's for an
    /// imported model, else "input" / "probabilities" (or "logits") / "NHWC".
    var inputTensorName: String { get }
    var outputTensorName: String { get }
    var inputLayout: String { get }
    /// A runner with its own workspace for batches of up to `maxBatch` images.
    func makeRunner(maxBatch: Int) -> any ModelRunner
    /// Called after inference with the input pixels (`count × inputCount` bytes) and the top-1
    /// class of each image, for drift statistics. Default: nothing.
    func observe(pixels: [UInt8], predictedClasses: [Int])
    /// For the console's model card (GET /api/models): the file's header and the directory it was read
    /// from (where history.json lives). Default: nil.
    var cardSource: (header: ModelHeader, directory: String)? { get }
    /// For the console's live operations (GET /api/status): the model's drift window. Default: nil.
    func driftSummary() -> DriftWindow.Summary?
}

extension InferenceModel {
    public func observe(pixels: [UInt8], predictedClasses: [Int]) {}
    public var cardSource: (header: ModelHeader, directory: String)? { nil }
    public func driftSummary() -> DriftWindow.Summary? { nil }
    public var precision: String { "fp32" }
    public var outputsAreLogits: Bool { false }
    public var inputTensorName: String { OIPTensor.input }
    public var outputTensorName: String { outputsAreLogits ? OIPTensor.logits : OIPTensor.output }
    public var inputLayout: String { "NHWC" }

    /// Drift statistics for inputs that came as model-ready floats (OIP FP32 tensors): the 8-bit
    /// pixels are recovered by inverting the normalization and passed to
    /// `observe(pixels:predictedClasses:)`. About 1 µs per 784-value image.
    public func observe(normalized input: [Float], predictedClasses: [Int]) {
        guard normalization.scale != 0, !predictedClasses.isEmpty else { return }
        observe(pixels: normalization.pixels(fromNormalized: input), predictedClasses: predictedClasses)
    }
}

/// Runs one model on one worker thread; not shared between threads.
public protocol ModelRunner: AnyObject {
    /// `input` holds `count × inputCount` model-ready floats; returns `count × outputCount` network
    /// outputs: softmax probabilities, or logits when the model's `outputsAreLogits`.
    func predict(_ input: [Float], count: Int, threads: Int) -> [Float]
    /// Attributions for `count` images (Inference/Explanation.swift); the default says the model cannot be explained.
    func explain(_ input: [Float], count: Int, request: ExplanationRequest) throws(ServiceError) -> [Attribution]
}

extension InferenceModel {
    /// Image height and width from the input shape (NHWC without batch): [H, W, C].
    public var imageHeight: Int { inputShape.count >= 2 ? inputShape[0] : 1 }
    public var imageWidth: Int { inputShape.count >= 2 ? inputShape[1] : inputCount }
    public var imageChannels: Int { inputShape.count >= 3 ? inputShape[2] : 1 }
    /// The input shape (without batch) in the layout the v2 metadata shows: [C, H, W] for an NCHW
    /// graph, else `inputShape`.
    public var tensorInputShape: [Int] {
        inputLayout == "NCHW" && inputShape.count == 3 ? [inputShape[2], inputShape[0], inputShape[1]] : inputShape
    }
}

/// Where the service finds models: the `ModelRepository` (or a test's fixed set).
public protocol ModelProvider: AnyObject, Sendable {
    /// The model to serve for a request: `name` nil = the default model, `version` nil = the
    /// preferred version under its policy. Nil when there is no such model or version.
    func model(named name: String?, version: Int?) -> (any InferenceModel)?
    /// Every servable model (all served versions), for metadata and /health.
    func servedModels() -> [any InferenceModel]
    /// Names of the models known to the repository (servable or not).
    var modelNames: [String] { get }
    /// The model a request that names none asks for (`models.default`, else the first served by name); nil when none.
    var defaultModelName: String? { get }
    /// True when the provider can serve: see `ModelRepository.isReady` (strict readiness).
    var isReady: Bool { get }
    /// Asks for a rescan/reload (SIGHUP). Returns at once; the reload runs in the background.
    func requestReload(reason: String)
    /// Model versions whose files failed to load, with why: /health shows them, and a request for
    /// such a model is told the reason.
    func loadProblems() -> [ModelLoadProblem]
    /// Served versions whose files are gone from the repository (kept serving from memory).
    func missingFiles() -> [ModelLoadProblem]
    /// Safe promotion: the version that answers a request without a version (`key`: the canary
    /// routing key), and the models with a candidate; promote or roll one back. Defaults below:
    /// no candidates.
    func route(named name: String?, key: @autoclosure () -> UInt64) -> RoutedModel?
    func promotionSlots() -> [PromotionSlot]
    func promote(model: String, version: Int?) -> PromotionAction
    func rollback(model: String, version: Int?, reason: String) -> PromotionAction
    /// A number that changes whenever `servedModels`, `loadProblems`, `missingFiles` or
    /// `isReady` may answer differently (the repository's publications), so /health can keep what
    /// it wrote from them until then; nil: nothing may be kept.
    var publishedGeneration: UInt64? { get }
}

extension ModelProvider {
    public var defaultModelName: String? { nil }
    public func missingFiles() -> [ModelLoadProblem] { [] }
    public var publishedGeneration: UInt64? { nil }
}

/// The version that answers a request without a version, and (safe promotion) the other version
/// of the pair, which may classify a copy of the request off the request path.
public struct RoutedModel: Sendable {
    public var model: any InferenceModel
    /// The serving version when a canary candidate answers, the candidate otherwise; nil when the
    /// model has no candidate.
    public var other: (any InferenceModel)?
    /// True when `model` is the candidate (a canary answer).
    public var candidateAnswered: Bool
    /// Share of such requests the other version also classifies (`promotion.shadow_sample_rate`).
    public var sampleRate: Double

    public init(model: any InferenceModel, other: (any InferenceModel)? = nil, candidateAnswered: Bool = false, sampleRate: Double = 0) {
        self.model = model; self.other = other; self.candidateAnswered = candidateAnswered; self.sampleRate = sampleRate
    }

    var candidate: (any InferenceModel)? { candidateAnswered ? model : other }
    var serving: any InferenceModel { candidateAnswered ? other! : model }
}

/// A model with a version under judgement (safe promotion), for the monitor and /health.
public struct PromotionSlot: Sendable {
    public var model: String
    public var serving: Int
    public var candidate: Int
    public var policy: PromotionPolicy
}

/// What a promote or rollback request did.
public enum PromotionAction: Sendable, Equatable {
    /// Done: a sentence, the version promoted or rolled back, and the version that now serves
    /// requests without a version.
    case done(String, version: Int, serving: Int)
    /// Refused: HTTP status, machine code and a sentence.
    case refused(status: Int, code: String, String)
}

/// Safe promotion through the provider (the repository implements it; a fixed set of models has
/// no candidates and refuses).
extension ModelProvider {
    /// The version a request without a version gets, by `key` in canary mode (see `CanaryRouting`).
    public func route(named name: String?, key: @autoclosure () -> UInt64) -> RoutedModel? {
        model(named: name, version: nil).map { RoutedModel(model: $0) }
    }
    public func promotionSlots() -> [PromotionSlot] { [] }
    public func promote(model: String, version: Int?) -> PromotionAction {
        .refused(status: 409, code: "no_candidate", "model '\(model)' has no candidate version to promote")
    }
    public func rollback(model: String, version: Int?, reason: String) -> PromotionAction {
        .refused(status: 409, code: "no_candidate", "model '\(model)' has no version to roll back")
    }
}

/// Canary routing: the share of a 64-bit key space that goes to the candidate. The key is the
/// FNV-1a hash of a client's key header (or of the request id), finished with SplitMix64's mixer so
/// that nearby keys spread evenly; the same key always gets the same version while the pair lasts.
public enum CanaryRouting {
    public static func hash(_ text: some StringProtocol) -> UInt64 {
        func fnv1a(_ bytes: some Sequence<UInt8>) -> UInt64 {
            var h: UInt64 = 0xcbf2_9ce4_8422_2325
            for b in bytes { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
            return h
        }
        return text.utf8.withContiguousStorageIfAvailable { fnv1a($0) } ?? fnv1a(text.utf8)
    }

    /// True when `key` falls in the candidate's `percent` (0…100) of the key space.
    public static func answersWithCandidate(key: UInt64, percent: Double) -> Bool {
        var z = key &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        return Double(z % 1_000_000) < percent * 10_000
    }
}

/// A model version that failed to load (or a pinned version that is missing).
public struct ModelLoadProblem: Sendable, Equatable {
    public var model: String
    public var version: Int
    /// The version's state now: unavailable, or ready when its previous file keeps serving.
    public var state: ModelState
    public var reason: String
    public init(model: String, version: Int, state: ModelState, reason: String) {
        self.model = model; self.version = version; self.state = state; self.reason = reason
    }
}

extension ModelProvider {
    public func loadProblems() -> [ModelLoadProblem] { [] }
}
