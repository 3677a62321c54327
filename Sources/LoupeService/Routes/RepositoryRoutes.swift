// Triton's model repository extension (KServe v2): `POST /v2/repository/index`,
// `POST /v2/repository/models/{m}/load`, `POST /v2/repository/models/{m}/unload`. Off unless
// `repository_api.enabled`; with `repository_api.token` set, each call needs
// `Authorization: Bearer <token>` (401 otherwise). Model names from the path are checked against
// the name grammar and only compared with the repository's own listing.
import Dispatch
import LoupeData
import LoupeHTTP

/// The repository extension's handlers, over the repository's load, unload and status.
struct RepositoryRoutes: Sendable {
    let repository: ModelRepository
    /// `repository_api.token`; nil: no token needed.
    let token: String?

    /// Checks the bearer token, then answers from a background queue: a load reads and
    /// self-tests a model.
    func authorized(_ request: HTTPRequest, _ sink: any HTTPResponseSink,
                    _ body: @escaping @Sendable (RepositoryRoutes) -> HTTPResponse) {
        if let refusal = Self.refusal(request, token: token) { return sink.respond(refusal) }
        DispatchQueue.global().async { sink.respond(body(self)) }
    }

    /// The 401 for a request without the bearer `token` (nil: none needed), or nil when allowed.
    /// Shared by every route of the repository API (PromotionRoutes too).
    static func refusal(_ request: HTTPRequest, token: String?) -> HTTPResponse? {
        guard let token else { return nil }
        let given = request.headers["Authorization"] ?? ""
        let prefix = "bearer "
        let ok = given.count > prefix.count && given.lowercased().hasPrefix(prefix)
            && constantTimeEqual(Array(given.utf8.dropFirst(prefix.utf8.count)), Array(token.utf8))
        if ok { return nil }
        var response = Self.apiError(401, "unauthorized", "the repository API needs 'Authorization: Bearer <token>'")
        response.headers.add("WWW-Authenticate", "Bearer realm=\"loupe-repository\"")
        return response
    }

    func index(_ request: HTTPRequest, _ sink: any HTTPResponseSink) { authorized(request, sink) { $0.handleIndex(request) } }
    func load(_ request: HTTPRequest, _ sink: any HTTPResponseSink) { authorized(request, sink) { $0.handleLoad(request) } }
    func unload(_ request: HTTPRequest, _ sink: any HTTPResponseSink) { authorized(request, sink) { $0.handleUnload(request) } }

    func handleIndex(_ request: HTTPRequest) -> HTTPResponse {
        var readyOnly = false
        if !request.body.isEmpty {
            guard let body = try? JSONReader.parse(request.body), body.objectValue != nil else {
                return Self.apiError(400, "invalid_json", "the body must be a JSON object such as {\"ready\": true}, or empty")
            }
            if let ready = body["ready"] {
                guard let flag = ready.boolValue else {
                    return Self.apiError(400, "invalid_parameter", "'ready' must be true or false, received \(ready.kindName) (a body such as {\"ready\": true})")
                }
                readyOnly = flag
            }
        }
        // A fresh scan first, so the index lists what is on disk now (without loading).
        let statuses = repository.indexStatuses()
        var w = JSONWriter()
        w.raw("[")
        var first = true
        for model in statuses {
            for v in model.versions where !readyOnly || v.state == .ready {
                if !first { w.raw(",") }
                first = false
                w.raw("{"); w.key("name"); w.string(model.name)
                w.raw(","); w.key("version"); w.string(String(v.version))
                w.raw(","); w.key("state"); w.string(v.state.rawValue)
                w.raw(","); w.key("reason"); w.string(v.reason ?? "")
                w.raw("}")
            }
            if model.versions.isEmpty, !readyOnly {
                if !first { w.raw(",") }
                first = false
                w.raw("{"); w.key("name"); w.string(model.name)
                w.raw(","); w.key("state"); w.string(model.state.rawValue)
                w.raw(","); w.key("reason"); w.string(model.reason ?? "")
                w.raw("}")
            }
        }
        w.raw("]")
        return .json(200, w.bytes)
    }

    func handleLoad(_ request: HTTPRequest) -> HTTPResponse {
        let name = request.pathParameters["m"] ?? ""
        // Triton lets a load carry a config override or model files; Loupe loads only what is in
        // the repository, so such a request is refused rather than half honoured.
        if !request.body.isEmpty {
            guard let body = try? JSONReader.parse(request.body), body.objectValue != nil else {
                return Self.apiError(400, "invalid_json", "the body must be a JSON object such as {} or {\"parameters\": {}}, or empty")
            }
            if let parameters = body["parameters"], parameters.objectValue == nil {
                return Self.apiError(400, "invalid_parameter", "'parameters' must be an object, received \(parameters.kindName)")
            }
            let keys = body["parameters"]?.objectValue?.map(\.0) ?? []
            if let key = keys.first(where: { $0 == "config" || $0.hasPrefix("file:") }) {
                return Self.apiError(400, "unsupported_parameter",
                    "load parameter '\(key)' is not supported: Loupe loads models only from the repository directory")
            }
        }
        let result = repository.load(model: name)
        if result.ok {
            var w = JSONWriter()
            w.raw("{"); w.key("model"); w.string(name); w.raw(","); w.key("message"); w.string(result.message); w.raw("}")
            return .json(200, w.bytes)
        }
        if result.notFound { return Self.apiError(404, "model_not_found", result.message) }
        let code = ModelRepositoryLayout.isValidName(name) ? "load_failed" : "invalid_model_name"
        return Self.apiError(400, code, result.message)
    }

    func handleUnload(_ request: HTTPRequest) -> HTTPResponse {
        let name = request.pathParameters["m"] ?? ""
        let result = repository.unload(model: name)
        if result.ok {
            var w = JSONWriter()
            w.raw("{"); w.key("model"); w.string(name); w.raw(","); w.key("message"); w.string(result.message); w.raw("}")
            return .json(200, w.bytes)
        }
        let code = ModelRepositoryLayout.isValidName(name) ? "model_not_found" : "invalid_model_name"
        return Self.apiError(ModelRepositoryLayout.isValidName(name) ? 404 : 400, code, result.message)
    }

    static func apiError(_ status: Int, _ code: String, _ message: String) -> HTTPResponse {
        ServiceError(status: status, code: code, message).response
    }
}

/// Compares without an early exit, so the time taken does not reveal a matching prefix.
func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    var diff = UInt8(a.count == b.count ? 0 : 1)
    for i in 0..<max(a.count, b.count) {
        diff |= (i < a.count ? a[i] : 0) ^ (i < b.count ? b[i] : 0)
    }
    return diff == 0
}

extension RepositoryRoutes {
    /// The extension's routes; empty when `repository_api.enabled` is false (so the paths 404).
    static func routes(_ repository: ModelRepository) -> [ServiceRoute] {
        let c = repository.configuration
        guard c.apiEnabled else { return [] }
        let api = RepositoryRoutes(repository: repository, token: c.apiToken)
        return [
            ServiceRoute(method: .POST, template: "/v2/repository/index", handler: api.index),
            ServiceRoute(method: .POST, template: "/v2/repository/models/{m}/load", handler: api.load),
            ServiceRoute(method: .POST, template: "/v2/repository/models/{m}/unload", handler: api.unload),
        ]
    }
}
