// What every request passes through, whatever its route: the request id (X-Request-ID), the W3C
// trace context, CORS headers, the in-flight gauge, the HTTP metrics labelled by route template,
// the rejection counter labelled by the response's error code, and the access log line.
import Logging
import LoupeSystem
import LoupeHTTP
import Synchronization

final class RequestInstrumentation: Sendable {
    let metrics: ServiceMetrics
    let logger: Logger
    let accessLog: Bool
    /// `server.cors.allowed_origins` (off when empty).
    let cors: CORSPolicy
    /// Generated request ids' numbers, in per-thread blocks (no shared counter per request); one
    /// counter for the process (ids differ between services by their prefix anyway).
    private static let requestNumbers = BlockCounter()
    /// The high 32 bits of every generated id (the low 32 are the counter's).
    private let requestIDPrefix: UInt64
    /// The logger's handler when it is Loupe's own: the access log line is then written from
    /// fields already in order (no metadata dictionary per request).
    private let accessHandler: LoupeLogHandler?
    /// Each thread's own cache of metric children (no lock shared by the event loops).
    private let meterCache = PerThread { MeterCache() }

    init(metrics: ServiceMetrics, logger: Logger, accessLog: Bool, cors: CORSPolicy, seed: UInt64) {
        self.metrics = metrics; self.logger = logger; self.accessLog = accessLog; self.cors = cors
        requestIDPrefix = (seed &* 0x9E37_79B9_7F4A_7C15) & 0xFFFF_FFFF_0000_0000
        accessHandler = logger.handler as? LoupeLogHandler
    }

    /// Wraps a request whose route (`template`, nil when none matched) is already known: assigns
    /// the request id (set as the request's X-Request-ID for the handler), counts it in flight, and hands `next` a sink that, on response, adds
    /// X-Request-ID, traceparent and CORS headers, records the metrics and writes the access log.
    func instrument(_ request: consuming HTTPRequest, template: String?, sink: any HTTPResponseSink,
                    next: (consuming HTTPRequest, any HTTPResponseSink) -> Void) {
        metrics.inFlight.increment()
        // The handler sees the id the response will carry (generated or the client's), so the
        // prediction recorder can key the prediction by it for later feedback.
        // (`request.id`: the client's X-Request-ID when usable, else a generated one; an unusable
        // id is replaced, not kept beside ours.)
        let id = requestID(from: request.headers["X-Request-ID"])
        request.requestID = id
        let instrumented = InstrumentedSink(
            instrumentation: self, inner: sink, requestID: id,
            method: request.method, path: request.path, remote: request.remoteAddress, route: template ?? "unmatched",
            trace: TraceContext.forRequest(request.headers["traceparent"]),
            // With CORS off (the default) the two header lookups are skipped.
            cors: cors.isOff ? [] : cors.headers(origin: request.headers["Origin"], method: request.method,
                                                 preflight: request.headers["Access-Control-Request-Method"] != nil),
            start: monotonicNanoseconds())
        next(consume request, instrumented)
    }

    private func requestID(from header: String?) -> String {
        if let h = header, !h.isEmpty, h.utf8.count <= 128,
           h.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) {
            return h
        }
        let n = Self.requestNumbers.next()
        // The prefix's 8 hex digits and the counter's 8, written into the string at once.
        return TraceContext.hex(requestIDPrefix | (n & 0xFFFF_FFFF), 16)
    }

    fileprivate func finished(_ sink: InstrumentedSink, status: Int, errorCode: String?) {
        metrics.inFlight.decrement()
        let seconds = Double(monotonicNanoseconds() - sink.start) / 1e9
        let meters = self.meters(route: sink.route, method: sink.method, status: status)
        meters.requests.increment()
        meters.seconds.observe(seconds)
        if let errorCode, status >= 400 { metrics.rejections.labels(errorCode).increment() }
        if status >= 500 && status != 503 {
            logger.error("server error", metadata: ["request_id": .string(sink.requestID), "status": .stringConvertible(status)])
        }
        guard accessLog else { return }
        // In key order, as every line is written; duration in milliseconds to the microsecond.
        let micros = Int((seconds * 1e6).rounded())
        // The fields' bytes at most: 198 of keys, numbers and the trace id, and each string escaped.
        let strings = sink.method.description.utf8.count + sink.path.utf8.count + sink.remote.utf8.count
            + sink.requestID.utf8.count + sink.route.utf8.count + (errorCode?.utf8.count ?? 0)
        let written = accessHandler?.logJSONLine(level: .info, message: "request", fieldBytes: 256 + 6 * strings) { c in
            c.put(",\"duration_ms\":"); c.putDecimal(micros, scale: 3)
            if let errorCode { c.put(",\"error_code\":"); c.putJSONString(errorCode) }
            c.put(",\"method\":"); c.putJSONString(sink.method.description)
            c.put(",\"path\":"); c.putJSONString(sink.path)
            c.put(",\"remote\":"); c.putJSONString(sink.remote)
            c.put(",\"request_id\":"); c.putJSONString(sink.requestID)
            c.put(",\"route\":"); c.putJSONString(sink.route)
            c.put(",\"status\":"); c.putInt(status)
            c.put(",\"trace_id\":"); sink.trace.putTraceID(&c)
        }
        if written == true { return }
        var metadata: Logger.Metadata = [
            "duration_ms": .stringConvertible(Double(micros) / 1000), "method": .string(sink.method.description),
            "path": .string(sink.path), "remote": .string(sink.remote), "request_id": .string(sink.requestID),
            "route": .string(sink.route), "status": .stringConvertible(status), "trace_id": .string(sink.trace.traceID),
        ]
        if let errorCode { metadata["error_code"] = .string(errorCode) }
        logger.info("request", metadata: metadata)
    }

    /// The two metric children a response updates, found with one lookup of a small key (the
    /// families' own lookups hash three label strings each, twice per request).
    private func meters(route: String, method: HTTPMethod, status: Int) -> RouteMeters {
        let key = MeterKey(route: route, method: method, status: status)
        if let found = meterCache.withValue({ cache -> RouteMeters? in
            // The same route as this thread's last request (a probe loop, a load test): no hashing.
            if let last = cache.last, last.key == key { return last.meters }
            guard let found = cache.meters[key] else { return nil }
            cache.last = (key, found)
            return found
        }) { return found }
        let label = ServiceMetrics.methodLabel(method)
        let created = RouteMeters(requests: metrics.requests.labels(route, label, String(status)),
                                  seconds: metrics.requestSeconds.labels(route, label))
        meterCache.withValue { cache in
            if cache.meters.count >= 4096 { cache.meters.removeAll() }   // bounded like the labels themselves
            cache.meters[key] = created
        }
        return created
    }

    /// A bounded metric label from a response's error code: short snake_case words, else "other";
    /// a 4xx/5xx without one is labelled by its status ("http_413").
    static func errorLabel(_ response: HTTPResponse) -> String? {
        guard response.status >= 400 else { return nil }
        guard let code = response.errorCode else { return "http_\(response.status)" }
        guard code.utf8.count <= 48, code.utf8.allSatisfy({ ($0 >= 0x61 && $0 <= 0x7A) || $0 == 0x5F || ($0 >= 0x30 && $0 <= 0x39) }) else {
            return "other"
        }
        return code
    }
}

private struct MeterKey: Hashable {
    var route: String
    var method: HTTPMethod
    var status: Int
}

/// One thread's, never touched re-entrantly: no dynamic exclusivity check (≈ 75 instructions an
/// access; see LoupeHTTP's Connection).
private final class MeterCache {
    @exclusivity(unchecked) var meters: [MeterKey: RouteMeters] = [:]
    @exclusivity(unchecked) var last: (key: MeterKey, meters: RouteMeters)? = nil
}

private struct RouteMeters: Sendable {
    let requests: MetricValue
    let seconds: HistogramValue
}

/// The sink a handler answers through: adds the instrumentation's headers and records the
/// response once, then passes it on.
final class InstrumentedSink: HTTPResponseSink, Sendable {
    let instrumentation: RequestInstrumentation
    let inner: any HTTPResponseSink
    let requestID: String
    let method: HTTPMethod
    let path: String
    let remote: String
    /// The matched route template, or "unmatched": the metrics' route label.
    let route: String
    let trace: TraceContext
    let cors: [(String, String)]
    let start: UInt64
    private let answered = Atomic<Bool>(false)

    init(instrumentation: RequestInstrumentation, inner: any HTTPResponseSink, requestID: String, method: HTTPMethod,
         path: String, remote: String, route: String, trace: TraceContext, cors: [(String, String)], start: UInt64) {
        self.instrumentation = instrumentation; self.inner = inner; self.requestID = requestID; self.method = method
        self.path = path; self.remote = remote; self.route = route; self.trace = trace; self.cors = cors; self.start = start
    }

    func respond(_ response: consuming HTTPResponse) {
        guard answered.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged else { return }
        // Handlers set neither X-Request-ID nor traceparent: added to the fields the response
        // moved in with (no copy when the handler's array has room, as `HTTPResponse.json`'s has).
        response.headers.reserveCapacity(response.headers.count + 2 + cors.count)
        response.headers.add("X-Request-ID", requestID)
        response.headers.add("traceparent", trace.header)
        for (name, value) in cors { response.headers.add(name, value) }
        // Metrics first, so a client that scrapes after its answer sees its request counted.
        instrumentation.finished(self, status: response.status, errorCode: RequestInstrumentation.errorLabel(response))
        inner.respond(consume response)
    }
}

extension HTTPRequest {
    /// The id this request's response carries as X-Request-ID: the one `RequestInstrumentation`
    /// assigned, or the client's header when the request did not pass through it (a handler
    /// called directly).
    var id: String? { requestID.isEmpty ? headers["X-Request-ID"] : requestID }
}
