// Finite inputs can still overflow inside a network (FP32 infer data of −3.4e38 everywhere on the
// shipped model makes every probability NaN). Such an answer is no prediction: every route that
// answers predictions or explanations (they all complete through `Batcher.submit`) answers 422
// `non_finite_output` instead, before the route records anything (metrics, drift, the feedback
// window, capture, the shadow copy).
import LoupeData
import LoupeEngine

enum NonFiniteOutputs {
    /// The 422 for `result` when one of its images' outputs (probabilities and the graph's outputs;
    /// for an explanation its probabilities, score and attribution map) is NaN or infinite, else nil.
    static func check(_ result: InferenceResult, model: any InferenceModel, count: Int) -> ServiceError? {
        switch result.explanation {
        case .success(let attributions)?:
            for (i, a) in attributions.enumerated()
            where !allFinite(a.probabilities[...]) || !a.score.isFinite || a.baselineScore?.isFinite == false || !allFinite(a.map[...]) {
                return error(image: i, count: attributions.count, model: model)
            }
            return nil
        case .failure?:
            return nil
        case nil:
            let k = model.outputCount
            guard k > 0 else { return nil }
            for rows in [result.probabilities, result.outputs] where !allFinite(rows[...]) {
                let i = rows.indices.first { !rows[$0].isFinite }! / k
                return error(image: i, count: count, model: model)
            }
            return nil
        }
    }

    static func allFinite(_ values: ArraySlice<Float>) -> Bool {
        // One pass without a branch per value: a NaN or ±infinity makes the product of zeros NaN.
        var zero: Float = 0
        for v in values { zero += v * 0 }
        return zero == 0
    }

    /// The sentence: which image, and the model-ready range 8-bit pixels give under the model's normalization.
    static func error(image: Int, count: Int, model: any InferenceModel) -> ServiceError {
        let n = model.normalization
        let a = n.offset, b = 255 * n.scale + n.offset
        func short(_ x: Float) -> String { "\((Double(x) * 10_000).rounded() / 10_000 + 0)" }   // 1.0, not 1.0000001
        let which = count == 1 ? "the input" : "image \(image) of \(count)"
        return ServiceError(status: 422, code: "non_finite_output",
                            "\(which) drove the model's outputs to NaN or infinity (the values overflowed inside the network), so there is no prediction; "
                            + "this model expects model-ready values from \(short(min(a, b))) to \(short(max(a, b))) (pixels 0-255 × \(n.scale) + \(n.offset)): "
                            + "send pixels (an image, UINT8) or FP32 values in that range")
    }
}
