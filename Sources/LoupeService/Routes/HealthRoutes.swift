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
    /// The models part of the body, kept while the provider's published state is the same.
    let modelsPart = HealthModelsPart()

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
        let status = readiness.isDraining ? "draining" : (ready ? "ready" : "not_ready")
        var w = JSONWriter()
        // Keys as literal bytes (nothing in them to escape): this runs at every probe.
        w.raw(#"{"status":"#); w.string(status)
        w.raw(#","version":"#); w.string(loupeVersion)
        w.raw(#","uptime_seconds":"#); w.decimal(readiness.uptimeMilliseconds, scale: 3)
        if let s = readiness.startToReadySeconds { w.raw(#","start_to_ready_seconds":"#); w.decimal(Int((s * 1e6).rounded()), scale: 6) }
        w.raw(#","queue_depth":"#); w.int(batcher.queueDepth)
        w.bytes.append(contentsOf: modelsPart.bytes(provider))
        var judgement = JSONWriter(capacity: 0)
        if promotion.writeHealth(into: &judgement) {
            w.raw(","); w.key("promotion"); w.bytes.append(contentsOf: judgement.bytes)
        }
        w.raw("}")
        var response = HTTPResponse.json(ready ? 200 : 503, w.bytes)
        if !ready { response.headers.add("Retry-After", "1") }
        sink.respond(response)
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

/// The part of /health that follows from the model provider's state alone — `"models"`, and
/// `"load_failures"` / `"missing_files"` when there are any — written once per published state
/// (the repository's snapshot changes only on a reload), not once per probe.
final class HealthModelsPart: Sendable {
    /// Each thread keeps its own copy (no lock shared by the event loops at every probe).
    private let kept = PerThread { Kept() }

    private final class Kept {
        var state: AnyObject? = nil
        var bytes: [UInt8] = []
    }

    func bytes(_ provider: any ModelProvider) -> [UInt8] {
        let state = provider.publishedState
        if let state, let hit = kept.withValue({ $0.state === state ? $0.bytes : nil }) { return hit }
        let bytes = Self.write(provider)
        if let state { kept.withValue { $0.state = state; $0.bytes = bytes } }
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
