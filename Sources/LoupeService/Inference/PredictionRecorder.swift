// What the service learns from every answered batch: the top-1 class of each row and its
// confidence (the prediction metrics), the inputs with their predicted classes (the model's
// drift window, through the `InferenceModel` seam), and the request's predictions kept by its
// X-Request-ID for later ground truth (Lifecycle/PredictionWindow.swift), and a sample of them
// for the captured data set (Lifecycle/Capture.swift); and, for a model with a candidate version
// (safe promotion), the answer's forward-pass time and a sampled copy for the shadow worker
// (Lifecycle/ShadowRunner.swift), which classifies it with the other version off the request path.
import LoupeEngine

struct PredictionRecorder: Sendable {
    let metrics: ServiceMetrics
    /// Recent predictions by request id (`feedback.window`).
    let window: PredictionWindow
    /// Sampled requests written as IDX sets (`capture.*`, off by default).
    let capture: CaptureStore
    /// The other version of a promotion pair, off the request path (`promotion.*`).
    let shadow: ShadowRunner

    /// Records the batch and returns each row's top class (its confidence is that probability).
    /// `requestID` is the request's X-Request-ID (set by RequestInstrumentation).
    /// `routed`: how the request was routed (safe promotion; nil for routes without routing);
    /// `inferenceNanoseconds`: the answer's forward pass.
    func record(model: any InferenceModel, batch: DecodedBatch, probabilities: [Float], requestID: String?,
                routed: RoutedModel? = nil, inferenceNanoseconds: UInt64 = 0) -> [Int] {
        let k = model.outputCount
        let (classes, confidences) = Self.top1(probabilities, count: batch.count, classes: k)
        if let routed {
            shadow.answered(routed, batch: batch, classes: classes, requestID: requestID, inferenceNanoseconds: inferenceNanoseconds)
        }
        metrics.recordPredictions(model: model.name, labels: model.labels, classes: classes, confidences: confidences)
        if let pixels = batch.pixels {
            model.observe(pixels: pixels, predictedClasses: classes)
        } else {
            model.observe(normalized: batch.input, predictedClasses: classes)
        }
        guard let requestID else { return classes }
        let now = Double(monotonicNanoseconds()) / 1e9
        if window.isEnabled {
            window.record(id: requestID, RecentPrediction(model: model.name, version: model.version, classCount: k,
                                                          classes: classes, confidences: confidences, at: now))
        }
        if capture.isEnabled {
            capture.offer(requestID: requestID, model: model.name, version: model.version, shape: model.inputShape, classCount: k,
                          pixels: { batch.pixels ?? model.normalization.pixels(fromNormalized: batch.input) },
                          classes: classes, confidences: confidences, now: now)
        }
        return classes
    }

    /// Each row's top class and its probability (`count` rows of `classes` probabilities).
    static func top1(_ probabilities: [Float], count: Int, classes k: Int) -> (classes: [Int], confidences: [Float]) {
        var classes = [Int](); classes.reserveCapacity(count)
        var confidences = [Float](); confidences.reserveCapacity(count)
        for i in 0..<count {
            let row = probabilities[(i * k)..<((i + 1) * k)]
            let best = Ranking.argmax(row)
            classes.append(best); confidences.append(row[row.startIndex + best])
        }
        return (classes, confidences)
    }
}
