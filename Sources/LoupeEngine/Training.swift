import LoupeSystem
@_spi(Kernels) import LoupeKernels
// Mini-batch training: softmax cross-entropy, SGD-momentum or Adam, optional L2, seeded shuffling.
import Glibc

public enum OptimizerKind: Codable, Sendable, Equatable {
    /// Adam with β1 0.9, β2 0.999, ε 1e-7 (Keras defaults), bias-corrected as Keras does:
    /// w -= lr·√(1-β2ᵗ)/(1-β1ᵗ) · m / (√v + ε).
    case adam
    /// Keras SGD with momentum: v = μ·v - lr·g; w += v.
    case sgd(momentum: Float)
}

/// Every training default in one place.
public struct TrainingConfiguration: Codable, Sendable, Equatable {
    public var epochs: Int = 10
    public var batchSize: Int = 128
    public var learningRate: Float = 1e-3
    public var optimizer: OptimizerKind = .adam
    /// L2 penalty l2·Σw² on weights (not biases), as Keras's kernel_regularizer; its gradient is 2·l2·w.
    public var l2: Float = 0
    /// Seeds the per-epoch shuffle and the dropout masks.
    public var seed: UInt64 = 42
    /// Batch shards run in parallel; a fixed thread count gives bit-identical runs.
    public var threads: Int = 2
    /// Shuffle the training order each epoch (from seed and epoch).
    public var shuffle: Bool = true

    public init(epochs: Int = 10, batchSize: Int = 128, learningRate: Float = 1e-3, optimizer: OptimizerKind = .adam,
                l2: Float = 0, seed: UInt64 = 42, threads: Int = 2, shuffle: Bool = true) {
        self.epochs = epochs; self.batchSize = batchSize; self.learningRate = learningRate; self.optimizer = optimizer
        self.l2 = l2; self.seed = seed; self.threads = threads; self.shuffle = shuffle
    }
}

/// Reported after every batch; return false from the callback to stop the epoch after this batch.
public struct TrainingProgress: Sendable {
    public var epoch: Int
    /// Batches completed so far in this epoch (1-based) and the total.
    public var batch: Int
    public var batchCount: Int
    public var imagesSeen: Int
    public var imageCount: Int
    /// Running mean loss and accuracy over the epoch so far.
    public var loss: Double
    public var accuracy: Double
    public var elapsedSeconds: Double
    public var imagesPerSecond: Double { elapsedSeconds > 0 ? Double(imagesSeen) / elapsedSeconds : 0 }
}

public struct EpochResult: Sendable {
    public var epoch: Int
    /// Mean training loss (cross-entropy, plus the L2 penalty at the end of the epoch if l2 > 0) and accuracy.
    public var loss: Double
    public var accuracy: Double
    public var images: Int
    public var batches: Int
    public var seconds: Double
    public var imagesPerSecond: Double { seconds > 0 ? Double(images) / seconds : 0 }
    /// True if the progress callback asked to stop before the epoch ended.
    public var stopped: Bool
}

public struct EvaluationResult: Sendable {
    public var loss: Double
    public var accuracy: Double
    public var count: Int
    /// Argmax class per image.
    public var predictions: [Int]
    /// (count, classes) softmax probabilities.
    public var probabilities: [Float]
}

public final class Trainer {
    public let configuration: TrainingConfiguration
    private let architecture: Architecture
    private let engine: TrainingEngine
    private let kernels: KernelSet
    /// Inference buffers reused by every evaluate call (validation runs after each epoch).
    private lazy var evaluationStorage = InferenceStorage(plan: engine.plan, maxBatch: 512)

    /// The model with the current parameters.
    public var model: Sequential {
        get { try! Sequential(architecture: architecture, parameters: engine.parameterArray) }
        set {
            precondition(newValue.plan == engine.plan, "the new model must have the same architecture")
            engine.parameters.copy(from: newValue.parameters)
            engine.transposedValid = false
        }
    }

    public convenience init(model: Sequential, configuration: TrainingConfiguration) {
        self.init(model: model, configuration: configuration, kernels: ISA.kernels)
    }

    /// With an explicit kernel table (tests compare the AVX2 fallback, AVX-512 and the references).
    init(model: Sequential, configuration: TrainingConfiguration, kernels: KernelSet) {
        precondition(configuration.batchSize >= 1, "batchSize must be at least 1")
        self.configuration = configuration
        self.architecture = model.architecture
        let rule: OptimizerRule
        switch configuration.optimizer {
        case .adam: rule = .adam(beta1: 0.9, beta2: 0.999, epsilon: 1e-7)
        case let .sgd(momentum): rule = .sgd(momentum: momentum)
        }
        self.kernels = kernels
        engine = TrainingEngine(plan: model.plan, kernels: kernels, parameters: model.parameters,
                                threads: max(1, configuration.threads), batchSize: configuration.batchSize,
                                rule: rule, learningRate: configuration.learningRate, l2: configuration.l2)
    }

    /// Trains one epoch over `count` images (count × inputCount floats) in the seeded shuffled order.
    /// `epoch` (0-based or 1-based, the caller's choice) keys the shuffle and the dropout masks.
    public func trainEpoch(images: [Float], labels: [UInt8], count: Int, epoch: Int,
                           progress: (TrainingProgress) -> Bool = { _ in true }) -> EpochResult {
        precondition(images.count >= count * engine.plan.inputSize && labels.count >= count, "fewer images or labels than count")
        let classes = engine.plan.outputSize
        precondition(labels.prefix(count).allSatisfy { Int($0) < classes }, "labels must be below \(classes)")
        var order = Array(0..<count)
        if configuration.shuffle {
            var rng = SeededGenerator(seed: configuration.seed, stream: 0x5348_5546, UInt64(bitPattern: Int64(epoch)))
            order.shuffle(using: &rng)
        }
        let batchCount = (count + configuration.batchSize - 1) / configuration.batchSize
        let start = monotonicSeconds()
        var lossSum: Double = 0, correct = 0, seen = 0
        let r = engine.trainEpoch(images: images, labels: labels, order: order,
                                  dropoutSeed: SeededGenerator(seed: configuration.seed, stream: 0x4452_4F50, UInt64(bitPattern: Int64(epoch))).seedValue) {
            batch, loss, right, n in
            lossSum += loss; correct += right; seen += n
            return progress(TrainingProgress(epoch: epoch, batch: batch + 1, batchCount: batchCount, imagesSeen: seen, imageCount: count,
                                             loss: lossSum / Double(seen), accuracy: Double(correct) / Double(seen),
                                             elapsedSeconds: monotonicSeconds() - start))
        }
        var loss = r.seen > 0 ? r.loss / Double(r.seen) : 0
        if configuration.l2 > 0 { loss += Double(configuration.l2) * l2Sum() }
        return EpochResult(epoch: epoch, loss: loss, accuracy: r.seen > 0 ? Double(r.correct) / Double(r.seen) : 0,
                           images: r.seen, batches: (r.seen + configuration.batchSize - 1) / configuration.batchSize,
                           seconds: monotonicSeconds() - start, stopped: r.stopped)
    }

    /// Loss (mean cross-entropy), accuracy, predictions and probabilities with the current parameters.
    public func evaluate(images: [Float], labels: [UInt8], count: Int) -> EvaluationResult {
        precondition(images.count >= count * engine.plan.inputSize && labels.count >= count, "fewer images or labels than count")
        let r = Evaluation.run(engine.plan, kernels: kernels, parameters: engine.parameterArray, images: images, labels: labels,
                               count: count, threads: configuration.threads, storage: evaluationStorage)
        return EvaluationResult(loss: count > 0 ? r.loss / Double(count) : 0, accuracy: count > 0 ? Double(r.correct) / Double(count) : 0,
                                count: count, predictions: r.predictions, probabilities: r.probabilities)
    }

    private func l2Sum() -> Double {
        let p = engine.parameterArray
        var s: Double = 0
        for r in engine.plan.weightRanges { for i in r { s += Double(p[i] * p[i]) } }
        return s
    }
}

extension SeededGenerator {
    var seedValue: UInt64 { var c = self; return c.next() }
}

