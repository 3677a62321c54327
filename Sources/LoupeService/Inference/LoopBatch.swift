// Batching on the event loop (`batching.on_event_loop`): one per event loop (and batcher), kept on
// the loop (`CurrentEventLoop.local`) and touched only on its thread, so it takes no lock. The
// predictions the loop's handlers submit during one iteration wait here; at the end of the
// iteration the loop runs them — one forward pass per model and `maxBatchSize` images — through
// its own BatchWorker (runners and workspaces of its own), and the completions hand each response
// straight to its connection, which writes it at once. One request thus costs no futex, no eventfd
// and no thread switch between decoding and writing.
import LoupeHTTP

final class LoopBatch {
    let batcher: Batcher
    private var worker: BatchWorker
    /// Jobs submitted in this iteration, in order, and their images.
    private var pending: [InferenceJob] = []
    private var images = 0
    /// Whether the end-of-iteration run is booked.
    private var booked = false
    private var running: [InferenceJob] = []

    init(batcher: Batcher) {
        self.batcher = batcher
        worker = BatchWorker(batcher: batcher)
    }

    /// Whether the loop's pass with `job` added stays within `batching.event_loop_max_pass_us` by
    /// the model's measured cost per image (false while the model is unmeasured: the workers'
    /// passes measure it). A job that does not fit goes to the workers.
    func fitsTimeBudget(_ job: InferenceJob) -> Bool {
        let limit = batcher.configuration.eventLoopMaxPassMicroseconds
        if limit == 0 { return true }
        if lastModel !== job.model {
            lastModel = job.model
            lastCounters = batcher.statistics.counters(job.model)
        }
        let perImage = lastCounters?.nanosecondsPerImage ?? 0
        return perImage > 0 && UInt64(images + job.count) * perImage <= UInt64(limit) * 1000
    }
    /// The last model `fitsTimeBudget` looked at and its counters (one lookup per model change).
    private var lastModel: (any InferenceModel)?
    private var lastCounters: ModelVersionStatistics?

    /// Adds a prediction of at most `maxBatchSize` images; `.queueFull` when this loop's batch holds
    /// `queueCapacity` images already (the workers' queue rule, per loop).
    func submit(_ job: InferenceJob, on loop: CurrentEventLoop) -> Batcher.SubmitOutcome {
        if images > 0 && images + job.weight > batcher.configuration.queueCapacity { return .queueFull }
        pending.append(job)
        images += job.weight
        if !booked {
            booked = true
            loop.atEndOfIteration { [self] in run() }
        }
        return .accepted
    }

    /// Runs what this iteration gathered. Completions may submit again (a keep-alive connection's
    /// next request, read as its response goes out): those gather for the next iteration.
    private func run() {
        swap(&pending, &running)
        images = 0
        booked = false
        let maxBatch = batcher.configuration.maxBatchSize
        while !running.isEmpty {
            // The first job's model: its jobs in order while they fit in one pass; the rest keep
            // their order for the next pass.
            let model = running[0].model
            var taken = 0, kept = 0, full = false
            for i in running.indices {
                let job = running[i]
                if !full && job.model === model {
                    if taken + job.count <= maxBatch {
                        worker.batch.append(job); taken += job.count
                        continue
                    }
                    full = true
                }
                running[kept] = job; kept += 1
            }
            running.removeLast(running.count - kept)
            worker.execute(onWorker: false)
        }
        running.removeAll(keepingCapacity: true)
    }
}
