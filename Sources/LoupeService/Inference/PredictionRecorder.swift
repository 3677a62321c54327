// What the service learns from every answered batch: the top-1 class of each row and its
// confidence (the prediction metrics), and the inputs with their predicted classes (the model's
// drift window, through the `InferenceModel` seam).
import LoupeEngine

struct PredictionRecorder: Sendable {
    let metrics: ServiceMetrics

    /// Records the batch and returns each row's top class (its confidence is that probability).
    func record(model: any InferenceModel, batch: DecodedBatch, probabilities: [Float]) -> [Int] {
        let k = model.outputCount
        var classes = [Int](); classes.reserveCapacity(batch.count)
        var confidences = [Float](); confidences.reserveCapacity(batch.count)
        for i in 0..<batch.count {
            let row = probabilities[(i * k)..<((i + 1) * k)]
            let best = Ranking.argmax(row)
            classes.append(best); confidences.append(row[row.startIndex + best])
        }
        metrics.recordPredictions(model: model.name, labels: model.labels, classes: classes, confidences: confidences)
        if let pixels = batch.pixels {
            model.observe(pixels: pixels, predictedClasses: classes)
        } else {
            model.observe(normalized: batch.input, predictedClasses: classes)
        }
        return classes
    }
}
