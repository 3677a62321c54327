@_spi(Kernels) import LoupeKernels
import Glibc
// Explanations: gradients of a class's probability (or logit) with respect to the input, and the
// attribution methods built on them — integrated gradients, saliency, gradient × input, occlusion.
// Pure computation over normalized model inputs (NHWC floats); the caller decodes images and picks
// the baseline's pixel value from the model's normalization.

/// Which score an explanation attributes: the target class's softmax probability (what /predict
/// reports) or its logit (the last layer's output before softmax).
public enum ExplainedScore: String, Sendable, Equatable, CaseIterable {
    case probability, logit
}

/// Input gradients of a batch: per image the softmax probabilities, the logits and ∂score/∂input.
public struct InputGradientResult: Sendable {
    /// (count, classes) softmax probabilities.
    public var probabilities: [Float]
    /// (count, classes) last-layer outputs before softmax.
    public var logits: [Float]
    /// (count, inputCount): ∂ score(image b, target b) / ∂ input b, NHWC.
    public var gradients: [Float]
}

/// Reusable buffers for input gradients of up to `maxBatch` images at a time. A value type: if a copy
/// is shared, the next call allocates its own.
public struct GradientWorkspace: @unchecked Sendable {
    public let maxBatch: Int
    var storage: InputGradientStorage

    mutating func unique() -> InputGradientStorage {
        if !isKnownUniquelyReferenced(&storage) { storage = InputGradientStorage(plan: storage.plan, capacity: maxBatch) }
        return storage
    }
}

extension Sequential {
    /// Nil when every layer of this network has an input gradient (explanations work); else the sentence
    /// that says which one has none.
    public var explanationUnsupportedReason: String? { InputGradient.unsupportedStage(plan) }

    public func makeGradientWorkspace(maxBatch: Int) -> GradientWorkspace {
        GradientWorkspace(maxBatch: max(1, maxBatch), storage: InputGradientStorage(plan: plan, capacity: max(1, maxBatch)))
    }

    /// ∂ score(targets[b]) / ∂ input for each of `count` images (count × inputCount floats, normalized NHWC),
    /// batched through the engine's backward pass. Throws `EngineError.invalidInput` for a bad target or
    /// count and `EngineError.invalidArchitecture` for a layer kind without an input gradient.
    public func inputGradients(_ input: [Float], count: Int, targets: [Int], of score: ExplainedScore = .probability,
                               workspace: inout GradientWorkspace) throws -> InputGradientResult {
        try inputGradients(input, count: count, targets: targets, of: score, workspace: &workspace, transposed: nil)
    }

    /// `transposed`: packed dense weights made from these parameters (Explainer keeps them), or nil.
    func inputGradients(_ input: [Float], count: Int, targets: [Int], of score: ExplainedScore,
                        workspace: inout GradientWorkspace, transposed: TransposedDenseWeights?) throws -> InputGradientResult {
        if let why = explanationUnsupportedReason { throw EngineError.invalidArchitecture(why) }
        guard count >= 0, input.count >= count * inputCount else {
            throw EngineError.invalidInput("input holds \(input.count) floats, fewer than count × inputCount = \(count) × \(inputCount)")
        }
        guard targets.count == count else { throw EngineError.invalidInput("\(targets.count) targets for \(count) images") }
        for t in targets where t < 0 || t >= outputCount {
            throw EngineError.invalidInput("target class \(t) is not in 0…\(outputCount - 1)")
        }
        precondition(workspace.storage.plan == plan, "workspace was made for a different architecture")
        let storage = workspace.unique()
        let classes = outputCount
        var logits = [Float](repeating: 0, count: count * classes)
        var probabilities = [Float](repeating: 0, count: count * classes)
        var gradients = [Float](repeating: 0, count: count * inputCount)
        guard count > 0 else { return InputGradientResult(probabilities: [], logits: [], gradients: []) }
        parameters.withUnsafeBufferPointer { p in
            input.withUnsafeBufferPointer { x in
                targets.withUnsafeBufferPointer { t in
                    logits.withUnsafeMutableBufferPointer { z in
                        probabilities.withUnsafeMutableBufferPointer { pr in
                            gradients.withUnsafeMutableBufferPointer { g in
                                InputGradient.run(plan, kernels: ISA.kernels, parameters: p.baseAddress!, input: x.baseAddress!, n: count,
                                                  targets: t.baseAddress!, score: score == .logit ? .logit : .probability, storage: storage,
                                                  logits: z.baseAddress!, probabilities: pr.baseAddress!, dInput: g.baseAddress!,
                                                  transposed: transposed)
                            }
                        }
                    }
                }
            }
        }
        return InputGradientResult(probabilities: probabilities, logits: logits, gradients: gradients)
    }
}

/// How an input is attributed to the target's score.
public enum AttributionMethod: String, Sendable, Equatable, CaseIterable {
    /// Integrated gradients (Sundararajan et al. 2017): (x − x′) ⊙ ∫₀¹ ∂score/∂input at x′ + α(x − x′) dα, the
    /// integral by the midpoint rule over `steps` points α = (k + ½)/steps (Captum's riemann_middle; Gauss–Legendre
    /// was measured worse here: a ReLU network's path is piecewise, not smooth); all steps of one image run as one batch. Completeness:
    /// the attributions sum to score(x) − score(x′) up to the quadrature error.
    case integratedGradients = "integrated_gradients"
    /// |∂score/∂input| at x.
    case saliency
    /// x ⊙ ∂score/∂input at x.
    case gradientXInput = "gradient_x_input"
    /// score(x) − score(x with a window × window square set to the fill value), averaged over the windows
    /// (placed every `stride` pixels) that cover each pixel; pixels no window covers get 0. Forward passes only.
    case occlusion
}

/// The reference input integrated gradients start from.
public enum AttributionBaseline: Sendable, Equatable {
    /// Every input value the same (the normalized value of a black pixel, for a black baseline).
    case constant(Float)
    /// The image blurred with a Gaussian of this σ in pixels (separable, edges clamped), per channel.
    case blur(sigma: Float)
}

public struct AttributionOptions: Sendable, Equatable {
    public var method: AttributionMethod
    public var score: ExplainedScore
    /// Integrated-gradients steps, 1…1024.
    public var steps: Int
    public var baseline: AttributionBaseline
    /// Occlusion window side and stride in pixels.
    public var window: Int
    public var stride: Int
    /// Value occluded pixels are set to (normalized; a black pixel's value for a black patch).
    public var fill: Float

    public init(method: AttributionMethod = .integratedGradients, score: ExplainedScore = .probability, steps: Int = 32,
                baseline: AttributionBaseline = .constant(0), window: Int = 4, stride: Int = 2, fill: Float = 0) {
        self.method = method; self.score = score; self.steps = steps; self.baseline = baseline
        self.window = window; self.stride = stride; self.fill = fill
    }

    public static let maxSteps = 1024
}

/// One image's explanation.
public struct Attribution: Sendable {
    /// The class explained (the predicted one unless a target was given).
    public var target: Int
    /// The image's softmax probabilities.
    public var probabilities: [Float]
    /// The explained score of the target at the image (probability or logit, per the options).
    public var score: Float
    /// The explained score at the baseline (integrated gradients only).
    public var baselineScore: Float?
    /// One value per input value, NHWC (H × W × C).
    public var map: [Float]
}

/// Explains predictions of one model; holds the workspaces, so reuse it for many images on one thread.
public struct Explainer: Sendable {
    public let model: Sequential
    private var inference: InferenceWorkspace
    private var gradients: GradientWorkspace
    /// The dense weights packed transposed once, for the input-gradient GEMM (the model's parameters never change here).
    private let transposed: TransposedDenseWeights

    /// Throws when the model has a layer kind without an input gradient.
    public init(model: Sequential) throws {
        if let why = model.explanationUnsupportedReason { throw EngineError.invalidArchitecture(why) }
        self.model = model
        inference = model.makeWorkspace(maxBatch: 64)
        gradients = model.makeGradientWorkspace(maxBatch: 64)
        transposed = model.parameters.withUnsafeBufferPointer {
            TransposedDenseWeights(plan: model.plan, kernels: ISA.kernels, parameters: $0.baseAddress!)
        }
    }

    /// Checks options against the model's input shape; the sentence says what was expected.
    public func validate(_ options: AttributionOptions) throws {
        let (h, w, _) = shape
        switch options.method {
        case .integratedGradients:
            guard options.steps >= 1 && options.steps <= AttributionOptions.maxSteps else {
                throw EngineError.invalidInput("steps must be 1…\(AttributionOptions.maxSteps), got \(options.steps)")
            }
            if case let .blur(sigma) = options.baseline, !(sigma > 0 && sigma <= 64) {
                throw EngineError.invalidInput("the blur baseline's sigma must be in (0, 64] pixels, got \(sigma)")
            }
        case .occlusion:
            guard options.window >= 1 && options.window <= min(h, w) else {
                throw EngineError.invalidInput("window must be 1…\(min(h, w)) pixels for a \(h)×\(w) input, got \(options.window)")
            }
            guard options.stride >= 1 && options.stride <= min(h, w) else {
                throw EngineError.invalidInput("stride must be 1…\(min(h, w)) pixels, got \(options.stride)")
            }
        case .saliency, .gradientXInput:
            break
        }
    }

    /// (H, W, C) of the input; a rank-1 input [n] counts as 1 × n × 1.
    public var shape: (height: Int, width: Int, channels: Int) {
        let s = model.architecture.inputShape
        return s.count == 3 ? (s[0], s[1], s[2]) : (1, s[0], 1)
    }

    /// Explains one image (model.inputCount normalized floats). `target` nil = the predicted class.
    public mutating func explain(_ image: [Float], target: Int? = nil, options: AttributionOptions) throws -> Attribution {
        let d = model.inputCount
        guard image.count == d else { throw EngineError.invalidInput("the image has \(image.count) values, the model takes \(d)") }
        try validate(options)
        let classes = model.outputCount
        let probabilities = model.predict(image, count: 1, workspace: &inference)
        let t = target ?? Ranking.argmax(probabilities)
        guard t >= 0 && t < classes else { throw EngineError.invalidInput("target class \(t) is not in 0…\(classes - 1)") }
        func score(_ probs: ArraySlice<Float>, _ logits: ArraySlice<Float>) -> Float {
            options.score == .logit ? logits[logits.startIndex + t] : probs[probs.startIndex + t]
        }
        switch options.method {
        case .saliency, .gradientXInput:
            let r = try model.inputGradients(image, count: 1, targets: [t], of: options.score, workspace: &gradients, transposed: transposed)
            let map = options.method == .saliency ? r.gradients.map { abs($0) } : zip(image, r.gradients).map { $0 * $1 }
            return Attribution(target: t, probabilities: r.probabilities, score: score(r.probabilities[...], r.logits[...]),
                               baselineScore: nil, map: map)
        case .integratedGradients:
            let base = baselineImage(image, options.baseline)
            let m = options.steps
            // Rows 0..<m: the midpoints; row m: the baseline; row m + 1: the image (for the scores).
            var batch = [Float](repeating: 0, count: (m + 2) * d)
            for k in 0..<m {
                let a = (Float(k) + 0.5) / Float(m)
                for i in 0..<d { batch[k * d + i] = base[i] + a * (image[i] - base[i]) }
            }
            for i in 0..<d { batch[m * d + i] = base[i]; batch[(m + 1) * d + i] = image[i] }
            let r = try model.inputGradients(batch, count: m + 2, targets: Array(repeating: t, count: m + 2), of: options.score,
                                             workspace: &gradients, transposed: transposed)
            var mean = [Double](repeating: 0, count: d)
            for k in 0..<m { for i in 0..<d { mean[i] += Double(r.gradients[k * d + i]) } }
            var map = [Float](repeating: 0, count: d)
            for i in 0..<d { map[i] = Float(mean[i] / Double(m)) * (image[i] - base[i]) }
            let pRow = { (row: Int) in r.probabilities[(row * classes)..<((row + 1) * classes)] }
            let zRow = { (row: Int) in r.logits[(row * classes)..<((row + 1) * classes)] }
            return Attribution(target: t, probabilities: Array(pRow(m + 1)), score: score(pRow(m + 1), zRow(m + 1)),
                               baselineScore: score(pRow(m), zRow(m)), map: map)
        case .occlusion:
            let (h, w, c) = shape
            let win = options.window, step = options.stride
            var origins: [(Int, Int)] = []
            for y in Swift.stride(from: 0, through: h - win, by: step) { for x in Swift.stride(from: 0, through: w - win, by: step) { origins.append((y, x)) } }
            var batch = [Float](repeating: 0, count: (origins.count + 1) * d)
            for (o, (y0, x0)) in origins.enumerated() {
                for i in 0..<d { batch[o * d + i] = image[i] }
                for y in y0..<(y0 + win) { for x in x0..<(x0 + win) { for ch in 0..<c { batch[o * d + (y * w + x) * c + ch] = options.fill } } }
            }
            for i in 0..<d { batch[origins.count * d + i] = image[i] }
            let n = origins.count + 1
            let out = options.score == .logit ? model.logits(batch, count: n, workspace: &inference)
                                               : model.predict(batch, count: n, workspace: &inference)
            let full = out[origins.count * classes + t]
            var sum = [Float](repeating: 0, count: h * w), covered = [Float](repeating: 0, count: h * w)
            for (o, (y0, x0)) in origins.enumerated() {
                let delta = full - out[o * classes + t]
                for y in y0..<(y0 + win) { for x in x0..<(x0 + win) { sum[y * w + x] += delta; covered[y * w + x] += 1 } }
            }
            var map = [Float](repeating: 0, count: d)
            for p in 0..<(h * w) where covered[p] > 0 { for ch in 0..<c { map[p * c + ch] = sum[p] / covered[p] } }
            let logits = options.score == .logit ? Array(out[(origins.count * classes)...]) : []
            return Attribution(target: t, probabilities: probabilities, score: options.score == .logit ? logits[t] : probabilities[t],
                               baselineScore: nil, map: map)
        }
    }

    /// The integrated-gradients baseline for `image`.
    public func baselineImage(_ image: [Float], _ baseline: AttributionBaseline) -> [Float] {
        switch baseline {
        case let .constant(v):
            return [Float](repeating: v, count: image.count)
        case let .blur(sigma):
            return Explainer.gaussianBlur(image, shape: shape, sigma: sigma)
        }
    }

    /// Separable Gaussian blur (radius ⌈3σ⌉, weights normalized, edges clamped) of an NHWC image, per channel.
    public static func gaussianBlur(_ image: [Float], shape: (height: Int, width: Int, channels: Int), sigma: Float) -> [Float] {
        let (h, w, c) = shape
        let radius = max(1, Int((3 * sigma).rounded(.up)))
        var kernel = (-radius...radius).map { i in Float(exp(-Double(i * i) / (2 * Double(sigma * sigma)))) }
        let total = kernel.reduce(0, +)
        kernel = kernel.map { $0 / total }
        var rows = [Float](repeating: 0, count: image.count), out = [Float](repeating: 0, count: image.count)
        for y in 0..<h { for x in 0..<w { for ch in 0..<c {
            var s: Float = 0
            for k in -radius...radius { s += kernel[k + radius] * image[(y * w + min(w - 1, max(0, x + k))) * c + ch] }
            rows[(y * w + x) * c + ch] = s
        }}}
        for y in 0..<h { for x in 0..<w { for ch in 0..<c {
            var s: Float = 0
            for k in -radius...radius { s += kernel[k + radius] * rows[(min(h - 1, max(0, y + k)) * w + x) * c + ch] }
            out[(y * w + x) * c + ch] = s
        }}}
        return out
    }
}
