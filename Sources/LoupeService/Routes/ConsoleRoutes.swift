// The web console (GET / for browsers) and the two small JSON endpoints it reads besides the public
// inference API: GET /api/models (model cards) and GET /api/status (live operations). The page is a
// client of documented endpoints only (docs/api.md, "Web console").
import LoupeData
import LoupeEngine
import LoupeHTTP
import Synchronization

struct ConsoleRoutes: Sendable {
    let provider: any ModelProvider
    let metrics: ServiceMetrics
    let batcher: Batcher
    let sampler: StatusSampler
    /// What GET / answers to clients that do not ask for HTML (the KServe v1 liveness body).
    let nonBrowserRoot: @Sendable (HTTPRequest, any HTTPResponseSink) -> Void

    /// GET /: the console when the client accepts text/html (a browser), else `nonBrowserRoot`.
    /// The page is static: its gzip form is made once (not per request), and its ETag lets a reload
    /// revalidate with a 304 (`Cache-Control: no-cache`: always revalidated, so a new binary's page is
    /// never stale).
    func index(_ request: HTTPRequest, _ sink: any HTTPResponseSink) {
        guard (request.headers["Accept"] ?? "").contains("text/html") else { return nonBrowserRoot(request, sink) }
        var headers = HTTPHeaders([
            ("Content-Type", "text/html; charset=utf-8"),
            ("Cache-Control", "no-cache"),
            ("ETag", ConsolePage.etag),
            ("Vary", "Accept, Accept-Encoding"),
            ("Content-Security-Policy", "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src 'self' data: blob:; connect-src 'self'"),
        ])
        if let tags = request.headers["If-None-Match"],
           tags.split(separator: ",").contains(where: { let t = String($0).trimmingSpaces(); return t == ConsolePage.etag || t == "W/" + ConsolePage.etag || t == "*" }) {
            return sink.respond(HTTPResponse(status: 304, headers: headers, body: []))
        }
        if let accept = request.headers["Accept-Encoding"], ResponseWriter.acceptsGzip(accept), let gzipped = ConsolePage.gzipped {
            headers.add("Content-Encoding", "gzip")
            return sink.respond(HTTPResponse(status: 200, headers: headers, body: gzipped))
        }
        sink.respond(HTTPResponse(status: 200, headers: headers, body: ConsolePage.html))
    }

    /// GET /api/models: every served model version with its card.
    func models(_ request: HTTPRequest, _ sink: any HTTPResponseSink) {
        let served = provider.servedModels().sorted { ($0.name, $0.version) < ($1.name, $1.version) }
        var w = JSONWriter(capacity: 4096)
        w.raw("{\"models\":[")
        for (i, m) in served.enumerated() {
            if i > 0 { w.raw(",") }
            w.raw("{\"name\":"); w.string(m.name)
            w.raw(",\"version\":"); w.int(m.version)
            w.raw(",\"sha256\":"); w.string(m.sha256)
            w.raw(",\"card\":")
            if let source = m.cardSource {
                w.bytes.append(contentsOf: ModelCard(header: source.header, directory: source.directory).json())
            } else {
                w.raw("null")
            }
            w.raw("}")
        }
        w.raw("]}")
        sink.respond(.json(200, w.bytes))
    }

    /// GET /api/status: request rate, latency percentiles and batch sizes over the last minute, queue, drift.
    func status(_ request: HTTPRequest, _ sink: any HTTPResponseSink) {
        let now = monotonicNanoseconds()
        let current = StatusSampler.Sample(
            time: now,
            requests: metrics.requests.total { $0.count == 3 && $0[1] == "POST" },
            latency: metrics.requestSeconds.merged { $0.count == 2 && $0[1] == "POST" },
            batch: metrics.batcher.batchSize.counts())
        let (earlier, windowSeconds) = sampler.window(ending: current)
        let latency = current.latency.minus(earlier.latency)
        let batch = current.batch.minus(earlier.batch)
        let requests = current.requests - earlier.requests
        var w = JSONWriter(capacity: 2048)
        w.raw("{\"window_seconds\":"); w.double(windowSeconds.rounded(toPlaces: 3))
        w.raw(",\"requests\":"); w.int(Int(requests))
        w.raw(",\"requests_per_second\":"); w.double(windowSeconds > 0 ? (requests / windowSeconds).rounded(toPlaces: 3) : 0)
        w.raw(",\"latency_ms\":{\"p50\":"); optional(latency.quantile(0.5).map { $0 * 1000 }, &w)
        w.raw(",\"p99\":"); optional(latency.quantile(0.99).map { $0 * 1000 }, &w); w.raw("}")
        w.raw(",\"batch_size\":{\"mean\":"); optional(batch.count > 0 ? batch.sum / Double(batch.count) : nil, &w)
        w.raw(",\"p50\":"); optional(batch.quantileBound(0.5), &w)
        w.raw(",\"batches\":"); w.int(Int(batch.count)); w.raw("}")
        w.raw(",\"queue_depth\":"); w.int(batcher.queueDepth)
        w.raw(",\"workers_busy\":"); w.int(Int(metrics.batcher.busyWorkers.value))
        w.raw(",\"models\":[")
        let served = provider.servedModels().sorted { ($0.name, $0.version) < ($1.name, $1.version) }
        for (i, m) in served.enumerated() {
            if i > 0 { w.raw(",") }
            w.raw("{\"name\":"); w.string(m.name); w.raw(",\"version\":"); w.int(m.version)
            w.raw(",\"drift\":")
            if let d = m.driftSummary() {
                w.raw("{\"images\":"); w.int(d.images)
                w.raw(",\"class_psi\":"); optional(d.classPSI, &w)
                w.raw(",\"intensity_psi\":"); optional(d.intensityPSI, &w)
                w.raw("},\"class_shares\":[")
                let expected = d.reference.expectedClassShares
                for (c, live) in d.liveClassShare.enumerated() {
                    if c > 0 { w.raw(",") }
                    w.raw("{\"label\":"); w.string(c < m.labels.count ? m.labels[c] : String(c))
                    w.raw(",\"live\":"); w.double(live.rounded(toPlaces: 4))
                    w.raw(",\"expected\":"); optional(expected.flatMap { c < $0.count ? $0[c].rounded(toPlaces: 4) : nil }, &w)
                    w.raw("}")
                }
                w.raw("]")
            } else {
                w.raw("null,\"class_shares\":[]")
            }
            w.raw("}")
        }
        w.raw("]}")
        sink.respond(HTTPResponse(status: 200, headers: HTTPHeaders([("Content-Type", "application/json"), ("Cache-Control", "no-store")]),
                                  body: w.bytes))
    }

    private func optional(_ v: Double?, _ w: inout JSONWriter) {
        if let v, v.isFinite { w.double(v.rounded(toPlaces: 4)) } else { w.raw("null") }
    }
}

/// The /api/status window: samples of the cumulative counters, so each answer covers about the last
/// minute (from the newest sample at least `window` old), or the time since start before that.
final class StatusSampler: Sendable {
    struct Sample: Sendable {
        var time: UInt64
        var requests: Double
        var latency: HistogramCounts
        var batch: HistogramCounts
    }

    let window: UInt64
    private let start: Sample
    private let samples = Mutex<[Sample]>([])

    init(metrics: ServiceMetrics, windowSeconds: Double = 60) {
        window = UInt64(windowSeconds * 1e9)
        let empty = { (h: HistogramCounts) in HistogramCounts(upperBounds: h.upperBounds, counts: h.counts.map { _ in 0 }, sum: 0, count: 0) }
        start = Sample(time: monotonicNanoseconds(), requests: 0,
                       latency: empty(metrics.requestSeconds.merged { _ in false }),
                       batch: empty(metrics.batcher.batchSize.counts()))
    }

    /// Records `current` and returns the sample to subtract from it and the seconds between them.
    func window(ending current: Sample) -> (Sample, Double) {
        samples.withLock { list in
            // Keep one sample older than the window (the base) and the newer ones, at most one per second.
            while list.count >= 2 && current.time &- list[1].time >= window { list.removeFirst() }
            let base = list.first ?? start
            if list.last.map({ current.time &- $0.time >= 1_000_000_000 }) ?? true { list.append(current) }
            if list.count > 600 { list.removeFirst(list.count - 600) }
            return (base, Double(current.time &- base.time) / 1e9)
        }
    }
}

extension Double {
    func rounded(toPlaces places: Int) -> Double {
        var scale = 1.0
        for _ in 0..<places { scale *= 10 }
        return (self * scale).rounded() / scale
    }
}
