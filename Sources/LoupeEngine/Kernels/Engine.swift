import Dispatch
import Glibc
import Synchronization

// Array-level entry points used by the public API: batched inference and training epochs.
// Batches are split into `threads` contiguous shards run with DispatchQueue.concurrentPerform;
// per-shard gradients are summed in shard order, so a run with a fixed thread count is
// reproducible bit for bit.

/// Reusable inference buffers for batches of up to `maxBatch` images.
package final class InferenceStorage: @unchecked Sendable {
    package let plan: NetworkPlan
    package let maxBatch: Int
    private var threads = 0
    private(set) var chunk = 0
    private var workspaces: [ShardWorkspace] = []

    package init(plan: NetworkPlan, maxBatch: Int) {
        self.plan = plan
        self.maxBatch = max(1, maxBatch)
    }

    /// Chunks of `singleThreadChunk` images (each chunk runs through all stages while its activations are still in
    /// L2), at most 32 and at most a thread's share of the batch when t > 1. One thread reuses one workspace. More:
    /// every chunk is an iteration of concurrentPerform (so a descheduled thread holds up one chunk, not half the
    /// batch) that borrows a workspace from a free list and gives it back, so about one workspace per running thread
    /// is ever made and each stays warm in cache. Before, each of the 2-thread path's 32-image chunks had a workspace
    /// of its own: for the 32×32×3 CNN 8 × 4 MB of activations that no cache held. (One iteration per thread pulling
    /// chunks from a counter did not work: libdispatch started the second iteration only after the first had taken
    /// every chunk.)
    func workspaces(threads t: Int) -> [ShardWorkspace] {
        if t != threads {
            chunk = plan.inferenceChunk(maxBatch: maxBatch, threads: t)
            let layout = plan.workspaceLayout(capacity: chunk, training: false)
            pool = ChunkWorkspaces(threads: t) { let ws = ShardWorkspace(layout: layout); return (ws, ws.allocatedBytes) }
            workspaces = t == 1 ? [pool!.make()] : []
            threads = t
        }
        return workspaces
    }

    /// The workspaces of the current thread count (each of the layout NetworkPlan.inferenceWorkspaceBytes counts).
    private var pool: ChunkWorkspaces<ShardWorkspace>?
    /// Bytes of the workspaces made since the thread count was last set, counted from their buffers (tests compare
    /// it with NetworkPlan.inferenceWorkspaceBytes).
    package var allocatedBytes: Int { pool?.allocatedBytes ?? 0 }
    /// A workspace for one chunk (t > 1); see ChunkWorkspaces.
    func borrow() -> ShardWorkspace { pool!.borrow() }
    func giveBack(_ ws: ShardWorkspace) { pool!.giveBack(ws) }
}

/// The workspaces a batch's chunks use when they run on t > 1 threads (InferenceStorage, Int8Storage): a free
/// list the chunks borrow from and give back to, so about one workspace per running thread is ever made and each
/// stays warm in cache; and t slots, so at most t chunks hold one at once. concurrentPerform runs as many
/// iterations at once as the machine has cores; without the slots, threads 2 on a 16-core machine ran up to 8
/// chunks at once and made a workspace for each (more CPU than the setting, more memory than
/// models.max_workspace_bytes counted).
package final class ChunkWorkspaces<Workspace: AnyObject & Sendable>: @unchecked Sendable {
    private let free = Mutex<[Workspace]>([])
    private let made = Mutex(0)
    private let slots: DispatchSemaphore
    private let create: () -> (Workspace, bytes: Int)

    package init(threads: Int, create: @escaping () -> (Workspace, bytes: Int)) {
        slots = DispatchSemaphore(value: threads)
        self.create = create
    }

    /// Bytes of the workspaces made (by `make` and `borrow`).
    package var allocatedBytes: Int { made.withLock { $0 } }
    /// A new workspace, counted (the one-thread path keeps its own).
    package func make() -> Workspace {
        let (workspace, bytes) = create()
        made.withLock { $0 += bytes }
        return workspace
    }
    /// The last workspace given back, or a new one; waits while all `threads` are out.
    package func borrow() -> Workspace {
        slots.wait()
        return free.withLock { $0.popLast() } ?? make()
    }
    package func giveBack(_ workspace: Workspace) {
        free.withLock { $0.append(workspace) }
        slots.signal()
    }
}

extension NetworkPlan {
    /// Images per inference workspace (InferenceStorage.workspaces): one thread, `singleThreadChunk`; more, at
    /// most 32 and a thread's share of the batch.
    package func inferenceChunk(maxBatch: Int, threads t: Int) -> Int {
        max(1, min(maxBatch, singleThreadChunk, t == 1 ? maxBatch : min(32, (maxBatch + t - 1) / t)))
    }

    /// Bytes an InferenceStorage for batches of up to `maxBatch` images on `threads` threads allocates at most:
    /// a workspace of one chunk per thread that runs at once (computed from the shapes, before allocating).
    package func inferenceWorkspaceBytes(maxBatch: Int, threads: Int) -> Int {
        let m = max(1, maxBatch), t = max(1, threads)
        let chunk = inferenceChunk(maxBatch: m, threads: t)
        return saturatingProduct(workspaceLayout(capacity: chunk, training: false).bytes, min(t, (m + chunk - 1) / chunk))
    }

    /// Bytes a training engine's shards allocate for mini-batches of `batchSize` on `threads` threads (one
    /// workspace of batchSize / threads images per thread, with gradients), before allocating.
    package func trainingWorkspaceBytes(batchSize: Int, threads: Int) -> Int {
        let (shards, layout) = trainingLayout(batchSize: batchSize, threads: threads)
        return saturatingProduct(layout.bytes, shards)
    }

    /// A training engine's shards: one workspace of batchSize / threads images (with gradients) per thread.
    package func trainingLayout(batchSize: Int, threads: Int) -> (shards: Int, layout: WorkspaceLayout) {
        let t = max(1, min(threads, batchSize))
        return (t, workspaceLayout(capacity: (batchSize + t - 1) / t, training: true))
    }

    /// Images per chunk when one thread runs a batch: as many as keep one chunk's activations (and max-pool
    /// indices) within 512 KB (L2 of AVX2-era cores; 1 MB on Zen 4/5), at least 8; at least 64 when the
    /// parameters themselves outgrow that budget, since each chunk streams them from L3 again (the seed
    /// network's 2.8 MB dense weight). Measured on the 32×32×3 CNN (batch 256, 1 thread, CPU ms per call):
    /// whole batch 6.3, chunks of 64 / 16 / 8: 4.7 / 4.5 / 4.4; the seed network: 2.30 / 2.20 / 2.35 / 2.52.
    package var singleThreadChunk: Int {
        let budget = 512 * 1024
        var bytesPerImage = 0
        for stage in stages {
            switch stage.op {
            case .flatten: break
            case .maxPool, .convPool: bytesPerImage += 8 * stage.outputSize
            default: bytesPerImage += 4 * stage.outputSize
            }
        }
        let fit = max(8, budget / max(1, bytesPerImage))
        return 4 * parameterCount > budget ? max(64, fit) : fit
    }
}

package enum Inference {
    /// input (count, plan.inputSize) → (count, plan.outputSize) logits, or softmax probabilities.
    /// `packedWeights`: plan.packedWeights(parameters) (empty without grouped convs).
    package static func run(_ plan: NetworkPlan, kernels: KernelSet, parameters: [Float], packedWeights: [Float] = [], input: [Float],
                            count: Int, storage: InferenceStorage, threads: Int, softmax: Bool) -> [Float] {
        let classes = plan.outputSize
        var result = [Float](repeating: 0, count: count * classes)
        let t = max(1, threads)
        let workspaces = storage.workspaces(threads: t)
        let chunk = storage.chunk
        parameters.withUnsafeBufferPointer { p in packedWeights.withUnsafeBufferPointer { pw in
            input.withUnsafeBufferPointer { x in
                result.withUnsafeMutableBufferPointer { r in
                    let params = p.baseAddress!, images = x.baseAddress!, out = r.baseAddress!
                    let packed = pw.isEmpty ? nil : pw.baseAddress
                    func runChunk(_ c: Int, _ ws: ShardWorkspace, _ start: Int, _ blockCount: Int) {
                        let b0 = start + c * chunk, n = min(chunk, blockCount - c * chunk)
                        Executor.forward(plan, kernels: kernels, parameters: params, packedWeights: packed, input: images + b0 * plan.inputSize, n: n,
                                         workspace: ws, dropoutSeed: nil, firstImage: 0)
                        if softmax {
                            softmaxRows(n: n, classes: classes, logits: ws.output, probabilities: out + b0 * classes)
                        } else {
                            (out + b0 * classes).update(from: ws.output, count: n * classes)
                        }
                    }
                    var start = 0
                    while start < count {
                        let blockCount = min(storage.maxBatch, count - start)
                        let chunks = (blockCount + chunk - 1) / chunk
                        if t == 1 || chunks == 1 {
                            let ws = t == 1 ? workspaces[0] : storage.borrow()
                            for c in 0..<chunks { runChunk(c, ws, start, blockCount) }
                            if t > 1 { storage.giveBack(ws) }
                        } else {
                            DispatchQueueShim.concurrentPerform(iterations: chunks) { c in
                                let ws = storage.borrow()
                                runChunk(c, ws, start, blockCount)
                                storage.giveBack(ws)
                            }
                        }
                        start += blockCount
                    }
                }
            }
        }}
        return result
    }
}

@_spi(Kernels) public enum OptimizerRule: Sendable, Equatable {
    case adam(beta1: Float, beta2: Float, epsilon: Float)
    case sgd(momentum: Float)
}

/// Training state: parameters, per-shard gradients and optimizer moments, all preallocated.
package final class TrainingEngine: @unchecked Sendable {
    package let plan: NetworkPlan
    let kernels: KernelSet
    package let threads: Int
    package let batchSize: Int
    let rule: OptimizerRule
    package var learningRate: Float
    package var l2: Float
    package private(set) var step = 0
    package let parameters: FloatBuffer
    let gradients: [FloatBuffer]
    let gradientPointers: UnsafeMutablePointer<UnsafeMutablePointer<Float>>
    let moment1: FloatBuffer
    let moment2: FloatBuffer
    let weightMask: FloatBuffer
    let shards: [ShardWorkspace]
    /// Transposed copies (out × in) of the dense weights whose input gradient is needed, per stage.
    let transposed: [FloatBuffer?]
    let transposedPointers: [UnsafePointer<Float>?]
    /// (buffer, weight offset, inputs, outputs) of each transposed dense weight, for the optimizer.
    let transposedStages: [(buffer: UnsafeMutablePointer<Float>, offset: Int, inputs: Int, outputs: Int)]
    /// The grouped convs' weights packed (NetworkPlan.packWeights) at the start of each step; nil without grouped convs.
    let packedWeights: FloatBuffer?
    /// False until the transposed copies match `parameters` (set false when parameters are replaced).
    package var transposedValid = false
    var shardLoss: [Double]
    var shardCorrect: [Int]

    package init(plan: NetworkPlan, kernels: KernelSet, parameters initial: [Float], threads: Int, batchSize: Int,
                 rule: OptimizerRule, learningRate: Float, l2: Float) {
        self.plan = plan
        self.kernels = kernels
        let (shardCount, layout) = plan.trainingLayout(batchSize: batchSize, threads: threads)
        self.threads = shardCount
        self.batchSize = batchSize
        self.rule = rule
        self.learningRate = learningRate
        self.l2 = l2
        parameters = FloatBuffer(initial)
        gradients = (0..<self.threads).map { _ in FloatBuffer(count: plan.parameterCount) }
        gradientPointers = .allocate(capacity: self.threads)
        for (s, g) in gradients.enumerated() { gradientPointers[s] = g.base }
        moment1 = FloatBuffer(count: plan.parameterCount)
        moment2 = FloatBuffer(count: plan.parameterCount)
        weightMask = FloatBuffer(count: plan.parameterCount)
        for r in plan.weightRanges { for i in r { weightMask[i] = 1 } }
        shards = (0..<self.threads).map { _ in ShardWorkspace(layout: layout) }
        let firstParameterStage = plan.stages.firstIndex(where: \.hasParameters) ?? plan.stages.count
        transposed = plan.stages.enumerated().map { i, stage in
            if case let .dense(inputs, outputs, _, _, _) = stage.op, i > firstParameterStage, outputs % 16 == 0, inputs % 16 == 0 {
                return FloatBuffer(count: inputs * outputs)
            }
            return nil
        }
        transposedPointers = transposed.map { $0.map { UnsafePointer($0.base) } }
        transposedStages = transposed.enumerated().compactMap { i, buffer in
            guard let buffer, case let .dense(inputs, outputs, _, wo, _) = plan.stages[i].op else { return nil }
            return (buffer.base, wo, inputs, outputs)
        }
        packedWeights = plan.packedWeightCount > 0 ? FloatBuffer(count: plan.packedWeightCount) : nil
        shardLoss = Array(repeating: 0, count: self.threads)
        shardCorrect = Array(repeating: 0, count: self.threads)
    }

    deinit { gradientPointers.deallocate() }

    /// Bytes the shards' workspaces hold, counted from their buffers (tests compare it with trainingWorkspaceBytes).
    package var workspaceAllocatedBytes: Int { shards.reduce(0) { $0 + $1.allocatedBytes } }

    package var parameterArray: [Float] { parameters.array() }

    /// One optimizer step on the images `order[range]`. Returns (Σ loss, correct) over the batch.
    /// dropoutSeed keys the dropout masks (see Executor.forward).
    package func trainStep(images: UnsafePointer<Float>, labels: UnsafePointer<UInt8>, order: UnsafePointer<Int>, count n: Int,
                           dropoutSeed: UInt64) -> (loss: Double, correct: Int) {
        let plan = self.plan, kernels = self.kernels, inputSize = plan.inputSize, classes = plan.outputSize
        let params = UnsafePointer(parameters.base)
        let scale = 1 / Float(n)
        // Phase 1 (first step only): transposed dense weights for the input gradients; afterwards the
        // optimizer refreshes them as it updates the weights (see applyUpdate).
        if !transposedValid {
            for (i, buffer) in transposed.enumerated() {
                guard let buffer, case let .dense(inputs, outputs, _, w, _) = plan.stages[i].op else { continue }
                forEachShard(inputs, threads: threads) { _, first, count in
                    kernels.transpose(inputs, outputs, params + w, buffer.base, first, count)
                }
            }
            transposedValid = true
        }
        let transposedPointers = self.transposedPointers
        // The grouped convs' weights, packed once for every shard's forward and backward.
        if let packedWeights { plan.packWeights(params, into: packedWeights.base) }
        let packed = packedWeights.map { UnsafePointer($0.base) }
        // Phase 2: forward and backward per shard.
        forEachShard(n, threads: threads) { s, first, count in
            let ws = shards[s]
            let grad = gradients[s]
            grad.zero()
            for b in 0..<count {
                let src = order[first + b]
                (ws.input.base + b * inputSize).update(from: images + src * inputSize, count: inputSize)
                ws.labels.base[b] = labels[src]
            }
            Executor.forward(plan, kernels: kernels, parameters: params, packedWeights: packed, input: ws.input.base, n: count, workspace: ws,
                             dropoutSeed: dropoutSeed, firstImage: first)
            let r = softmaxCrossEntropy(n: count, classes: classes, logits: ws.output, labels: ws.labels.base, scale: scale,
                                        dLogits: ws.grad[ws.grad.count - 1])
            shardLoss[s] = r.loss
            shardCorrect[s] = r.correct
            Executor.backward(plan, kernels: kernels, parameters: params, packedWeights: packed, input: ws.input.base, n: count, workspace: ws,
                              dParameters: grad.base, transposedWeights: transposedPointers)
        }
        // Phase 3: sum the shard gradients in order and apply the optimizer.
        step += 1
        applyUpdate(shardsUsed: min(threads, n))
        var loss: Double = 0, correct = 0
        for s in 0..<min(threads, n) { loss += shardLoss[s]; correct += shardCorrect[s] }
        return (loss, correct)
    }

    /// Sums the shard gradients in shard order, adds L2 (2·l2·w on weights), and applies the optimizer.
    /// Element-wise, so splitting the parameter range over threads does not change any bit.
    func applyUpdate(shardsUsed: Int) {
        let count = plan.parameterCount
        let w = parameters.base, m = moment1.base, v = moment2.base, mask = UnsafePointer(weightMask.base)
        let grads = UnsafePointer(gradientPointers)
        var alpha: Float = 0
        if case let .adam(b1, b2, _) = rule {
            let t = Double(step)
            alpha = Float(Double(learningRate) * (1 - pow(Double(b2), t)).squareRoot() / (1 - pow(Double(b1), t)))
        }
        let update = OptimizerStep(rule: rule, learningRate: learningRate, l2x2: 2 * l2, alpha: alpha)
        let kernels = self.kernels
        // Ranges are multiples of 16 so the SIMD loop covers them; the split never changes a result.
        let blocks = (count + 15) / 16
        let transposedStages = self.transposedStages
        forEachShard(blocks, threads: threads) { _, first, n in
            let lo = first * 16, hi = min(count, (first + n) * 16)
            kernels.optimizer(update, lo, hi - lo, grads, shardsUsed, w, mask, m, v)
            // Refresh the transposed copies of the weights this thread just updated (element-wise
            // disjoint writes, so the split over threads does not matter).
            for t in transposedStages {
                let start = max(lo, t.offset), end = min(hi, t.offset + t.inputs * t.outputs)
                guard start < end else { continue }
                var e = start - t.offset
                let stop = end - t.offset
                while e < stop {
                    let row = e / t.outputs, k0 = e % t.outputs
                    if k0 == 0 && e + t.outputs <= stop {
                        let rows = (stop - e) / t.outputs
                        kernels.transpose(t.inputs, t.outputs, w + t.offset, t.buffer, row, rows)
                        e += rows * t.outputs
                    } else {
                        let kEnd = min(t.outputs, k0 + (stop - e))
                        let j0 = row & ~63, width = min(64, t.inputs - j0)
                        for k in k0..<kEnd { t.buffer[j0 * t.outputs + k * width + row - j0] = w[t.offset + row * t.outputs + k] }
                        e += kEnd - k0
                    }
                }
            }
        }
    }

    /// One pass over `order` in batches of batchSize. `onBatch(batchIndex, batchLoss, batchCorrect, batchCount)`
    /// returns false to stop after that batch.
    package func trainEpoch(images: [Float], labels: [UInt8], order: [Int], dropoutSeed: UInt64,
                            onBatch: (Int, Double, Int, Int) -> Bool) -> (loss: Double, correct: Int, seen: Int, stopped: Bool) {
        var loss: Double = 0, correct = 0, seen = 0, stopped = false
        images.withUnsafeBufferPointer { x in
            labels.withUnsafeBufferPointer { y in
                order.withUnsafeBufferPointer { o in
                    var start = 0, batch = 0
                    while start < order.count {
                        let n = min(batchSize, order.count - start)
                        let r = trainStep(images: x.baseAddress!, labels: y.baseAddress!, order: o.baseAddress! + start, count: n,
                                          dropoutSeed: dropoutSeed &+ UInt64(batch))
                        loss += r.loss; correct += r.correct; seen += n
                        start += n
                        if !onBatch(batch, r.loss, r.correct, n) { stopped = true; break }
                        batch += 1
                    }
                }
            }
        }
        return (loss, correct, seen, stopped)
    }
}

package enum Evaluation {
    /// Softmax probabilities, per-row predicted class, Σ cross-entropy and correct count.
    package static func run(_ plan: NetworkPlan, kernels: KernelSet, parameters: [Float], images: [Float], labels: [UInt8],
                            count: Int, threads: Int, storage reusable: InferenceStorage? = nil)
        -> (probabilities: [Float], predictions: [Int], loss: Double, correct: Int) {
        let storage = reusable ?? InferenceStorage(plan: plan, maxBatch: min(max(count, 1), 512))
        let probs = Inference.run(plan, kernels: kernels, parameters: parameters, input: images, count: count,
                                  storage: storage, threads: threads, softmax: true)
        let classes = plan.outputSize
        var predictions = [Int](repeating: 0, count: count)
        var loss: Double = 0, correct = 0
        for b in 0..<count {
            var best = 0
            for j in 1..<classes where probs[b * classes + j] > probs[b * classes + best] { best = j }
            predictions[b] = best
            let label = Int(labels[b])
            loss -= Double(logf(max(probs[b * classes + label], 1e-30)))
            if best == label { correct += 1 }
        }
        return (probs, predictions, loss, correct)
    }
}
