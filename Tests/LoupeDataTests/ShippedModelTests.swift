import Testing
import LoupeEngine
@testable import LoupeData

/// The default model committed in models/fashion/1 must stay readable and must still pass its
/// own self-test with the current engine (a kernel change that moves its outputs would make
/// the server refuse it).
@Suite struct ShippedModelTests {
    static let path = SupportingTypesTests.repositoryRoot + "/models/fashion/1/model.loupe"

    @Test func shippedModelIsValidAndMatchesTheDocumentedLayout() throws {
        let bytes = try FileIO.readFile(Self.path)
        let file = try ModelFile.decode(bytes: bytes)
        #expect(file.header.architecture == .seed)
        #expect(file.header.labels == ClassNames.fashionMNIST)
        #expect(file.header.training.seed == 42 && file.header.training.epochs == 10)
        #expect((file.header.training.testAccuracy ?? 0) >= 0.893)
        // docs/model-format.md §1's worked example.
        #expect(ModelFile.readUInt32(bytes, 12) == 14_593)
        #expect(bytes.count == 2_790_536)
        #expect(file.sha256Hex == "1382a202081616ea093972b357fdca72b5957ec21540dc66afd59d07ffd388c1")
    }

    @Test(arguments: [1, 2])
    func goldenSamplesReproduceWithTheCurrentEngine(threads: Int) throws {
        let file = try ModelFile.read(path: Self.path)
        let model = try file.makeModel()
        let golden = file.header.goldenSamples
        #expect(golden.count == 10)
        var workspace = model.makeWorkspace(maxBatch: golden.count)
        let input = file.header.normalization.apply(golden.flatMap(\.pixels))
        let p = model.predict(input, count: golden.count, workspace: &workspace, threads: threads)
        for (i, g) in golden.enumerated() {
            let row = Array(p[i * 10..<(i + 1) * 10])
            let best = row.indices.max { row[$0] < row[$1] }!
            #expect(best == g.expectedClass)
            let worst = zip(row, g.probabilities).map { abs($0 - $1) }.max()!
            #expect(worst <= 1e-4, "golden sample \(i) differs by \(worst)")
        }
    }

    /// Integrated gradients on the shipped model (issue 13): Σ attributions = score(x) − score(baseline) within 1% at
    /// 64 steps, probability and logit, black and blur baselines, on the first 24 Fashion-MNIST test images whose
    /// score moves by 0.1 or more (apt dataset-fashion-mnist).
    @Test(arguments: [ExplainedScore.probability, .logit], [AttributionBaseline.constant(0), .blur(sigma: 4)])
    func integratedGradientsAreCompleteAt64Steps(_ score: ExplainedScore, _ baseline: AttributionBaseline) throws {
        let file = try ModelFile.read(path: Self.path)
        var explainer = try Explainer(model: try file.makeModel())
        let test = try IDXDataset.load(directory: "/usr/share/datasets/fashion-mnist", split: .test)
        // The black baseline is the normalized value of a black pixel.
        let black = file.header.normalization.apply([0])[0]
        let base: AttributionBaseline = baseline == .constant(0) ? .constant(black) : baseline
        var checked = 0, worst: Float = 0
        for i in 0..<40 where checked < 24 {
            let image = file.header.normalization.apply(Array(test.images[(i * 784)..<((i + 1) * 784)]))
            let a = try explainer.explain(image, options: AttributionOptions(method: .integratedGradients, score: score, steps: 64, baseline: base))
            let delta = a.score - a.baselineScore!
            guard abs(delta) >= 0.1 else { continue }
            checked += 1
            let error = abs(a.map.reduce(0, +) - delta) / abs(delta)
            worst = max(worst, error)
            #expect(error <= 0.01, "test image \(i) \(score) \(baseline): Σ = \(a.map.reduce(0, +)), Δ = \(delta)")
        }
        #expect(checked >= 18, "only \(checked) of 40 images moved the score by 0.1")
        print("shipped model, IG 64 steps, \(score) \(baseline): worst completeness error \(worst) over \(checked) images")
    }
}
