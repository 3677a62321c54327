import LoupeData
import Synchronization
import Testing
@testable import LoupeService

/// A model whose "probabilities" are a function of the input: output[j] = sum(input) + j, so
/// each request can check it got its own rows back. It records batch sizes it saw.
final class FakeModel: InferenceModel, @unchecked Sendable {
    let name: String
    let version: Int
    let sha256 = "00"
    let labels: [String]
    let inputShape: [Int]
    let inputCount: Int
    let outputCount = 3
    let normalization = Normalization.standard
    let batches = Mutex<[Int]>([])
    let delayMicroseconds: UInt32
    /// An "imported" 2×2×3 model: outputs the first pixel's three channels as logits, graph names x/y, NCHW.
    let rgbLogits: Bool
    var outputsAreLogits: Bool { rgbLogits }
    var inputTensorName: String { rgbLogits ? "x" : "input" }
    var outputTensorName: String { rgbLogits ? "y" : "probabilities" }
    var inputLayout: String { rgbLogits ? "NCHW" : "NHWC" }
    /// An image of four white pixels overflows: its outputs are NaN (as −3.4e38 FP32 data drives a real network's).
    let overflowsOnWhite: Bool

    init(name: String = "fake", version: Int = 1, delayMicroseconds: UInt32 = 0, rgbLogits: Bool = false,
         labels: [String] = ["a", "b", "c"], overflowsOnWhite: Bool = false) {
        self.name = name; self.version = version; self.delayMicroseconds = delayMicroseconds; self.labels = labels
        self.rgbLogits = rgbLogits; self.overflowsOnWhite = overflowsOnWhite
        inputShape = [2, 2, rgbLogits ? 3 : 1]; inputCount = rgbLogits ? 12 : 4
    }

    final class Runner: ModelRunner {
        let model: FakeModel
        init(model: FakeModel) { self.model = model }
        func predict(_ input: [Float], count: Int, threads: Int) -> [Float] {
            model.batches.withLock { $0.append(count) }
            if model.delayMicroseconds > 0 { sleepSeconds(Double(model.delayMicroseconds) / 1e6) }
            var out: [Float] = []
            let n = model.inputCount
            for i in 0..<count {
                if model.rgbLogits { out += input[(i * n)..<(i * n + 3)]; continue }
                let s = input[(i * 4)..<(i * 4 + 4)].reduce(0, +)
                if model.overflowsOnWhite && s == 4 { out += [.nan, .nan, .nan]; continue }
                out += [s, s + 1, s + 2]
            }
            return out
        }
    }
    func makeRunner(maxBatch: Int) -> any ModelRunner { Runner(model: self) }
}

import Glibc

@Suite struct BatcherTests {
    func submitAndWait(_ batcher: Batcher, _ model: FakeModel, values: [Float]) async -> InferenceResult? {
        let count = values.count / 4
        return await withCheckedContinuation { continuation in
            let job = InferenceJob(model: model, input: values, count: count) { result in continuation.resume(returning: result) }
            if batcher.submit(job) != .accepted { continuation.resume(returning: nil) }
        }
    }

    @Test func eachRequestGetsItsOwnRows() async throws {
        let batcher = Batcher(configuration: .init(workers: 2, threadsPerWorker: 1, maxBatchSize: 8, maxQueueDelayMicroseconds: 0, queueCapacity: 1000))
        batcher.start()
        let model = FakeModel()
        await withTaskGroup(of: Bool.self) { group in
            for i in 0..<200 {
                group.addTask {
                    let n = 1 + i % 3
                    var values: [Float] = []
                    for k in 0..<n { values += [Float(i), Float(k), 0, 0] }
                    guard let r = await self.submitAndWait(batcher, model, values: values) else { return false }
                    var expected: [Float] = []
                    for k in 0..<n { let s = Float(i + k); expected += [s, s + 1, s + 2] }
                    return r.probabilities == expected && r.batchSize >= n && r.batchSize <= 8
                }
            }
            for await ok in group { #expect(ok) }
        }
        #expect(model.batches.withLock { $0.allSatisfy { $0 <= 8 } })
        batcher.stop()
        #expect(batcher.waitUntilStopped(deadline: monotonicNanoseconds() + 5_000_000_000))
    }

    @Test func queueDelayFormsBatches() async throws {
        // One worker, 20 ms delay: requests submitted together run as one batch.
        let batcher = Batcher(configuration: .init(workers: 1, threadsPerWorker: 1, maxBatchSize: 64, maxQueueDelayMicroseconds: 20_000, queueCapacity: 1000))
        batcher.start()
        let model = FakeModel()
        await withTaskGroup(of: Void.self) { group in
            for i in 0..<10 {
                group.addTask { _ = await self.submitAndWait(batcher, model, values: [Float(i), 0, 0, 0]) }
            }
        }
        #expect(model.batches.withLock { $0.max() ?? 0 } > 1)
        batcher.stop()
    }

    @Test func largeRequestRunsInSlices() async throws {
        let batcher = Batcher(configuration: .init(workers: 1, threadsPerWorker: 1, maxBatchSize: 4, maxQueueDelayMicroseconds: 0, queueCapacity: 100))
        batcher.start()
        let model = FakeModel()
        var values: [Float] = []
        for k in 0..<10 { values += [Float(k), 0, 0, 0] }
        let r = await submitAndWait(batcher, model, values: values)
        #expect(r?.probabilities.count == 30)
        #expect(r?.probabilities[27] == 9)
        #expect(model.batches.withLock { $0 } == [4, 4, 2])
        batcher.stop()
    }

    @Test func fullQueueIsRefusedAndStoppedRefuses() async throws {
        let batcher = Batcher(configuration: .init(workers: 1, threadsPerWorker: 1, maxBatchSize: 1, maxQueueDelayMicroseconds: 0, queueCapacity: 2))
        // Not started: nothing drains the queue.
        let model = FakeModel()
        let noop: @Sendable (InferenceResult) -> Void = { _ in }
        #expect(batcher.submit(InferenceJob(model: model, input: [0, 0, 0, 0], count: 1, completion: noop)) == .accepted)
        #expect(batcher.submit(InferenceJob(model: model, input: [0, 0, 0, 0], count: 1, completion: noop)) == .accepted)
        #expect(batcher.submit(InferenceJob(model: model, input: [0, 0, 0, 0], count: 1, completion: noop)) == .queueFull)
        #expect(batcher.queueDepth == 2)
        batcher.stop()
        #expect(batcher.submit(InferenceJob(model: model, input: [0, 0, 0, 0], count: 1, completion: noop)) == .stopped)
    }

    @Test func batchesNeverMixModels() async throws {
        let batcher = Batcher(configuration: .init(workers: 1, threadsPerWorker: 1, maxBatchSize: 16, maxQueueDelayMicroseconds: 5_000, queueCapacity: 1000))
        batcher.start()
        let a = FakeModel(name: "a"), b = FakeModel(name: "b")
        await withTaskGroup(of: Bool.self) { group in
            for i in 0..<40 {
                let m = i % 2 == 0 ? a : b
                group.addTask {
                    let r = await self.submitAndWait(batcher, m, values: [Float(i), 0, 0, 0])
                    return r?.probabilities == [Float(i), Float(i) + 1, Float(i) + 2]
                }
            }
            for await ok in group { #expect(ok) }
        }
        let total = a.batches.withLock { $0.reduce(0, +) } + b.batches.withLock { $0.reduce(0, +) }
        #expect(total == 40)
        batcher.stop()
    }
}

@Suite struct BatcherMemoryTests {
    /// A finished job (and its input) is released at once, even while the queue never empties.
    @Test func finishedJobsAreReleased() async throws {
        let batcher = Batcher(configuration: .init(workers: 1, threadsPerWorker: 1, maxBatchSize: 1, maxQueueDelayMicroseconds: 0, queueCapacity: 100))
        let fast = FakeModel(name: "fast"), slow = FakeModel(name: "slow", delayMicroseconds: 300_000)
        let noop: @Sendable (InferenceResult) -> Void = { _ in }
        weak var weakJob: InferenceJob?
        do {
            let first = InferenceJob(model: fast, input: [0, 0, 0, 0], count: 1, completion: noop)
            weakJob = first
            #expect(batcher.submit(first) == .accepted)
        }
        // Queued behind it: a slow job, and one more so the queue does not empty while the slow one runs.
        _ = batcher.submit(InferenceJob(model: slow, input: [0, 0, 0, 0], count: 1, completion: noop))
        _ = batcher.submit(InferenceJob(model: slow, input: [0, 0, 0, 0], count: 1, completion: noop))
        batcher.start()
        try await Task.sleep(nanoseconds: 100_000_000)  // the first is done, the slow one is running
        #expect(weakJob == nil)
        batcher.stop()
    }
}

/// Jobs that carry 8-bit pixels are normalized where the forward pass gathers its batch; that path
/// is held to its reference, the floats `Normalization.apply` makes: the same outputs, alone and
/// gathered with float jobs into one pass.
@Suite struct PixelJobTests {
    @Test func pixelJobsRunAsTheirNormalizedFloats() throws {
        let model = FakeModel()
        let batcher = Batcher(configuration: .init(workers: 1, threadsPerWorker: 1, maxBatchSize: 8, maxQueueDelayMicroseconds: 0, queueCapacity: 100))
        var random = SystemRandomNumberGenerator()
        let images = (0..<5).map { _ in (0..<4).map { _ in UInt8.random(in: 0...255, using: &random) } }
        func run(_ jobs: [(pixels: Bool, image: [UInt8])]) -> [[Float]] {
            let results = Mutex<[Int: [Float]]>([:])
            var worker = BatchWorker(batcher: batcher)
            for (i, job) in jobs.enumerated() {
                let done: @Sendable (InferenceResult) -> Void = { r in results.withLock { $0[i] = r.probabilities } }
                worker.batch.append(job.pixels
                    ? InferenceJob(model: model, floats: nil, pixels: job.image, count: 1, explanation: nil, enqueuedAt: 0, completion: done)
                    : InferenceJob(model: model, input: model.normalization.apply(job.image), count: 1, completion: done))
            }
            worker.execute(onWorker: false)
            return results.withLock { r in jobs.indices.map { r[$0] ?? [] } }
        }
        for image in images {
            let reference = run([(false, image)])
            #expect(!reference[0].isEmpty)
            #expect(run([(true, image)]) == reference)
        }
        let mixed = images.enumerated().map { (pixels: $0.offset % 2 == 0, image: $0.element) }
        #expect(run(mixed) == run(mixed.map { (pixels: false, image: $0.image) }))
        #expect(run(mixed) == run(mixed.map { (pixels: true, image: $0.image) }))
        // The pixel job's floats, where something needs them whole, are the reference's.
        let job = InferenceJob(model: model, floats: nil, pixels: images[0], count: 1, explanation: nil, enqueuedAt: 0, completion: nil)
        #expect(job.input == model.normalization.apply(images[0]))
        var appended: [Float] = [7]
        Normalization(scale: 0.37, offset: -1.5).append(images[1], to: &appended)
        #expect(appended == [7] + Normalization(scale: 0.37, offset: -1.5).apply(images[1]))
    }
}
