// The batcher's settings (the `batching.*` and `fault.*` keys, resolved) and the metrics it updates.
public struct BatcherConfiguration: Sendable {
    public var workers: Int
    public var threadsPerWorker: Int
    public var maxBatchSize: Int
    public var maxQueueDelayMicroseconds: Int
    /// Images waiting at most.
    public var queueCapacity: Int
    /// Fault injection (`fault.inference_delay_ms` / `_percent`): this many milliseconds added to
    /// that share of forward passes, as Envoy's fault filter delays requests. 0 = off.
    public var faultDelayMilliseconds: Int
    public var faultDelayPercent: Int
    /// `batching.on_event_loop`: predictions submitted on an event loop's thread run there, batched
    /// per loop iteration. Only when nothing asks a forward pass to wait (no queue delay, no fault
    /// delay): those keep every job on the workers. See `runsOnEventLoop`.
    public var onEventLoop: Bool
    /// `batching.event_loop_max_pass_us`: an event loop runs a model's predictions itself only while
    /// its pass is expected to take at most this long (the model's measured cost per image × the
    /// images): a loop computing does not serve its other connections, health probes included.
    /// A model not yet measured goes to the workers. 0 = no limit.
    public var eventLoopMaxPassMicroseconds: Int

    public init(workers: Int, threadsPerWorker: Int, maxBatchSize: Int, maxQueueDelayMicroseconds: Int, queueCapacity: Int,
                faultDelayMilliseconds: Int = 0, faultDelayPercent: Int = 100, onEventLoop: Bool = false,
                eventLoopMaxPassMicroseconds: Int = 0) {
        self.workers = max(1, workers); self.threadsPerWorker = max(1, threadsPerWorker)
        self.maxBatchSize = max(1, maxBatchSize); self.maxQueueDelayMicroseconds = max(0, maxQueueDelayMicroseconds)
        self.queueCapacity = max(1, queueCapacity)
        self.faultDelayMilliseconds = max(0, faultDelayMilliseconds); self.faultDelayPercent = min(100, max(0, faultDelayPercent))
        self.onEventLoop = onEventLoop
        self.eventLoopMaxPassMicroseconds = max(0, eventLoopMaxPassMicroseconds)
    }

    /// Whether event-loop batching is in effect: asked for, and no forward pass is meant to wait
    /// (a queue delay or an injected fault delay would stall the loop's other connections).
    public var runsOnEventLoop: Bool {
        onEventLoop && maxQueueDelayMicroseconds == 0 && faultDelayMilliseconds == 0
    }
}

/// Metrics the batcher updates (created by `ServiceMetrics`).
public struct BatcherMetrics: Sendable {
    var queueDepth: MetricValue
    var batchSize: HistogramValue
    var queueSeconds: HistogramValue
    var inferenceSeconds: HistogramValue
    var busyWorkers: MetricValue

    static func detached() -> BatcherMetrics {
        let r = MetricsRegistry()
        return BatcherMetrics(
            queueDepth: r.gauge("q", help: "").unlabelled,
            batchSize: r.histogram("b", help: "", buckets: MetricBuckets.batchSize).unlabelled,
            queueSeconds: r.histogram("qs", help: "", buckets: MetricBuckets.latencySeconds).unlabelled,
            inferenceSeconds: r.histogram("is", help: "", buckets: MetricBuckets.latencySeconds).unlabelled,
            busyWorkers: r.gauge("w", help: "").unlabelled)
    }
}
