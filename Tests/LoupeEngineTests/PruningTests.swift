import Testing
@testable import LoupeEngine
@_spi(Kernels) import LoupeKernels

@Suite struct PruningTests {
    static let architecture = Architecture(inputShape: [12, 12, 2], layers: [
        .conv2d(filters: 32, kernel: 3, padding: .valid, activation: .relu),
        .maxPool2d(pool: 2),
        .conv2d(filters: 12, kernel: 3, padding: .same, activation: .relu),
        .flatten,
        .dense(units: 24, activation: .relu),
        .dropout(rate: 0.5),
        .dense(units: 5, activation: .softmax),
    ])

    /// The seeded model with every odd filter/unit of the hidden layers silenced (weights and bias 0): those
    /// contribute exactly 0 downstream (ReLU(0) = 0), so removing them must not change any output.
    static func modelWithDeadUnits() throws -> Sequential {
        let model = try Sequential(architecture: architecture, seed: 5)
        var p = model.parameters
        for name in ["conv1", "conv2", "dense1"] {
            let w = model.slot(named: "\(name).weight")!, b = model.slot(named: "\(name).bias")!
            let outputs = w.shape.last!
            for i in 0..<w.count where (i % outputs) % 2 == 1 { p[w.offset + i] = 0 }
            for o in stride(from: 1, to: outputs, by: 2) { p[b.offset + o] = 0 }
            // Live units get a non-zero bias, so a wrongly kept or dropped bias shows.
            for o in stride(from: 0, to: outputs, by: 2) { p[b.offset + o] = 0.01 * Float(o + 1) }
        }
        return try Sequential(architecture: architecture, parameters: p)
    }

    static func images(_ n: Int) -> [Float] {
        var rng = SeededGenerator(seed: 17)
        return (0..<(n * 288)).map { _ in rng.nextUnitFloat() }
    }

    @Test("keep 0.5 removes exactly the silent filters and units: same outputs (tolerance 1e-5), smaller layers")
    func removesTheLeastImportantUnits() throws {
        let model = try Self.modelWithDeadUnits()
        let small = try model.pruned(keep: 0.5)
        // conv1 32 → 16 (a multiple of 16 stays one), conv2 12 → 6, dense1 24 → 12; the output layer keeps its 5.
        #expect(small.architecture.layers == [
            .conv2d(filters: 16, kernel: 3, padding: .valid, activation: .relu), .maxPool2d(pool: 2),
            .conv2d(filters: 6, kernel: 3, padding: .same, activation: .relu), .flatten,
            .dense(units: 12, activation: .relu), .dropout(rate: 0.5), .dense(units: 5, activation: .softmax),
        ])
        #expect(small.parameterCount < model.parameterCount / 2)
        let x = Self.images(9)
        var w1 = model.makeWorkspace(maxBatch: 9), w2 = small.makeWorkspace(maxBatch: 9)
        let before = model.predict(x, count: 9, workspace: &w1), after = small.predict(x, count: 9, workspace: &w2)
        var worst: Float = 0
        for i in before.indices { worst = max(worst, abs(before[i] - after[i])) }
        #expect(worst < 1e-5, "largest probability change \(worst)")
    }

    @Test func keepingEverythingChangesNothing() throws {
        let model = try Sequential(architecture: Self.architecture, seed: 8)
        let same = try model.pruned(keep: 1)
        #expect(same.architecture == model.architecture)
        #expect(same.parameters == model.parameters)
    }

    @Test func whatPruningDoesNotCoverIsASentence() throws {
        let model = try Sequential(architecture: Self.architecture, seed: 8)
        #expect(throws: EngineError.self) { try model.pruned(keep: 0) }
        #expect(throws: EngineError.self) { try model.pruned(keep: 1.5) }
        let depthwise = try Sequential(architecture: Architecture(inputShape: [8, 8, 3], layers: [
            .depthwiseConv2d(kernel: 3, padding: .valid, activation: .relu), .flatten, .dense(units: 4, activation: .softmax),
        ]), seed: 1)
        #expect(throws: EngineError.self) { try depthwise.pruned(keep: 0.5) }
    }
}
