// What the inference routes share: finding the model a request addresses, the input limits and
// where decoding runs, and handing a decoded batch to the batcher.
import Dispatch
import LoupeData
import LoupeEngine
import LoupeHTTP

/// The model a request addresses (`name`/`version` from the path or the query), or the error.
struct ModelResolver: Sendable {
    let provider: any ModelProvider
    /// `promotion.canary_key_header`: the header whose value keeps a client on one version in
    /// canary mode ("" = none: the request id decides).
    var canaryKeyHeader = ""

    /// The response header naming the version that answered, on the routes whose body cannot say
    /// (KServe v1 `:predict`, the PNG of `/explain`); the JSON bodies carry `model_version`.
    static let versionHeader = "X-Loupe-Model-Version"

    /// For every route that answers with a model (/predict, v2 infer, v1 :predict and :explain,
    /// /explain, /feedback with instances): with a version, that version; without one, the version
    /// safe promotion routes the request to (canary: by the hash of the key header, else of the
    /// request id) and the other version of its pair, which may classify a copy off the request path.
    func route(_ request: HTTPRequest, name: String?, versionText: String?) -> Result<RoutedModel, ServiceError> {
        if versionText == nil, name?.isEmpty != true {
            let header = canaryKeyHeader
            if let routed = provider.route(named: name, key: CanaryRouting.hash(
                (header.isEmpty ? nil : request.headers[header]) ?? request.id ?? "")) {
                return .success(routed)
            }
        }
        return resolve(name: name, versionText: versionText).map { RoutedModel(model: $0) }
    }

    func resolve(name: String?, versionText: String?) -> Result<any InferenceModel, ServiceError> {
        var version: Int?
        if let name, name.isEmpty {
            return .failure(.badRequest("invalid_parameter", "model must be a model name (\(ModelRepositoryLayout.nameRule)); leave the parameter out for the default model"))
        }
        if let v = versionText {
            guard let n = Int(v), n >= 1 else {
                return .failure(.badRequest("invalid_parameter", "version must be a positive integer, received '\(echoed(v))'"))
            }
            version = n
        }
        if let model = provider.model(named: name, version: version) { return .success(model) }
        if !provider.isReady && name == nil { return .failure(.notReady) }
        // A request naming no model asked for the default one: name it (a models.default that names no model of the
        // repository otherwise reads as "model 'default'").
        let defaultName = name == nil ? provider.defaultModelName : nil
        var error = ServiceError.modelNotFound(name ?? defaultName ?? (provider.modelNames.isEmpty ? nil : "default"), version: version)
        let names = provider.modelNames
        if let defaultName, !names.contains(defaultName) {
            error.message += " (the default model, models.default); the repository has \(names.isEmpty ? "no model" : names.map { "'\(echoed($0))'" }.joined(separator: ", ")): name one in the request or fix models.default"
        }
        if let name = name ?? defaultName,
           let problem = provider.loadProblems().first(where: { $0.model == name && $0.state != .ready && (version == nil || $0.version == version) }) {
            error.message += ": version \(problem.version) failed to load: \(problem.reason)"
        }
        return .failure(error)
    }

    /// The model, or nil after answering `sink` with the error (the prologue of every model route).
    func resolve(name: String?, versionText: String?, orAnswer sink: any HTTPResponseSink) -> (any InferenceModel)? {
        switch resolve(name: name, versionText: versionText) {
        case .success(let model): return model
        case .failure(let error): sink.respond(error.response); return nil
        }
    }

    /// `route(_:name:versionText:)`, or nil after answering `sink` with the error.
    func route(_ request: HTTPRequest, name: String?, versionText: String?, orAnswer sink: any HTTPResponseSink) -> RoutedModel? {
        switch route(request, name: name, versionText: versionText) {
        case .success(let routed): return routed
        case .failure(let error): sink.respond(error.response); return nil
        }
    }
}

/// The request-independent input limits, and where a body is decoded.
struct InputPolicy: Sendable {
    let maxImages: Int
    let maxImageDimension: Int
    /// `server.inline_decode_max_bytes`.
    let inlineDecodeMaxBytes: Int
    /// Shared by every image decode in flight (`limits.decode_budget_bytes`).
    let decodeBudget: DecodeBudget

    init(_ c: ServiceConfiguration) {
        maxImages = c.maxImagesPerRequest
        maxImageDimension = c.maxImageDimension
        inlineDecodeMaxBytes = c.inlineDecodeMaxBytes
        decodeBudget = DecodeBudget(limit: c.decodeBudgetBytes)
    }

    /// The limits for one request (`?resize=true` opts in to resizing).
    func limits(_ request: HTTPRequest) -> Result<InputLimits, ServiceError> {
        var resize = false
        if let r = request.queryValue("resize") {
            switch r.lowercased() {
            case "", "1", "true", "yes": resize = true
            case "0", "false", "no": resize = false
            default: return .failure(.badRequest("invalid_parameter", "resize must be true or false, received '\(echoed(r))'"))
            }
        }
        return .success(InputLimits(maxImages: maxImages, maxImageDimension: maxImageDimension, resize: resize,
                                    decodeBudget: decodeBudget))
    }

    /// The limits, or nil after answering `sink` with the error.
    func limits(_ request: HTTPRequest, orAnswer sink: any HTTPResponseSink) -> InputLimits? {
        switch limits(request) {
        case .success(let limits): return limits
        case .failure(let error): sink.respond(error.response); return nil
        }
    }

    /// Decoding runs where the handler runs (by default the connection's event loop: no thread
    /// hand-off for the common small request); a body larger than `server.inline_decode_max_bytes`
    /// is decoded on a Dispatch queue instead, so parsing a big JSON batch never holds up the other
    /// connections of that loop. `run` is called with `handler` (pass a closure that captures
    /// nothing, `{ $0.handleNow($1, $2) }`): a closure context is made only to offload, not for
    /// every request.
    @inline(__always)
    func offloadIfLarge<Handler: Sendable>(_ request: HTTPRequest, _ sink: any HTTPResponseSink, _ handler: Handler,
                                           _ run: @escaping @Sendable (Handler, HTTPRequest, any HTTPResponseSink) -> Void) {
        if request.body.count > inlineDecodeMaxBytes {
            DispatchQueue.global(qos: .userInitiated).async { run(handler, request, sink) }
        } else {
            run(handler, request, sink)
        }
    }
}

/// What a route answers once its prediction has run: the response for the result (on the worker
/// or event loop that ran it). Carried inside the job (`ResponderJob`), so a route whose responder
/// is a struct pays one allocation per request for job and completion together.
protocol PredictionResponder: Sendable {
    func response(_ result: InferenceResult) -> HTTPResponse
}

/// A route's answer as a closure (routes that need no struct of their own).
struct ClosureResponder: PredictionResponder {
    let respond: @Sendable (InferenceResult) -> HTTPResponse
    func response(_ result: InferenceResult) -> HTTPResponse { respond(result) }
}

/// A route's queued request: the job, the connection to answer and the route's responder in one
/// object. Completing it checks the outputs (NonFiniteOutputs), has the responder answer, counts
/// the request's statistics and adds the Server-Timing of the queue wait and the forward pass.
final class ResponderJob<Responder: PredictionResponder>: InferenceJob, @unchecked Sendable {
    let responder: Responder
    let sink: any HTTPResponseSink
    let startedAt: UInt64
    let counters: ModelVersionStatistics

    init(model: any InferenceModel, batch: DecodedBatch, explanation: ExplanationRequest?, decodedAt: UInt64,
         sink: any HTTPResponseSink, startedAt: UInt64, counters: ModelVersionStatistics, responder: Responder) {
        self.responder = responder; self.sink = sink; self.startedAt = startedAt; self.counters = counters
        super.init(model: model, floats: batch.floats, pixels: batch.pixels, count: batch.count, explanation: explanation,
                   enqueuedAt: decodedAt, completion: nil)
    }

    override func complete(_ result: InferenceResult) {
        let counted = explanation == nil
        let outputStart = monotonicNanoseconds()
        // Outputs overflowed to NaN/infinity: a 422, and the route's answer (which records the
        // prediction) never runs (Inference/NonFiniteOutputs.swift).
        var response = NonFiniteOutputs.check(result, model: model, count: count)?.response ?? responder.response(result)
        let end = monotonicNanoseconds()
        if counted && response.status < 400 {
            counters.succeeded(images: count, queue: result.queueNanoseconds, input: enqueuedAt &- startedAt,
                               infer: result.inferenceNanoseconds, output: end &- outputStart, total: end &- startedAt,
                               wallClockMilliseconds: InferenceStatistics.nowMilliseconds())
        } else if counted {
            counters.failed(nanoseconds: end &- startedAt)
        }
        response.headers.add("Server-Timing", serverTiming(queueNanoseconds: result.queueNanoseconds, stage: counted ? "inference" : "explain",
                                                           stageNanoseconds: result.inferenceNanoseconds))
        sink.respond(consume response)
    }
}

extension Batcher {
    /// Queues a decoded batch; `responder` answers on the inference worker (or event loop) with
    /// the result, and its response gets the Server-Timing of the queue wait and the forward pass.
    /// `startedAt` (monotonic ns) is when the handler began decoding the body: the request's
    /// statistics (`statistics`) count decoding, queueing, the forward pass and writing the
    /// response from there. With `explanation`, the job explains the images instead (it runs alone
    /// on a worker; Server-Timing then names the attribution time `explain`; the inference
    /// statistics do not count it).
    func submit<Responder: PredictionResponder>(_ batch: DecodedBatch, model: any InferenceModel, sink: any HTTPResponseSink,
                                                startedAt: UInt64, explanation: ExplanationRequest? = nil, responder: Responder) {
        let counters = statistics.counters(model)
        let job = ResponderJob(model: model, batch: batch, explanation: explanation, decodedAt: monotonicNanoseconds(),
                               sink: sink, startedAt: startedAt, counters: counters, responder: responder)
        switch submit(job) {
        case .accepted: return
        case .queueFull: sink.respond(ServiceError.queueFull.response)
        case .stopped: sink.respond(ServiceError.draining.response)
        }
        if explanation == nil { counters.failed(nanoseconds: monotonicNanoseconds() &- startedAt) }
    }

    /// `submit(_:model:sink:startedAt:explanation:responder:)` with the answer as a closure.
    func submit(_ batch: DecodedBatch, model: any InferenceModel, sink: any HTTPResponseSink, startedAt: UInt64,
                explanation: ExplanationRequest? = nil, respond: @escaping @Sendable (InferenceResult) -> HTTPResponse) {
        submit(batch, model: model, sink: sink, startedAt: startedAt, explanation: explanation, responder: ClosureResponder(respond: respond))
    }

    /// Counts a request for `model` that failed before reaching the queue (its body did not decode).
    func failed(_ model: any InferenceModel, startedAt: UInt64) {
        statistics.counters(model).failed(nanoseconds: monotonicNanoseconds() &- startedAt)
    }
}

/// The Server-Timing value of a batched request, "queue;dur=0.012, inference;dur=1.250": durations
/// in milliseconds with three decimals (to the microsecond, rounded), written into the string at
/// once (one allocation, where interpolating formatted parts made three).
func serverTiming(queueNanoseconds: UInt64, stage: StaticString, stageNanoseconds: UInt64) -> String {
    func milliseconds(_ ns: UInt64, into b: UnsafeMutableBufferPointer<UInt8>, at i: inout Int) {
        let micro = Int((Double(ns) / 1e6 * 1000).rounded())
        i += writeDecimalDigits(UInt(micro / 1000), to: b.baseAddress! + i)
        b[i] = UInt8(ascii: ".")
        let frac = micro % 1000
        b[i + 1] = UInt8(truncatingIfNeeded: frac / 100) &+ 0x30
        b[i + 2] = UInt8(truncatingIfNeeded: frac / 10 % 10) &+ 0x30
        b[i + 3] = UInt8(truncatingIfNeeded: frac % 10) &+ 0x30
        i += 4
    }
    func put(_ s: StaticString, into b: UnsafeMutableBufferPointer<UInt8>, at i: inout Int) {
        for k in 0..<s.utf8CodeUnitCount { b[i + k] = s.utf8Start[k] }
        i += s.utf8CodeUnitCount
    }
    // "queue;dur=" + 20 digits + ".000" + ", " + stage + ";dur=" + 20 digits + ".000"
    return String(unsafeUninitializedCapacity: 64 + stage.utf8CodeUnitCount) { b in
        var i = 0
        put("queue;dur=", into: b, at: &i)
        milliseconds(queueNanoseconds, into: b, at: &i)
        put(", ", into: b, at: &i)
        put(stage, into: b, at: &i)
        put(";dur=", into: b, at: &i)
        milliseconds(stageNanoseconds, into: b, at: &i)
        return i
    }
}
