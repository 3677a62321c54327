import Testing
@testable import LoupeEngine
@_spi(Kernels) import LoupeKernels

// Input gradients (explanations) against central finite differences, and the attribution methods'
// checkable properties: integrated gradients' completeness, occlusion = predictions of occluded images.
//
// Finite differences: (s(x + h·eᵢ) − s(x − h·eᵢ)) / 2h with h = 2e-3 and float forward passes. Coordinates
// where a ±h step crosses a kink (a ReLU pre-activation or max-pool runner-up within reach) are detected
// by the one-sided differences disagreeing (|forward − backward| > 1e-3 + 2e-2·|central|) and not
// compared; at least 90% of the coordinates must be compared. Tolerance: |numeric − analytic| ≤ 1e-3 + 2e-2·|analytic|.

/// Architectures covering every stage the engine has: the fused conv+pool (valid, 16 filters), the
/// plain conv (same padding, 3 filters, 2 channels) with pool, dropout, flatten, dense ReLU/linear/softmax,
/// a dense-only network whose first stage is flatten, and the general layers (strided/padded conv through
/// im2col, overlapping padded max pool, average and global average pooling, leakyRelu/clip/tanh/sigmoid).
let gradientArchitectures: [(String, Architecture)] = [
    ("convPool", Architecture(inputShape: [10, 10, 1], layers: [
        .conv2d(filters: 16, kernel: 3, padding: .valid, activation: .relu), .maxPool2d(pool: 2), .flatten,
        .dense(units: 16, activation: .relu), .dense(units: 10, activation: .softmax)])),
    ("conv same", Architecture(inputShape: [8, 8, 2], layers: [
        .conv2d(filters: 3, kernel: 3, padding: .same, activation: .relu), .maxPool2d(pool: 2),
        .conv2d(filters: 4, kernel: 2, padding: .valid, activation: .linear), .dropout(rate: 0.3), .flatten,
        .dense(units: 12, activation: .relu), .dense(units: 5, activation: .softmax)])),
    ("dense only", Architecture(inputShape: [30], layers: [
        .dense(units: 20, activation: .relu), .dense(units: 4, activation: .linear)])),
    ("general layers", Architecture(inputShape: [9, 9, 3], layers: [
        .conv2d(filters: 8, kernel: 3, stride: 2, padding: .explicit(top: 1, left: 1, bottom: 0, right: 0), activation: .leakyRelu(alpha: 0.1)),
        .maxPool2d(pool: 3, stride: 1, padding: .explicit(top: 1, left: 1, bottom: 1, right: 1)),
        .avgPool2d(pool: 2, stride: 1),
        .conv2d(filters: 6, kernel: 1, padding: .valid, activation: .clip(min: -0.5, max: 0.5)),
        .activation(.tanh), .globalAvgPool2d, .flatten,
        .dense(units: 8, activation: .sigmoid), .dense(units: 4, activation: .linear)])),
    // Non-square kernels and windows, unequal strides and depthwise convs, on a non-square RGB image.
    ("non-square, depthwise", Architecture(inputShape: [9, 12, 3], layers: [
        .conv2d(filters: 5, kernel: Size2D(3, 2), stride: Size2D(1, 2), padding: .explicit(top: 1, left: 0, bottom: 1, right: 1), activation: .tanh),
        .depthwiseConv2d(kernel: Size2D(2, 3), stride: Size2D(2, 1), padding: .same, activation: .sigmoid),
        .maxPool2d(pool: Size2D(1, 2), stride: Size2D(1, 1)),
        .avgPool2d(pool: Size2D(2, 1), stride: Size2D(1, 2)),
        .flatten, .dense(units: 4, activation: .softmax)])),
    // Grouped convs: 2 groups with ReLU fused, then 3 groups of one channel and two filters each (strided, padded).
    ("grouped", Architecture(inputShape: [8, 7, 4], layers: [
        .groupedConv2d(filters: 6, groups: 2, kernel: 3, padding: .same, activation: .relu),
        .groupedConv2d(filters: 6, groups: 3, kernel: Size2D(2, 3), stride: Size2D(2, 1), padding: .explicit(top: 1, left: 0, bottom: 0, right: 1),
                       activation: .tanh),
        .flatten, .dense(units: 4, activation: .softmax)])),
]

func randomInput(_ count: Int, seed: UInt64) -> [Float] {
    var rng = SeededGenerator(seed: seed)
    return (0..<count).map { _ in rng.nextUnitFloat() }
}

@Suite struct InputGradientTests {
    @Test(arguments: [0, 1, 2, 3, 4, 5], [ExplainedScore.probability, .logit])
    func inputGradientsMatchFiniteDifferences(_ which: Int, _ score: ExplainedScore) throws {
        let (name, architecture) = gradientArchitectures[which]
        let model = try Sequential(architecture: architecture, seed: 7)
        #expect(model.explanationUnsupportedReason == nil)
        let d = model.inputCount, n = 3
        let input = randomInput(n * d, seed: 11)
        let targets = (0..<n).map { $0 % model.outputCount }
        var gws = model.makeGradientWorkspace(maxBatch: 2) // 3 images: two chunks
        let r = try model.inputGradients(input, count: n, targets: targets, of: score, workspace: &gws)
        var iws = model.makeWorkspace(maxBatch: 1)
        let probs = model.predict(input, count: n, workspace: &iws)
        for i in 0..<(n * model.outputCount) { #expect(abs(probs[i] - r.probabilities[i]) <= 1e-6, "\(name): probabilities differ from predict") }
        let h: Float = 2e-3
        var compared = 0, mismatches: [String] = []
        for b in 0..<n {
            var x = Array(input[(b * d)..<((b + 1) * d)])
            func s() -> Double {
                let out = score == .logit ? model.logits(x, count: 1, workspace: &iws) : model.predict(x, count: 1, workspace: &iws)
                return Double(out[targets[b]])
            }
            let s0 = s()
            for i in 0..<d {
                let keep = x[i]
                x[i] = keep + h; let sp = s()
                x[i] = keep - h; let sm = s()
                x[i] = keep
                let central = (sp - sm) / Double(2 * h)
                let forward = (sp - s0) / Double(h), backward = (s0 - sm) / Double(h)
                if abs(forward - backward) > 1e-3 + 2e-2 * abs(central) { continue } // a kink within ±h
                compared += 1
                let analytic = r.gradients[b * d + i]
                if abs(central - Double(analytic)) > 1e-3 + 2e-2 * Double(abs(analytic)) {
                    mismatches.append("image \(b) input \(i): numeric \(central), analytic \(analytic)")
                }
            }
        }
        #expect(compared * 10 >= n * d * 9, "\(name): only \(compared) of \(n * d) coordinates were away from kinks")
        #expect(mismatches.isEmpty, "\(name) \(score): \(mismatches.prefix(5))")
    }

    /// Each kernel table's dense input gradient equals the plain loops (SIMD panel, dot-product and narrow paths).
    @Test(arguments: [(3, 40, 32), (5, 64, 128), (2, 37, 10), (1, 16, 16)])
    func denseBackwardInputMatchesReference(_ shape: (Int, Int, Int)) throws {
        let (n, inputs, outputs) = shape
        let w = randomBuffer(inputs * outputs, seed: 5), dy = randomBuffer(n * outputs, seed: 6)
        let expected = FloatBuffer(count: n * inputs)
        Reference.denseBackwardInput(n: n, inputs: inputs, outputs: outputs, weight: w.base, dY: dy.base, dX: expected.base)
        for table in ISA.available {
            let got = FloatBuffer(count: n * inputs)
            table.denseBackwardInput(n, inputs, outputs, w.base, nil, dy.base, got.base)
            for i in 0..<(n * inputs) {
                #expect(abs(got[i] - expected[i]) <= 1e-5 * (1 + abs(expected[i])), "\(table.name) dX[\(i)]")
            }
        }
    }

    func kerasModel() throws -> (Sequential, [Float]) {
        let model = try Sequential(architecture: .seed, parameters: try fixtureFloats("keras_weights.f32"))
        let images = try fixtureBytes("keras_images.u8").map { Float($0) / 255 }
        return (model, images)
    }

    /// Completeness: Σ attributions = score(x) − score(baseline) within 1% at 64 steps, for the probability and the
    /// logit, from black and from the blur baseline, on the trained Keras seed network and its 32 real Fashion-MNIST
    /// images (those whose score moves by 0.1 or more). The uniform midpoint rule misses this by up to 6.5% for the
    /// probability from black (a saturating softmax along a piecewise path); the adaptive rule's worst was 0.63%.
    @Test(arguments: [ExplainedScore.probability, .logit], [AttributionBaseline.constant(0), .blur(sigma: 4)])
    func integratedGradientsAreCompleteAt64Steps(_ score: ExplainedScore, _ baseline: AttributionBaseline) throws {
        try checkCompleteness(steps: 64, score: score, baseline: baseline, images: 32)
    }

    /// More steps only tighten it; few steps still give a map (every step count uses exactly its gradients).
    @Test func integratedGradientsAtOtherStepCounts() throws {
        try checkCompleteness(steps: 256, score: .probability, baseline: .constant(0), images: 8, tolerance: 0.002)
        let (model, images) = try kerasModel()
        var explainer = try Explainer(model: model)
        for steps in [1, 2, 3, 4, 5, 7, 17, 1024] {
            let a = try explainer.explain(Array(images[0..<784]), options: AttributionOptions(steps: steps))
            #expect(a.map.count == 784 && a.map.allSatisfy(\.isFinite), "\(steps) steps")
        }
    }

    func checkCompleteness(steps: Int, score: ExplainedScore, baseline: AttributionBaseline, images count: Int,
                           tolerance: Float = 0.01) throws {
        let (model, images) = try kerasModel()
        var explainer = try Explainer(model: model)
        var checked = 0
        for b in 0..<count {
            let image = Array(images[(b * 784)..<((b + 1) * 784)])
            let a = try explainer.explain(image, options: AttributionOptions(method: .integratedGradients, score: score,
                                                                              steps: steps, baseline: baseline))
            let total = a.map.reduce(0, +)
            let delta = a.score - a.baselineScore!
            if abs(delta) < 0.1 { continue }
            checked += 1
            #expect(abs(total - delta) <= tolerance * abs(delta), "image \(b) \(score) \(baseline) \(steps) steps: Σ = \(total), Δ = \(delta)")
        }
        #expect(checked * 4 >= count * 3, "only \(checked) of \(count) images moved the score by 0.1 or more")
    }

    /// Saliency and gradient × input are |g| and x·g of the batched gradient at x; the predicted class by default.
    @Test func saliencyAndGradientTimesInput() throws {
        let (model, images) = try kerasModel()
        var explainer = try Explainer(model: model)
        let image = Array(images[0..<784])
        var gws = model.makeGradientWorkspace(maxBatch: 1)
        var iws = model.makeWorkspace(maxBatch: 1)
        let predicted = Ranking.argmax(model.predict(image, count: 1, workspace: &iws))
        let g = try model.inputGradients(image, count: 1, targets: [predicted], workspace: &gws).gradients
        let sal = try explainer.explain(image, options: AttributionOptions(method: .saliency))
        let gxi = try explainer.explain(image, options: AttributionOptions(method: .gradientXInput))
        #expect(sal.target == predicted && gxi.target == predicted)
        // The Explainer's dense input gradient runs on packed transposed weights, the plain call on dot products
        // along the rows: the same sums in another order.
        for (a, b) in zip(sal.map, g.map { abs($0) }) { #expect(abs(a - b) <= 1e-6 + 1e-4 * abs(b)) }
        for (a, b) in zip(gxi.map, zip(image, g).map { $0 * $1 }) { #expect(abs(a - b) <= 1e-6 + 1e-4 * abs(b)) }
        #expect(sal.map.contains { $0 > 0 })
    }

    /// Occlusion with window = stride (each pixel in one window): the map is p(x) − p(occluded) where p of the
    /// occluded image comes from predict.
    @Test func occlusionEqualsPredictionsOfOccludedImages() throws {
        let (model, images) = try kerasModel()
        var explainer = try Explainer(model: model)
        let image = Array(images[784..<1568])
        let a = try explainer.explain(image, target: 3, options: AttributionOptions(method: .occlusion, window: 7, stride: 7, fill: 0))
        var iws = model.makeWorkspace(maxBatch: 1)
        let p = model.predict(image, count: 1, workspace: &iws)[3]
        for (y0, x0) in [(0, 0), (7, 14), (21, 21), (14, 7)] {
            var occluded = image
            for y in y0..<(y0 + 7) { for x in x0..<(x0 + 7) { occluded[y * 28 + x] = 0 } }
            let q = model.predict(occluded, count: 1, workspace: &iws)[3]
            #expect(abs(a.map[(y0 + 3) * 28 + x0 + 3] - (p - q)) <= 1e-6, "window at (\(y0), \(x0))")
        }
    }

    @Test func badOptionsAreSentences() throws {
        let (model, images) = try kerasModel()
        var explainer = try Explainer(model: model)
        let image = Array(images[0..<784])
        #expect(throws: EngineError.invalidInput("steps must be 1…1024, got 0")) {
            try explainer.explain(image, options: AttributionOptions(steps: 0))
        }
        #expect(throws: EngineError.invalidInput("window must be 1…28 pixels for a 28×28 input, got 29")) {
            try explainer.explain(image, options: AttributionOptions(method: .occlusion, window: 29))
        }
        #expect(throws: EngineError.invalidInput("target class 10 is not in 0…9")) {
            try explainer.explain(image, target: 10, options: AttributionOptions(method: .saliency))
        }
    }
}
