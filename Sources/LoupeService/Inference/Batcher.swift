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
//
// What is queued: InferenceJob.swift (a request's job and its result); the settings and metrics:
// BatcherConfiguration.swift; a worker thread's loop: BatchWorker.swift.
import LoupeData
import LoupeEngine
import LoupeHTTP
import Synchronization

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
