// Cross-origin requests from browser pages (`server.cors.allowed_origins`, off by default): an
// allowed Origin gets Access-Control-Allow-Origin on every answer, and a preflight (OPTIONS with
// Access-Control-Request-Method, which the router answers 204) gets the methods and headers the
// API uses. Credentials are never allowed.
import LoupeHTTP

struct CORSPolicy: Sendable {
    let any: Bool
    let origins: Set<String>

    init(_ setting: String) {
        let list = setting.split(separator: ",").map { String($0).trimmingSpaces() }.filter { !$0.isEmpty }
        any = list.contains("*")
        origins = Set(list)
    }

    var isOff: Bool { !any && origins.isEmpty }

    static let allowedMethods = "GET, HEAD, POST, OPTIONS"
    static let allowedHeaders = "Content-Type, Content-Encoding, Authorization, X-Request-ID, traceparent, Inference-Header-Content-Length"
    static let exposedHeaders = "X-Request-ID, Server-Timing, traceparent, Inference-Header-Content-Length"

    /// The headers to add to the answer of a request from `origin` (none when not allowed).
    func headers(origin: String?, method: HTTPMethod, preflight: Bool) -> [(String, String)] {
        guard !isOff, let origin, any || origins.contains(origin) else { return [] }
        var h: [(String, String)] = [("Access-Control-Allow-Origin", any ? "*" : origin), ("Vary", "Origin"),
                                     ("Access-Control-Expose-Headers", Self.exposedHeaders)]
        if method == .OPTIONS && preflight {
            h += [("Access-Control-Allow-Methods", Self.allowedMethods), ("Access-Control-Allow-Headers", Self.allowedHeaders),
                  ("Access-Control-Max-Age", "600")]
        }
        return h
    }
}
