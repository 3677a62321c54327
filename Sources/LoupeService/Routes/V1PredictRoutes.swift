// TF Serving REST / KServe v1 protocol:
//   POST /v1/models/{m}:predict, POST /v1/models/{m}/versions/{v}:predict
//     {"instances": [...]} (row format)   → {"predictions": [[p0, …, pK-1], …]}
//     {"inputs": [...]} or {"inputs": {"<name>": [...]}} (columnar) → {"outputs": [[…], …]}
//     each instance as InputDecoding.instances takes it (784 / 28×28 / 28×28×1 pixel values, {"b64": png});
//     the answer is the classifier's softmax output per instance, as TF Serving returns it.
//   GET  /v1/models/{m}[/versions/{v}]  → {"model_version_status": [...]} (TF Serving's shape) plus
//     KServe v1's {"name", "ready"}, so both clients read the same body.
//   POST /v1/models/{m}[/versions/{v}]:explain  the same bodies → POST /explain's JSON (its query parameters too).
//   Both verbs are routed like /predict (safe promotion: a canary candidate may answer a request
//   without a version); the answering version is in the X-Loupe-Model-Version header.
//   GET  /                              → {"status": "alive"} (KServe v1 server liveness; browsers get the console).
// Errors are `{"error": "<sentence>", …}` bodies, as TF Serving answers, with the right 4xx.
//
// The routes are templates with a suffixed parameter segment, "/v1/models/{m}:predict", which
// LoupeHTTP's router matches (a segment ending in ":predict" after at least one character), so the
// metrics' route label and the Allow lists are per operation. Model names never contain ':', so a
// status GET whose name or version holds one was meant for a verb: 405 with Allow: POST.
// `…:explain` (KServe v1's explainer verb) takes the same bodies and runs /explain's code.
import LoupeHTTP

struct V1PredictRoutes: Sendable {
    let models: ModelResolver
    let provider: any ModelProvider
    let readiness: Readiness
    let inputs: InputPolicy
    let batcher: Batcher
    let recorder: PredictionRecorder
    /// `…:explain` (KServe v1's explainer verb) runs /explain's code on the v1 body's instances.
    let explainer: ExplainRoute

    static let signature = "serving_default"

    func serverLive(_ request: HTTPRequest, _ sink: any HTTPResponseSink) {
        sink.respond(.json(200, .object([("status", .string("alive"))])))
    }

    // MARK: POST …:predict

    func predict(_ request: HTTPRequest, _ sink: any HTTPResponseSink) {
        inputs.offloadIfLarge(request, sink, self) { $0.predictNow($1, $2, explain: false) }
    }

    /// `…:explain`: the same bodies, answered with POST /explain's JSON.
    func explain(_ request: HTTPRequest, _ sink: any HTTPResponseSink) {
        inputs.offloadIfLarge(request, sink, self) { $0.predictNow($1, $2, explain: true) }
    }

    func predictNow(_ request: HTTPRequest, _ sink: any HTTPResponseSink, explain: Bool) {
        let started = monotonicNanoseconds()
        // Routed like /predict: in canary mode a request without a version may get the candidate
        // (TF Serving's body has no version field: the X-Loupe-Model-Version header says which answered).
        guard let routed = models.route(request, name: request.pathParameters["m"], versionText: request.pathParameters["v"], orAnswer: sink) else { return }
        let model = routed.model
        var explanation: (ExplanationRequest, ExplainRoute.Format)?
        if explain {
            do throws(ServiceError) { explanation = try ExplainRoute.parse(request, model: model) } catch {
                return sink.respond(error.response)
            }
        }
        guard let limits = inputs.limits(request, orAnswer: sink) else { return }
        let batch: DecodedBatch
        let outputKey: String
        do { (batch, outputKey) = try Self.decode(request.body, model: model, limits: limits) } catch {
            if explanation == nil { batcher.failed(model, startedAt: started) }
            return sink.respond(error.response)
        }
        if let (wanted, format) = explanation {
            return explainer.explain(batch, model: model, explanation: wanted, format: format, sink: sink, startedAt: started)
        }
        let requestID = request.id
        batcher.submit(batch, model: model, sink: sink, startedAt: started) { [recorder] result in
            _ = recorder.record(model: model, batch: batch, probabilities: result.probabilities, requestID: requestID,
                                routed: routed, inferenceNanoseconds: result.inferenceNanoseconds)
            return .json(200, Self.response(key: outputKey, probabilities: result.probabilities, count: batch.count, classes: model.outputCount),
                         headers: [(ModelResolver.versionHeader, String(model.version))])
        }
    }

    /// The batch in a TF Serving predict body, and the key its answer goes under ("predictions"
    /// for the row format, "outputs" for the columnar one).
    static func decode(_ body: [UInt8], model: any InferenceModel, limits: InputLimits) throws(ServiceError) -> (DecodedBatch, String) {
        guard !body.isEmpty else {
            throw .badRequest("empty_body", "the request body is empty; expected JSON {\"instances\": [...]} or {\"inputs\": [...]}")
        }
        let document: JSONValue
        do { document = try JSONReader.parse(body) } catch {
            throw .badRequest("invalid_json", "the body is not valid JSON: \(error)")
        }
        guard document.objectValue != nil else {
            throw .badRequest("invalid_input", "expected a JSON object {\"instances\": [...]} or {\"inputs\": [...]}, received \(document.kindName)")
        }
        if let signature = document["signature_name"] {
            guard let name = signature.stringValue else {
                throw .badRequest("invalid_input", "'signature_name' must be a string, received \(signature.kindName)")
            }
            guard name == Self.signature else {
                throw ServiceError(status: 404, code: "signature_not_found",
                                   "the model has no signature '\(echoed(name))'; its one signature is '\(Self.signature)'")
            }
        }
        switch (document["instances"], document["inputs"]) {
        case (.some, .some):
            throw .badRequest("invalid_input", "send either 'instances' (row format) or 'inputs' (columnar format), not both")
        case (.some(let instances), nil):
            guard let list = instances.arrayValue else {
                throw .badRequest("invalid_input", "'instances' must be an array of images, received \(instances.kindName)")
            }
            return (try InputDecoding.instances(list, field: "instances", model: model, limits: limits), "predictions")
        case (nil, .some(let inputs)):
            var tensor = inputs
            if let named = inputs.objectValue {
                guard named.count == 1 else {
                    throw .badRequest("invalid_input", "'inputs' names \(named.count) inputs; the model has one input (\(model.inputTensorName))")
                }
                tensor = named[0].1
            }
            guard let list = tensor.arrayValue else {
                throw .badRequest("invalid_input", "'inputs' must be an array of images (or {\"\(model.inputTensorName)\": [...]}), received \(tensor.kindName)")
            }
            return (try InputDecoding.instances(list, field: "inputs", model: model, limits: limits), "outputs")
        case (nil, nil):
            throw .badRequest("invalid_input", "expected a JSON object with 'instances' (row format) or 'inputs' (columnar format)")
        }
    }

    /// `{"<key>": [[p0, …], …]}`: one row of `classes` probabilities per image.
    static func response(key: String, probabilities: [Float], count: Int, classes: Int) -> [UInt8] {
        var w = JSONWriter(capacity: 32 + count * (classes * 14 + 4))
        w.raw("{"); w.key(key); w.raw("[")
        for i in 0..<count {
            if i > 0 { w.raw(",") }
            w.raw("[")
            for j in 0..<classes {
                if j > 0 { w.raw(",") }
                w.float(probabilities[i * classes + j])
            }
            w.raw("]")
        }
        w.raw("]}")
        return w.bytes
    }

    // MARK: GET status

    func status(_ request: HTTPRequest, _ sink: any HTTPResponseSink) {
        let name = request.pathParameters["m"] ?? "", versionText = request.pathParameters["v"]
        if let colon = (versionText ?? name).lastIndex(of: ":") {
            let verb = (versionText ?? name)[colon...]
            guard verb == ":predict" || verb == ":explain" else {
                return sink.respond(.jsonError(status: 404, message: "No route for \(echoed(request.method.description)) \(echoed(request.path)); the v1 API's verbs are ':predict' and ':explain'.", code: "not_found"))
            }
            return sink.respond(.jsonError(status: 405, message: "Method \(echoed(request.method.description)) is not allowed on \(echoed(request.path)); allowed: POST, OPTIONS.",
                                           code: "method_not_allowed", headers: HTTPHeaders([("Allow", "POST, OPTIONS")])))
        }
        let draining = readiness.isDraining
        let available = draining ? "UNLOADING" : "AVAILABLE"
        var entries: [(version: Int, state: String, error: String)] = []
        if versionText != nil {
            switch models.resolve(name: name, versionText: versionText) {
            case .success(let m): entries.append((m.version, available, ""))
            case .failure(let e): return sink.respond(e.response)
            }
        } else {
            for m in provider.servedModels() where m.name == name { entries.append((m.version, available, "")) }
            let served = Set(entries.map(\.version))
            for p in provider.loadProblems() where p.model == name && p.state != .ready && !served.contains(p.version) {
                entries.append((p.version, "END", p.reason))
            }
            if entries.isEmpty {
                if case .failure(let e) = models.resolve(name: name, versionText: nil) { return sink.respond(e.response) }
                return sink.respond(ServiceError.modelNotFound(name, version: nil).response)
            }
            entries.sort { $0.version > $1.version }
        }
        let statuses: [JSONValue] = entries.map { e in
            .object([("version", .string(String(e.version))), ("state", .string(e.state)),
                     ("status", .object([("error_code", .string(e.error.isEmpty ? "OK" : "UNKNOWN")),
                                         ("error_message", .string(e.error))]))])
        }
        let ready = !draining && entries.contains { $0.state == "AVAILABLE" }
        sink.respond(.json(200, .object([("name", .string(name)), ("ready", .bool(ready)),
                                         ("model_version_status", .array(statuses))])))
    }
}
