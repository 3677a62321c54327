// POST /explain: every body /predict takes in; per image the explained class, its probability and an
// attribution map of the input's H × W (× C) out — or, with ?format=png, the heatmap of one image.
// The work runs on the inference workers through the same bounded queue as predictions.
import LoupeData
import LoupeEngine
import LoupeHTTP

struct ExplainRoute: Sendable {
    let models: ModelResolver
    let inputs: InputPolicy
    let batcher: Batcher
    let metrics: ServiceMetrics
    /// `inference.max_explain_passes`: the network passes (images × passes per image) one request may cost.
    let maxPasses: Int

    enum Format: Sendable { case json, png }

    func handle(_ request: HTTPRequest, _ sink: any HTTPResponseSink) {
        inputs.offloadIfLarge(request, sink, self) { $0.handleNow($1, $2) }
    }

    func handleNow(_ request: HTTPRequest, _ sink: any HTTPResponseSink) {
        let started = monotonicNanoseconds()
        // Routed like /predict, so a canary client's explanation comes from the version that answers
        // its predictions; explanations are not promotion evidence (no shadow copy, no latency sample).
        guard let model = models.route(request, name: request.queryValue("model"), versionText: request.queryValue("version"), orAnswer: sink)?.model else { return }
        let explanation: ExplanationRequest, format: Format
        do throws(ServiceError) {
            (explanation, format) = try Self.parse(request, model: model)
        } catch { return sink.respond(error.response) }
        guard let limits = inputs.limits(request, orAnswer: sink) else { return }
        let batch: DecodedBatch
        do { batch = try InputDecoding.predictBody(request, model: model, limits: limits) } catch {
            return sink.respond(error.response)
        }
        explain(batch, model: model, explanation: explanation, format: format, sink: sink, startedAt: started)
    }

    /// Queues a decoded batch's explanation and answers JSON or the PNG heatmap (also the entry of the
    /// KServe v1 `…:explain` path, Routes/V1PredictRoutes.swift).
    func explain(_ batch: DecodedBatch, model: any InferenceModel, explanation: ExplanationRequest, format: Format,
                 sink: any HTTPResponseSink, startedAt started: UInt64) {
        if format == .png && batch.count != 1 {
            return sink.respond(ServiceError.badRequest("invalid_parameter",
                                                        "format=png draws one image's heatmap; the request holds \(batch.count) images (use JSON for several)").response)
        }
        let perImage = explanation.passesPerImage(height: model.imageHeight, width: model.imageWidth)
        let (passes, overflow) = batch.count.multipliedReportingOverflow(by: perImage)
        if overflow || passes > maxPasses {
            return sink.respond(ServiceError(status: 413, code: "explanation_too_large",
                                             "this explanation would cost \(batch.count) image\(batch.count == 1 ? "" : "s") × \(perImage) network passes = \(passes) passes, over inference.max_explain_passes (\(maxPasses)); send fewer images, fewer steps, or a larger window or stride").response)
        }
        let method = explanation.options.method.rawValue
        batcher.submit(batch, model: model, sink: sink, startedAt: started, explanation: explanation) { [metrics] result in
            switch result.explanation {
            case .success(let attributions)?:
                metrics.explanations.labels(method).add(Double(attributions.count))
                metrics.explanationSeconds.labels(method).observe(Double(result.inferenceNanoseconds) / 1e9)
                switch format {
                case .json: return .json(200, Self.response(model: model, request: explanation, attributions: attributions))
                case .png:
                    let pixels = batch.pixels ?? model.normalization.pixels(fromNormalized: batch.input)
                    let png = AttributionHeatmap.png(pixels: pixels, attributions: attributions[0].map, width: model.imageWidth,
                                                     height: model.imageHeight, channels: model.imageChannels)
                    let a = attributions[0]
                    return HTTPResponse(status: 200, headers: HTTPHeaders([
                        ("Content-Type", "image/png"),
                        ("X-Loupe-Class", String(a.target)),
                        ("X-Loupe-Probability", String(a.probabilities[a.target])),
                        (ModelResolver.versionHeader, String(model.version)),
                    ]), body: png)
                }
            case .failure(let error)?:
                return error.response
            case nil:
                return ServiceError.internalError.response
            }
        }
    }

    /// The query: method, output, target, steps/baseline (integrated gradients), window/stride (occlusion), format.
    static func parse(_ request: HTTPRequest, model: any InferenceModel) throws(ServiceError) -> (ExplanationRequest, Format) {
        func bad(_ s: String) -> ServiceError { .badRequest("invalid_parameter", s) }
        var options = AttributionOptions()
        let black = model.normalization.offset  // pixel 0 → 0 · scale + offset
        options.fill = black
        options.baseline = .constant(black)
        if let m = request.queryValue("method") {
            guard let method = AttributionMethod(rawValue: m) else {
                throw bad("method must be integrated_gradients, saliency, gradient_x_input or occlusion, received '\(echoed(m))'")
            }
            options.method = method
        }
        if let o = request.queryValue("output") {
            guard let score = ExplainedScore(rawValue: o) else { throw bad("output must be probability or logit, received '\(echoed(o))'") }
            options.score = score
        }
        var target: Int?
        if let t = request.queryValue("target") {
            guard let k = Int(t), k >= 0, k < model.outputCount else {
                throw bad("target must be a class from 0 to \(model.outputCount - 1), received '\(echoed(t))'")
            }
            target = k
        }
        func integer(_ name: String, _ range: ClosedRange<Int>, for method: AttributionMethod) throws(ServiceError) -> Int? {
            guard let v = request.queryValue(name) else { return nil }
            guard options.method == method else { throw bad("\(name) applies to method=\(method.rawValue) only") }
            guard let n = Int(v), range.contains(n) else {
                throw bad("\(name) must be an integer from \(range.lowerBound) to \(range.upperBound), received '\(echoed(v))'")
            }
            return n
        }
        if let steps = try integer("steps", 1...AttributionOptions.maxSteps, for: .integratedGradients) { options.steps = steps }
        if let b = request.queryValue("baseline") {
            guard options.method == .integratedGradients else { throw bad("baseline applies to method=integrated_gradients only") }
            switch b {
            case "black": options.baseline = .constant(black)
            case "blur": options.baseline = .blur(sigma: blurSigma(model))
            default: throw bad("baseline must be black or blur, received '\(echoed(b))'")
            }
        }
        let side = min(model.imageHeight, model.imageWidth)
        if let w = try integer("window", 1...side, for: .occlusion) { options.window = w }
        if let s = try integer("stride", 1...side, for: .occlusion) { options.stride = s }
        var format = Format.json
        if let f = request.queryValue("format") {
            switch f {
            case "json": format = .json
            case "png": format = .png
            default: throw bad("format must be json or png, received '\(echoed(f))'")
            }
        }
        return (ExplanationRequest(options: options, target: target), format)
    }

    /// The blur baseline's σ: a seventh of the longer image side (4 pixels on 28 × 28).
    static func blurSigma(_ model: any InferenceModel) -> Float {
        max(1, Float(max(model.imageHeight, model.imageWidth)) / 7)
    }

    static func response(model: any InferenceModel, request: ExplanationRequest, attributions: [Attribution]) -> [UInt8] {
        let o = request.options
        let h = model.imageHeight, w = model.imageWidth, c = model.imageChannels
        var j = JSONWriter(capacity: 256 + attributions.count * (h * w * c * 12 + 256))
        j.raw("{\"model\":"); j.string(model.name)
        j.raw(",\"model_version\":"); j.int(model.version)
        j.raw(",\"method\":"); j.string(o.method.rawValue)
        j.raw(",\"output\":"); j.string(o.score.rawValue)
        switch o.method {
        case .integratedGradients:
            j.raw(",\"steps\":"); j.int(o.steps)
            if case .blur = o.baseline { j.raw(",\"baseline\":\"blur\"") } else { j.raw(",\"baseline\":\"black\"") }
        case .occlusion:
            j.raw(",\"window\":"); j.int(o.window); j.raw(",\"stride\":"); j.int(o.stride)
        case .saliency, .gradientXInput:
            break
        }
        j.raw(",\"shape\":["); j.int(h); j.raw(","); j.int(w); j.raw(","); j.int(c); j.raw("]")
        j.raw(",\"explanations\":[")
        let labels = model.labels
        for (i, a) in attributions.enumerated() {
            if i > 0 { j.raw(",") }
            let predicted = Ranking.argmax(a.probabilities)
            j.raw("{\"class\":"); j.int(a.target)
            j.raw(",\"label\":"); j.string(a.target < labels.count ? labels[a.target] : String(a.target))
            j.raw(",\"probability\":"); j.float(a.probabilities[a.target])
            j.raw(",\"predicted_class\":"); j.int(predicted)
            j.raw(",\"score\":"); j.float(a.score)
            if let b = a.baselineScore { j.raw(",\"baseline_score\":"); j.float(b) }
            j.raw(",\"attribution_sum\":"); j.double(a.map.reduce(0.0) { $0 + Double($1) })
            j.raw(",\"attributions\":[")
            for y in 0..<h {
                if y > 0 { j.raw(",") }
                j.raw("[")
                for x in 0..<w {
                    if x > 0 { j.raw(",") }
                    if c == 1 { j.float(a.map[y * w + x]); continue }
                    j.raw("[")
                    for ch in 0..<c { if ch > 0 { j.raw(",") }; j.float(a.map[(y * w + x) * c + ch]) }
                    j.raw("]")
                }
                j.raw("]")
            }
            j.raw("]}")
        }
        j.raw("]}")
        return j.bytes
    }
}
