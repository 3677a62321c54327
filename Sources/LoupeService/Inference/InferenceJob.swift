// What a request hands the batcher and gets back: an `InferenceJob` (one request's images for one
// model, with its completion; Batcher.swift queues it, a worker or an event loop runs it) and the
// `InferenceResult` it completes with.
import LoupeData
import LoupeEngine

/// Timings and outputs for one request.
public struct InferenceResult: Sendable {
    /// `count × outputCount` probabilities (softmax of `outputs` when the model ends in logits).
    public var probabilities: [Float]
    /// `count × outputCount` network outputs as the graph computes them: the same array as
    /// `probabilities` for a softmax-last model, logits otherwise (what v2 infer returns).
    public var outputs: [Float] = []
    public var queueNanoseconds: UInt64
    public var inferenceNanoseconds: UInt64
    /// Images in the forward pass this request was part of.
    public var batchSize: Int
    /// For an explain job: one attribution per image, or why there are none.
    public var explanation: Result<[Attribution], ServiceError>? = nil
}

/// One queued request. A route's job (`ResponderJob`, Routes/RouteSupport.swift) is a subclass
/// that completes itself, so that a request's job, its completion and what the route needs to
/// answer are one allocation, not a job plus closure contexts.
public class InferenceJob: @unchecked Sendable {
    public let model: any InferenceModel
    /// The input: model-ready floats, or 8-bit pixels normalized (by `model.normalization`) where
    /// the forward pass gathers its batch (`appendInput`), or by `input`.
    let floats: [Float]?
    let pixels: [UInt8]?
    public let count: Int
    /// Set for an explain job: it runs alone, and counts as `weight` images in the queue.
    public let explanation: ExplanationRequest?
    /// Queue slots the job holds: its images, times the network passes per image for an explanation.
    public let weight: Int
    let enqueuedAt: UInt64
    private let completion: (@Sendable (InferenceResult) -> Void)?

    /// `input` holds `count × model.inputCount` model-ready floats.
    public convenience init(model: any InferenceModel, input: [Float], count: Int,
                            completion: @escaping @Sendable (InferenceResult) -> Void) {
        self.init(model: model, floats: input, pixels: nil, count: count, explanation: nil, enqueuedAt: monotonicNanoseconds(), completion: completion)
    }

    /// An explain job: `count` images explained one after another on one worker.
    public convenience init(model: any InferenceModel, input: [Float], count: Int, explanation: ExplanationRequest,
                            completion: @escaping @Sendable (InferenceResult) -> Void) {
        self.init(model: model, floats: input, pixels: nil, count: count, explanation: explanation, enqueuedAt: monotonicNanoseconds(), completion: completion)
    }

    /// `floats`, or else `pixels` (normalized by the model's normalization), hold `count ×
    /// model.inputCount` values. `enqueuedAt`: monotonic ns, the queue wait's start. A subclass
    /// passes no `completion` and overrides `complete`.
    init(model: any InferenceModel, floats: [Float]?, pixels: [UInt8]?, count: Int, explanation: ExplanationRequest?, enqueuedAt: UInt64,
         completion: (@Sendable (InferenceResult) -> Void)?) {
        precondition((floats?.count ?? pixels?.count) == count * model.inputCount, "input size does not match count")
        self.model = model; self.count = count
        self.floats = floats; self.pixels = floats == nil ? pixels : nil
        self.explanation = explanation
        self.weight = explanation.map { count * $0.passesPerImage(height: model.imageHeight, width: model.imageWidth) } ?? count
        self.enqueuedAt = enqueuedAt; self.completion = completion
    }

    /// `count × model.inputCount` model-ready floats.
    var input: [Float] { floats ?? model.normalization.apply(pixels!) }

    /// Appends the model-ready input to `buffer` (pixels are normalized straight into it).
    func appendInput(to buffer: inout [Float]) {
        if let floats { buffer.append(contentsOf: floats) } else { model.normalization.append(pixels!, to: &buffer) }
    }

    /// Completes the job with its result, on the worker (or event loop) that ran it.
    func complete(_ result: InferenceResult) { completion?(result) }
}
