// Triton's extensions to KServe v2 that dashboards and scripts written for Triton call:
//   GET /v2/models/stats, /v2/models/{m}/stats, /v2/models/{m}/versions/{v}/stats   (statistics)
//   GET /v2/models/{m}/config, /v2/models/{m}/versions/{v}/config                    (model_configuration)
// in Triton's JSON shapes. The counters are the batcher's (Inference/InferenceStatistics.swift).
import LoupeHTTP

struct OIPStatisticsRoutes: Sendable {
    let models: ModelResolver
    let provider: any ModelProvider
    let statistics: InferenceStatistics
    /// `limits.max_images_per_request`: the most images one request may carry (Triton's max_batch_size).
    let maxImagesPerRequest: Int
    /// `batching.max_batch_size` and `batching.max_queue_delay_us`: the dynamic batcher's settings.
    let maxBatchSize: Int
    let maxQueueDelayMicroseconds: Int
    /// Inference worker threads (`inference.workers`, resolved): Triton's instance count.
    let workers: Int

    // MARK: statistics

    func stats(_ request: HTTPRequest, _ sink: any HTTPResponseSink) {
        let name = request.pathParameters["m"]
        var selected: [any InferenceModel]
        if let name, let version = request.pathParameters["v"] {
            switch models.resolve(name: name, versionText: version) {
            case .success(let m): selected = [m]
            case .failure(let e): return sink.respond(e.response)
            }
        } else {
            selected = provider.servedModels().filter { name == nil || $0.name == name }
            if let name, selected.isEmpty {
                if case .failure(let e) = models.resolve(name: name, versionText: nil) { return sink.respond(e.response) }
                return sink.respond(ServiceError.modelNotFound(name, version: nil).response)
            }
        }
        selected.sort { ($0.name, $0.version) < ($1.name, $1.version) }
        var w = JSONWriter(capacity: 128 + selected.count * 512)
        w.raw("{"); w.key("model_stats"); w.raw("[")
        for (i, model) in selected.enumerated() {
            if i > 0 { w.raw(",") }
            Self.write(statistics.snapshot(name: model.name, version: model.version), into: &w)
        }
        w.raw("]}")
        sink.respond(.json(200, w.bytes))
    }

    /// One `model_stats[]` entry in Triton's shape.
    static func write(_ s: ModelVersionStatisticsSnapshot, into w: inout JSONWriter) {
        func duration(_ key: String, _ d: StatisticDuration) {
            w.key(key); w.raw("{"); w.key("count"); w.int(Int(clamping: d.count))
            w.raw(","); w.key("ns"); w.int(Int(clamping: d.ns)); w.raw("}")
        }
        w.raw("{"); w.key("name"); w.string(s.name)
        w.raw(","); w.key("version"); w.string(String(s.version))
        w.raw(","); w.key("last_inference"); w.int(Int(clamping: s.lastInferenceMilliseconds))
        w.raw(","); w.key("inference_count"); w.int(Int(clamping: s.inferenceCount))
        w.raw(","); w.key("execution_count"); w.int(Int(clamping: s.executionCount))
        w.raw(","); w.key("inference_stats"); w.raw("{")
        duration("success", s.success); w.raw(",")
        duration("fail", s.fail); w.raw(",")
        duration("queue", s.queue); w.raw(",")
        duration("compute_input", s.computeInput); w.raw(",")
        duration("compute_infer", s.computeInfer); w.raw(",")
        duration("compute_output", s.computeOutput)
        w.raw("}}")
    }

    // MARK: model configuration

    func config(_ request: HTTPRequest, _ sink: any HTTPResponseSink) {
        guard let model = models.resolve(name: request.pathParameters["m"], versionText: request.pathParameters["v"], orAnswer: sink) else { return }
        let dims: [JSONValue] = model.tensorInputShape.map { .number(JSONNumber(Double($0))) }
        let config: JSONValue = .object([
            ("name", .string(model.name)),
            ("platform", .string("loupe")),
            ("max_batch_size", .number(JSONNumber(Double(maxImagesPerRequest)))),
            ("input", .array([.object([("name", .string(model.inputTensorName)), ("data_type", .string("TYPE_FP32")),
                                       ("format", .string(model.inputShape.count == 3 ? "FORMAT_" + model.inputLayout : "FORMAT_NONE")),
                                       ("dims", .array(dims))])])),
            ("output", .array([.object([("name", .string(model.outputTensorName)), ("data_type", .string("TYPE_FP32")),
                                        ("dims", .array([.number(JSONNumber(Double(model.outputCount)))]))])])),
            ("dynamic_batching", .object([("preferred_batch_size", .array([.number(JSONNumber(Double(maxBatchSize)))])),
                                          ("max_queue_delay_microseconds", .number(JSONNumber(Double(maxQueueDelayMicroseconds))))])),
            ("instance_group", .array([.object([("name", .string(model.name)), ("kind", .string("KIND_CPU")),
                                                ("count", .number(JSONNumber(Double(workers))))])])),
            ("parameters", .object([("version", .object([("string_value", .string(String(model.version)))])),
                                    ("sha256", .object([("string_value", .string(model.sha256))]))])),
        ])
        sink.respond(.json(200, config))
    }
}
