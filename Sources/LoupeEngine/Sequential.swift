@_spi(Kernels) import LoupeKernels
// The public model type: an architecture plus its flat parameter arena.

/// Reusable buffers for `predict`/`logits` on batches of up to `maxBatch` images (larger inputs
/// are processed in chunks). A value type: if a copy is shared, the next call allocates its own.
public struct InferenceWorkspace: @unchecked Sendable {
    public let maxBatch: Int
    var storage: InferenceStorage
    /// Scratch of a quantized model's int8 executor (nil for fp32 models).
    var int8: Int8Storage?

    mutating func unique() -> InferenceStorage {
        if !isKnownUniquelyReferenced(&storage) { storage = InferenceStorage(plan: storage.plan, maxBatch: maxBatch) }
        return storage
    }

    /// The int8 scratch for `network`, made on the first call and kept. (Binding the stored reference first — `if let
    /// s = int8, …, isKnownUniquelyReferenced(&int8)` — holds a second reference, so the check always failed and every
    /// call made and zeroed a new scratch: ≈ 12 KB and 7 allocations per seed-network call at batch 1.)
    mutating func uniqueInt8(_ network: Int8Network) -> Int8Storage {
        if int8?.network !== network || !isKnownUniquelyReferenced(&int8) { int8 = Int8Storage(network: network, maxBatch: maxBatch) }
        return int8!
    }
}

public struct Sequential: Sendable {
    public let architecture: Architecture
    /// Named regions of `parameters`, in order: conv1.weight, conv1.bias, dense1.weight, ...
    public let parameterSlots: [ParameterSlot]
    /// All parameters in slot order; the count never changes.
    public var parameters: [Float] {
        didSet {
            precondition(parameters.count == plan.parameterCount, "parameter count must stay \(plan.parameterCount)")
            precondition(int8 == nil, "a quantized model's parameters are fixed (its int8 weights were packed at init)")
            packedWeights = plan.packedWeights(parameters)
        }
    }
    /// The grouped convs' weights packed as their kernels read them (NetworkPlan.packWeights), made with the
    /// parameters (init, and every change of `parameters`) instead of on every call; empty without grouped convs.
    private(set) var packedWeights: [Float]
    /// Int8 quantization (docs/model-format.md §12), nil for an fp32 model. A quantized model's
    /// `parameters` hold the dequantized weights; `predict` runs the int8 kernels.
    public let quantization: QuantizationParameters?
    /// "fp32" or "int8".
    public var precision: String { quantization?.precision ?? "fp32" }
    let int8: Int8Network?
    /// Floats per input image (H·W·C), normalized as in training (pixels / 255 for the seed).
    public var inputCount: Int { plan.inputSize }
    /// Classes per output row.
    public var outputCount: Int { plan.outputSize }
    public var parameterCount: Int { plan.parameterCount }

    package let plan: NetworkPlan

    /// Bytes of activation workspace one runner of this model allocates for batches of up to `maxBatch`
    /// images on `threads` threads — fp32 workspaces, or a quantized model's int8 scratch, whichever `predict`
    /// makes — computed from the shapes alone (the layouts the workspaces are then allocated from), so a
    /// caller can refuse an architecture whose activations would exhaust memory before allocating them.
    public func inferenceWorkspaceBytes(maxBatch: Int, threads: Int) -> Int {
        if let int8 { return int8.workspaceBytes(maxBatch: maxBatch, threads: threads) }
        return plan.inferenceWorkspaceBytes(maxBatch: maxBatch, threads: threads)
    }

    /// Bytes an `Explainer` of this model allocates (on its first explanation, beside the runner's inference
    /// workspace): an inference workspace and a training-mode gradient workspace for `Explainer.maxBatch`
    /// images, the conv gradients' scratch and the dense weights packed transposed. 0 when the model cannot be
    /// explained (no Explainer is ever made).
    public var explanationWorkspaceBytes: Int {
        guard explanationUnsupportedReason == nil else { return 0 }
        var tally = ByteTally()
        tally.add(inferenceWorkspaceBytes(maxBatch: Explainer.maxBatch, threads: 1), bytesEach: 1)
        tally.add(InputGradientStorage.bytes(plan, capacity: Explainer.maxBatch), bytesEach: 1)
        tally.add(TransposedDenseWeights.bytes(plan), bytesEach: 1)
        return tally.bytes
    }

    /// `trainingWorkspaceBytes` of an architecture not built yet (compiled from its shapes, nothing allocated).
    public static func trainingWorkspaceBytes(of architecture: Architecture, batchSize: Int, threads: Int) throws -> Int {
        try compile(architecture).plan.trainingWorkspaceBytes(batchSize: batchSize, threads: threads)
    }

    /// Bytes of activation and gradient workspace training allocates for mini-batches of `batchSize` on `threads`.
    public func trainingWorkspaceBytes(batchSize: Int, threads: Int) -> Int {
        plan.trainingWorkspaceBytes(batchSize: batchSize, threads: threads)
    }

    /// Glorot-uniform weights from a seeded generator (same seed → same parameters), zero biases.
    public init(architecture: Architecture, seed: UInt64) throws {
        let compiled = try compile(architecture)
        var rng = SeededGenerator(seed: seed)
        var p = [Float](repeating: 0, count: compiled.plan.parameterCount)
        for slot in compiled.slots {
            guard let limit = compiled.glorotLimits[slot.name] else { continue }
            for i in slot.offset..<(slot.offset + slot.count) { p[i] = (rng.nextUnitFloat() * 2 - 1) * limit }
        }
        try self.init(architecture: architecture, compiled: compiled, parameters: p, quantization: nil)
    }

    /// Wraps existing parameters (e.g. read from a model file); throws if the count does not match.
    /// With `quantization`, the model runs int8 (the weights are quantized per its scales and packed now).
    public init(architecture: Architecture, parameters: [Float], quantization: QuantizationParameters? = nil) throws {
        let compiled = try compile(architecture)
        guard parameters.count == compiled.plan.parameterCount else {
            throw EngineError.parameterCountMismatch(expected: compiled.plan.parameterCount, got: parameters.count)
        }
        try self.init(architecture: architecture, compiled: compiled, parameters: parameters, quantization: quantization)
    }

    /// The one place a network is assembled: `parameters` (as many as `compiled.plan` holds) packed for the
    /// kernels, and with `quantization` quantized and packed for the int8 kernels.
    private init(architecture: Architecture, compiled: CompiledNetwork, parameters: [Float],
                 quantization: QuantizationParameters?) throws {
        self.architecture = architecture
        self.parameterSlots = compiled.slots
        self.plan = compiled.plan
        self.parameters = parameters
        self.packedWeights = compiled.plan.packedWeights(parameters)
        self.quantization = quantization
        self.int8 = try quantization.map {
            try Int8Network(plan: compiled.plan, architecture: architecture, slots: compiled.slots, parameters: parameters, quantization: $0)
        }
    }

    /// Bytes the weights take in memory as the kernels read them (float32, or packed int8).
    public var weightBytes: Int {
        int8?.weightBytes ?? plan.weightRanges.reduce(0) { $0 + 4 * $1.count }
    }

    /// The slot with this name, e.g. "dense1.weight".
    public func slot(named name: String) -> ParameterSlot? { parameterSlots.first { $0.name == name } }

    /// Bytes of the workspaces `workspace` has allocated so far, counted from its buffers (tests compare it with
    /// `inferenceWorkspaceBytes`).
    package func allocatedBytes(of workspace: InferenceWorkspace) -> Int {
        int8 == nil ? workspace.storage.allocatedBytes : (workspace.int8?.allocatedBytes ?? 0)
    }

    public func makeWorkspace(maxBatch: Int) -> InferenceWorkspace {
        InferenceWorkspace(maxBatch: max(1, maxBatch), storage: InferenceStorage(plan: plan, maxBatch: max(1, maxBatch)))
    }

    /// True when the last layer's activation is softmax: `outputs` are then probabilities; otherwise
    /// the network ends in raw scores (logits, or whatever its last activation makes of them).
    public var endsInSoftmax: Bool { plan.endsInSoftmax }

    /// The network's own output, as a model exported from it computes it: softmax probabilities if the
    /// last layer's activation is softmax, else the last layer's raw output (logits stay logits).
    public func outputs(_ input: [Float], count: Int, workspace: inout InferenceWorkspace, threads: Int = 1) -> [Float] {
        run(input, count: count, workspace: &workspace, threads: threads, softmax: plan.endsInSoftmax)
    }

    /// Softmax probabilities, (count, outputCount) row-major, whatever the last activation (a network
    /// ending in logits gets softmax applied here). `input` is (count, inputCount), NHWC.
    public func predict(_ input: [Float], count: Int, workspace: inout InferenceWorkspace, threads: Int = 1) -> [Float] {
        run(input, count: count, workspace: &workspace, threads: threads, softmax: true)
    }

    /// The last layer's outputs before softmax, (count, outputCount).
    public func logits(_ input: [Float], count: Int, workspace: inout InferenceWorkspace, threads: Int = 1) -> [Float] {
        run(input, count: count, workspace: &workspace, threads: threads, softmax: false)
    }

    private func run(_ input: [Float], count: Int, workspace: inout InferenceWorkspace, threads: Int, softmax: Bool) -> [Float] {
        precondition(count >= 0 && input.count >= count * inputCount,
                     "input holds \(input.count) floats, fewer than count × inputCount = \(count) × \(inputCount)")
        precondition(workspace.storage.plan == plan, "workspace was made for a different architecture")
        if let int8 {
            return int8.run(input, count: count, storage: workspace.uniqueInt8(int8), path: ISA.int8, threads: max(1, threads), softmax: softmax)
        }
        let storage = workspace.unique()
        return Inference.run(plan, kernels: ISA.kernels, parameters: parameters, packedWeights: packedWeights, input: input, count: count,
                             storage: storage, threads: max(1, threads), softmax: softmax)
    }
}

extension Sequential {
    /// Rows of logits (`values.count / classes` rows) → softmax probabilities, with the same kernel
    /// `predict` applies to a network that ends in logits (so both give the same bits).
    public static func softmax(_ values: [Float], classes: Int) -> [Float] {
        guard classes > 0, !values.isEmpty else { return values }
        var out = [Float](repeating: 0, count: values.count)
        values.withUnsafeBufferPointer { z in
            out.withUnsafeMutableBufferPointer { p in
                softmaxRows(n: values.count / classes, classes: classes, logits: z.baseAddress!, probabilities: p.baseAddress!)
            }
        }
        return out
    }
}
