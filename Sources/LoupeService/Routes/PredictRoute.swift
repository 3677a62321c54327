// POST /predict: one or many images in, classes with labels, confidences, top-k and all
// probabilities out.
import LoupeEngine
import LoupeHTTP
import Synchronization

struct PredictRoute: Sendable {
    let models: ModelResolver
    let inputs: InputPolicy
    let batcher: Batcher
    let recorder: PredictionRecorder
    /// `inference.default_top_k`.
    let defaultTopK: Int

    func handle(_ request: HTTPRequest, _ sink: any HTTPResponseSink) {
        inputs.offloadIfLarge(request, sink, self) { $0.handleNow($1, $2) }
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
        batcher.submit(batch, model: model, sink: sink, startedAt: started,
                       responder: Responder(recorder: recorder, texts: texts, batch: batch, routed: routed, requestID: request.id, topK: topK))
    }

    /// Records the answered batch and writes the response (carried inside the job: no closure).
    struct Responder: PredictionResponder {
        let recorder: PredictionRecorder
        let texts: ModelTexts
        let batch: DecodedBatch
        let routed: RoutedModel
        let requestID: String?
        let topK: Int

        func response(_ result: InferenceResult) -> HTTPResponse {
            let model = routed.model
            let classes = recorder.record(model: model, batch: batch, probabilities: result.probabilities, requestID: requestID,
                                          routed: routed, inferenceNanoseconds: result.inferenceNanoseconds)
            return .json(200, PredictRoute.response(model: model, probabilities: result.probabilities, classes: classes, topK: topK, texts: texts))
        }
    }

    /// The JSON texts of the model's name and labels, escaped once per model, not per response.
    let texts = ModelTexts()

    /// `classes[i]` is row i's top class (< outputCount); its confidence is that probability.
    /// Written straight into a buffer sized for the worst case (no growth, no append per part):
    /// each probability formatted once per row, its text reused for the confidence and the top-k
    /// entries (10 float formats per image instead of 14); strings from `texts`.
    static func response(model: any InferenceModel, probabilities: [Float], classes: [Int], topK: Int,
                         texts: ModelTexts = ModelTexts()) -> [UInt8] {
        let k = model.outputCount
        let (name, labels) = texts.of(model)
        let longestLabel = max(labels.reduce(0) { max($0, $1.count) }, 22)   // an unnamed class: its index, quoted
        let entryBound = 40 + 20 + longestLabel + 16   // {"class":…,"label":…,"confidence":…}
        let rowBound = 64 + k * 16 + (1 + topK) * entryBound
        let bound = 64 + name.count + 20 + classes.count * rowBound
        return withUnsafeTemporaryAllocation(of: Int.self, capacity: 2 * k) { scratch in
            let ends = UnsafeMutableBufferPointer(rebasing: scratch[0..<k]), order = UnsafeMutableBufferPointer(rebasing: scratch[k...])
            return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: k * 16) { text in
                [UInt8](unsafeUninitializedCapacity: bound) { out, written in
                    var o = ByteCursor(out)
                    o.put("{\"model\":"); o.put(name)
                    o.put(",\"model_version\":"); o.put(model.version)
                    o.put(",\"predictions\":[")
                    for i in 0..<classes.count {
                        if i > 0 { o.put(",") }
                        let row = probabilities[(i * k)..<((i + 1) * k)]
                        var used = 0
                        for j in 0..<k {
                            let v = row[row.startIndex + j]
                            if v.isFinite {
                                var d = v.description   // shortest round-trip text, as JSONWriter.float writes; ≤ 14 bytes: a small string
                                let from = used
                                used += d.withUTF8 { u in
                                    UnsafeMutableBufferPointer(rebasing: text[from..<from + u.count]).initialize(fromContentsOf: u)
                                }
                            } else {
                                for c in "null".utf8 { text[used] = c; used += 1 }
                            }
                            ends[j] = used
                        }
                        func probability(_ c: Int, _ o: inout ByteCursor) { o.put(UnsafeBufferPointer(rebasing: text[(c == 0 ? 0 : ends[c - 1])..<ends[c]])) }
                        /// `{"class":c,"label":"…","confidence":` and the text of probability `c` (a
                        /// confidence is always that probability).
                        func entry(_ c: Int, _ o: inout ByteCursor) {
                            o.put("{\"class\":"); o.put(c)
                            o.put(",\"label\":")
                            if c < labels.count { o.put(labels[c]) } else { o.put("\""); o.put(c); o.put("\"") }
                            o.put(",\"confidence\":")
                            probability(c, &o)
                        }
                        entry(classes[i], &o)
                        o.put(",\"top_k\":[")
                        if topK > 0 {
                            row.withUnsafeBufferPointer { Ranking.top(topK, of: $0, into: order) }
                            for j in 0..<topK {
                                if j > 0 { o.put(",") }
                                entry(order[j], &o); o.put("}")
                            }
                        }
                        o.put("],\"probabilities\":[")
                        for j in 0..<k {
                            if j > 0 { o.put(",") }
                            probability(j, &o)
                        }
                        o.put("]}")
                    }
                    o.put("]}")
                    written = o.count
                }
            }
        }
    }
}

/// A model's name and labels as JSON string literals (JSONWriter's escaping), made once per model:
/// the last model asked for is kept, weakly (an unloaded version is not held alive by this), and a
/// request for another one makes its texts anew.
final class ModelTexts: Sendable {
    private final class Entry: @unchecked Sendable {   // immutable but for `model`, which only the weak reference clears
        weak var model: (any InferenceModel)?
        let name: [UInt8]
        let labels: [[UInt8]]
        init(model: any InferenceModel, name: [UInt8], labels: [[UInt8]]) { self.model = model; self.name = name; self.labels = labels }
    }
    private let latest = Mutex<Entry?>(nil)

    func of(_ model: any InferenceModel) -> (name: [UInt8], labels: [[UInt8]]) {
        if let hit = latest.withLock({ e -> Entry? in e?.model === model ? e : nil }) { return (hit.name, hit.labels) }
        func literal(_ s: String) -> [UInt8] { var w = JSONWriter(capacity: s.utf8.count + 2); w.string(s); return w.bytes }
        let made = Entry(model: model, name: literal(model.name), labels: model.labels.map(literal))
        latest.withLock { $0 = made }
        return (made.name, made.labels)
    }
}

/// The /predict body's pieces that ByteCursor (LoupeHTTP) does not write itself: pre-escaped texts
/// and signed numbers.
private extension ByteCursor {
    mutating func put(_ bytes: [UInt8]) { bytes.withUnsafeBufferPointer { put($0) } }
    mutating func put(_ v: Int) {
        if v < 0 { put(UInt8(ascii: "-")) }
        putDecimal(v.magnitude)
    }
}
