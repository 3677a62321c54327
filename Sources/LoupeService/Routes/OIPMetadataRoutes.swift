// KServe v2 / Open Inference Protocol metadata: GET /v2 (server), GET /v2/models/{m}[/versions/{v}]
// (a model's tensors, versions and labels), and GET /v2/models/{m}[/versions/{v}]/ready.
import LoupeHTTP

struct OIPMetadataRoutes: Sendable {
    let models: ModelResolver
    let provider: any ModelProvider
    let readiness: Readiness
    /// `repository_api.enabled`: the server metadata lists the model_repository extension.
    let repositoryAPIEnabled: Bool

    func serverMetadata(_ request: HTTPRequest, _ sink: any HTTPResponseSink) {
        var extensions: [JSONValue] = [.string("classification"), .string("binary_tensor_data"), .string("statistics"),
                                       .string("model_configuration")]
        if repositoryAPIEnabled { extensions.append(.string("model_repository")) }
        sink.respond(.json(200, .object([("name", .string("loupe")), ("version", .string(loupeVersion)),
                                         ("extensions", .array(extensions))])))
    }

    func modelMetadata(_ request: HTTPRequest, _ sink: any HTTPResponseSink) {
        let name = request.pathParameters["m"]
        guard let model = models.resolve(name: name, versionText: request.pathParameters["v"], orAnswer: sink) else { return }
        let versions = provider.servedModels().filter { $0.name == model.name }.map(\.version).sorted()
        let inputShape: [JSONValue] = ([-1] + model.tensorInputShape).map { .number(JSONNumber(Double($0))) }
        let metadata: JSONValue = .object([
            ("name", .string(model.name)),
            ("versions", .array((request.pathParameters["v"] != nil ? [model.version] : versions).map { .string(String($0)) })),
            ("platform", .string("loupe")),
            ("inputs", .array([.object([("name", .string(model.inputTensorName)), ("datatype", .string("FP32")),
                                        ("shape", .array(inputShape))])])),
            ("outputs", .array([.object([("name", .string(model.outputTensorName)), ("datatype", .string("FP32")),
                                         ("shape", .array([.number(-1), .number(JSONNumber(Double(model.outputCount)))]))])])),
            ("parameters", .object([("labels", .array(model.labels.map { .string($0) })),
                                    ("sha256", .string(model.sha256)),
                                    ("accepted_input_shapes", .string(OIPRequest.acceptedShapes(model))),
                                    ("accepted_input_datatypes", .string(OIPRequest.acceptedDatatypes))])),
        ])
        sink.respond(.json(200, metadata))
    }

    func modelReady(_ request: HTTPRequest, _ sink: any HTTPResponseSink) {
        switch models.resolve(name: request.pathParameters["m"], versionText: request.pathParameters["v"]) {
        case .success(let m):
            if readiness.isDraining { return sink.respond(ServiceError.draining.response(flag: "ready")) }
            sink.respond(.json(200, .object([("name", .string(m.name)), ("version", .string(String(m.version))), ("ready", .bool(true))])))
        case .failure(let e): sink.respond(e.response(flag: "ready"))
        }
    }
}
