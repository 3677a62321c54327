import Testing
@testable import LoupeEngine
@_spi(Kernels) import LoupeKernels

// The workspace a model's activations need is computed from its shapes before anything is allocated
// (so the server and `loupe train` can refuse an architecture whose activations would exhaust memory);
// the computation must be what the workspaces then allocate, for every stage kind.
@Suite struct WorkspaceSizeTests {
    static let architectures: [Architecture] = [
        .seed,
        Architecture(inputShape: [28, 28, 1], layers: [.conv2d(filters: 8, kernel: 3, padding: .valid, activation: .relu), .maxPool2d(pool: 2),
                                                       .dropout(rate: 0.25), .flatten, .dense(units: 10, activation: .softmax)]),
        Architecture(inputShape: [12, 12, 4], layers: [.groupedConv2d(filters: 8, groups: 2, kernel: 3, padding: .same, activation: .relu),
                                                       .depthwiseConv2d(kernel: 3, padding: .same, activation: .relu),
                                                       .conv2d(filters: 6, kernel: 1, padding: .valid, activation: .linear),
                                                       .avgPool2d(pool: 2), .globalAvgPool2d, .flatten, .dense(units: 5, activation: .linear)]),
        Architecture(inputShape: [16, 16, 3], layers: [.conv2d(filters: 4, kernel: 5, stride: 2, padding: .same, activation: .relu),
                                                       .maxPool2d(pool: 3, stride: 2, padding: .same), .flatten, .dense(units: 3, activation: .softmax)]),
    ]

    /// The layout the workspace is allocated from: its bytes are what the buffers then hold, for every stage kind.
    @Test(arguments: 0..<4) func layoutBytesAreTheAllocatedBytes(_ index: Int) throws {
        let plan = try compile(Self.architectures[index]).plan
        for capacity in [1, 7, 64] {
            for training in [false, true] {
                let layout = plan.workspaceLayout(capacity: capacity, training: training)
                let ws = ShardWorkspace(layout: layout)
                #expect(layout.bytes == ws.allocatedBytes, "architecture \(index), \(capacity) images, training \(training)")
                #expect(layout.bytes > 0)
            }
        }
    }

    /// What a runner's workspace really allocates after a batch of maxBatch images is the figure the limit reads,
    /// for fp32 models (every stage kind) and int8 ones (whose scratch is its own, not the fp32 figure).
    @Test(arguments: 0..<4) func inferenceFigureIsWhatPredictAllocates(_ index: Int) throws {
        let model = try Sequential(architecture: Self.architectures[index], seed: 2)
        for maxBatch in [1, 7, 64, 200] {
            var workspace = model.makeWorkspace(maxBatch: maxBatch)
            _ = model.predict([Float](repeating: 0.5, count: maxBatch * model.inputCount), count: maxBatch, workspace: &workspace)
            #expect(model.allocatedBytes(of: workspace) == model.inferenceWorkspaceBytes(maxBatch: maxBatch, threads: 1),
                    "architecture \(index), batch \(maxBatch)")
        }
    }

    /// With `threads` > 1 a batch's chunks run as concurrentPerform iterations, as many at once as the machine has
    /// cores; at most `threads` of them hold a workspace at once (InferenceStorage.slots), so what is made stays
    /// within the figure for that many threads on any machine. (On a machine with no more cores than `threads` it
    /// holds without the bound too; with more, e.g. 16 cores and threads 2, it failed: up to 8 chunk workspaces.)
    @Test func threadsBoundTheWorkspacesMadeForABatch() throws {
        let model = try Sequential(architecture: Self.architectures[0], seed: 2)
        let int8 = try Int8NetworkTests.quantizedModel()
        for threads in [2, 3] {
            var workspace = model.makeWorkspace(maxBatch: 256)
            var scratch = int8.makeWorkspace(maxBatch: 256)
            for _ in 0..<8 {
                _ = model.predict([Float](repeating: 0.5, count: 256 * model.inputCount), count: 256, workspace: &workspace, threads: threads)
                _ = int8.predict(Int8NetworkTests.images(256, seed: 5), count: 256, workspace: &scratch, threads: threads)
            }
            #expect(model.allocatedBytes(of: workspace) <= model.inferenceWorkspaceBytes(maxBatch: 256, threads: threads), "threads \(threads)")
            #expect(int8.allocatedBytes(of: scratch) <= int8.inferenceWorkspaceBytes(maxBatch: 256, threads: threads), "threads \(threads)")
        }
    }

    @Test func int8FigureIsWhatItsScratchAllocates() throws {
        let model = try Int8NetworkTests.quantizedModel()
        let fp32 = try Sequential(architecture: model.architecture, parameters: model.parameters)
        for maxBatch in [1, 5, 64] {
            var workspace = model.makeWorkspace(maxBatch: maxBatch)
            _ = model.predict(Int8NetworkTests.images(maxBatch, seed: 5), count: maxBatch, workspace: &workspace)
            let figure = model.inferenceWorkspaceBytes(maxBatch: maxBatch, threads: 1)
            #expect(model.allocatedBytes(of: workspace) == figure, "batch \(maxBatch)")
            #expect(figure < fp32.inferenceWorkspaceBytes(maxBatch: maxBatch, threads: 1), "batch \(maxBatch)")
        }
    }

    /// An Explainer allocates (made on a worker's first explanation) what explanationWorkspaceBytes says, for fp32 and int8
    /// models; a model without input gradients is never explained, so it counts 0.
    @Test func explanationFigureIsWhatAnExplainerAllocates() throws {
        let models = [try Sequential(architecture: .seed, seed: 1), try Sequential(architecture: Self.architectures[2], seed: 4),
                      try Int8NetworkTests.quantizedModel()]
        for model in models {
            var explainer = try Explainer(model: model)
            _ = try explainer.explain([Float](repeating: 0.25, count: model.inputCount), options: AttributionOptions(steps: 100))
            #expect(explainer.allocatedBytes == model.explanationWorkspaceBytes, "\(model.architecture.inputShape)")
            #expect(model.explanationWorkspaceBytes > model.inferenceWorkspaceBytes(maxBatch: Explainer.maxBatch, threads: 1))
        }
    }

    /// The seed network: tens of kB per image for inference; batching and threads scale it as the storage does.
    @Test func seedFiguresAndOverflowSaturates() throws {
        let model = try Sequential(architecture: .seed, seed: 1)
        let one = model.inferenceWorkspaceBytes(maxBatch: 1, threads: 1)
        #expect(one > 20_000 && one < 400_000, "\(one)")
        // The figures the docs quote (Config/loupe.yaml, TrainingOptions.maxWorkspaceBytes).
        #expect(model.inferenceWorkspaceBytes(maxBatch: 64, threads: 1) < 16 << 20)
        #expect(model.explanationWorkspaceBytes < 64 << 20)
        #expect(model.trainingWorkspaceBytes(batchSize: 128, threads: 2) < 100 << 20)
        #expect(model.inferenceWorkspaceBytes(maxBatch: 64, threads: 1) == model.plan.workspaceLayout(capacity: model.plan.inferenceChunk(maxBatch: 64, threads: 1), training: false).bytes)
        #expect(model.trainingWorkspaceBytes(batchSize: 32, threads: 2) == 2 * model.plan.workspaceLayout(capacity: 16, training: true).bytes)
        let huge = try Sequential(architecture: Architecture(inputShape: [256, 256, 3], layers: [
            .conv2d(filters: 4096, kernel: 1, padding: .valid, activation: .relu), .globalAvgPool2d, .flatten, .dense(units: 2, activation: .softmax)]), seed: 1)
        #expect(huge.inferenceWorkspaceBytes(maxBatch: 64, threads: 1) > 1 << 30)   // 1 GiB per image: never allocated here
        #expect(huge.plan.workspaceLayout(capacity: Int.max / 2, training: true).bytes == Int.max)
    }

    /// A training engine's shards are the layout trainingWorkspaceBytes reads.
    @Test func trainingFigureIsWhatTheShardsAllocate() throws {
        let plan = try compile(Self.architectures[1]).plan
        for (batch, threads) in [(32, 2), (7, 3), (5, 8)] {
            let engine = TrainingEngine(plan: plan, kernels: ISA.kernels, parameters: [Float](repeating: 0.01, count: plan.parameterCount),
                                        threads: threads, batchSize: batch, rule: .sgd(momentum: 0), learningRate: 0.1, l2: 0)
            #expect(engine.workspaceAllocatedBytes == plan.trainingWorkspaceBytes(batchSize: batch, threads: threads))
        }
    }
}
