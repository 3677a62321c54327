// Safe promotion for people: POST /v2/repository/models/{m}/promote makes the model's candidate
// version the one requests without a version get; POST /v2/repository/models/{m}/rollback rolls
// the candidate back (or, without a candidate, the serving version, when another version is on
// disk). Part of the repository API: on with `repository_api.enabled`, behind its bearer token.
// An optional body {"version": N} names the version the caller means; a different candidate is
// refused (409) rather than acted on. Decisions are logged and counted like automatic ones
// (reason "manual"), see Lifecycle/PromotionMonitor.swift.
import Dispatch
import LoupeHTTP

struct PromotionRoutes: Sendable {
    let monitor: PromotionMonitor
    /// `repository_api.token`; nil: no token needed.
    let token: String?

    func promote(_ request: HTTPRequest, _ sink: any HTTPResponseSink) { act(request, sink, promote: true) }
    func rollback(_ request: HTTPRequest, _ sink: any HTTPResponseSink) { act(request, sink, promote: false) }

    private func act(_ request: HTTPRequest, _ sink: any HTTPResponseSink, promote: Bool) {
        if let refusal = RepositoryRoutes.refusal(request, token: token) { return sink.respond(refusal) }
        let name = request.pathParameters["m"] ?? ""
        var version: Int?
        if !request.body.isEmpty {
            guard let body = try? JSONReader.parse(request.body), body.objectValue != nil else {
                return sink.respond(RepositoryRoutes.apiError(400, "invalid_json", "the body must be empty or a JSON object such as {\"version\": 3}"))
            }
            if let v = body["version"] {
                guard let n = v.numberValue, n == n.rounded(), n >= 1, n <= 1e15 else {
                    return sink.respond(RepositoryRoutes.apiError(400, "invalid_parameter", "'version' must be a positive integer, received \(v.kindName)"))
                }
                version = Int(n)
            }
        }
        // A decision runs a repository pass (it may load a version from disk): off the event loop.
        DispatchQueue.global().async { [monitor, version] in
            switch monitor.manual(promote: promote, model: name, version: version) {
            case .done(let message, let acted, let serving):
                var w = JSONWriter()
                w.raw("{"); w.key("model"); w.string(name)
                w.raw(","); w.key(promote ? "promoted_version" : "rolled_back_version"); w.int(acted)
                w.raw(","); w.key("serving_version"); w.int(serving)
                w.raw(","); w.key("message"); w.string(message); w.raw("}")
                sink.respond(.json(200, w.bytes))
            case .refused(let status, let code, let message):
                sink.respond(RepositoryRoutes.apiError(status, code, message))
            }
        }
    }
}
