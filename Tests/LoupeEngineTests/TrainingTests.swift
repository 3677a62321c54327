import Testing
@testable import LoupeEngine

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
