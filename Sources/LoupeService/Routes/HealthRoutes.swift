// GET /health (everything an operator asks first), /health/live and /health/ready (Kubernetes
// probes), and the KServe v2 health endpoints /v2/health/live and /v2/health/ready with the
// spec's bodies ({"live": true}, {"ready": true}) that the KServe SDK reads.
import LoupeHTTP
import LoupeSystem

struct HealthRoutes: Sendable {
    let readiness: Readiness
    let provider: any ModelProvider
    let batcher: Batcher
    /// Safe promotion: each model under judgement and its last decision.
    let promotion: PromotionMonitor
    /// The body, kept per thread while what it is written from is the same.
    let bodyCache = HealthBody()

    func live(_ request: HTTPRequest, _ sink: any HTTPResponseSink) {
        sink.respond(.json(200, Array(#"{"status":"alive"}"#.utf8)))
    }

    func ready(_ request: HTTPRequest, _ sink: any HTTPResponseSink) {
        if readiness.check() {
            sink.respond(.json(200, Array(#"{"status":"ready"}"#.utf8)))
        } else {
            sink.respond(readiness.isDraining ? ServiceError.draining.response : ServiceError.notReady.response)
        }
    }

    func v2Live(_ request: HTTPRequest, _ sink: any HTTPResponseSink) {
        sink.respond(.json(200, Array(#"{"live":true}"#.utf8)))
    }

    /// `{"ready": true}` (200), else 503 with `{"ready": false, "error": …, "code": …}`.
    func v2Ready(_ request: HTTPRequest, _ sink: any HTTPResponseSink) {
        if readiness.check() {
            sink.respond(.json(200, Array(#"{"ready":true}"#.utf8)))
        } else {
            sink.respond((readiness.isDraining ? ServiceError.draining : ServiceError.notReady).response(flag: "ready"))
        }
    }

    func health(_ request: HTTPRequest, _ sink: any HTTPResponseSink) {
        let ready = readiness.check()
        let inputs = HealthBody.Inputs(
            ready: ready, draining: readiness.isDraining, uptimeMilliseconds: readiness.uptimeMilliseconds,
            startToReadySeconds: readiness.startToReadySeconds, queueDepth: batcher.queueDepth,
            models: provider.publishedGeneration, promotion: promotion.healthGeneration)
        var response = HTTPResponse.json(ready ? 200 : 503, bodyCache.body(inputs) { write(inputs) })
        if !ready { response.headers.add("Retry-After", "1") }
        sink.respond(consume response)
    }

    /// The body for `inputs` (the parts written once per published state come from the cache).
    private func write(_ inputs: HealthBody.Inputs) -> [UInt8] {
        let status = inputs.draining ? "draining" : (inputs.ready ? "ready" : "not_ready")
        var w = JSONWriter()
        // Keys as literal bytes (nothing in them to escape).
        w.raw(#"{"status":"#); w.string(status)
        w.raw(#","version":"#); w.string(loupeVersion)
        w.raw(#","uptime_seconds":"#); w.decimal(inputs.uptimeMilliseconds, scale: 3)
        if let s = inputs.startToReadySeconds { w.raw(#","start_to_ready_seconds":"#); w.decimal(Int((s * 1e6).rounded()), scale: 6) }
        w.raw(#","queue_depth":"#); w.int(inputs.queueDepth)
        w.bytes.append(contentsOf: bodyCache.models(provider, state: inputs.models))
        var judgement = JSONWriter(capacity: 0)
        if promotion.writeHealth(into: &judgement) {
            w.raw(#","promotion":"#); w.bytes.append(contentsOf: judgement.bytes)
        }
        w.raw("}")
        return w.bytes
    }
}

/// GET /metrics: the Prometheus text exposition (readiness refreshed first, so `loupe_ready` is now).
struct MetricsRoute: Sendable {
    let readiness: Readiness
    let registry: MetricsRegistry

    func handle(_ request: HTTPRequest, _ sink: any HTTPResponseSink) {
        _ = readiness.check()
        let text = registry.render()
        sink.respond(HTTPResponse(status: 200, headers: HTTPHeaders([("Content-Type", MetricsRegistry.contentType)]), body: Array(text.utf8)))
    }
}

/// GET /health's body, kept per thread: the whole body while its inputs are the same (uptime is
/// in milliseconds, so a loop answering thousands of probes a second writes it about once per
/// millisecond), and the models part — `"models"`, and `"load_failures"` / `"missing_files"` when
/// there are any — once per published provider state (the repository's snapshot changes only on a
/// reload), not once per probe.
final class HealthBody: Sendable {
    /// Everything the body is written from: equal inputs, equal bytes.
    struct Inputs {
        var ready: Bool
        var draining: Bool
        var uptimeMilliseconds: Int
        var startToReadySeconds: Double?
        var queueDepth: Int
        /// The provider's published generation; nil: not cacheable.
        var models: UInt64?
        /// `PromotionMonitor.healthGeneration`.
        var promotion: UInt64

        func same(as o: Inputs) -> Bool {
            guard let models, models == o.models else { return false }
            return ready == o.ready && draining == o.draining && uptimeMilliseconds == o.uptimeMilliseconds
                && startToReadySeconds == o.startToReadySeconds && queueDepth == o.queueDepth && promotion == o.promotion
        }
    }

    /// Each thread keeps its own copy (no lock shared by the event loops at every probe).
    private let kept = PerThread { Kept() }

    /// One thread's, never touched re-entrantly: no dynamic exclusivity check (≈ 75 instructions an
    /// access; see LoupeHTTP's Connection).
    private final class Kept {
        @exclusivity(unchecked) var state: UInt64? = nil
        @exclusivity(unchecked) var models: [UInt8] = []
        @exclusivity(unchecked) var inputs: Inputs? = nil
        @exclusivity(unchecked) var body: [UInt8] = []
    }

    /// The body for `inputs`: the kept one when they are the same as last time on this thread, else
    /// what `write` returns (then kept).
    func body(_ inputs: Inputs, write: () -> [UInt8]) -> [UInt8] {
        if let hit = kept.withValue({ k in k.inputs.map { inputs.same(as: $0) } == true ? k.body : nil }) { return hit }
        let bytes = write()
        kept.withValue { k in
            k.inputs = inputs.models == nil ? nil : inputs
            k.body = bytes
        }
        return bytes
    }

    /// The models part for the provider's published generation `state` (nil: written afresh).
    func models(_ provider: any ModelProvider, state: UInt64?) -> [UInt8] {
        if let state, let hit = kept.withValue({ $0.state == state ? $0.models : nil }) { return hit }
        let bytes = Self.write(provider)
        if let state { kept.withValue { $0.state = state; $0.models = bytes } }
        return bytes
    }

    static func write(_ provider: any ModelProvider) -> [UInt8] {
        var w = JSONWriter()
        w.raw(","); w.key("models"); w.raw("[")
        for (i, m) in provider.servedModels().enumerated() {
            if i > 0 { w.raw(",") }
            w.raw("{"); w.key("name"); w.string(m.name); w.raw(","); w.key("version"); w.int(m.version)
            w.raw(","); w.key("sha256"); w.string(m.sha256); w.raw(","); w.key("precision"); w.string(m.precision); w.raw("}")
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
        return w.bytes
    }
}
