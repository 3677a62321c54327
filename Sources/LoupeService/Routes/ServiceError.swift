// Every error the service answers with, and its one mapping to an HTTP response (DESIGN §5):
// `{"error": "<sentence>", "code": "<machine_code>"}`, plus Retry-After on 503.
import LoupeHTTP

public struct ServiceError: Error, Sendable, CustomStringConvertible {
    public var status: Int
    public var code: String
    public var message: String
    public var retryAfterSeconds: Int?

    public init(status: Int, code: String, _ message: String, retryAfterSeconds: Int? = nil) {
        self.status = status; self.code = code; self.message = message; self.retryAfterSeconds = retryAfterSeconds
    }

    public var description: String { "\(status) \(code): \(message)" }

    static func badRequest(_ code: String, _ message: String) -> ServiceError { ServiceError(status: 400, code: code, message) }
    static func modelNotFound(_ name: String?, version: Int?) -> ServiceError {
        let what: String
        switch (name, version) {
        case (nil, _): what = "no model is loaded"
        case (let n?, nil): what = "model '\(echoed(n))' is not loaded"
        case (let n?, let v?): what = "version \(v) of model '\(echoed(n))' is not loaded"
        }
        return ServiceError(status: 404, code: "model_not_found", what)
    }
    static func tooLarge(_ message: String) -> ServiceError { ServiceError(status: 413, code: "payload_too_large", message) }
    static func unsupportedMediaType(_ received: String) -> ServiceError {
        ServiceError(status: 415, code: "unsupported_media_type",
                     "expected Content-Type image/png, image/jpeg, image/webp, image/x-portable-graymap, application/octet-stream, application/json or multipart/form-data, received \(received.isEmpty ? "none" : "'\(echoed(received))'")")
    }
    static let notReady = ServiceError(status: 503, code: "not_ready", "no model is ready to serve yet", retryAfterSeconds: 1)
    static let draining = ServiceError(status: 503, code: "draining", "the server is shutting down", retryAfterSeconds: 1)
    static let queueFull = ServiceError(status: 503, code: "queue_full", "the inference queue is full; retry shortly", retryAfterSeconds: 1)
    static let internalError = ServiceError(status: 500, code: "internal_error", "internal error; the details are in the server log")

    public var response: HTTPResponse { response(flag: nil) }

    /// The error response, with `"<key>": false` first — the KServe v2 health and model-ready
    /// bodies (`{"ready": false, …}`), so clients that read the flag get an answer on 503 too.
    func response(flag key: String?) -> HTTPResponse {
        var headers = HTTPHeaders()
        if let retry = retryAfterSeconds { headers.add("Retry-After", String(retry)) }
        guard let key else { return .jsonError(status: status, message: message, code: code, headers: headers) }
        var w = JSONWriter(capacity: 64 + message.utf8.count)
        w.raw("{"); w.key(key); w.raw("false,")
        w.key("error"); w.string(message); w.raw(","); w.key("code"); w.string(code); w.raw("}")
        headers.add("Content-Type", "application/json")
        return HTTPResponse(status: status, headers: headers, body: w.bytes, errorCode: code)
    }
}

extension HTTPResponse {
    static func json(_ status: Int = 200, _ bytes: [UInt8], headers extra: [(String, String)] = []) -> HTTPResponse {
        // One array, with room for the fields every response gains on its way out (X-Request-ID,
        // traceparent, and one CORS field), so none of them copies it to grow.
        var headers = HTTPHeaders()
        headers.reserveCapacity(1 + extra.count + 3)
        headers.add("Content-Type", "application/json")
        for (k, v) in extra { headers.add(k, v) }
        return HTTPResponse(status: status, headers: headers, body: bytes)
    }

    static func json(_ status: Int = 200, _ value: JSONValue) -> HTTPResponse {
        var w = JSONWriter()
        w.value(value)
        return json(status, w.bytes)
    }
}
