import FoundationEssentials
import Testing
@testable import LoupeEngine
@_spi(Kernels) import LoupeKernels

@Suite struct APITests {
    @Test func seedArchitectureHasKerasParameterLayout() throws {
        let model = try Sequential(architecture: .seed, seed: 42)
        #expect(model.parameters.count == 693_962)
        #expect(model.inputCount == 784)
        #expect(model.outputCount == 10)
        #expect(model.parameterSlots.map(\.name) == ["conv1.weight", "conv1.bias", "dense1.weight", "dense1.bias", "dense2.weight", "dense2.bias"])
        #expect(model.parameterSlots.map(\.shape) == [[3, 3, 1, 32], [32], [5408, 128], [128], [128, 10], [10]])
        #expect(model.parameterSlots.map(\.offset) == [0, 288, 320, 692_544, 692_672, 693_952])
    }

    @Test func glorotInitIsSeededBoundedAndBiasesAreZero() throws {
        let a = try Sequential(architecture: .seed, seed: 42)
        let b = try Sequential(architecture: .seed, seed: 42)
        let c = try Sequential(architecture: .seed, seed: 43)
        #expect(a.parameters == b.parameters)
        #expect(a.parameters != c.parameters)
        let d1 = a.slot(named: "dense1.weight")!
        let limit = (6.0 / Float(5408 + 128)).squareRoot()
        let w = a.parameters[d1.offset..<(d1.offset + d1.count)]
        #expect(w.allSatisfy { abs($0) <= limit })
        #expect(w.max()! > limit * 0.99)
        let bias = a.slot(named: "dense1.bias")!
        #expect(a.parameters[bias.offset..<(bias.offset + bias.count)].allSatisfy { $0 == 0 })
    }

    @Test func architectureRoundTripsThroughJSON() throws {
        var arch = Architecture.seed
        arch.layers.insert(.dropout(rate: 0.25), at: 4)
        let data = try JSONEncoder().encode(arch)
        let text = String(decoding: data, as: UTF8.self)
        #expect(text.contains("\"type\":\"conv2d\""))
        #expect(try JSONDecoder().decode(Architecture.self, from: data) == arch)
    }

    /// Kernels, strides and pool windows: one integer when square (as files written before non-square sizes
    /// existed, which decode and re-encode unchanged), [height, width] otherwise; depthwise layers and their slots.
    @Test func nonSquareSizesAndDepthwiseRoundTripThroughJSON() throws {
        let old = #"{"inputShape":[9,12,3],"layers":[{"type":"conv2d","filters":4,"kernel":3,"stride":2,"padding":"same","activation":"relu"},{"type":"maxPool2d","pool":2},{"type":"flatten"},{"type":"dense","units":2,"activation":"linear"}]}"#
        let decoded = try JSONDecoder().decode(Architecture.self, from: Data(old.utf8))
        #expect(decoded.layers[0] == .conv2d(filters: 4, kernel: Size2D(3), stride: Size2D(2), padding: .same, activation: .relu))
        #expect(String(decoding: try JSONEncoder().encode(decoded.layers[0]), as: UTF8.self).contains(#""kernel":3"#))
        let json = #"{"inputShape":[9,12,3],"layers":[{"type":"conv2d","filters":4,"kernel":[3,5],"stride":[1,2],"padding":"same","activation":"relu"},{"type":"depthwiseConv2d","kernel":[2,3],"stride":[2,1],"pads":[0,1,1,0],"activation":"clip","min":0,"max":6},{"type":"maxPool2d","pool":[2,3],"stride":[1,2]},{"type":"avgPool2d","pool":[3,1]},{"type":"flatten"},{"type":"dense","units":2,"activation":"linear"}]}"#
        let arch = try JSONDecoder().decode(Architecture.self, from: Data(json.utf8))
        #expect(arch.layers[0] == .conv2d(filters: 4, kernel: Size2D(3, 5), stride: Size2D(1, 2), padding: .same, activation: .relu))
        #expect(arch.layers[1] == .depthwiseConv2d(kernel: Size2D(2, 3), stride: Size2D(2, 1), padding: .explicit(top: 0, left: 1, bottom: 1, right: 0),
                                                   activation: .clip(min: 0, max: 6)))
        #expect(arch.layers[2] == .maxPool2d(pool: Size2D(2, 3), stride: Size2D(1, 2)))
        #expect(arch.layers[3] == .avgPool2d(pool: Size2D(3, 1)))
        let text = String(decoding: try JSONEncoder().encode(arch), as: UTF8.self)
        #expect(text.contains(#""kernel":[3,5]"#) && text.contains(#""stride":[1,2]"#) && text.contains(#""pool":[2,3]"#))
        #expect(try JSONDecoder().decode(Architecture.self, from: Data(text.utf8)) == arch)
        // 9×12 → conv (same, strides 1×2) 9×6×4 → depthwise 2×3 s(2,1) pads [0,1,1,0] → 5×5×4 → max 2×3 s(1,2) → 4×2
        // → avg 3×1 → 1×2 → 8 → dense 2.
        let model = try Sequential(architecture: arch, seed: 3)
        #expect(model.slot(named: "conv1.weight")?.shape == [3, 5, 3, 4])
        #expect(model.slot(named: "depthwise1.weight")?.shape == [2, 3, 4, 1])
        #expect(model.slot(named: "depthwise1.bias")?.shape == [4])
        #expect(model.slot(named: "dense1.weight")?.shape == [8, 2])
        #expect(throws: DecodingError.self) {
            try JSONDecoder().decode(Architecture.self, from: Data(#"{"inputShape":[4,4,1],"layers":[{"type":"conv2d","filters":1,"kernel":[1,2,3]}]}"#.utf8))
        }
    }

    /// A grouped conv: its JSON (type groupedConv2d, groups), Keras's (kH, kW, C/G, K) weight slot, and the groups
    /// that do not divide the channels or filters refused with a sentence naming the layer.
    @Test func groupedConvRoundTripsThroughJSONAndChecksItsGroups() throws {
        let json = #"{"inputShape":[6,6,4],"layers":[{"type":"groupedConv2d","filters":6,"groups":2,"kernel":[3,1],"stride":[1,2],"padding":"same","activation":"relu"},{"type":"flatten"},{"type":"dense","units":2,"activation":"linear"}]}"#
        let arch = try JSONDecoder().decode(Architecture.self, from: Data(json.utf8))
        #expect(arch.layers[0] == .groupedConv2d(filters: 6, groups: 2, kernel: Size2D(3, 1), stride: Size2D(1, 2), padding: .same, activation: .relu))
        let text = String(decoding: try JSONEncoder().encode(arch), as: UTF8.self)
        #expect(text.contains(#""type":"groupedConv2d""#) && text.contains(#""groups":2"#))
        #expect(try JSONDecoder().decode(Architecture.self, from: Data(text.utf8)) == arch)
        let model = try Sequential(architecture: arch, seed: 3)
        #expect(model.slot(named: "groupedConv1.weight")?.shape == [3, 1, 2, 6])
        #expect(model.slot(named: "groupedConv1.bias")?.shape == [6])
        #expect(model.slot(named: "dense1.weight")?.shape == [6 * 3 * 6, 2])
        for (groups, filters) in [(3, 6), (2, 5), (1, 6), (0, 6)] {
            let bad = Architecture(inputShape: [6, 6, 4], layers: [.groupedConv2d(filters: filters, groups: groups, kernel: 3, padding: .valid,
                                                                                  activation: .relu), .flatten, .dense(units: 2, activation: .linear)])
            #expect(throws: EngineError.invalidArchitecture("layer 1 (groupedConv2d): groups must be at least 2 and divide both the 4 input channels and the \(filters) filters, got \(groups)")) {
                try Sequential(architecture: bad, seed: 1)
            }
        }
    }

    @Test func unknownLayerTypeIsRejected() {
        let json = #"{"inputShape":[4],"layers":[{"type":"lstm","units":3}]}"#
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(Architecture.self, from: Data(json.utf8)) }
    }

    @Test func parameterCountMismatchNamesBothCounts() {
        #expect(throws: EngineError.parameterCountMismatch(expected: 693_962, got: 5)) {
            try Sequential(architecture: .seed, parameters: [1, 2, 3, 4, 5])
        }
    }

    @Test func invalidArchitecturesAreRejected() {
        #expect(throws: EngineError.self) { try Sequential(architecture: Architecture(inputShape: [28, 28, 1], layers: [.dense(units: 10, activation: .softmax)]), seed: 1) }
        #expect(throws: EngineError.self) { try Sequential(architecture: Architecture(inputShape: [2, 2, 1], layers: [.conv2d(filters: 2, kernel: 3, padding: .valid, activation: .relu), .flatten, .dense(units: 2, activation: .linear)]), seed: 1) }
        #expect(throws: EngineError.self) { try Sequential(architecture: Architecture(inputShape: [4], layers: [.dense(units: 3, activation: .softmax), .dense(units: 2, activation: .linear)]), seed: 1) }
    }

    /// With 2 or 3 threads the chunks (8 images here: the plan's L2-sized chunk) are claimed dynamically by workers
    /// that each reuse one workspace; every image's output equals the 1-thread run bit for bit.
    @Test func inferenceWithMoreThreadsEqualsOneThread() throws {
        let model = try Sequential(architecture: Architecture(inputShape: [32, 32, 3], layers: [
            .conv2d(filters: 16, kernel: 3, padding: .same, activation: .relu), .maxPool2d(pool: 2),
            .conv2d(filters: 32, kernel: 3, stride: 2, padding: .same, activation: .clip(min: 0, max: 6)),
            .globalAvgPool2d, .flatten, .dense(units: 10, activation: .softmax),
        ]), seed: 3)
        #expect(model.plan.singleThreadChunk < 20, "several chunks per worker")
        var rng = SeededGenerator(seed: 4)
        let n = 45
        let input = (0..<(n * 3072)).map { _ in rng.nextUnitFloat() }
        var ws1 = model.makeWorkspace(maxBatch: 64)
        let one = model.predict(input, count: n, workspace: &ws1, threads: 1)
        for threads in [2, 3] {
            var ws = model.makeWorkspace(maxBatch: 64)
            #expect(model.predict(input, count: n, workspace: &ws, threads: threads) == one, "\(threads) threads")
        }
    }

    @Test func predictGivesProbabilityRowsForAnyBatchSize() throws {
        let model = try Sequential(architecture: .seed, seed: 7)
        var rng = SeededGenerator(seed: 1)
        let n = 13
        let input = (0..<(n * 784)).map { _ in rng.nextUnitFloat() }
        var ws = model.makeWorkspace(maxBatch: 4)
        let p = model.predict(input, count: n, workspace: &ws, threads: 2)
        #expect(p.count == n * 10)
        for b in 0..<n { #expect(abs(p[(b * 10)..<(b * 10 + 10)].reduce(0, +) - 1) < 1e-5) }
        // The same image alone gives the same probabilities.
        var ws1 = model.makeWorkspace(maxBatch: 1)
        let single = model.predict(Array(input[(5 * 784)..<(6 * 784)]), count: 1, workspace: &ws1, threads: 1)
        for j in 0..<10 { #expect(abs(single[j] - p[50 + j]) < 1e-6) }
    }
}
