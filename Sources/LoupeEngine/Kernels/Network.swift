// The executor: a compiled plan of stages run forward and backward over one shard of a batch.
// Every buffer is allocated once per workspace; nothing allocates per batch.

package enum StageOp: Sendable, Equatable {
    /// Fused valid conv (+ReLU) + max pool (pool 1 = none), SIMD over filters (filters % 16 == 0).
    case convPool(ConvPoolGeometry, weight: Int, bias: Int)
    /// Every other convolution (any stride, padding, channels, filters; ReLU fused): im2col + the dense GEMM.
    case conv(ConvGeometry, weight: Int, bias: Int)
    /// Depthwise convolution (filters == channels, weight (kH, kW, C, 1); ReLU fused), SIMD over channels.
    case depthwiseConv(ConvGeometry, weight: Int, bias: Int)
    /// Grouped convolution (GroupedConv): the geometry is one group's (C/G channels, K/G filters); weight
    /// (kH, kW, C/G, K), bias (K); ReLU fused. Runs as `groups` convolutions through the table's conv entries.
    case groupedConv(ConvGeometry, groups: Int, weight: Int, bias: Int)
    case maxPool(Pool2DGeometry)
    case avgPool(Pool2DGeometry)
    /// An element-wise activation other than a fused ReLU (or a standalone ReLU).
    case activation(ActivationFunction)
    case flatten
    case dense(inputs: Int, outputs: Int, relu: Bool, weight: Int, bias: Int)
    case dropout(rate: Float)
}

package struct Stage: Sendable, Equatable {
    package var op: StageOp
    package var inputSize: Int
    package var outputSize: Int
    package init(op: StageOp, inputSize: Int, outputSize: Int) {
        self.op = op; self.inputSize = inputSize; self.outputSize = outputSize
    }
    package var hasParameters: Bool {
        switch op { case .conv, .convPool, .depthwiseConv, .groupedConv, .dense: return true; default: return false }
    }
}

package struct NetworkPlan: Sendable, Equatable {
    package var stages: [Stage]
    package var inputSize: Int
    package var outputSize: Int
    package var parameterCount: Int
    /// Flat parameter indices that are weights (L2 applies to these, not to biases).
    package var weightRanges: [Range<Int>]
    /// True when the architecture's last layer is a softmax (its output is then softmax(logits)).
    package var endsInSoftmax: Bool
    package init(stages: [Stage], inputSize: Int, outputSize: Int, parameterCount: Int, weightRanges: [Range<Int>],
                 endsInSoftmax: Bool = true) {
        self.stages = stages; self.inputSize = inputSize; self.outputSize = outputSize
        self.parameterCount = parameterCount; self.weightRanges = weightRanges; self.endsInSoftmax = endsInSoftmax
    }
}

extension NetworkPlan {
    /// Floats of the grouped convs' packed weights (GroupedConv.pack), stage after stage; 0 without grouped convs.
    package var packedWeightCount: Int {
        stages.reduce(0) { total, stage in
            if case let .groupedConv(g, groups, _, _) = stage.op { return total + g.weightCount * groups }
            return total
        }
    }

    /// Packs every grouped conv's weight from `parameters` into `packed` (packedWeightCount floats), in stage order:
    /// what Executor's `packedWeights` expects. Done once per set of weights (Sequential, the trainer's step).
    package func packWeights(_ parameters: UnsafePointer<Float>, into packed: UnsafeMutablePointer<Float>) {
        var o = 0
        for stage in stages {
            guard case let .groupedConv(g, groups, w, _) = stage.op else { continue }
            GroupedConv.pack(g, groups: groups, weight: parameters + w, packed: packed + o)
            o += g.weightCount * groups
        }
    }

    /// `packWeights` into a new array (empty without grouped convs).
    package func packedWeights(_ parameters: [Float]) -> [Float] {
        var packed = [Float](repeating: 0, count: packedWeightCount)
        guard !packed.isEmpty else { return packed }
        parameters.withUnsafeBufferPointer { p in packed.withUnsafeMutableBufferPointer { packWeights(p.baseAddress!, into: $0.baseAddress!) } }
        return packed
    }

    /// Multiply-adds of one image's forward pass through the conv and dense stages (a conv output pixel costs
    /// one MAC per weight: OH·OW·weightCount; a depthwise one kH·kW per channel; a dense layer in·out). Benchmarks count 2 FLOPs per MAC.
    package var forwardMACsPerImage: Int {
        stages.reduce(0) { total, stage in
            switch stage.op {
            case let .convPool(g, _, _): return total + g.conv.outHeight * g.conv.outWidth * g.conv.weightCount
            case let .conv(g, _, _): return total + g.outHeight * g.outWidth * g.weightCount
            case let .depthwiseConv(g, _, _): return total + g.outHeight * g.outWidth * g.taps * g.channels
            case let .groupedConv(g, groups, _, _): return total + g.outHeight * g.outWidth * g.weightCount * groups
            case let .dense(inputs, outputs, _, _, _): return total + inputs * outputs
            default: return total
            }
        }
    }

    /// Multiply-adds of one image's training step: the forward pass, the weight gradients (as many again) and
    /// the input gradients of every parameter stage after the first (as many again; the first needs none).
    package var trainingMACsPerImage: Int {
        let forward = forwardMACsPerImage
        guard let first = stages.firstIndex(where: \.hasParameters) else { return forward }
        let firstMACs = NetworkPlan(stages: [stages[first]], inputSize: 0, outputSize: 0, parameterCount: 0, weightRanges: []).forwardMACsPerImage
        return 3 * forward - firstMACs
    }
}

/// The buffers of one ShardWorkspace of `capacity` images, computed from the network's shapes alone (before
/// anything is allocated): each stage's activations (and gradients, dropout masks when training), im2col columns,
/// max-pool indices, grouped-conv scratch, and a training shard's copy of its inputs and labels. ShardWorkspace
/// allocates exactly these buffers, and the workspace limits (models.max_workspace_bytes, `loupe train`'s) read
/// `bytes` of the same value, so the figure checked is the memory then taken. Counts saturate at Int.max for
/// shapes whose product overflows (such a layout is refused by its `bytes`, never allocated).
package struct WorkspaceLayout: Sendable, Equatable {
    package struct StageBuffers: Sendable, Equatable {
        /// Floats of the stage's output, (capacity, outputSize); nil when it shares the previous stage's buffer
        /// (flatten after another stage). Training allocates as many again for the gradient.
        package var activation: Int?
        /// im2col floats of a general (non-pointwise) conv; training allocates as many again for their gradient.
        package var columns: Int?
        package var grouped: GroupedConvScratch.Layout?
        /// Int32 argmax indices (max pool in training, the fused conv + pool always).
        package var indices: Int?
        /// Dropout mask floats (training).
        package var mask: Int?
    }

    package let capacity: Int
    package let training: Bool
    package let stages: [StageBuffers]
    /// A training shard's copy of its input images (floats) and labels (bytes); 0 for inference.
    package let inputFloats: Int
    package let labelBytes: Int
    /// Bytes of all the buffers above (saturating at Int.max).
    package let bytes: Int

    package init(_ plan: NetworkPlan, capacity: Int, training: Bool) {
        self.capacity = capacity
        self.training = training
        inputFloats = training ? saturatingProduct(capacity, plan.inputSize) : 0
        labelBytes = training ? capacity : 0
        stages = plan.stages.enumerated().map { i, stage in
            var b = StageBuffers()
            let outputs = saturatingProduct(capacity, stage.outputSize)
            if case .flatten = stage.op, i > 0 {} else { b.activation = outputs }
            if case let .conv(g, _, _) = stage.op, !g.isPointwise {
                b.columns = saturatingProduct(min(capacity, g.imagesPerColumnBlock), g.columnSize)
            }
            if case let .groupedConv(g, groups, _, _) = stage.op {
                b.grouped = GroupedConvScratch.Layout(g, groups: groups, capacity: capacity, training: training)
            }
            if case .maxPool = stage.op, training { b.indices = outputs }   // inference needs only the pooled values
            else if case .convPool = stage.op { b.indices = outputs }
            if case .dropout = stage.op, training { b.mask = outputs }
            return b
        }
        var tally = ByteTally()
        tally.add(inputFloats, bytesEach: 4)
        tally.add(labelBytes, bytesEach: 1)
        let copies = training ? 2 : 1   // a value and, training, its gradient
        for b in stages {
            if let a = b.activation { tally.add(a, bytesEach: 4 * copies) }
            if let c = b.columns { tally.add(c, bytesEach: 4 * copies) }
            for f in b.grouped?.floats ?? [] { tally.add(f, bytesEach: 4) }
            if let x = b.indices { tally.add(x, bytesEach: 4) }
            if let m = b.mask { tally.add(m, bytesEach: 4) }
        }
        bytes = tally.bytes
    }
}

/// Activations (and, for training, their gradients) of one shard of up to `capacity` images: the buffers of a
/// WorkspaceLayout.
package final class ShardWorkspace: @unchecked Sendable {
    package let capacity: Int
    let training: Bool
    private var owned: [FloatBuffer] = []
    private var ownedIndices: [IndexBuffer] = []
    /// Output of stage i, (capacity, stage.outputSize). Flatten aliases its input.
    package var act: [UnsafeMutablePointer<Float>] = []
    /// Gradient w.r.t. the output of stage i (training only).
    var grad: [UnsafeMutablePointer<Float>] = []
    package var argmax: [UnsafeMutablePointer<Int32>?] = []
    var mask: [UnsafeMutablePointer<Float>?] = []
    /// im2col matrices of the general conv stages (and their gradients in training).
    package var columns: [UnsafeMutablePointer<Float>?] = []
    var dColumns: [UnsafeMutablePointer<Float>?] = []
    /// Per-group scratch of the grouped conv stages.
    var grouped: [GroupedConvScratch?] = []
    /// A copy of this shard's input images (training gathers shuffled images here) and labels.
    var input: FloatBuffer
    var labels: ByteBuffer

    package convenience init(plan: NetworkPlan, capacity: Int, training: Bool) {
        self.init(layout: WorkspaceLayout(plan, capacity: capacity, training: training))
    }

    package init(layout: WorkspaceLayout) {
        capacity = layout.capacity
        training = layout.training
        input = FloatBuffer(count: layout.inputFloats)
        labels = ByteBuffer(count: layout.labelBytes)
        func buffer(_ count: Int) -> UnsafeMutablePointer<Float> { let b = FloatBuffer(count: count); owned.append(b); return b.base }
        for (i, b) in layout.stages.enumerated() {
            if let a = b.activation {
                act.append(buffer(a))
                if training { grad.append(buffer(a)) }
            } else {   // flatten shares the previous stage's buffers
                act.append(act[i - 1])
                if training { grad.append(grad[i - 1]) }
            }
            columns.append(b.columns.map { buffer($0) })
            dColumns.append(training ? b.columns.map { buffer($0) } : nil)
            grouped.append(b.grouped.map { GroupedConvScratch(layout: $0) })
            argmax.append(b.indices.map { let x = IndexBuffer(count: $0); ownedIndices.append(x); return x.base })
            mask.append(b.mask.map { buffer($0) })
        }
    }

    /// Bytes this workspace allocated, counted from its buffers (what its layout's `bytes` says; tests compare them).
    package var allocatedBytes: Int {
        4 * (owned.reduce(0) { $0 + $1.count } + ownedIndices.reduce(0) { $0 + $1.count } + input.count) + labels.count
            + grouped.reduce(0) { $0 + ($1?.allocatedBytes ?? 0) }
    }

    var output: UnsafeMutablePointer<Float> { act[act.count - 1] }
}

extension NetworkPlan {
    /// The buffers (and bytes) of a ShardWorkspace of `capacity` images.
    package func workspaceLayout(capacity: Int, training: Bool) -> WorkspaceLayout {
        WorkspaceLayout(self, capacity: capacity, training: training)
    }
}

package enum Executor {
    /// Runs the stages over `n` images of `input` (n, plan.inputSize); the logits land in ws.output.
    /// Dropout is applied only when `dropoutSeed` is given; image b's mask comes from
    /// (seed, firstImage + b, stage), so masks do not depend on the thread count.
    /// `packedWeights`: NetworkPlan.packWeights of `parameters`, or nil (the grouped convs pack theirs per call).
    static func forward(_ plan: NetworkPlan, kernels: KernelSet, parameters: UnsafePointer<Float>, packedWeights: UnsafePointer<Float>? = nil,
                        input: UnsafePointer<Float>, n: Int, workspace ws: ShardWorkspace, dropoutSeed: UInt64?, firstImage: Int) {
        var x = input
        var packed = packedWeights
        for (i, stage) in plan.stages.enumerated() {
            let y = ws.act[i]
            switch stage.op {
            case let .convPool(g, w, b):
                kernels.convPoolForward(g, n, x, parameters + w, parameters + b, y, ws.argmax[i]!)
            case let .conv(g, w, b):
                // A pointwise conv has no column buffer; the kernel does not touch it then.
                kernels.convForward(g, n, x, parameters + w, parameters + b, y, ws.columns[i] ?? y)
            case let .depthwiseConv(g, w, b):
                kernels.depthwiseForward(g, n, x, parameters + w, parameters + b, y)
            case let .groupedConv(g, groups, w, b):
                GroupedConv.forward(g, groups: groups, n: n, input: x, weight: parameters + w, packedWeight: packed, bias: parameters + b,
                                    output: y, scratch: ws.grouped[i]!, kernels: kernels)
                packed = packed.map { $0 + g.weightCount * groups }
            case let .maxPool(g):
                kernels.maxPoolForward(g, n, x, y, ws.argmax[i])   // nil in inference workspaces: values only
            case let .avgPool(g):
                kernels.avgPoolForward(g, n, x, y)
            case let .activation(f):
                kernels.activationForward(f, n * stage.outputSize, x, y)
            case .flatten:
                // After another stage, flatten shares that stage's buffer: nothing to do. As the
                // first stage it has a buffer of its own, which the next stage reads (and training's
                // backward pass reads as that stage's input): the images go there.
                if i == 0 { y.update(from: x, count: n * stage.outputSize) }
            case let .dense(inputs, outputs, relu, w, b):
                kernels.denseForward(n, inputs, outputs, relu, x, parameters + w, parameters + b, y)
            case let .dropout(rate):
                let size = stage.outputSize
                if let seed = dropoutSeed, rate > 0 {
                    let m = ws.mask[i]!
                    let keep = 1 - rate, scale = 1 / keep
                    for b in 0..<n {
                        var rng = SeededGenerator(seed: seed, stream: UInt64(firstImage + b), UInt64(i))
                        for j in 0..<size {
                            let k: Float = rng.nextUnitFloat() < keep ? scale : 0
                            m[b * size + j] = k
                            y[b * size + j] = x[b * size + j] * k
                        }
                    }
                } else {
                    y.update(from: x, count: n * size)
                    if let m = ws.mask[i] { m.update(repeating: 1, count: n * size) }
                }
            }
            x = UnsafePointer(y)
        }
    }

    /// Expects ws.grad[last] = dLoss/dLogits for the shard; accumulates parameter gradients into dParameters.
    /// transposedWeights[i] (optional) holds stage i's dense weight transposed (out × in), for the input gradient.
    /// `packedWeights` as in forward.
    static func backward(_ plan: NetworkPlan, kernels: KernelSet, parameters: UnsafePointer<Float>, packedWeights: UnsafePointer<Float>? = nil,
                         input: UnsafePointer<Float>, n: Int, workspace ws: ShardWorkspace, dParameters: UnsafeMutablePointer<Float>,
                         transposedWeights: [UnsafePointer<Float>?] = []) {
        let firstParameterStage = plan.stages.firstIndex(where: \.hasParameters) ?? plan.stages.count
        var packed = packedWeights.map { $0 + plan.packedWeightCount }   // walked back stage by stage
        for i in stride(from: plan.stages.count - 1, through: 0, by: -1) {
            let stage = plan.stages[i]
            let x = i == 0 ? input : UnsafePointer(ws.act[i - 1])
            let dy = ws.grad[i]
            // The input gradient is needed only if some earlier stage holds parameters.
            let dx: UnsafeMutablePointer<Float>? = i > firstParameterStage ? ws.grad[i - 1] : nil
            switch stage.op {
            case let .convPool(g, w, b):
                kernels.convPoolBackward(g, n, x, parameters + w, dy, ws.argmax[i]!, dParameters + w, dParameters + b, dx)
            case let .conv(g, w, b):
                if g.relu { kernels.reluBackward(n * stage.outputSize, ws.act[i], dy) }
                kernels.convBackward(g, n, x, parameters + w, dy, dParameters + w, dParameters + b, dx,
                                     ws.columns[i] ?? dy, ws.dColumns[i] ?? dy)
            case let .depthwiseConv(g, w, b):
                if g.relu { kernels.reluBackward(n * stage.outputSize, ws.act[i], dy) }
                kernels.depthwiseBackward(g, n, x, parameters + w, dy, dParameters + w, dParameters + b, dx)
            case let .groupedConv(g, groups, w, b):
                if g.relu { kernels.reluBackward(n * stage.outputSize, ws.act[i], dy) }
                packed = packed.map { $0 - g.weightCount * groups }
                GroupedConv.backward(g, groups: groups, n: n, input: x, weight: parameters + w, packedWeight: packed, dOutput: dy,
                                     dWeight: dParameters + w, dBias: dParameters + b, dInput: dx, scratch: ws.grouped[i]!, kernels: kernels)
            case let .maxPool(g):
                if let dx { kernels.maxPoolBackward(g, n, dy, ws.argmax[i]!, dx) }
            case let .avgPool(g):
                if let dx { kernels.avgPoolBackward(g, n, dy, dx) }
            case let .activation(f):
                if let dx { kernels.activationBackward(f, n * stage.outputSize, ws.act[i], dy, dx) }
            case .flatten:
                break
            case let .dense(inputs, outputs, relu, w, b):
                if relu { kernels.reluBackward(n * outputs, ws.act[i], dy) }
                let wT = i < transposedWeights.count ? transposedWeights[i] : nil
                kernels.denseBackward(n, inputs, outputs, x, parameters + w, wT, dy, dParameters + w, dParameters + b, dx)
            case .dropout:
                if let dx {
                    let m = ws.mask[i]!
                    for j in 0..<(n * stage.outputSize) { dx[j] = dy[j] * m[j] }
                }
            }
        }
    }
}
