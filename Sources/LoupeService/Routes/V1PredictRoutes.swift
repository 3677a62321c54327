// TF Serving REST / KServe v1 protocol:
//   POST /v1/models/{m}:predict, POST /v1/models/{m}/versions/{v}:predict
//     {"instances": [...]} (row format)   → {"predictions": [[p0, …, pK-1], …]}
//     {"inputs": [...]} or {"inputs": {"<name>": [...]}} (columnar) → {"outputs": [[…], …]}
//     each instance as InputDecoding.instances takes it (784 / 28×28 / 28×28×1 pixel values, {"b64": png});
//     the answer is the classifier's softmax output per instance, as TF Serving returns it.
//   GET  /v1/models/{m}[/versions/{v}]  → {"model_version_status": [...]} (TF Serving's shape) plus
//     KServe v1's {"name", "ready"}, so both clients read the same body.
//   POST /v1/models/{m}[/versions/{v}]:explain  the same bodies → POST /explain's JSON (its query parameters too).
//   GET  /                              → {"status": "alive"} (KServe v1 server liveness; browsers get the console).
// Errors are `{"error": "<sentence>", …}` bodies, as TF Serving answers, with the right 4xx.
//
// The router matches whole path segments and `{m}:predict` is one segment, so the routes are
// registered as `/v1/models/{m}` and `/v1/models/{m}/versions/{v}` and the handler splits the last
// segment at its last ':' (model names cannot contain ':'; see `V1Path`). GET on a `…:predict`
// path answers 405 with Allow: POST; POST without `:predict` answers 404 saying what was expected.
import LoupeHTTP

/// The model, version and verb of a v1 path: "fashion:predict" or, under /versions/, "3:predict".
struct V1Path: Equatable {
    var model: String
    var version: String?
    var verb: String?
}

extension V1Path {
    /// Splits the last segment (`version` when given, else `model`) at its last ':'.
    init(model: String, version: String?) {
        var model = model, version = version, verb: String? = nil
        // The verb ends the last segment: the version when there is one, else the model name.
        func split(_ segment: inout String) {
            guard let colon = segment.lastIndex(of: ":") else { return }
            verb = String(segment[segment.index(after: colon)...])
            segment = String(segment[..<colon])
        }
        if version != nil { split(&version!) } else { split(&model) }
        self.init(model: model, version: version, verb: verb)
    }
}

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
        inputs.offloadIfLarge(request) { [self] in predictNow(request, sink) }
    }

    func predictNow(_ request: HTTPRequest, _ sink: any HTTPResponseSink) {
        let started = monotonicNanoseconds()
        let path = V1Path(model: request.pathParameters["m"] ?? "", version: request.pathParameters["v"])
        guard path.verb == "predict" || path.verb == "explain" else {
            let expected = "POST /v1/models/{model}[/versions/{version}]:predict (or :explain)"
            let message = path.verb.map { "the verb ':\(echoed($0))' is not supported; expected \(expected)" }
                ?? "expected \(expected) (the path has no ':predict')"
            return sink.respond(ServiceError(status: 404, code: "not_found", message).response)
        }
        let model: any InferenceModel
        switch models.resolve(name: path.model, versionText: path.version) {
        case .success(let m): model = m
        case .failure(let e): return sink.respond(e.response)
        }
        var explanation: (ExplanationRequest, ExplainRoute.Format)?
        if path.verb == "explain" {
            do throws(ServiceError) { explanation = try ExplainRoute.parse(request, model: model) } catch {
                return sink.respond(error.response)
            }
        }
        let limits: InputLimits
        switch inputs.limits(request) {
        case .success(let l): limits = l
        case .failure(let e): return sink.respond(e.response)
        }
        let batch: DecodedBatch
        let outputKey: String
        do { (batch, outputKey) = try Self.decode(request.body, model: model, limits: limits) } catch {
            if explanation == nil { batcher.failed(model, startedAt: started) }
            return sink.respond(error.response)
        }
        if let (wanted, format) = explanation {
            return explainer.explain(batch, model: model, explanation: wanted, format: format, sink: sink, startedAt: started)
        }
        let requestID = request.headers["X-Request-ID"]
        batcher.submit(batch, model: model, sink: sink, startedAt: started) { [recorder] result in
            _ = recorder.record(model: model, batch: batch, probabilities: result.probabilities, requestID: requestID)
            return .json(200, Self.response(key: outputKey, probabilities: result.probabilities, count: batch.count, classes: model.outputCount))
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
                    throw .badRequest("invalid_input", "'inputs' names \(named.count) inputs; the model has one input (\(OIPTensor.input))")
                }
                tensor = named[0].1
            }
            guard let list = tensor.arrayValue else {
                throw .badRequest("invalid_input", "'inputs' must be an array of images (or {\"\(OIPTensor.input)\": [...]}), received \(tensor.kindName)")
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
        let path = V1Path(model: request.pathParameters["m"] ?? "", version: request.pathParameters["v"])
        if let verb = path.verb {
            return sink.respond(.jsonError(status: 405, message: "':\(echoed(verb))' takes POST, not \(echoed(request.method.description))",
                                           code: "method_not_allowed", headers: HTTPHeaders([("Allow", "POST")])))
        }
        let draining = readiness.isDraining
        let available = draining ? "UNLOADING" : "AVAILABLE"
        var entries: [(version: Int, state: String, error: String)] = []
        if path.version != nil {
            switch models.resolve(name: path.model, versionText: path.version) {
            case .success(let m): entries.append((m.version, available, ""))
            case .failure(let e): return sink.respond(e.response)
            }
        } else {
            for m in provider.servedModels() where m.name == path.model { entries.append((m.version, available, "")) }
            let served = Set(entries.map(\.version))
            for p in provider.loadProblems() where p.model == path.model && p.state != .ready && !served.contains(p.version) {
                entries.append((p.version, "END", p.reason))
            }
            if entries.isEmpty {
                if case .failure(let e) = models.resolve(name: path.model, versionText: nil) { return sink.respond(e.response) }
                return sink.respond(ServiceError.modelNotFound(path.model, version: nil).response)
            }
            entries.sort { $0.version > $1.version }
        }
        let statuses: [JSONValue] = entries.map { e in
            .object([("version", .string(String(e.version))), ("state", .string(e.state)),
                     ("status", .object([("error_code", .string(e.error.isEmpty ? "OK" : "UNKNOWN")),
                                         ("error_message", .string(e.error))]))])
        }
        let ready = !draining && entries.contains { $0.state == "AVAILABLE" }
        sink.respond(.json(200, .object([("name", .string(path.model)), ("ready", .bool(ready)),
                                         ("model_version_status", .array(statuses))])))
    }
}
