// GET /openapi.json: the OpenAPI document (Generated/OpenAPI.swift, from docs/openapi.yaml) cut down
// to the operations this server has enabled — no repository API unless `repository_api.enabled`, no
// /metrics when it is served on its own port — so a client or fuzzer reading it sees what answers.
import LoupeHTTP

struct OpenAPIRoute: Sendable {
    let body: [UInt8]

    /// `routes`: every (method, template) the server answers, this route included.
    init(routes: [(method: HTTPMethod, template: String)]) {
        var w = JSONWriter()
        w.value(Self.served(OpenAPI.document, routes: routes))
        body = w.bytes
    }

    func handle(_ request: HTTPRequest, _ sink: any HTTPResponseSink) {
        sink.respond(.json(200, body))
    }

    /// `document` with only the operations in `routes`; path items left without one are dropped.
    static func served(_ document: JSONValue, routes: [(method: HTTPMethod, template: String)]) -> JSONValue {
        guard case .object(var top) = document, let index = top.firstIndex(where: { $0.0 == "paths" }),
              case .object(let paths) = top[index].1 else { return document }
        let enabled = Set(routes.map { $0.method.description.lowercased() + " " + $0.template })
        var kept: [(String, JSONValue)] = []
        for (path, item) in paths {
            guard case .object(let fields) = item else { continue }
            let template = path  // templates are written as OpenAPI writes paths
            let methods = ["get", "put", "post", "delete", "options", "head", "patch", "trace"]
            let operations = fields.filter { !methods.contains($0.0) || enabled.contains($0.0 + " " + template) }
            if operations.contains(where: { methods.contains($0.0) }) { kept.append((path, .object(operations))) }
        }
        top[index].1 = .object(kept)
        return .object(top)
    }
}
