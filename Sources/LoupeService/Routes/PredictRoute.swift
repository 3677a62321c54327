// POST /predict: one or many images in, classes with labels, confidences, top-k and all
// probabilities out.
import LoupeEngine
import LoupeHTTP

struct PredictRoute: Sendable {
    let models: ModelResolver
    let inputs: InputPolicy
    let batcher: Batcher
    let recorder: PredictionRecorder
    /// `inference.default_top_k`.
    let defaultTopK: Int

    func handle(_ request: HTTPRequest, _ sink: any HTTPResponseSink) {
        inputs.offloadIfLarge(request) { [self] in handleNow(request, sink) }
    }

    func handleNow(_ request: HTTPRequest, _ sink: any HTTPResponseSink) {
        let started = monotonicNanoseconds()
        guard let routed = models.route(request, name: request.queryValue("model"), versionText: request.queryValue("version"), orAnswer: sink) else { return }
        let model = routed.model
        var topK = min(defaultTopK, model.outputCount)
        if let t = request.queryValue("top_k") {
            guard let k = Int(t), k >= 0, k <= model.outputCount else {
                return sink.respond(ServiceError.badRequest("invalid_parameter",
                                                            "top_k must be an integer from 0 to \(model.outputCount), received '\(echoed(t))'").response)
            }
            topK = k
        }
        guard let limits = inputs.limits(request, orAnswer: sink) else { return }
        let batch: DecodedBatch
        do { batch = try InputDecoding.predictBody(request, model: model, limits: limits) } catch {
            batcher.failed(model, startedAt: started)
            return sink.respond(error.response)
        }
        let requestID = request.id
        batcher.submit(batch, model: model, sink: sink, startedAt: started) { [recorder, topK] result in
            let classes = recorder.record(model: model, batch: batch, probabilities: result.probabilities, requestID: requestID,
                                          routed: routed, inferenceNanoseconds: result.inferenceNanoseconds)
            return .json(200, Self.response(model: model, probabilities: result.probabilities, classes: classes, topK: topK))
        }
    }

    /// `classes[i]` is row i's top class (< outputCount); its confidence is that probability.
    static func response(model: any InferenceModel, probabilities: [Float], classes: [Int], topK: Int) -> [UInt8] {
        let k = model.outputCount
        let labels = model.labels
        var w = JSONWriter(capacity: 256 + classes.count * (k * 14 + 64 + topK * 48))
        w.raw("{\"model\":"); w.string(model.name)
        w.raw(",\"model_version\":"); w.int(model.version)
        w.raw(",\"predictions\":[")
        var order = topK > 0 ? [Int](repeating: 0, count: k) : []
        // Each probability is formatted once per row and its text reused for the confidence and
        // the top-k entries (the same values): 10 float formats per image instead of 14. The texts
        // (at most 14 bytes each, "-1.1754944e-38") and where each ends live in scratch space on
        // the stack, not in arrays per response.
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: k * 16) { text in
            withUnsafeTemporaryAllocation(of: Int.self, capacity: k) { ends in
                for i in 0..<classes.count {
                    if i > 0 { w.raw(",") }
                    let row = probabilities[(i * k)..<((i + 1) * k)]
                    var used = 0
                    for j in 0..<k {
                        let v = row[row.startIndex + j]
                        if v.isFinite {
                            var d = v.description   // shortest round-trip text, as JSONWriter.float writes; a small string (no allocation)
                            d.withUTF8 { u in
                                _ = UnsafeMutableBufferPointer(rebasing: text[used..<used + u.count]).initialize(fromContentsOf: u)
                                used += u.count
                            }
                        } else {
                            for c in "null".utf8 { text[used] = c; used += 1 }
                        }
                        ends[j] = used
                    }
                    func probability(_ c: Int, into w: inout JSONWriter) {
                        let start = c == 0 ? 0 : ends[c - 1]
                        w.bytes.append(contentsOf: UnsafeBufferPointer(rebasing: text[start..<ends[c]]))
                    }
                    /// `{"class":c,"label":"…","confidence":` and the text of probability `c` (a confidence
                    /// is always that probability), written in place: no per-class arrays to build per response.
                    func entry(_ c: Int, into w: inout JSONWriter) {
                        w.raw("{\"class\":"); w.int(c)
                        w.raw(",\"label\":")
                        if c < labels.count { w.string(labels[c]) } else { w.raw("\""); w.int(c); w.raw("\"") }
                        w.raw(",\"confidence\":")
                        probability(c, into: &w)
                    }
                    entry(classes[i], into: &w)
                    w.raw(",\"top_k\":[")
                    if topK > 0 {
                        Ranking.top(topK, of: row, into: &order)
                        for j in 0..<topK {
                            if j > 0 { w.raw(",") }
                            entry(order[j], into: &w); w.raw("}")
                        }
                    }
                    w.raw("],\"probabilities\":[")
                    for j in 0..<k {
                        if j > 0 { w.raw(",") }
                        probability(j, into: &w)
                    }
                    w.raw("]}")
                }
            }
        }
        w.raw("]}")
        return w.bytes
    }
}
