// Shadow inference, off the request path: after a request of a model with a candidate has been
// answered, a sampled copy of its (already decoded) images goes into a bounded queue, and one
// worker thread in the idle scheduling class (SCHED_IDLE: it runs only when a CPU is otherwise free)
// classifies it with the other version of the pair — the candidate in shadow mode; in canary mode
// whichever version did not answer. The worker compares top-1 classes with the answer (agreement),
// times its forward pass, and keeps its predictions by request id so that feedback scores them too.
// Nothing it computes reaches a client. The request pays one sampling draw and, when sampled, one
// enqueue under a short lock; when the queue holds `capacity` images the copy is dropped and
// counted instead, so the queue (and the memory it holds) stays bounded whatever the load.
// The worker classifies copies in batches: woken by the first copy of a quiet spell, it lets copies
// gather for up to `gatherNanoseconds` (or until a batch's worth is waiting; the request side
// signals only then), and runs every queued copy for the same pair in one forward pass of up to
// `Worker.maxBatch` images — one stream of the other version's weights and one wake-up per batch
// instead of per request, which is most of what shadowing cost the serving side.
// The request side never waits for a lock the idle-class worker may hold (a worker preempted inside
// a critical section would otherwise stall requests until it next gets a CPU): it only try-locks,
// and a copy that meets a busy lock is dropped and counted (loupe_shadow_dropped_busy_total).
import LoupeData
import LoupeEngine
import Synchronization

final class ShadowRunner: @unchecked Sendable {
    struct Job {
        var routed: RoutedModel
        /// Model-ready input of the answered version, `count` images.
        var input: [Float]
        /// The images' 8-bit pixels when they came as pixels (to renormalize for the other version).
        var pixels: [UInt8]?
        var count: Int
        var answeredClasses: [Int]
        var requestID: String?
        /// The true classes, when the request brought them (/feedback with instances): they score
        /// the other version's prediction at once.
        var labels: [Int]? = nil
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
    /// The worker sleeps with an empty queue (the next copy wakes it), gathers, or classifies.
    private enum WorkerState { case idle, gathering, busy }
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

    /// A request answered by one version of a pair (`routed.other` set): its forward-pass time for the
    /// latency evidence, and a copy of its decoded images offered to the queue (`offer`).
    func answered(_ routed: RoutedModel, batch: DecodedBatch, classes: [Int], requestID: String?, labels: [Int]? = nil,
                  inferenceNanoseconds: UInt64) {
        guard routed.other != nil else { return }
        tracker.answered(routed, inferenceSeconds: Double(inferenceNanoseconds) / 1e9)
        offer(Job(routed: routed, input: batch.input, pixels: batch.pixels, count: batch.count,
                  answeredClasses: classes, requestID: requestID, labels: labels))
    }

    /// Offers an answered request: sampled at `routed.sampleRate`, then queued, or dropped and
    /// counted when the queue is full. Never runs inference. Returns true when queued.
    @discardableResult
    func offer(_ job: Job) -> Bool {
        guard job.routed.other != nil, job.routed.sampleRate > 0, job.count > 0 else { return false }
        guard lock.tryLock() else {
            busyDrops.add(1, ordering: .relaxed)
            return false
        }
        if job.routed.sampleRate < 1 {
            random ^= random << 13; random ^= random >> 7; random ^= random << 17   // xorshift64
            if Double(random >> 11) * 0x1p-53 >= job.routed.sampleRate { lock.unlock(); return false }
        }
        if stopping || queuedImages + job.count > capacity {
            dropped[job.routed.model.name, default: 0] += 1
            lock.unlock()
            tracker.dropped(job.routed)
            return false
        }
        queue.append(job)
        queuedImages += job.count
        highWater = max(highWater, queuedImages)
        // Wake the worker for the first copy, and while it gathers once a batch is waiting; not
        // for every copy (each wake-up is a context switch taken from the serving threads).
        if workerState == .idle || (workerState == .gathering && queuedImages >= gatherTarget) { lock.signal() }
        lock.unlock()
        return true
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
            while let jobs = take() {
                worker.run(jobs, runner: self)
                let images = jobs.reduce(0) { $0 + $1.count }
                lock.withLock { queuedImages -= images }
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

    /// The next batch: the oldest copy and the ones after it for the same pair (same answering and
    /// other version), up to `Worker.maxBatch` images (a larger copy alone); nil once stopping.
    private func take() -> [Job]? {
        lock.lock()
        defer { workerState = .busy; lock.unlock() }
        while head == queue.count {
            if stopping { return nil }
            workerState = .idle
            lock.wait()
        }
        // Let copies gather: most requests hold one image, and a pass over one image streams all
        // of the weights for it.
        let deadline = monotonicNanoseconds() &+ Self.gatherNanoseconds
        workerState = .gathering
        while !stopping && queuedImages < gatherTarget && monotonicNanoseconds() < deadline {
            lock.wait(untilMonotonic: deadline)
        }
        if stopping || head == queue.count { return stopping ? nil : [] }
        let first = queue[head]
        var jobs = [first]
        var images = first.count
        head += 1
        while head < queue.count, images + queue[head].count <= Worker.maxBatch,
              queue[head].routed.model === first.routed.model, queue[head].routed.other === first.routed.other {
            images += queue[head].count
            jobs.append(queue[head])
            head += 1
        }
        if head == queue.count { queue.removeAll(keepingCapacity: true); head = 0 }
        else if head > 256 && head * 2 > queue.count { queue.removeFirst(head); head = 0 }
        return jobs
    }

    fileprivate func finished(_ key: ModelVersion) { lock.withLock { done[key, default: 0] += 1 } }

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

/// The shadow thread's state: a runner per model it has seen (few: the pairs' versions).
private struct Worker {
    static let maxBatch = 64
    var runners: [(model: any InferenceModel, runner: any ModelRunner)] = []

    mutating func runner(for model: any InferenceModel) -> any ModelRunner {
        if let i = runners.firstIndex(where: { $0.model === model }) { return runners[i].runner }
        let created = model.makeRunner(maxBatch: Self.maxBatch)
        runners.insert((model, created), at: 0)
        if runners.count > 4 { runners.removeLast() }
        return created
    }

    /// Classifies `jobs` (one pair, at most `maxBatch` images unless a single copy is larger) with the
    /// other version in one forward pass, then scores each copy against its answer. Each copy's latency
    /// sample is its images' share of the pass's thread CPU time.
    mutating func run(_ jobs: [ShadowRunner.Job], runner shadow: ShadowRunner) {
        guard let first = jobs.first else { return }
        let answered = first.routed.model
        guard let other = first.routed.other, other.inputShape == answered.inputShape, other.inputCount == answered.inputCount else { return }
        let total = jobs.reduce(0) { $0 + $1.count }
        // The other version's input: the same floats, or the pixels under its own normalization.
        let sameNormalization = other.normalization == answered.normalization   // one pair per batch
        var input: [Float] = []
        if jobs.count == 1 && sameNormalization {
            input = first.input
        } else {
            input.reserveCapacity(total * other.inputCount)
            for job in jobs {
                input.append(contentsOf: sameNormalization ? job.input
                    : other.normalization.apply(job.pixels ?? answered.normalization.pixels(fromNormalized: job.input)))
            }
        }
        let runner = runner(for: other)
        // Thread CPU time: the worker is in the idle scheduling class, so its wall time would count
        // every moment it waited for a CPU, which says nothing about the version.
        let start = threadCPUNanoseconds()
        var outputs: [Float] = []
        outputs.reserveCapacity(total * other.outputCount)
        var offset = 0
        while offset < total {
            let n = min(Self.maxBatch, total - offset)
            let slice = n == total ? input : Array(input[(offset * other.inputCount)..<((offset + n) * other.inputCount)])
            outputs.append(contentsOf: runner.predict(slice, count: n, threads: 1))
            offset += n
        }
        let seconds = Double(threadCPUNanoseconds() &- start) / 1e9
        let probabilities = other.outputsAreLogits ? Sequential.softmax(outputs, classes: other.outputCount) : outputs
        let (allClasses, allConfidences) = PredictionRecorder.top1(probabilities, count: total, classes: other.outputCount)
        let now = Double(monotonicNanoseconds()) / 1e9
        var row = 0
        for job in jobs {
            let classes = Array(allClasses[row..<(row + job.count)])
            let confidences = Array(allConfidences[row..<(row + job.count)])
            row += job.count
            let agreed = zip(classes, job.answeredClasses).filter { $0 == $1 }.count
            shadow.tracker.compared(job.routed, images: job.count, agreed: agreed, seconds: seconds * Double(job.count) / Double(total))
            if let labels = job.labels, labels.count == classes.count {
                shadow.tracker.feedback(model: other.name, version: other.version, labels: labels, classes: classes)
            }
            if let id = job.requestID, shadow.window.isEnabled {
                shadow.window.record(id: id, RecentPrediction(model: other.name, version: other.version, classCount: other.outputCount,
                                                              classes: classes, confidences: confidences, at: now))
            }
            shadow.finished(ModelVersion(model: other.name, version: other.version))
        }
    }
}
