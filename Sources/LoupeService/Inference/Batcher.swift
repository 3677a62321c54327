// Dynamic batching: requests (each one or more images for one model) wait in a bounded queue;
// a fixed set of worker threads, each with its own model workspaces, take up to
// `maxBatchSize` queued images of the same model at once, waiting at most `maxQueueDelay` for a
// batch to fill (0 = take what is queued, never wait), run one forward pass and complete each
// request with its slice of the output.
//
// On an event loop (`batching.on_event_loop`): a prediction submitted by a handler running on an
// event loop's thread waits in that loop's own batch instead (LoopBatch.swift), which the loop runs
// at the end of its current iteration — the requests it decoded in one round are one forward pass,
// and the responses are written from there: no lock, no futex, no eventfd, no thread hand-off.
import LoupeData
import LoupeEngine
import LoupeHTTP
import Synchronization

/// Timings and outputs for one request.
public struct InferenceResult: Sendable {
    /// `count × outputCount` probabilities (softmax of `outputs` when the model ends in logits).
    public var probabilities: [Float]
    /// `count × outputCount` network outputs as the graph computes them: the same array as
    /// `probabilities` for a softmax-last model, logits otherwise (what v2 infer returns).
    public var outputs: [Float] = []
    public var queueNanoseconds: UInt64
    public var inferenceNanoseconds: UInt64
    /// Images in the forward pass this request was part of.
    public var batchSize: Int
    /// For an explain job: one attribution per image, or why there are none.
    public var explanation: Result<[Attribution], ServiceError>? = nil
}

/// One queued request. A route's job (`ResponderJob`, Routes/RouteSupport.swift) is a subclass
/// that completes itself, so that a request's job, its completion and what the route needs to
/// answer are one allocation, not a job plus closure contexts.
public class InferenceJob: @unchecked Sendable {
    public let model: any InferenceModel
    /// The input: model-ready floats, or 8-bit pixels normalized where the forward pass gathers
    /// its batch (`appendInput`), or by `input`.
    let floats: [Float]?
    let pixels: [UInt8]?
    let normalization: Normalization
    public let count: Int
    /// Set for an explain job: it runs alone, and counts as `weight` images in the queue.
    public let explanation: ExplanationRequest?
    /// Queue slots the job holds: its images, times the network passes per image for an explanation.
    public let weight: Int
    let enqueuedAt: UInt64
    private let completion: (@Sendable (InferenceResult) -> Void)?

    /// `input` holds `count × model.inputCount` model-ready floats.
    public convenience init(model: any InferenceModel, input: [Float], count: Int,
                            completion: @escaping @Sendable (InferenceResult) -> Void) {
        self.init(model: model, floats: input, pixels: nil, count: count, explanation: nil, enqueuedAt: monotonicNanoseconds(), completion: completion)
    }

    /// An explain job: `count` images explained one after another on one worker.
    public convenience init(model: any InferenceModel, input: [Float], count: Int, explanation: ExplanationRequest,
                            completion: @escaping @Sendable (InferenceResult) -> Void) {
        self.init(model: model, floats: input, pixels: nil, count: count, explanation: explanation, enqueuedAt: monotonicNanoseconds(), completion: completion)
    }

    /// `floats`, or else `pixels` (normalized by the model's normalization), hold `count ×
    /// model.inputCount` values. `enqueuedAt`: monotonic ns, the queue wait's start. A subclass
    /// passes no `completion` and overrides `complete`.
    init(model: any InferenceModel, floats: [Float]?, pixels: [UInt8]?, count: Int, explanation: ExplanationRequest?, enqueuedAt: UInt64,
         completion: (@Sendable (InferenceResult) -> Void)?) {
        precondition((floats?.count ?? pixels?.count) == count * model.inputCount, "input size does not match count")
        self.model = model; self.count = count
        self.floats = floats; self.pixels = floats == nil ? pixels : nil; self.normalization = model.normalization
        self.explanation = explanation
        self.weight = explanation.map { count * $0.passesPerImage(height: model.imageHeight, width: model.imageWidth) } ?? count
        self.enqueuedAt = enqueuedAt; self.completion = completion
    }

    /// `count × model.inputCount` model-ready floats.
    var input: [Float] { floats ?? normalization.apply(pixels!) }

    /// Appends the model-ready input to `buffer` (pixels are normalized straight into it).
    func appendInput(to buffer: inout [Float]) {
        if let floats { buffer.append(contentsOf: floats) } else { normalization.append(pixels!, to: &buffer) }
    }

    /// Completes the job with its result, on the worker (or event loop) that ran it.
    func complete(_ result: InferenceResult) { completion?(result) }
}

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

public final class Batcher: @unchecked Sendable {
    public enum SubmitOutcome: Sendable, Equatable { case accepted, queueFull, stopped }

    public let configuration: BatcherConfiguration
    private let metrics: BatcherMetrics
    /// Per model version counters (Triton's statistics extension): workers count forward passes,
    /// `submit(_:model:sink:startedAt:respond:)` counts each request's outcome and timings.
    public let statistics = InferenceStatistics()
    private let lock = ConditionLock()
    // Protected by `lock`:
    /// Jobs waiting from `head` on; taken slots are set to nil at once so a finished job's input
    /// (up to megabytes for a large batch) is freed without waiting for compaction.
    private var queue: [InferenceJob?] = []
    private var head = 0
    /// Images waiting: changed only with `lock` held, kept in an atomic so that `queueDepth` (read
    /// by GET /health at every probe, from every event loop) takes no lock.
    private var queuedImages: Int {
        get { queued.load(ordering: .relaxed) }
        set { queued.store(newValue, ordering: .relaxed) }
    }
    private let queued = Atomic<Int>(0)
    private var stopping = false
    /// `stopping`, readable without the lock (event-loop submissions).
    private let stopped = Atomic<Bool>(false)
    private var runningWorkers = 0
    /// Workers blocked waiting for a job, and wake-ups sent to them that no worker has taken yet:
    /// a burst of submissions (one event-loop iteration's requests) wakes one worker, which takes
    /// them as one batch, instead of one futex wake per request. A worker that takes a batch and
    /// leaves jobs behind wakes the next idle one.
    private var idleWorkers = 0
    private var wakesPending = 0

    public init(configuration: BatcherConfiguration, metrics: BatcherMetrics? = nil) {
        self.configuration = configuration
        self.metrics = metrics ?? .detached()
    }

    /// Starts the worker threads.
    public func start() {
        lock.withLock { runningWorkers = configuration.workers }
        for i in 0..<configuration.workers {
            startThread(name: "loupe-infer-\(i)") { [self] in
                var worker = BatchWorker(batcher: self)
                worker.run()
                lock.withLock { runningWorkers -= 1; lock.broadcast() }
            }
        }
    }

    /// Queues a job; `.queueFull` when the queue holds `queueCapacity` images already (a job larger
    /// than the whole capacity is accepted only into an empty queue), `.stopped` after `stop()`.
    /// With `runsOnEventLoop`, a prediction of at most `maxBatchSize` images submitted on an event
    /// loop's thread joins that loop's batch (same capacity rule, counted per loop) and runs at the
    /// end of the loop's iteration; explanations and larger jobs always go to the workers.
    public func submit(_ job: InferenceJob) -> SubmitOutcome {
        if configuration.runsOnEventLoop && job.explanation == nil && job.count <= configuration.maxBatchSize,
           let loop = CurrentEventLoop.current {
            if stopped.load(ordering: .relaxed) { return .stopped }
            let batch = loop.local(for: self) { LoopBatch(batcher: self) }
            if batch.fitsTimeBudget(job) { return batch.submit(job, on: loop) }
        }
        lock.lock()
        if stopping { lock.unlock(); return .stopped }
        if queuedImages > 0 && queuedImages + job.weight > configuration.queueCapacity {
            lock.unlock(); return .queueFull
        }
        queue.append(job)
        queuedImages += job.weight
        metrics.queueDepth.set(Double(queuedImages))
        wakeIdleWorker()
        lock.unlock()
        return .accepted
    }

    /// With `lock` held: wakes one idle worker unless a wake-up is already on its way.
    private func wakeIdleWorker() {
        guard wakesPending == 0, idleWorkers > 0 else { return }
        wakesPending += 1
        lock.signal()
    }

    /// Images waiting now.
    public var queueDepth: Int { queued.load(ordering: .relaxed) }

    /// Stops taking jobs; workers finish what is queued, then exit. `waitUntilIdle` waits for that.
    public func stop() {
        stopped.store(true, ordering: .relaxed)
        lock.withLock { stopping = true; lock.broadcast() }
    }

    /// Waits until every worker has exited after `stop()`, or the deadline (monotonic ns) passes.
    @discardableResult
    public func waitUntilStopped(deadline: UInt64) -> Bool {
        lock.withLock {
            while runningWorkers > 0 {
                if monotonicNanoseconds() >= deadline { return false }
                lock.wait(untilMonotonic: deadline)
            }
            return true
        }
    }

    // MARK: Worker side

    /// Blocks until a batch is available; nil when stopping and the queue is empty.
    func takeBatch(into batch: inout [InferenceJob]) -> Bool {
        batch.removeAll(keepingCapacity: true)
        lock.lock()
        defer { lock.unlock() }
        while head == queue.count {
            if stopping { return false }
            idleWorkers += 1
            lock.wait()
            idleWorkers -= 1
            if wakesPending > 0 { wakesPending -= 1 }
        }
        let first = queue[head]!
        queue[head] = nil
        head += 1
        batch.append(first)
        if first.explanation != nil {
            // An explanation runs alone (its gradient passes are batched inside the engine).
            queuedImages -= first.weight
            metrics.queueDepth.set(Double(queuedImages))
            compact()
            if head < queue.count { wakeIdleWorker() }
            return true
        }
        var images = first.count
        let maxBatch = configuration.maxBatchSize
        let delay = UInt64(configuration.maxQueueDelayMicroseconds) * 1000
        let deadline = first.enqueuedAt &+ delay
        while true {
            gather(model: first.model, images: &images, into: &batch, limit: maxBatch)
            if delay == 0 || images >= maxBatch || stopping { break }
            if monotonicNanoseconds() >= deadline { break }
            lock.wait(untilMonotonic: deadline)
            // A submission's wake-up may land here rather than on an idle worker: this worker
            // takes its job, so the wake-up counts as taken.
            if wakesPending > 0 { wakesPending -= 1 }
        }
        queuedImages -= images
        metrics.queueDepth.set(Double(queuedImages))
        compact()
        if head < queue.count { wakeIdleWorker() }   // more than one batch was waiting
        return true
    }

    /// Moves queued jobs for `model` into `batch` while they fit; others keep their place.
    private func gather(model: any InferenceModel, images: inout Int, into batch: inout [InferenceJob], limit: Int) {
        guard head < queue.count, images < limit else { return }
        var index = head
        var skipped: [InferenceJob] = []
        while index < queue.count && images < limit {
            let job = queue[index]!
            if job.model === model && job.explanation == nil && images + job.count <= limit {
                batch.append(job)
                images += job.count
            } else if job.model === model && job.explanation == nil {
                break  // the next one of ours does not fit: keep order
            } else {
                skipped.append(job)
            }
            index += 1
        }
        // Put skipped jobs back just before the first unexamined one, in order.
        let start = index - skipped.count
        for i in head..<start { queue[i] = nil }
        for (i, job) in skipped.enumerated() { queue[start + i] = job }
        head = start
    }

    private func compact() {
        if head == queue.count {
            queue.removeAll(keepingCapacity: true); head = 0
        } else if head > 1024 && head * 2 > queue.count {
            queue.removeFirst(head); head = 0
        }
    }

    var metricsForWorker: BatcherMetrics { metrics }
}
