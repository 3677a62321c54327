import LoupeEngine

/// Why a model failed its golden-sample self-test: one sentence, as the server logs it after
/// `self-test: ` and as `loupe inspect` prints it.
public struct SelfTestFailure: Error, CustomStringConvertible, Sendable, Equatable {
    public var message: String
    public var description: String { message }
    public init(_ message: String) { self.message = message }
}

extension ModelFile {
    /// The largest allowed difference of a golden sample's class probability from the recorded
    /// one (the server's `models.self_test_tolerance` default).
    public static let defaultSelfTestTolerance: Float = 1e-4

    /// The load-time self-test (docs/model-format.md §6): runs `model` on the golden samples of
    /// `header`; every predicted class must equal the recorded one and every probability must be
    /// within `tolerance` of it. A header without golden samples fails: a file that cannot test
    /// itself is not served unless the self-test is turned off.
    public static func selfTest(model: Sequential, header: ModelHeader, tolerance: Float = defaultSelfTestTolerance) throws(SelfTestFailure) {
        let samples = header.goldenSamples
        guard !samples.isEmpty else {
            throw SelfTestFailure("the file has no golden samples to test with (set models.self_test: false to serve it anyway)")
        }
        let inputCount = model.inputCount, outputs = model.outputCount
        var input = [Float](repeating: 0, count: samples.count * inputCount)
        for (i, sample) in samples.enumerated() {
            guard sample.pixels.count == inputCount, sample.probabilities.count == outputs else {
                throw SelfTestFailure("golden sample \(i) has \(sample.pixels.count) pixels and \(sample.probabilities.count) probabilities; the network takes \(inputCount) and gives \(outputs)")
            }
            header.normalization.apply(sample.pixels[...], into: &input, at: i * inputCount)
        }
        var workspace = model.makeWorkspace(maxBatch: samples.count)
        // The network's own outputs: probabilities for a softmax-last network, raw logits otherwise.
        let probabilities = model.outputs(input, count: samples.count, workspace: &workspace, threads: 1)
        for (i, sample) in samples.enumerated() {
            let row = probabilities[(i * outputs)..<((i + 1) * outputs)]
            let predicted = Ranking.argmax(row)
            guard predicted == sample.expectedClass else {
                throw SelfTestFailure("golden sample \(i): predicted class \(predicted), the file records \(sample.expectedClass)")
            }
            var worst: Float = 0
            for k in 0..<outputs {
                let d = abs(row[row.startIndex + k] - sample.probabilities[k])
                if d.isNaN { worst = .infinity } else if d > worst { worst = d }
            }
            guard worst <= tolerance else {
                throw SelfTestFailure("golden sample \(i): a probability differs from the recorded one by \(worst), over the tolerance \(tolerance)")
            }
        }
    }
}
