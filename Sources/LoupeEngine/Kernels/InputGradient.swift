// Gradients of one score per image (a chosen class's softmax probability or logit) with respect to the
// input images — the engine's own backward pass run down to the input, for explanations. The forward
// pass is Executor.forward (inference: no dropout); the backward walk reuses the training kernels'
// input-gradient halves and keeps no parameter gradients (the conv kernels' dWeight goes to a scratch
// block that is never read). Layer kinds without an input gradient here are refused up front by
// `unsupportedStage`, never approximated.

/// Reusable buffers for input gradients of batches of up to `capacity` images (bigger batches run in chunks).
package final class InputGradientStorage: @unchecked Sendable {
    package let plan: NetworkPlan
    package let capacity: Int
    let workspace: ShardWorkspace
    /// Where the conv kernels put the weight and bias gradients they always compute (discarded).
    let scratch: FloatBuffer

    package init(plan: NetworkPlan, capacity: Int) {
        self.plan = plan
        self.capacity = max(1, capacity)
        workspace = ShardWorkspace(layout: plan.workspaceLayout(capacity: self.capacity, training: true))
        scratch = FloatBuffer(count: Self.scratchCount(plan))
    }

    /// Floats of `scratch`: the largest weight + bias gradient of one conv stage (at least 1).
    package static func scratchCount(_ plan: NetworkPlan) -> Int {
        var most = 0
        for stage in plan.stages {
            if case let .convPool(g, _, _) = stage.op { most = max(most, g.conv.weightCount + g.conv.filters) }
            if case let .conv(g, _, _) = stage.op { most = max(most, g.weightCount + g.filters) }
            if case let .depthwiseConv(g, _, _) = stage.op { most = max(most, g.depthwiseWeightCount + g.channels) }
            if case let .groupedConv(g, groups, _, _) = stage.op { most = max(most, (g.weightCount + g.filters) * groups) }
        }
        return max(most, 1)
    }

    /// Bytes an InputGradientStorage of `capacity` images allocates (its training-mode workspace and the scratch).
    package static func bytes(_ plan: NetworkPlan, capacity: Int) -> Int {
        var tally = ByteTally()
        tally.add(plan.workspaceLayout(capacity: max(1, capacity), training: true).bytes, bytesEach: 1)
        tally.add(scratchCount(plan), bytesEach: 4)
        return tally.bytes
    }

    /// Bytes allocated, counted from the buffers (tests compare it with `bytes`).
    package var allocatedBytes: Int { workspace.allocatedBytes + 4 * scratch.count }
}

package enum InputGradient {
    /// Which score of the last layer the gradient is of.
    package enum Score: Sendable { case probability, logit }

    /// Nil when every stage of the plan has an input gradient; else a sentence naming the first one that has none.
    package static func unsupportedStage(_ plan: NetworkPlan) -> String? {
        for (i, stage) in plan.stages.enumerated() where !hasInputGradient(stage.op) {
            return "stage \(i + 1) (\(String(describing: stage.op).prefix(while: { $0 != "(" }))) has no input gradient in the engine yet; explanations support conv2d, depthwiseConv2d, groupedConv2d, maxPool2d, avgPool2d, globalAvgPool2d, activation, flatten, dense and dropout"
        }
        return nil
    }

    /// If-chains rather than a switch, so a stage kind added later is refused here until it gets a backward.
    static func hasInputGradient(_ op: StageOp) -> Bool {
        if case .convPool = op { return true }
        if case .conv = op { return true }
        if case .depthwiseConv = op { return true }
        if case .groupedConv = op { return true }
        if case .maxPool = op { return true }
        if case .avgPool = op { return true }
        if case .activation = op { return true }
        if case .flatten = op { return true }
        if case .dense = op { return true }
        if case .dropout = op { return true }
        return false
    }

    /// input (n, plan.inputSize) NHWC → logits (n, classes), probabilities (n, classes) and
    /// dInput (n, plan.inputSize) = ∂ score(image b, targets[b]) / ∂ input b. Precondition: unsupportedStage(plan) == nil.
    package static func run(_ plan: NetworkPlan, kernels: KernelSet, parameters: UnsafePointer<Float>,
                            packedWeights: UnsafePointer<Float>? = nil, input: UnsafePointer<Float>, n total: Int, targets: UnsafePointer<Int>, score: Score, storage: InputGradientStorage,
                            logits: UnsafeMutablePointer<Float>, probabilities: UnsafeMutablePointer<Float>,
                            dInput: UnsafeMutablePointer<Float>, transposed: TransposedDenseWeights? = nil) {
        precondition(storage.plan == plan, "gradient storage was made for a different architecture")
        let classes = plan.outputSize, inputSize = plan.inputSize
        var start = 0
        while start < total {
            let n = min(storage.capacity, total - start)
            let ws = storage.workspace
            let x0 = input + start * inputSize
            Executor.forward(plan, kernels: kernels, parameters: parameters, packedWeights: packedWeights, input: x0, n: n, workspace: ws,
                             dropoutSeed: nil, firstImage: 0)
            (logits + start * classes).update(from: ws.output, count: n * classes)
            let p = probabilities + start * classes
            softmaxRows(n: n, classes: classes, logits: ws.output, probabilities: p)
            // Seed: ∂score/∂logits. Logit: one-hot. Probability: ∂p_t/∂z_j = p_t (δ_tj − p_j).
            let seed = ws.grad[plan.stages.count - 1]
            for b in 0..<n {
                let t = targets[start + b]
                precondition(t >= 0 && t < classes, "target \(t) is not a class of a \(classes)-class network")
                let row = seed + b * classes, pr = p + b * classes
                switch score {
                case .logit:
                    for j in 0..<classes { row[j] = j == t ? 1 : 0 }
                case .probability:
                    let pt = pr[t]
                    for j in 0..<classes { row[j] = pt * ((j == t ? 1 : 0) - pr[j]) }
                }
            }
            backward(plan, kernels: kernels, parameters: parameters, packedWeights: packedWeights, input: x0, n: n, storage: storage,
                     dInput: dInput + start * inputSize, transposed: transposed)
            start += n
        }
    }

    /// Walks the stages in reverse from ws.grad[last] down to dInput (written). Same kernels as Executor.backward.
    static func backward(_ plan: NetworkPlan, kernels: KernelSet, parameters: UnsafePointer<Float>, packedWeights: UnsafePointer<Float>?,
                         input: UnsafePointer<Float>, n: Int, storage: InputGradientStorage, dInput: UnsafeMutablePointer<Float>,
                         transposed: TransposedDenseWeights?) {
        let ws = storage.workspace
        var packed = packedWeights.map { $0 + plan.packedWeightCount }   // walked back stage by stage
        let scratch = storage.scratch
        for i in stride(from: plan.stages.count - 1, through: 0, by: -1) {
            let stage = plan.stages[i]
            let x = i == 0 ? input : UnsafePointer(ws.act[i - 1])
            let dy = ws.grad[i]
            let dx = i == 0 ? dInput : ws.grad[i - 1]
            let op = stage.op
            if case let .convPool(g, w, _) = op {
                scratch.zero()
                kernels.convPoolBackward(g, n, x, parameters + w, dy, ws.argmax[i]!, scratch.base, scratch.base + g.conv.weightCount, dx)
            } else if case let .conv(g, w, _) = op {
                if g.relu { kernels.reluBackward(n * stage.outputSize, ws.act[i], dy) }
                scratch.zero()
                kernels.convBackward(g, n, x, parameters + w, dy, scratch.base, scratch.base + g.weightCount, dx,
                                     ws.columns[i] ?? dy, ws.dColumns[i] ?? dy)
            } else if case let .depthwiseConv(g, w, _) = op {
                if g.relu { kernels.reluBackward(n * stage.outputSize, ws.act[i], dy) }
                scratch.zero()
                kernels.depthwiseBackward(g, n, x, parameters + w, dy, scratch.base, scratch.base + g.depthwiseWeightCount, dx)
            } else if case let .groupedConv(g, groups, w, _) = op {
                if g.relu { kernels.reluBackward(n * stage.outputSize, ws.act[i], dy) }
                scratch.zero()
                packed = packed.map { $0 - g.weightCount * groups }
                GroupedConv.backward(g, groups: groups, n: n, input: x, weight: parameters + w, packedWeight: packed, dOutput: dy, dWeight: scratch.base,
                                     dBias: scratch.base + g.weightCount * groups, dInput: dx, scratch: ws.grouped[i]!, kernels: kernels)
            } else if case let .maxPool(g) = op {
                kernels.maxPoolBackward(g, n, dy, ws.argmax[i]!, dx)
            } else if case let .avgPool(g) = op {
                kernels.avgPoolBackward(g, n, dy, dx)
            } else if case let .activation(f) = op {
                kernels.activationBackward(f, n * stage.outputSize, ws.act[i], dy, dx)
            } else if case let .dense(inputs, outputs, relu, w, _) = op {
                if relu { kernels.reluBackward(n * outputs, ws.act[i], dy) }
                kernels.denseBackwardInput(n, inputs, outputs, parameters + w, transposed?.weightT(stage: i), dy, dx)
            } else if case .flatten = op {
                // Flatten aliases its input's buffers except as the first stage.
                if dx != dy { dx.update(from: dy, count: n * stage.outputSize) }
            } else if case .dropout = op {
                // Identity at inference.
                dx.update(from: dy, count: n * stage.outputSize)
            } else {
                preconditionFailure("stage \(i + 1) (\(op)) has no input gradient; callers check unsupportedStage first")
            }
        }
    }
}

/// Packed weightᵀ (DenseKernels.transpose) of a network's dense layers whose sizes the packed input-gradient
/// GEMM takes (inputs and outputs multiples of 16), made once for fixed parameters: dY · Wᵀ then runs as the
/// forward pass's tiles instead of dot products along W's rows. Only valid for the parameters it was made from.
package final class TransposedDenseWeights: @unchecked Sendable {
    private var buffers: [Int: FloatBuffer] = [:]

    package init(plan: NetworkPlan, kernels: KernelSet, parameters: UnsafePointer<Float>) {
        for (i, stage) in plan.stages.enumerated() {
            guard let (inputs, outputs, w) = Self.transposed(stage) else { continue }
            let buffer = FloatBuffer(count: inputs * outputs)
            kernels.transpose(inputs, outputs, parameters + w, buffer.base, 0, inputs)
            buffers[i] = buffer
        }
    }

    /// The dense stages that get a transposed copy: (inputs, outputs, weight offset).
    private static func transposed(_ stage: Stage) -> (Int, Int, Int)? {
        guard case let .dense(inputs, outputs, _, w, _) = stage.op, inputs % 16 == 0, outputs % 16 == 0 else { return nil }
        return (inputs, outputs, w)
    }

    /// Bytes the copies of `plan` take, from its shapes.
    package static func bytes(_ plan: NetworkPlan) -> Int {
        var tally = ByteTally()
        for stage in plan.stages { if let (i, o, _) = transposed(stage) { tally.add(saturatingProduct(i, o), bytesEach: 4) } }
        return tally.bytes
    }

    /// Bytes held, counted from the buffers.
    package var allocatedBytes: Int { buffers.values.reduce(0) { $0 + 4 * $1.count } }

    func weightT(stage: Int) -> UnsafePointer<Float>? { buffers[stage].map { UnsafePointer($0.base) } }
}
