// Shadow inference, off the request path: after a request of a model with a candidate has been
// answered, a sampled copy of its (already decoded) images goes into a bounded queue, and one
// worker thread in the idle scheduling class (SCHED_IDLE: it runs only when a CPU is otherwise free)
// classifies it with the other version of the pair — the candidate in shadow mode; in canary mode
// whichever version did not answer. The worker compares top-1 classes with the answer (agreement),
// times its forward pass, and keeps its predictions by request id so that feedback scores them too.
// Nothing it computes reaches a client.
// What the request pays: one sampling draw and, when sampled, one enqueue under a try-lock of the
// job it built (moved in, not copied: the decoded arrays are shared, never duplicated). The
// answering version's latency (and, in canary mode, the candidate's request count) travels in the
// job and the worker records it, so a queued copy costs the request side no evidence lock; only a
// copy that is not queued (not sampled, queue full, lock busy) records it on the request side.
// When the queue holds `capacity` images the copy is dropped and counted instead, so the queue
// (and the memory it holds) stays bounded whatever the load.
// The worker classifies copies in batches: it lets copies gather for up to `gatherNanoseconds` (or
// until a batch's worth is waiting; the request side signals only then) and runs every queued copy
// for the same pair in one forward pass of up to `Worker.maxBatch` images — one stream of the other
// version's weights per batch instead of per request. After a batch it gathers again before it
// sleeps, and it sleeps (the next copy signals) only after a quiet spell of `gatherNanoseconds`, so
// under steady load no request wakes it: the request side's futex wake is once per batch at most.
// The worker's own bookkeeping (images taken off the queue, copies done) rides on the lock it takes
// for the next batch anyway: one acquisition of the queue's lock per batch, and a batch that is the
// whole queue is taken by swapping arrays — no retain or release of a copy's references under it.
// The request side never waits for a lock the idle-class worker may hold (a worker preempted inside
// a critical section would otherwise stall requests until it next gets a CPU): it only try-locks,
// and a copy that meets a busy lock is dropped and counted (loupe_shadow_dropped_busy_total).
// This file is the queue (request side and the worker's take); what the worker does with a batch
// it took is ShadowWorker.swift.
import LoupeData
import LoupeEngine
import Synchronization

final class ShadowRunner: @unchecked Sendable {
    struct Job {
        var routed: RoutedModel
        /// The answered version's input, `count` images: its model-ready floats (`input`) and, when
        /// they came as pixels, the 8-bit pixels (to renormalize for the other version).
        var batch: DecodedBatch
        var input: [Float] { batch.input }
        var pixels: [UInt8]? { batch.pixels }
        var count: Int
        var answeredClasses: [Int]
        var requestID: String?
        /// The true classes, when the request brought them (/feedback with instances): they score
        /// the other version's prediction at once.
        var labels: [Int]? = nil
        /// The answering version's forward pass, for the latency evidence (and the canary's request
        /// count) — recorded by the worker once it has the copy, or on the request side when the copy
        /// is not queued; nil when the caller recorded it already.
        var answeredSeconds: Double? = nil

        init(routed: RoutedModel, batch: DecodedBatch, count: Int, answeredClasses: [Int], requestID: String?,
             labels: [Int]? = nil, answeredSeconds: Double? = nil) {
            self.routed = routed; self.batch = batch; self.count = count; self.answeredClasses = answeredClasses
            self.requestID = requestID; self.labels = labels; self.answeredSeconds = answeredSeconds
        }

        init(routed: RoutedModel, input: [Float], pixels: [UInt8]?, count: Int, answeredClasses: [Int], requestID: String?,
             labels: [Int]? = nil, answeredSeconds: Double? = nil) {
            self.init(routed: routed, batch: DecodedBatch(input: input, count: count, pixels: pixels), count: count,
                      answeredClasses: answeredClasses, requestID: requestID, labels: labels, answeredSeconds: answeredSeconds)
        }
    }

    /// Images waiting at most (`promotion.shadow_queue_images`).
    let capacity: Int
    let tracker: PromotionTracker
    /// The other version's predictions by request id, for feedback (same bounds as `feedback.window`).
    let window: PredictionWindow

    private let lock = ConditionLock()
    // Protected by `lock`:
    private var queue: [Job] = []
    private var head = 0
    private var queuedImages = 0
    private var running = false
    private var stopping = false
    /// The worker sleeps with an empty queue (the next copy wakes it), gathers, has been signalled
    /// (no copy signals again), or classifies.
    private enum WorkerState { case idle, gathering, woken, busy }
    private var workerState = WorkerState.busy
    /// How long the worker lets copies gather once one has arrived.
    static let gatherNanoseconds: UInt64 = 2_000_000
    private var random: UInt64
    /// Per model and version of the other side: copies classified; per model: copies dropped.
    private var done: [ModelVersion: UInt64] = [:]
    private var dropped: [String: UInt64] = [:]
    /// The most images ever waiting (≤ capacity).
    private(set) var highWater = 0
    /// Copies dropped because the queue's lock was busy (counted without it).
    private let busyDrops = Atomic<UInt64>(0)

    init(capacity: Int, tracker: PromotionTracker, window: PredictionWindow, seed: UInt64) {
        self.capacity = max(1, capacity)
        self.tracker = tracker
        self.window = window
        self.random = seed | 1
    }

    /// A request answered by one version of a pair (`routed.other` set): a copy of its decoded images
    /// offered to the queue (`offer`), carrying the answer's forward-pass time for the latency evidence.
    /// With labels (POST /feedback) the time is recorded at once instead, so that the pair's evidence
    /// exists before the caller scores the labels against it.
    func answered(_ routed: RoutedModel, batch: DecodedBatch, classes: [Int], requestID: String?, labels: [Int]? = nil,
                  inferenceNanoseconds: UInt64) {
        guard routed.other != nil else { return }
        let seconds = Double(inferenceNanoseconds) / 1e9
        if labels != nil { tracker.answered(routed, inferenceSeconds: seconds) }
        offer(Job(routed: routed, batch: batch, count: batch.count, answeredClasses: classes,
                  requestID: requestID, labels: labels, answeredSeconds: labels == nil ? seconds : nil))
    }

    /// Offers an answered request: sampled at `routed.sampleRate`, then queued (moved in: its arrays
    /// are shared, not copied), or dropped and counted when the queue is full. Never runs inference.
    /// Returns true when queued; otherwise the job's `answeredSeconds` is recorded here.
    @discardableResult
    func offer(_ job: consuming Job) -> Bool {
        var full = false
        if job.routed.other != nil, job.routed.sampleRate > 0, job.count > 0 {
            if lock.tryLock() {
                if sampled(job.routed.sampleRate) {
                    if stopping || queuedImages + job.count > capacity {
                        dropped[job.routed.model.name, default: 0] += 1
                        full = true
                    } else {
                        queuedImages += job.count
                        highWater = max(highWater, queuedImages)
                        queue.append(consume job)
                        // Wake the worker only when it sleeps (the first copy after a quiet spell) or
                        // once a batch is waiting while it gathers — once, not for every copy after
                        // (each wake-up is a futex call and a context switch taken from the serving side).
                        if workerState == .idle || (workerState == .gathering && queuedImages >= gatherTarget) {
                            workerState = .woken
                            lock.signal()
                        }
                        lock.unlock()
                        return true
                    }
                }
                lock.unlock()
            } else {
                busyDrops.add(1, ordering: .relaxed)
            }
        }
        if full { tracker.dropped(job.routed, answeredSeconds: job.answeredSeconds) }
        else if let seconds = job.answeredSeconds { tracker.answered(job.routed, inferenceSeconds: seconds) }
        return false
    }

    /// One draw at `rate` (under the lock: the generator is shared).
    private func sampled(_ rate: Double) -> Bool {
        if rate >= 1 { return true }
        random ^= random << 13; random ^= random >> 7; random ^= random << 17   // xorshift64
        return Double(random >> 11) * 0x1p-53 < rate
    }

    /// Starts the worker thread (once).
    func start() {
        let first = lock.withLock { () -> Bool in
            defer { running = true }
            return !running
        }
        guard first else { return }
        startThread(name: "loupe-shadow") { [self] in
            lowerCurrentThreadPriority()
            var worker = Worker()
            var finished = (images: 0, copies: 0, key: ModelVersion?.none)
            var jobs: [Job] = []
            while take(into: &jobs, after: finished) {
                let classified = worker.run(jobs, runner: self)
                finished = (jobs.reduce(0) { $0 + $1.count }, classified?.copies ?? 0, classified?.key)
                jobs.removeAll(keepingCapacity: true)   // the copies' references go here, outside the lock
            }
        }
    }

    /// Stops the worker after the job in hand; queued copies are discarded.
    func stop() {
        lock.withLock {
            stopping = true
            for job in queue[head...] { queuedImages -= job.count }   // the job in hand is still counted
            queue.removeAll(); head = 0
            lock.broadcast()
        }
    }

    /// Images the worker waits for before it stops gathering (a full batch, or the whole queue).
    private var gatherTarget: Int { min(Worker.maxBatch, capacity) }

    /// The next batch into `jobs` (empty on entry): the oldest copy and the ones after it for the same
    /// pair (same answering and other version), up to `Worker.maxBatch` images (a larger copy alone);
    /// false once stopping. `finished` is the batch just run (its images leave the count, its copies
    /// count as done). When the batch is the whole queue — the usual case when the worker keeps up —
    /// the queue's array itself is handed over and `jobs`' emptied one takes its place: no copy of a
    /// job (seven retains) nor release under the lock the request side try-locks.
    private func take(into jobs: inout [Job], after finished: (images: Int, copies: Int, key: ModelVersion?)) -> Bool {
        lock.lock()
        defer { workerState = .busy; lock.unlock() }
        queuedImages -= finished.images
        if let key = finished.key, finished.copies > 0 { done[key, default: 0] += UInt64(finished.copies) }
        // Let copies gather: most requests hold one image, and a pass over one image streams all of
        // the weights for it. Right after a batch too: under steady load the next copies arrive while
        // the worker waits here with a deadline, and no request has to wake it.
        var deadline = monotonicNanoseconds() &+ Self.gatherNanoseconds
        while true {
            workerState = .gathering
            while !stopping && queuedImages < gatherTarget && monotonicNanoseconds() < deadline {
                lock.wait(untilMonotonic: deadline)
            }
            if stopping { return false }
            if head < queue.count { break }
            // A quiet spell: sleep until the next copy signals, then gather behind it.
            workerState = .idle
            while head == queue.count && !stopping { lock.wait() }
            if stopping { return false }
            deadline = monotonicNanoseconds() &+ Self.gatherNanoseconds
        }
        let start = head
        var images = queue[start].count
        head += 1
        while head < queue.count, images + queue[head].count <= Worker.maxBatch,
              queue[head].routed.model === queue[start].routed.model, queue[head].routed.other === queue[start].routed.other {
            images += queue[head].count
            head += 1
        }
        if start == 0 && head == queue.count {
            swap(&queue, &jobs)
            head = 0
        } else {
            jobs.append(contentsOf: queue[start..<head])
            if head == queue.count { queue.removeAll(keepingCapacity: true); head = 0 }
            else if head > 256 && head * 2 > queue.count { queue.removeFirst(head); head = 0 }
        }
        return true
    }

    /// Images waiting now, and counters for the metrics.
    var state: (queued: Int, highWater: Int, done: [ModelVersion: UInt64], dropped: [String: UInt64], busy: UInt64) {
        let busy = busyDrops.load(ordering: .relaxed)
        return lock.withLock { (queuedImages, highWater, done, dropped, busy) }
    }

    func write(into w: inout MetricsWriter) {
        let s = state
        w.family("loupe_shadow_inferences_total", help: "Request copies the other version of a promotion pair classified off the request path (shadow worker), by model and that version.", kind: .counter)
        for (k, n) in s.done.sorted(by: { $0.key < $1.key }) {
            w.sample("loupe_shadow_inferences_total", labels: [("model", k.model), ("version", String(k.version))], value: Double(n))
        }
        w.family("loupe_shadow_dropped_total", help: "Request copies dropped because the shadow queue was full (promotion.shadow_queue_images).", kind: .counter)
        for (m, n) in s.dropped.sorted(by: { $0.key < $1.key }) { w.sample("loupe_shadow_dropped_total", labels: [("model", m)], value: Double(n)) }
        w.family("loupe_shadow_dropped_busy_total", help: "Request copies dropped because the shadow queue's lock was held at that instant (the request side never waits for it).", kind: .counter)
        w.sample("loupe_shadow_dropped_busy_total", value: Double(s.busy))
        w.family("loupe_shadow_queue_images", help: "Images waiting for the shadow worker.", kind: .gauge)
        w.sample("loupe_shadow_queue_images", value: Double(s.queued))
        w.family("loupe_shadow_queue_high_water_images", help: "Most images ever waiting for the shadow worker (never above promotion.shadow_queue_images).", kind: .gauge)
        w.sample("loupe_shadow_queue_high_water_images", value: Double(s.highWater))
        w.family("loupe_shadow_queue_capacity_images", help: "promotion.shadow_queue_images.", kind: .gauge)
        w.sample("loupe_shadow_queue_capacity_images", value: Double(capacity))
    }
}
