import Synchronization
import Testing
@testable import LoupeHTTP

/// Captures the response a handler or the router gives.
final class CapturingSink: HTTPResponseSink {
    private let box = Mutex<[HTTPResponse]>([])
    func respond(_ response: consuming HTTPResponse) { let r = response; box.withLock { $0.append(r) } }
    var responses: [HTTPResponse] { box.withLock { $0 } }
}

/// A handler that answers with the route template and parameters it was given.
let echo: HTTPHandler = { request, sink in
    let params = request.pathParameters.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
    sink.respond(HTTPResponse(status: 200, body: Array("\(request.method) \(request.routeTemplate ?? "-") \(params)".utf8)))
}

func makeRouter(answersOptions: Bool = true) -> Router {
    var builder = RouterBuilder(answersOptions: answersOptions)
    builder.add(.GET, "/", echo)
    builder.add(.GET, "/health", echo)
    builder.add(.GET, "/health/live", echo)
    builder.add(.POST, "/predict", echo)
    builder.add(.GET, "/v2/models/{model}", echo)
    builder.add(.GET, "/v2/models/{model}/ready", echo)
    builder.add(.POST, "/v2/models/{model}/infer", echo)
    builder.add(.GET, "/v2/models/{model}/versions/{version}", echo)
    builder.add(.POST, "/v2/models/{model}/versions/{version}/infer", echo)
    builder.add(.GET, "/v2/models/special/stats", echo)
    builder.add(.DELETE, "/v2/models/{model}/cache", echo)
    return builder.freeze()
}

func route(_ router: Router, _ method: HTTPMethod, _ target: String) -> HTTPResponse? {
    let sink = CapturingSink()
    let path = target.split(separator: "?", maxSplits: 1).first.map(String.init) ?? target
    router.handle(HTTPRequest(method: method, target: target, path: PercentDecoding.decode(path) ?? path), sink: sink)
    #expect(sink.responses.count == 1)
    return sink.responses.first
}

func bodyText(_ r: HTTPResponse?) -> String { String(decoding: r?.body ?? [], as: UTF8.self) }

struct RouterTests {
    let router = makeRouter()

    @Test func literalAndParameterRoutes() {
        #expect(bodyText(route(router, .GET, "/")) == "GET / ")
        #expect(bodyText(route(router, .GET, "/health")) == "GET /health ")
        #expect(bodyText(route(router, .GET, "/health/live?x=1")) == "GET /health/live ")
        #expect(bodyText(route(router, .POST, "/v2/models/fashion/infer")) == "POST /v2/models/{model}/infer model=fashion")
        #expect(bodyText(route(router, .POST, "/v2/models/fashion/versions/3/infer"))
                == "POST /v2/models/{model}/versions/{version}/infer model=fashion,version=3")
    }

    @Test func parametersArePercentDecodedPerSegment() {
        #expect(bodyText(route(router, .GET, "/v2/models/a%2Fb%20c")) == "GET /v2/models/{model} model=a/b c")
    }

    @Test func literalWinsAndBacktracks() {
        // "special" is a literal at depth 3 only for /stats; /ready must still reach {model}.
        #expect(bodyText(route(router, .GET, "/v2/models/special/stats")) == "GET /v2/models/special/stats ")
        #expect(bodyText(route(router, .GET, "/v2/models/special/ready")) == "GET /v2/models/{model}/ready model=special")
        #expect(bodyText(route(router, .GET, "/v2/models/special")) == "GET /v2/models/{model} model=special")
    }

    @Test func notFoundIsJSON() {
        let r = route(router, .GET, "/nope")
        #expect(r?.status == 404)
        #expect(r?.headers["content-type"] == "application/json")
        #expect(bodyText(r) == "{\"error\":\"No route for GET /nope.\",\"code\":\"not_found\"}")
        #expect(route(router, .GET, "/health/")?.status == 404)
        #expect(route(router, .GET, "/v2/models//ready")?.status == 404)
        #expect(route(router, .GET, "/v2/models/a/versions/1/infer/extra")?.status == 404)
    }

    @Test func echoedRequestBytesAreTruncatedAndEscaped() {
        // A path of markup and 200 bytes: the message quotes 64 bytes of it, cut with "…", and the
        // JSON escapes < > & so no client can take it for HTML.
        let long = "/<script>alert(1)</script>&" + String(repeating: "x", count: 200)
        let r = route(router, .GET, long)
        #expect(r?.status == 404)
        let text = bodyText(r)
        #expect(!text.contains("<") && !text.contains(">") && !text.contains("&"))
        #expect(text.contains("\\u003cscript\\u003ealert(1)\\u003c/script\\u003e\\u0026xxx"))
        #expect(text.contains("x…."))
        #expect(!text.contains(String(repeating: "x", count: 64 - 27 + 1)))
        #expect(echoed("ab\u{7}c\nd") == "ab?c?d")
        #expect(echoed("héllo", limit: 2) == "h…")
    }

    @Test func unknownMethodIsNotImplemented() {
        for target in ["/predict", "/nope"] {
            let r = route(router, .other("BREW"), target)
            #expect(r?.status == 501)
            #expect(bodyText(r) == "{\"error\":\"The method BREW is not implemented by this server.\",\"code\":\"method_not_implemented\"}")
        }
        // A known method on a route without it is still 405, on no route 404 — RFC 9110's TRACE and
        // CONNECT and the IETF's QUERY included (what OpenAPI fuzzers such as schemathesis expect of an undeclared method).
        #expect(route(router, .PUT, "/predict")?.status == 405)
        for method in ["TRACE", "CONNECT", "QUERY"] {
            let r = route(router, .other(method), "/predict")
            #expect(r?.status == 405 && r?.headers["Allow"]?.contains("POST") == true, "\(method)")
            #expect(route(router, .other(method), "/nope")?.status == 404, "\(method)")
        }
        #expect(route(router, .PUT, "/nope")?.status == 404)
    }

    @Test func methodNotAllowedListsAllow() {
        let r = route(router, .PUT, "/predict")
        #expect(r?.status == 405)
        #expect(r?.headers["allow"] == "POST, OPTIONS")
        #expect(bodyText(r).contains("\"code\":\"method_not_allowed\""))
        let r2 = route(router, .POST, "/v2/models/fashion")
        #expect(r2?.headers["allow"] == "GET, HEAD, OPTIONS")
    }

    @Test func headFallsBackToGet() {
        #expect(bodyText(route(router, .HEAD, "/health")) == "HEAD /health ")
        #expect(route(router, .HEAD, "/predict")?.status == 405)
    }

    @Test func optionsAnswersAllow() {
        let r = route(router, .OPTIONS, "/v2/models/x/cache")
        #expect(r?.status == 204)
        #expect(r?.headers["allow"] == "DELETE, OPTIONS")
        let star = route(router, .OPTIONS, "*")
        #expect(star?.status == 204)
        #expect(star?.headers["allow"] == "GET, HEAD, POST, DELETE, OPTIONS")
        let off = makeRouter(answersOptions: false)
        #expect(route(off, .OPTIONS, "/health")?.status == 405)
        #expect(route(off, .PUT, "/predict")?.headers["allow"] == "POST")
    }

    @Test func absoluteFormTargetsRoute() {
        #expect(bodyText(route(router, .GET, "http://example.com/health")) == "GET /health ")
        #expect(bodyText(route(router, .GET, "HTTP://example.com")) == "GET / ")
    }

    @Test func matchedTemplates() {
        var seen: [String?] = []
        for (method, target) in [(HTTPMethod.POST, "/v2/models/m/infer"), (.PUT, "/predict"), (.OPTIONS, "/health"), (.GET, "/nope")] {
            seen.append(router.match(HTTPRequest(method: method, target: target, path: target)).template)
        }
        #expect(seen == ["/v2/models/{model}/infer", "/predict", "/health", nil])
    }

    @Test func dispatchActsOnTheMatchGiven() {
        // Routed once: dispatch answers from the match it is handed (a 405 stays a 405).
        let request = HTTPRequest(method: .PUT, target: "/predict", path: "/predict")
        let sink = CapturingSink()
        router.dispatch(router.match(request), request, sink: sink)
        #expect(sink.responses.map(\.status) == [405])
        #expect(sink.responses.first?.errorCode == "method_not_allowed")
    }

    @Test func routesAreListed() {
        #expect(router.routes.count == 11)
        #expect(router.routes.contains { $0.method == .DELETE && $0.template == "/v2/models/{model}/cache" })
    }

    @Test func sendableRouterIsSharedAcrossTasks() async {
        let router = self.router
        await withTaskGroup(of: Bool.self) { group in
            for i in 0..<8 {
                group.addTask { bodyText(route(router, .GET, "/v2/models/m\(i)/versions/\(i)")).hasSuffix("model=m\(i),version=\(i)") }
            }
            for await ok in group { #expect(ok) }
        }
    }
}

/// `{name}<suffix>` segments (TF Serving's "/v1/models/{model}:predict").
@Suite struct SuffixedParameterTests {
    static func router() -> Router {
        var builder = RouterBuilder()
        builder.add(.GET, "/v1/models/{m}", echo)
        builder.add(.POST, "/v1/models/{m}:predict", echo)
        builder.add(.POST, "/v1/models/{m}:p", echo)
        builder.add(.GET, "/v1/models/{m}/versions/{v}", echo)
        builder.add(.POST, "/v1/models/{m}/versions/{v}:predict", echo)
        builder.add(.GET, "/v1/models/status", echo)
        return builder.freeze()
    }

    static func text(_ r: HTTPResponse?) -> String { r.map { String(decoding: $0.body, as: UTF8.self) } ?? "" }

    @Test func matchesTheSuffixAndCapturesWhatComesBefore() {
        let r = Self.router()
        #expect(Self.text(route(r, .POST, "/v1/models/fashion:predict")) == "POST /v1/models/{m}:predict m=fashion")
        #expect(Self.text(route(r, .POST, "/v1/models/fashion/versions/3:predict")) == "POST /v1/models/{m}/versions/{v}:predict m=fashion,v=3")
        // The longest suffix that fits wins; a shorter one still matches what ends with it.
        #expect(Self.text(route(r, .POST, "/v1/models/a:p")) == "POST /v1/models/{m}:p m=a")
        // Percent-encoded ':' is the same segment text.
        #expect(Self.text(route(r, .POST, "/v1/models/fashion%3Apredict")) == "POST /v1/models/{m}:predict m=fashion")
        // The capture keeps earlier colons (only the suffix is cut).
        #expect(Self.text(route(r, .POST, "/v1/models/a:b:predict")) == "POST /v1/models/{m}:predict m=a:b")
        // A literal sibling still wins over parameters.
        #expect(Self.text(route(r, .GET, "/v1/models/status")) == "GET /v1/models/status ")
    }

    @Test func needsAtLeastOneCharacterBeforeTheSuffix() {
        let r = Self.router()
        #expect(route(r, .POST, "/v1/models/:predict")?.status == 405)     // the plain {m} (GET) takes ":predict"
        #expect(Self.text(route(r, .GET, "/v1/models/:predict")) == "GET /v1/models/{m} m=:predict")
    }

    @Test func methodsAndAllowArePerOperation() {
        let r = Self.router()
        let wrong = route(r, .PUT, "/v1/models/fashion:predict")
        #expect(wrong?.status == 405 && wrong?.headers["Allow"] == "POST, OPTIONS")
        let post = route(r, .POST, "/v1/models/fashion")
        #expect(post?.status == 405 && post?.headers["Allow"] == "GET, HEAD, OPTIONS")
        #expect(route(r, .OPTIONS, "/v1/models/fashion:predict")?.headers["Allow"] == "POST, OPTIONS")
        #expect(route(r, .OPTIONS, "/v1/models/fashion")?.headers["Allow"] == "GET, HEAD, OPTIONS")
    }

    /// Every split of a model name and the suffix: "x…x" + ":predict" for every name length, and the
    /// suffix cut short at every byte (which must not match it).
    @Test func everySplitOfNameAndSuffix() {
        let r = Self.router()
        let suffix = ":predict"
        for length in 1...12 {
            let name = String(repeating: "n", count: length)
            #expect(Self.text(route(r, .POST, "/v1/models/\(name)\(suffix)")) == "POST /v1/models/{m}:predict m=\(name)")
        }
        for cut in 1..<suffix.count {
            let partial = String(suffix.prefix(cut))
            let reply = Self.text(route(r, .GET, "/v1/models/fashion\(partial)"))
            #expect(reply == "GET /v1/models/{m} m=fashion\(partial)", "\(partial)")
            if partial != ":p" { #expect(route(r, .POST, "/v1/models/fashion\(partial)")?.status == 405, "\(partial)") }
        }
        // Every split of the path bytes into what precedes the segment and the segment itself is
        // covered by the parser's own split tests; here the suffix must be whole and last.
        #expect(route(r, .POST, "/v1/models/fashion:predictx")?.status == 405)
        #expect(route(r, .POST, "/v1/models/fashion:predict/x")?.status == 404)
    }
}
