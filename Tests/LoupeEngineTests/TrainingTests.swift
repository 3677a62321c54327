import Testing
@testable import LoupeEngine
@_spi(Kernels) import LoupeKernels

/// A small synthetic 10-class problem: each class is a bright blob at its own position.
func blobDataset(count: Int, seed: UInt64, side: Int = 28) -> (images: [Float], labels: [UInt8]) {
    var rng = SeededGenerator(seed: seed)
    var images = [Float](repeating: 0, count: count * side * side)
    var labels = [UInt8](repeating: 0, count: count)
    for b in 0..<count {
        let label = Int(rng.next() % 10)
        labels[b] = UInt8(label)
        let cy = 4 + (label / 5) * (side / 2), cx = 3 + (label % 5) * (side / 6)
        for y in 0..<side { for x in 0..<side {
            let d = Float((y - cy) * (y - cy) + (x - cx) * (x - cx))
            images[b * side * side + y * side + x] = max(0, 1 - d / 12) * 0.8 + rng.nextUnitFloat() * 0.2
        }}
    }
    return (images, labels)
}

@Suite struct TrainingTests {
    /// A network that starts with flatten (an MLP on images, as an imported Flatten → Gemm gives)
    /// reads its input: outputs equal the plain dense sum, and training on it learns.
    @Test func flattenAsTheFirstLayerReadsTheInput() throws {
        let arch = Architecture(inputShape: [28, 28, 1], layers: [.flatten, .dense(units: 10, activation: .linear)])
        let model = try Sequential(architecture: arch, seed: 5)
        let data = blobDataset(count: 64, seed: 9)
        var ws = model.makeWorkspace(maxBatch: 64)
        let logits = model.logits(data.images, count: 64, workspace: &ws)
        let p = model.parameters
        let w = try #require(model.slot(named: "dense1.weight")), bias = try #require(model.slot(named: "dense1.bias"))
        for b in [0, 1, 63] {
            for o in 0..<10 {
                var sum = Double(p[bias.offset + o])
                for k in 0..<784 { sum += Double(data.images[b * 784 + k]) * Double(p[w.offset + k * 10 + o]) }
                #expect(abs(Double(logits[b * 10 + o]) - sum) < 1e-3 * max(1, abs(sum)), "image \(b) output \(o)")
            }
        }
        let trainer = Trainer(model: try Sequential(architecture: Architecture(inputShape: [28, 28, 1],
            layers: [.flatten, .dense(units: 10, activation: .softmax)]), seed: 5),
            configuration: TrainingConfiguration(batchSize: 64, learningRate: 1e-2, seed: 42, threads: 2))
        let train = blobDataset(count: 512, seed: 3)
        for epoch in 0..<3 { _ = trainer.trainEpoch(images: train.images, labels: train.labels, count: 512, epoch: epoch) }
        #expect(trainer.evaluate(images: train.images, labels: train.labels, count: 512).accuracy > 0.9)
    }

    @Test func adamLearnsASyntheticProblem() throws {
        let data = blobDataset(count: 512, seed: 3)
        let model = try Sequential(architecture: .seed, seed: 42)
        let trainer = Trainer(model: model, configuration: TrainingConfiguration(batchSize: 64, learningRate: 1e-3, seed: 42, threads: 2))
        let before = trainer.evaluate(images: data.images, labels: data.labels, count: 512)
        var last = EpochResult(epoch: 0, loss: 0, accuracy: 0, images: 0, batches: 0, seconds: 0, stopped: false)
        for epoch in 0..<3 { last = trainer.trainEpoch(images: data.images, labels: data.labels, count: 512, epoch: epoch) }
        let after = trainer.evaluate(images: data.images, labels: data.labels, count: 512)
        #expect(after.loss < before.loss * 0.5)
        #expect(after.accuracy > 0.9)
        #expect(last.images == 512 && last.batches == 8 && !last.stopped)
    }

    @Test func progressCallbackCanStop() throws {
        let data = blobDataset(count: 256, seed: 4)
        let trainer = Trainer(model: try Sequential(architecture: .seed, seed: 1), configuration: TrainingConfiguration(batchSize: 32, threads: 1))
        var calls = 0
        let r = trainer.trainEpoch(images: data.images, labels: data.labels, count: 256, epoch: 0) { p in
            calls += 1
            #expect(p.batch == calls && p.batchCount == 8)
            return p.batch < 3
        }
        #expect(calls == 3)
        #expect(r.stopped && r.images == 96)
    }
}

@Suite struct ReproducibilityTests {
    func train(threads: Int, kernels: KernelSet = ISA.kernels, epochs: Int = 2) throws -> (losses: [Double], parameters: [Float]) {
        let data = blobDataset(count: 320, seed: 5)
        let model = try Sequential(architecture: .seed, seed: 42)
        let trainer = Trainer(model: model, configuration: TrainingConfiguration(batchSize: 32, learningRate: 1e-3, seed: 7, threads: threads),
                              kernels: kernels)
        var losses: [Double] = []
        for epoch in 0..<epochs { losses.append(trainer.trainEpoch(images: data.images, labels: data.labels, count: 320, epoch: epoch).loss) }
        return (losses, trainer.model.parameters)
    }

    @Test(arguments: [1, 2]) func aSeededRunWithAFixedThreadCountIsBitForBitReproducible(threads: Int) throws {
        let a = try train(threads: threads), b = try train(threads: threads)
        #expect(a.losses == b.losses)
        #expect(a.parameters == b.parameters)
    }

    /// The AVX2 fallback and the AVX-512 kernels run the same arithmetic in the same order per lane.
    @Test(.enabled(if: ISA.hasAVX512, "this CPU has no AVX-512")) func theAVX2FallbackTrainsExactlyLikeAVX512() throws {
        let avx2 = try train(threads: 2, kernels: .avx2, epochs: 1)
        let avx512 = try train(threads: 2, kernels: ISA.available.last!, epochs: 1)
        #expect(avx2.parameters == avx512.parameters)
    }

    /// Golden losses of a short seeded run (2 threads, blob data, Adam 1e-3, batch 32). Tolerance 1e-4 relative:
    /// exact on this machine; the slack is for another libm's expf/logf.
    @Test func shortSeededRunMatchesGoldenLosses() throws {
        let r = try train(threads: 2)
        let golden: [Double] = [1.9681016936898232, 0.8979715969413519]
        // One loss per epoch: fewer (or more) coming back is a failure, not a shorter comparison.
        try #require(r.losses.count == golden.count, "\(r.losses.count) losses came back, \(golden.count) expected")
        for (got, want) in zip(r.losses, golden) { #expect(abs(got - want) <= 1e-4 * want, "loss \(got) vs golden \(want)") }
    }

    /// The same run with 1 thread gives the same losses up to float summation order.
    @Test func threadCountChangesOnlyRoundingNotTheResult() throws {
        let one = try train(threads: 1), two = try train(threads: 2)
        for (a, b) in zip(one.losses, two.losses) { #expect(abs(a - b) <= 1e-4 * b) }
    }
}

@Suite struct OptionsTests {
    /// Dropout (training only), SGD with momentum and L2 all take part and still learn; reproducible.
    @Test func dropoutSGDAndL2Train() throws {
        var arch = Architecture.seed
        arch.layers.insert(.dropout(rate: 0.3), at: 4)
        let data = blobDataset(count: 256, seed: 8)
        func run() throws -> (EvaluationResult, EvaluationResult, [Float]) {
            let trainer = Trainer(model: try Sequential(architecture: arch, seed: 3),
                                  configuration: TrainingConfiguration(batchSize: 32, learningRate: 0.05, optimizer: .sgd(momentum: 0.9),
                                                                       l2: 1e-4, seed: 11, threads: 2))
            let before = trainer.evaluate(images: data.images, labels: data.labels, count: 256)
            for epoch in 0..<3 { _ = trainer.trainEpoch(images: data.images, labels: data.labels, count: 256, epoch: epoch) }
            return (before, trainer.evaluate(images: data.images, labels: data.labels, count: 256), trainer.model.parameters)
        }
        let (before, after, params) = try run()
        #expect(after.loss < before.loss * 0.5)
        #expect(after.accuracy > 0.8)
        #expect(try run().2 == params)
        // Dropout is identity at inference: predict twice gives identical outputs.
        let model = try Sequential(architecture: arch, parameters: params)
        var ws = model.makeWorkspace(maxBatch: 8)
        let input = Array(data.images[0..<(8 * 784)])
        #expect(model.predict(input, count: 8, workspace: &ws) == model.predict(input, count: 8, workspace: &ws))
    }

    /// Architectures off the fast paths (same padding, filter counts not a multiple of 16, a standalone
    /// pool, two convs) train through the plain-loop stages.
    @Test func slowPathArchitectureTrains() throws {
        let arch = Architecture(inputShape: [12, 12, 1], layers: [
            .conv2d(filters: 6, kernel: 3, padding: .same, activation: .relu),
            .maxPool2d(pool: 2),
            .conv2d(filters: 16, kernel: 3, padding: .valid, activation: .relu),
            .flatten,
            .dense(units: 10, activation: .softmax),
        ])
        var images: [Float] = [], labels: [UInt8] = []
        let full = blobDataset(count: 128, seed: 9)
        for b in 0..<128 {   // crop 12×12 from the 28×28 blobs' top-left area (classes 0-4 differ there)
            for y in 0..<12 { for x in 0..<12 { images.append(full.images[b * 784 + (y + 1) * 28 + x * 2]) } }
            labels.append(full.labels[b])
        }
        let trainer = Trainer(model: try Sequential(architecture: arch, seed: 5),
                              configuration: TrainingConfiguration(batchSize: 16, learningRate: 3e-3, seed: 1, threads: 2))
        let before = trainer.evaluate(images: images, labels: labels, count: 128)
        for epoch in 0..<4 { _ = trainer.trainEpoch(images: images, labels: labels, count: 128, epoch: epoch) }
        let after = trainer.evaluate(images: images, labels: labels, count: 128)
        #expect(after.loss < before.loss * 0.8)
    }

    /// The general layers train: strided/padded convs, overlapping max pool, average and global average
    /// pooling, leaky ReLU / clip / tanh / sigmoid, on 3-channel 16×16 images whose class is the colour
    /// channel and quadrant of a bright patch. The AVX2/AVX-512 tables follow the plain-loop references.
    @Test func generalLayersTrainOnThreeChannelImages() throws {
        let arch = Architecture(inputShape: [16, 16, 3], layers: [
            .conv2d(filters: 16, kernel: 3, stride: 1, padding: .same, activation: .leakyRelu(alpha: 0.1)),
            .maxPool2d(pool: 3, stride: 2, padding: .explicit(top: 1, left: 1, bottom: 1, right: 1)),
            .conv2d(filters: 12, kernel: 3, stride: 2, padding: .explicit(top: 1, left: 1, bottom: 0, right: 0), activation: .clip(min: 0, max: 6)),
            .avgPool2d(pool: 2, stride: 1),
            .activation(.tanh),
            .flatten,
            .dense(units: 24, activation: .sigmoid),
            .dense(units: 10, activation: .linear),
        ])
        try checkTrainsOnColourPatches(arch)
    }

    /// Non-square kernels and windows, unequal strides and a depthwise conv train on the same images:
    /// 16×16×3 → conv 3×5 s(1,2) same → 16×8×12 → depthwise 3×3 s(2,1) pads [1,1,0,1] → 8×8×12 → max 2×1 → 4×8×12.
    @Test func nonSquareAndDepthwiseLayersTrain() throws {
        let arch = Architecture(inputShape: [16, 16, 3], layers: [
            .conv2d(filters: 12, kernel: Size2D(3, 5), stride: Size2D(1, 2), padding: .same, activation: .relu),
            .depthwiseConv2d(kernel: Size2D(3, 3), stride: Size2D(2, 1), padding: .explicit(top: 1, left: 1, bottom: 0, right: 1),
                             activation: .leakyRelu(alpha: 0.1)),
            .maxPool2d(pool: Size2D(2, 1)),
            .flatten,
            .dense(units: 10, activation: .linear),
        ])
        try checkTrainsOnColourPatches(arch)
    }

    /// Grouped convs train on the same images: 16×16×3 → conv 3×3 same → 16×16×12 → grouped (3 groups) 3×3 s2 same
    /// → 8×8×12 → grouped (12 groups, two filters per channel) 3×1 same → 8×8×24 → max 2 → 4×4×24.
    @Test func groupedConvsTrain() throws {
        let arch = Architecture(inputShape: [16, 16, 3], layers: [
            .conv2d(filters: 12, kernel: 3, padding: .same, activation: .relu),
            .groupedConv2d(filters: 12, groups: 3, kernel: 3, stride: 2, padding: .same, activation: .relu),
            .groupedConv2d(filters: 24, groups: 12, kernel: Size2D(3, 1), padding: .same, activation: .leakyRelu(alpha: 0.1)),
            .maxPool2d(pool: 2),
            .flatten,
            .dense(units: 10, activation: .linear),
        ])
        try checkTrainsOnColourPatches(arch)
    }

    /// 3-channel 16×16 images whose class is the colour channel and quadrant of a bright patch: 15 epochs halve
    /// the loss and reach 80% accuracy, and one epoch on each SIMD table ends where the plain-loop references do.
    func checkTrainsOnColourPatches(_ arch: Architecture) throws {
        var rng = SeededGenerator(seed: 77)
        let count = 160
        var images = [Float](repeating: 0, count: count * 768), labels: [UInt8] = []
        for b in 0..<count {
            let label = b % 10, channel = label % 3, quadrant = label / 3
            labels.append(UInt8(label))
            for i in 0..<768 { images[b * 768 + i] = rng.nextUnitFloat() * 0.2 }
            let top = (quadrant / 2) * 8 + Int.random(in: 0...3, using: &rng), left = (quadrant % 2) * 8 + Int.random(in: 0...3, using: &rng)
            for y in top..<(top + 4) { for x in left..<(left + 4) { images[b * 768 + (y * 16 + x) * 3 + channel] += 0.8 } }
        }
        func train(_ kernels: KernelSet, epochs: Int) throws -> (EvaluationResult, EvaluationResult, [Float]) {
            let trainer = Trainer(model: try Sequential(architecture: arch, seed: 4),
                                  configuration: TrainingConfiguration(batchSize: 16, learningRate: 1e-2, seed: 2, threads: 2), kernels: kernels)
            let before = trainer.evaluate(images: images, labels: labels, count: count)
            for epoch in 0..<epochs { _ = trainer.trainEpoch(images: images, labels: labels, count: count, epoch: epoch) }
            return (before, trainer.evaluate(images: images, labels: labels, count: count), trainer.model.parameters)
        }
        let (before, after, params) = try train(ISA.kernels, epochs: 15)
        #expect(after.loss < before.loss * 0.5, "loss \(before.loss) → \(after.loss)")
        #expect(after.accuracy > 0.8, "accuracy \(after.accuracy)")
        // One epoch on each table ends at the same parameters up to float summation order.
        let reference = try train(.reference, epochs: 1).2
        for table in simdTables {
            let p = try train(table, epochs: 1).2
            let e = zip(p, reference).map { abs($0 - $1) }.max()!
            #expect(e < 1e-3, "\(table.name) vs reference after one epoch: max |Δparameter| \(e)")
        }
        #expect(params.count == (try Sequential(architecture: arch, seed: 4)).parameterCount)
    }
}
