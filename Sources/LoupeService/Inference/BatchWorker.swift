// One inference thread of the batcher: takes a batch (Batcher.takeBatch), runs it through the
// model's runner (one per model it has seen, each with its own workspace), and completes every job
// with its slice of the output. An explain job runs alone. An event loop's batch (LoopBatch) runs
// its passes through a BatchWorker of its own too.
import LoupeEngine

/// One inference thread's (or event loop's) state: its runners (one per model it has seen) and input buffer.
struct BatchWorker {
    let batcher: Batcher
    var runners: [(model: any InferenceModel, runner: any ModelRunner)] = []
    var batch: [InferenceJob] = []
    var buffer: [Float] = []
    var random = SystemRandomNumberGenerator()

    init(batcher: Batcher) { self.batcher = batcher }

    mutating func runner(for model: any InferenceModel) -> any ModelRunner {
        if let i = runners.firstIndex(where: { $0.model === model }) {
            if i != 0 { runners.swapAt(0, i) }
            return runners[0].runner
        }
        let created = model.makeRunner(maxBatch: batcher.configuration.maxBatchSize)
        runners.insert((model, created), at: 0)
        if runners.count > 4 { runners.removeLast() }  // models replaced by reloads fall out
        return created
    }

    /// An inference worker's loop: takes batches until the batcher stops.
    mutating func run() {
        while batcher.takeBatch(into: &batch) { execute(onWorker: true) }
    }

    /// Runs `batch` (jobs of one model: one explanation, or predictions) and completes every job
    /// with its slice of the output; leaves `batch` empty. `onWorker`: on an inference worker (its
    /// busy gauge, the injected fault delay) rather than on an event loop's batch (LoopBatch).
    mutating func execute(onWorker: Bool) {
        defer { batch.removeAll(keepingCapacity: true) }
        let metrics = batcher.metricsForWorker
        let threads = batcher.configuration.threadsPerWorker
        let maxBatch = batcher.configuration.maxBatchSize
        let start = monotonicNanoseconds()
        let fault = batcher.configuration
        if onWorker {
            metrics.busyWorkers.increment()
            if fault.faultDelayMilliseconds > 0 && Int.random(in: 0..<100, using: &random) < fault.faultDelayPercent {
                sleepSeconds(Double(fault.faultDelayMilliseconds) / 1000)
            }
        }
        let model = batch[0].model
        let counters = batcher.statistics.counters(model)
        let runner = runner(for: model)
        if let request = batch[0].explanation {
            let job = batch[0]
            let result: Result<[Attribution], ServiceError>
            do throws(ServiceError) { result = .success(try runner.explain(job.input, count: job.count, request: request)) } catch {
                result = .failure(error)
            }
            let end = monotonicNanoseconds()
            if onWorker { metrics.busyWorkers.decrement() }
            let queued = start > job.enqueuedAt ? start - job.enqueuedAt : 0
            metrics.queueSeconds.observe(Double(queued) / 1e9)
            job.complete(InferenceResult(probabilities: [], queueNanoseconds: queued, inferenceNanoseconds: end - start,
                                           batchSize: job.count, explanation: result))
            return
        }
        let images = batch.reduce(0) { $0 + $1.count }
        let output: [Float]
        if batch.count == 1 && images <= maxBatch {
            if let floats = batch[0].floats {
                output = runner.predict(floats, count: images, threads: threads)
            } else {   // pixels: normalized into the reused buffer, not an array of their own
                buffer.removeAll(keepingCapacity: true)
                batch[0].appendInput(to: &buffer)
                output = runner.predict(buffer, count: images, threads: threads)
            }
            counters.executed()
        } else if batch.count == 1 {
            // One request larger than a batch: run it in slices.
            let job = batch[0]
            let input = job.input
            var out = [Float](); out.reserveCapacity(images * model.outputCount)
            var offset = 0
            while offset < images {
                let n = min(maxBatch, images - offset)
                let slice = Array(input[(offset * model.inputCount)..<((offset + n) * model.inputCount)])
                out.append(contentsOf: runner.predict(slice, count: n, threads: threads))
                counters.executed()
                offset += n
            }
            output = out
        } else {
            buffer.removeAll(keepingCapacity: true)
            for job in batch { job.appendInput(to: &buffer) }
            output = runner.predict(buffer, count: images, threads: threads)
            counters.executed()
        }
        let end = monotonicNanoseconds()
        if onWorker { metrics.busyWorkers.decrement() }
        counters.recordPass(images: images, nanoseconds: end - start)
        metrics.batchSize.observe(Double(images))
        metrics.inferenceSeconds.observe(Double(end - start) / 1e9)
        var offset = 0
        let outputs = model.outputCount
        for job in batch {
            let queued = start > job.enqueuedAt ? start - job.enqueuedAt : 0
            metrics.queueSeconds.observe(Double(queued) / 1e9)
            let slice = batch.count == 1 ? output : Array(output[(offset * outputs)..<((offset + job.count) * outputs)])
            offset += job.count
            let probabilities = model.outputsAreLogits ? Sequential.softmax(slice, classes: outputs) : slice
            job.complete(InferenceResult(probabilities: probabilities, outputs: slice, queueNanoseconds: queued,
                                           inferenceNanoseconds: end - start, batchSize: images))
        }
    }
}
