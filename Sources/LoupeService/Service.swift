// The inference service: its routes, readiness and drain state, and the instrumentation every
// request passes through (request id, access log, HTTP metrics). Transport-agnostic: the
// `routes` are registered on LoupeHTTP's router by `ServiceServer`.
import Dispatch
import Logging
import LoupeData
import LoupeHTTP
import Synchronization

public let loupeVersion = "0.1.0"

/// One route: method, template ("/v2/models/{m}/infer") and handler.
public struct ServiceRoute: Sendable {
    public var method: HTTPMethod
    public var template: String
    public var handler: HTTPHandler
}

public final class InferenceService: Sendable {
    public let configuration: ServiceConfiguration
    public let provider: any ModelProvider
    public let metrics: ServiceMetrics
    let batcher: Batcher
    /// Shared by every image decode in flight (`limits.decode_budget_bytes`).
    let decodeBudget: DecodeBudget
    /// `server.cors.allowed_origins` (off when empty).
    let cors: CORSPolicy
    let logger: Logger
    /// Monotonic ns when the process (or the service, in tests) started.
    let startedAt: UInt64
    private let state = Mutex<State>(State())
    private let requestCounter = Atomic<UInt64>(0)
    private let requestIDPrefix: String

    struct State {
        var draining = false
        var readySince: UInt64 = 0
    }

    public init(configuration: ServiceConfiguration, provider: any ModelProvider, registry: MetricsRegistry = MetricsRegistry(),
                logger: Logger, startedAt: UInt64 = monotonicNanoseconds()) {
        self.configuration = configuration
        self.provider = provider
        self.metrics = ServiceMetrics(registry: registry, version: loupeVersion)
        self.logger = logger
        self.startedAt = startedAt
        self.decodeBudget = DecodeBudget(limit: configuration.decodeBudgetBytes)
        self.cors = CORSPolicy(configuration.corsAllowedOrigins)
        self.batcher = Batcher(configuration: BatcherConfiguration(
            workers: configuration.effectiveInferenceWorkers, threadsPerWorker: configuration.inferenceThreads,
            maxBatchSize: configuration.maxBatchSize, maxQueueDelayMicroseconds: configuration.maxQueueDelayMicroseconds,
            queueCapacity: configuration.queueCapacity,
            faultDelayMilliseconds: configuration.faultInferenceDelayMilliseconds,
            faultDelayPercent: configuration.faultInferenceDelayPercent), metrics: metrics.batcher)
        if configuration.faultInferenceDelayMilliseconds > 0 {
            logger.warning("fault injection is on: \(configuration.faultInferenceDelayPercent)% of forward passes are delayed by \(configuration.faultInferenceDelayMilliseconds) ms (fault.inference_delay_ms)")
        }
        var seed = UInt64(truncatingIfNeeded: wallClockSeconds().bitPattern) ^ startedAt
        seed = seed &* 0x9E37_79B9_7F4A_7C15
        requestIDPrefix = Self.hex8(seed >> 32)
        registry.addCollector { [provider] w in
            w.family("loupe_models_ready", help: "Servable model versions now.", kind: .gauge)
            w.sample("loupe_models_ready", value: Double(provider.servedModels().count))
        }
    }

    /// Starts the inference workers.
    public func start() {
        batcher.start()
        _ = checkReadiness()
    }

    // MARK: Readiness and drain

    /// Ready: a model is loaded (and passed its self-test) and the server is not draining. The
    /// first time this is true, start-to-ready is recorded.
    public func checkReadiness() -> Bool {
        let modelReady = provider.isReady
        let (ready, first) = state.withLock { s -> (Bool, Bool) in
            let ready = modelReady && !s.draining
            if ready && s.readySince == 0 { s.readySince = monotonicNanoseconds(); return (true, true) }
            return (ready, false)
        }
        metrics.ready.set(ready ? 1 : 0)
        if first {
            let seconds = Double(state.withLock { $0.readySince } - startedAt) / 1e9
            metrics.startToReady.set(seconds)
            logger.info("ready", metadata: ["start_to_ready_ms": "\(Int((seconds * 1000).rounded()))",
                                            "models": "\(provider.servedModels().map { "\($0.name)/\($0.version)" }.joined(separator: ","))"])
        }
        return ready
    }

    /// Seconds from start to the first ready state, nil before.
    public var startToReadySeconds: Double? {
        let since = state.withLock { $0.readySince }
        return since == 0 ? nil : Double(since - startedAt) / 1e9
    }

    public var isDraining: Bool { state.withLock { $0.draining } }

    /// SIGTERM, step 1: readiness turns 503; requests are still served.
    public func beginDrain() {
        state.withLock { $0.draining = true }
        metrics.draining.set(1)
        metrics.ready.set(0)
    }

    /// Last step of shutdown: stops the inference workers after the queue empties.
    public func stopWorkers(deadline: UInt64) -> Bool {
        batcher.stop()
        return batcher.waitUntilStopped(deadline: deadline)
    }

    // MARK: Instrumentation

    /// Wraps a request: assigns the request id, counts it in flight, and on response adds
    /// X-Request-ID, records HTTP metrics and writes the access log line.
    public func instrument(_ request: HTTPRequest, sink: any HTTPResponseSink, next: (HTTPRequest, any HTTPResponseSink) -> Void) {
        let id = requestID(from: request.headers["X-Request-ID"])
        metrics.inFlight.increment()
        let instrumented = InstrumentedSink(service: self, inner: sink, requestID: id, method: request.method,
                                            path: request.path, remote: request.remoteAddress, start: monotonicNanoseconds())
        instrumented.trace = TraceContext.forRequest(request.headers["traceparent"])
        instrumented.cors = cors.headers(origin: request.headers["Origin"], method: request.method,
                                         preflight: request.headers["Access-Control-Request-Method"] != nil)
        next(request, instrumented)
    }

    /// Wraps a route handler so the instrumented sink learns the matched route template.
    func routeHandler(_ template: String, _ handler: @escaping HTTPHandler) -> HTTPHandler {
        { [configuration] request, sink in
            (sink as? InstrumentedSink)?.route.withLock { $0 = template }
            guard !request.body.isEmpty, request.headers["Content-Encoding"] != nil else { return handler(request, sink) }
            switch ContentCoding.decode(request, maxBytes: configuration.maxBodyBytes) {
            case .success(let decoded): handler(decoded, sink)
            case .failure(let error): sink.respond(error.response)
            }
        }
    }

    private func requestID(from header: String?) -> String {
        if let h = header, !h.isEmpty, h.utf8.count <= 128,
           h.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) {
            return h
        }
        let n = requestCounter.add(1, ordering: .relaxed).newValue
        return requestIDPrefix + Self.hex8(n)
    }

    /// The low 32 bits as exactly 8 lower-case hex digits (so a generated request id is always 16).
    static func hex8(_ v: UInt64) -> String {
        let hex = String(v & 0xFFFF_FFFF, radix: 16)
        return String(repeating: "0", count: 8 - hex.count) + hex
    }

    func finished(_ sink: InstrumentedSink, status: Int, errorCode: String?) {
        metrics.inFlight.decrement()
        let route = sink.route.withLock { $0 } ?? "unmatched"
        let method = ServiceMetrics.methodLabel(sink.method)
        let seconds = Double(monotonicNanoseconds() - sink.start) / 1e9
        metrics.requests.labels(route, method, String(status)).increment()
        metrics.requestSeconds.labels(route, method).observe(seconds)
        if let errorCode, status >= 400 { metrics.rejections.labels(errorCode).increment() }
        if configuration.accessLog {
            var meta: Logger.Metadata = [
                "request_id": .string(sink.requestID), "trace_id": .string(sink.trace.traceID),
                "method": .string(sink.method.description), "path": .string(sink.path),
                "route": .string(route), "status": .stringConvertible(status),
                "duration_ms": .string(formatMilliseconds(seconds * 1000)), "remote": .string(sink.remote),
            ]
            if let errorCode { meta["error_code"] = .string(errorCode) }
            logger.info("request", metadata: meta)
        }
    }

    // MARK: Routes

    /// The separate metrics listener's routes (`metrics.port` > 0): GET /metrics only.
    public var metricsListenerRoutes: [ServiceRoute] {
        guard configuration.metricsEnabled && configuration.metricsPort > 0 else { return [] }
        return [ServiceRoute(method: .GET, template: "/metrics", handler: routeHandler("/metrics") { [self] r, s in metricsEndpoint(r, s) })]
    }

    public var routes: [ServiceRoute] {
        var list: [ServiceRoute] = []
        func add(_ method: HTTPMethod, _ template: String, _ handler: @escaping HTTPHandler) {
            list.append(ServiceRoute(method: method, template: template, handler: routeHandler(template, handler)))
        }
        add(.POST, "/predict") { [self] r, s in predict(r, s) }
        add(.GET, "/health") { [self] r, s in health(r, s) }
        add(.GET, "/health/live") { [self] r, s in live(r, s) }
        add(.GET, "/health/ready") { [self] r, s in ready(r, s) }
        if configuration.metricsEnabled && configuration.metricsPort == 0 {
            add(.GET, "/metrics") { [self] r, s in metricsEndpoint(r, s) }
        }
        add(.GET, "/openapi.json") { _, s in s.respond(.json(200, OpenAPI.document)) }
        add(.GET, "/v2") { [self] r, s in oipServerMetadata(r, s) }
        add(.GET, "/v2/health/live") { _, s in s.respond(.json(200, Array(#"{"live":true}"#.utf8))) }
        add(.GET, "/v2/health/ready") { [self] r, s in v2Ready(r, s) }
        add(.GET, "/v2/models/{m}") { [self] r, s in oipModelMetadata(r, s) }
        add(.GET, "/v2/models/{m}/versions/{v}") { [self] r, s in oipModelMetadata(r, s) }
        add(.GET, "/v2/models/{m}/ready") { [self] r, s in oipModelReady(r, s) }
        add(.GET, "/v2/models/{m}/versions/{v}/ready") { [self] r, s in oipModelReady(r, s) }
        add(.POST, "/v2/models/{m}/infer") { [self] r, s in oipInfer(r, s) }
        add(.POST, "/v2/models/{m}/versions/{v}/infer") { [self] r, s in oipInfer(r, s) }
        for extra in extraRoutes.withLock({ $0 }) {
            add(extra.method, extra.template, extra.handler)
        }
        return list
    }

    private let extraRoutes = Mutex<[ServiceRoute]>([])

    /// Adds a route served next to the built-in ones (the repository API registers its endpoints
    /// here). Must be called before the server starts.
    public func addRoute(_ method: HTTPMethod, _ template: String, _ handler: @escaping HTTPHandler) {
        extraRoutes.withLock { $0.append(ServiceRoute(method: method, template: template, handler: handler)) }
    }

    // MARK: Health

    func live(_ request: HTTPRequest, _ sink: any HTTPResponseSink) {
        sink.respond(.json(200, Array(#"{"status":"alive"}"#.utf8)))
    }

    func ready(_ request: HTTPRequest, _ sink: any HTTPResponseSink) {
        if checkReadiness() {
            sink.respond(.json(200, Array(#"{"status":"ready"}"#.utf8)))
        } else {
            sink.respond(isDraining ? ServiceError.draining.response : ServiceError.notReady.response)
        }
    }

    /// KServe v2 / Open Inference Protocol readiness: `{"ready": true}` (200), else 503 with
    /// `{"ready": false, "error": …, "code": …}` — the spec's body, which the KServe SDK reads.
    func v2Ready(_ request: HTTPRequest, _ sink: any HTTPResponseSink) {
        if checkReadiness() {
            sink.respond(.json(200, Array(#"{"ready":true}"#.utf8)))
        } else {
            sink.respond((isDraining ? ServiceError.draining : ServiceError.notReady).response(flag: "ready"))
        }
    }

    func health(_ request: HTTPRequest, _ sink: any HTTPResponseSink) {
        let ready = checkReadiness()
        let status = isDraining ? "draining" : (ready ? "ready" : "not_ready")
        var w = JSONWriter()
        w.raw("{"); w.key("status"); w.string(status)
        w.raw(","); w.key("version"); w.string(loupeVersion)
        w.raw(","); w.key("uptime_seconds"); w.double((Double(monotonicNanoseconds() - startedAt) / 1e9 * 1000).rounded() / 1000)
        if let s = startToReadySeconds { w.raw(","); w.key("start_to_ready_seconds"); w.double((s * 1e6).rounded() / 1e6) }
        w.raw(","); w.key("queue_depth"); w.int(batcher.queueDepth)
        w.raw(","); w.key("models"); w.raw("[")
        for (i, m) in provider.servedModels().enumerated() {
            if i > 0 { w.raw(",") }
            w.raw("{"); w.key("name"); w.string(m.name); w.raw(","); w.key("version"); w.int(m.version)
            w.raw(","); w.key("sha256"); w.string(m.sha256); w.raw("}")
        }
        w.raw("]")
        // What failed to load, and why: the answer to "why is it not ready / not the new version".
        // And which served versions have lost their files (kept serving from memory).
        for (key, problems) in [("load_failures", provider.loadProblems()), ("missing_files", provider.missingFiles())] where !problems.isEmpty {
            w.raw(","); w.key(key); w.raw("[")
            for (i, p) in problems.enumerated() {
                if i > 0 { w.raw(",") }
                w.raw("{"); w.key("model"); w.string(p.model); w.raw(","); w.key("version"); w.int(p.version)
                w.raw(","); w.key("state"); w.string(p.state.rawValue); w.raw(","); w.key("reason"); w.string(p.reason); w.raw("}")
            }
            w.raw("]")
        }
        w.raw("}")
        var response = HTTPResponse.json(ready ? 200 : 503, w.bytes)
        if !ready { response.headers.add("Retry-After", "1") }
        sink.respond(response)
    }

    func metricsEndpoint(_ request: HTTPRequest, _ sink: any HTTPResponseSink) {
        _ = checkReadiness()
        let text = metrics.registry.render()
        sink.respond(HTTPResponse(status: 200, headers: HTTPHeaders([("Content-Type", MetricsRegistry.contentType)]), body: Array(text.utf8)))
    }

    // MARK: Model selection

    /// The model a request addresses, or the error to answer with.
    func resolveModel(name: String?, versionText: String?) -> Result<any InferenceModel, ServiceError> {
        var version: Int?
        if let v = versionText, !v.isEmpty {
            guard let n = Int(v), n >= 1 else {
                return .failure(.badRequest("invalid_parameter", "version must be a positive integer, received '\(echoed(v))'"))
            }
            version = n
        }
        let name = (name?.isEmpty ?? true) ? nil : name
        if let model = provider.model(named: name, version: version) { return .success(model) }
        if !provider.isReady && name == nil { return .failure(.notReady) }
        var error = ServiceError.modelNotFound(name ?? (provider.modelNames.isEmpty ? nil : "default"), version: version)
        if let name, let problem = provider.loadProblems().first(where: { $0.model == name && $0.state != .ready && (version == nil || $0.version == version) }) {
            error.message += ": version \(problem.version) failed to load: \(problem.reason)"
        }
        return .failure(error)
    }

    func inputLimits(_ request: HTTPRequest) -> Result<InputLimits, ServiceError> {
        var resize = false
        if let r = request.queryValue("resize") {
            switch r.lowercased() {
            case "", "1", "true", "yes": resize = true
            case "0", "false", "no": resize = false
            default: return .failure(.badRequest("invalid_parameter", "resize must be true or false, received '\(echoed(r))'"))
            }
        }
        return .success(InputLimits(maxImages: configuration.maxImagesPerRequest,
                                    maxImageDimension: configuration.maxImageDimension, resize: resize,
                                    decodeBudget: decodeBudget))
    }

    /// Decoding runs where the handler runs (by default the connection's event loop: no thread
    /// hand-off for the common small request); a body larger than `server.inline_decode_max_bytes`
    /// is decoded on a Dispatch queue instead, so parsing a big JSON batch never holds up the other
    /// connections of that loop.
    func offloadIfLarge(_ request: HTTPRequest, _ work: @escaping @Sendable () -> Void) {
        if request.body.count > configuration.inlineDecodeMaxBytes {
            DispatchQueue.global(qos: .userInitiated).async(execute: work)
        } else {
            work()
        }
    }

    /// Queues a decoded batch; `respond` runs on the inference worker with the result.
    func submit(_ batch: DecodedBatch, model: any InferenceModel, sink: any HTTPResponseSink,
                respond: @escaping @Sendable (InferenceResult) -> HTTPResponse) {
        let job = InferenceJob(model: model, input: batch.input, count: batch.count) { result in
            var response = respond(result)
            response.headers.add("Server-Timing",
                                 "queue;dur=\(formatMilliseconds(Double(result.queueNanoseconds) / 1e6)), inference;dur=\(formatMilliseconds(Double(result.inferenceNanoseconds) / 1e6))")
            sink.respond(response)
        }
        switch batcher.submit(job) {
        case .accepted: break
        case .queueFull: sink.respond(ServiceError.queueFull.response)
        case .stopped: sink.respond(ServiceError.draining.response)
        }
    }

    /// Top-1 class of each row (its confidence is that probability), recorded with the confidence in the
    /// prediction metrics and drift.
    func recordOutcome(model: any InferenceModel, batch: DecodedBatch, probabilities: [Float]) -> [Int] {
        let k = model.outputCount
        var classes = [Int](); classes.reserveCapacity(batch.count)
        var confidences = [Float](); confidences.reserveCapacity(batch.count)
        for i in 0..<batch.count {
            var best = 0
            var bestP = -Float.infinity
            for j in 0..<k where probabilities[i * k + j] > bestP { bestP = probabilities[i * k + j]; best = j }
            classes.append(best); confidences.append(bestP)
        }
        metrics.recordPredictions(model: model.name, labels: model.labels, classes: classes, confidences: confidences)
        // Drift statistics (the repository's models keep a sliding window of live inputs).
        if let pixels = batch.pixels {
            model.observe(pixels: pixels, predictedClasses: classes)
        } else if let loaded = model as? LoadedModel {
            model.observe(pixels: loaded.pixels(fromNormalized: batch.input), predictedClasses: classes)
        }
        return classes
    }
}

/// Counts and logs the response; adds X-Request-ID.
final class InstrumentedSink: HTTPResponseSink, Sendable {
    let service: InferenceService
    let inner: any HTTPResponseSink
    let requestID: String
    let method: HTTPMethod
    let path: String
    let remote: String
    let start: UInt64
    let route = Mutex<String?>(nil)
    /// Set once in `instrument`, before the sink is shared.
    nonisolated(unsafe) var trace = TraceContext(traceID: "", spanID: "", flags: "01")
    nonisolated(unsafe) var cors: [(String, String)] = []
    private let answered = Atomic<Bool>(false)

    init(service: InferenceService, inner: any HTTPResponseSink, requestID: String, method: HTTPMethod, path: String, remote: String, start: UInt64) {
        self.service = service; self.inner = inner; self.requestID = requestID; self.method = method
        self.path = path; self.remote = remote; self.start = start
    }

    func respond(_ response: HTTPResponse) {
        guard answered.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged else { return }
        var response = response
        response.headers.set("X-Request-ID", requestID)
        response.headers.add("traceparent", trace.header)   // handlers never set it
        for (name, value) in cors { response.headers.add(name, value) }
        var errorCode: String?
        if response.status >= 400, let text = response.headers["Content-Type"], text.hasPrefix("application/json") {
            errorCode = extractErrorCode(response.body)
        }
        if response.status >= 500 && response.status != 503 {
            service.logger.error("server error", metadata: ["request_id": .string(requestID), "status": .stringConvertible(response.status)])
        }
        // Metrics first, so a client that scrapes after its answer sees its request counted.
        service.finished(self, status: response.status, errorCode: errorCode ?? (response.status >= 400 ? "http_\(response.status)" : nil))
        inner.respond(response)
    }

    /// The "code" of an error body, without a full parse (bodies are small and ours).
    private func extractErrorCode(_ body: [UInt8]) -> String? {
        guard let value = try? JSONReader.parse(body), let code = value["code"]?.stringValue else { return nil }
        // Bounded label values: codes are short snake_case words.
        guard code.utf8.count <= 48, code.utf8.allSatisfy({ ($0 >= 0x61 && $0 <= 0x7A) || $0 == 0x5F || ($0 >= 0x30 && $0 <= 0x39) }) else {
            return "other"
        }
        return code
    }
}

func formatMilliseconds(_ ms: Double) -> String {
    let micro = (ms * 1000).rounded()
    let whole = Int(micro) / 1000, frac = Int(micro) % 1000
    let f = String(frac)
    return "\(whole)." + String(repeating: "0", count: 3 - f.count) + f
}
