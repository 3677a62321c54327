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

    @Test(arguments: 0..<4) func computedBytesAreTheAllocatedBytes(_ index: Int) throws {
        let plan = try compile(Self.architectures[index]).plan
        for capacity in [1, 7, 64] {
            for training in [false, true] {
                let ws = ShardWorkspace(plan: plan, capacity: capacity, training: training)
                #expect(plan.workspaceBytes(capacity: capacity, training: training) == ws.allocatedBytes,
                        "architecture \(index), \(capacity) images, training \(training)")
            }
        }
    }

    /// The seed network: tens of kB per image for inference; batching and threads scale it as the storage does.
    @Test func seedFiguresAndOverflowSaturates() throws {
        let model = try Sequential(architecture: .seed, seed: 1)
        let one = model.inferenceWorkspaceBytes(maxBatch: 1, threads: 1)
        #expect(one > 20_000 && one < 400_000, "\(one)")
        // The figures the docs quote (Config/loupe.yaml, TrainingOptions.maxWorkspaceBytes).
        #expect(model.inferenceWorkspaceBytes(maxBatch: 64, threads: 1) < 16 << 20)
        #expect(model.trainingWorkspaceBytes(batchSize: 128, threads: 2) < 100 << 20)
        #expect(model.inferenceWorkspaceBytes(maxBatch: 64, threads: 1) == model.plan.workspaceBytes(capacity: model.plan.inferenceChunk(maxBatch: 64, threads: 1), training: false))
        #expect(model.trainingWorkspaceBytes(batchSize: 32, threads: 2) == 2 * model.plan.workspaceBytes(capacity: 16, training: true))
        let huge = try Sequential(architecture: Architecture(inputShape: [256, 256, 3], layers: [
            .conv2d(filters: 4096, kernel: 1, padding: .valid, activation: .relu), .globalAvgPool2d, .flatten, .dense(units: 2, activation: .softmax)]), seed: 1)
        #expect(huge.inferenceWorkspaceBytes(maxBatch: 64, threads: 1) > 1 << 30)   // 1 GiB per image: never allocated here
        #expect(huge.plan.workspaceBytes(capacity: Int.max / 2, training: true) == Int.max)
    }
}
