// The shadow worker thread's side of ShadowRunner.swift: classify a batch of request copies with the
// other version of their pair in one forward pass (thread CPU time as the latency sample), and score
// each copy — agreement with the answer, labels brought by feedback, the prediction kept by request
// id for later feedback.
import LoupeData
import LoupeEngine

extension ShadowRunner {
    /// The shadow thread's state: a runner per model it has seen (few: the pairs' versions).
    struct Worker {
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
        /// sample is its images' share of the pass's thread CPU time. Returns the copies classified and the
        /// version that classified them (nil when the pair's inputs differ and nothing ran).
        mutating func run(_ jobs: [ShadowRunner.Job], runner shadow: ShadowRunner) -> (copies: Int, key: ModelVersion)? {
            guard let first = jobs.first else { return nil }
            let answered = first.routed.model
            guard let other = first.routed.other, other.inputShape == answered.inputShape, other.inputCount == answered.inputCount else {
                for job in jobs { if let s = job.answeredSeconds { shadow.tracker.answered(job.routed, inferenceSeconds: s) } }
                return nil
            }
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
            let (top, allConfidences) = PredictionRecorder.top1(probabilities, count: total, classes: other.outputCount)
            var allClasses = top
            // A row the other version drove to NaN/infinity (as the serving path answers 422 for) is no prediction:
            // class -1, which agrees with no answer and matches no label, and its request is not kept for feedback.
            let k = other.outputCount
            for i in 0..<total where !NonFiniteOutputs.allFinite(probabilities[(i * k)..<((i + 1) * k)]) { allClasses[i] = -1 }
            let now = Double(monotonicNanoseconds()) / 1e9
            var row = 0
            for job in jobs {
                let classes = Array(allClasses[row..<(row + job.count)])
                let confidences = Array(allConfidences[row..<(row + job.count)])
                row += job.count
                let agreed = zip(classes, job.answeredClasses).filter { $0 == $1 }.count
                shadow.tracker.compared(job.routed, images: job.count, agreed: agreed, seconds: seconds * Double(job.count) / Double(total),
                                        answeredSeconds: job.answeredSeconds)
                if let labels = job.labels, labels.count == classes.count {
                    shadow.tracker.feedback(model: other.name, version: other.version, labels: labels, classes: classes)
                }
                if let id = job.requestID, shadow.window.isEnabled, !classes.contains(-1) {
                    shadow.window.record(id: id, RecentPrediction(model: other.name, version: other.version, classCount: other.outputCount,
                                                                  classes: classes, confidences: confidences, at: now))
                }
            }
            return (jobs.count, ModelVersion(model: other.name, version: other.version))
        }
    }
}
