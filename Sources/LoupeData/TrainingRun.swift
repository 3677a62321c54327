import LoupeSystem
import FoundationEssentials
import LoupeEngine
#if canImport(Glibc)
import Glibc
#endif

/// Everything `loupe train` can be told; every default in one place.
public struct TrainingOptions: Sendable, Equatable {
    public static let defaultDataDirectory = "/usr/share/datasets/fashion-mnist"

    /// Directories of IDX files (train-*, and t10k-*/test-* where there is a test split; gzipped
    /// or not). Their training splits are concatenated in order, and so are their test splits.
    public var dataDirectories = [TrainingOptions.defaultDataDirectory]
    /// The first data directory (the one that names the dataset).
    public var dataDirectory: String {
        get { dataDirectories.first ?? TrainingOptions.defaultDataDirectory }
        set { dataDirectories = [newValue] }
    }
    public var architecture: Architecture = .seed
    /// True when `architecture` was chosen (`--arch`); with `initFrom`, the parent's is used otherwise.
    public var architectureGiven = false
    /// A model file whose weights training starts from (fine-tuning): same architecture and input shape.
    public var initFrom: String?
    public var epochs = 10
    public var batchSize = 128
    /// Activation workspace training may allocate (every shard's outputs, gradients and im2col columns for
    /// its part of a mini-batch), computed from the shapes before training: 4 GiB. The seed network needs
    /// under 100 MiB at --batch-size 128.
    public static let maxWorkspaceBytes = 4 << 30
    public var learningRate: Float = 1e-3
    public var optimizer: OptimizerKind = .adam
    public var l2: Float = 0
    /// When set, a dropout layer with this rate is inserted before the last dense layer.
    public var dropout: Float?
    public var seed: UInt64 = 42
    /// The last fraction of the training split is held out for validation (as Keras does).
    public var validationSplit = 0.2
    public var threads = 2
    /// Train on the first `limit` training images only (before the validation split).
    public var limit: Int?
    /// Class names; nil = guessed from the dataset directory (Fashion-MNIST or digits).
    public var labels: [String]?
    /// Golden samples stored in the model: the first test image of each class (up to this many).
    public var goldenSampleCount = 10

    public init() {}

    /// The architecture actually trained: `architecture` with the dropout layer, if asked.
    public func effectiveArchitecture() -> Architecture {
        guard let rate = dropout, rate > 0 else { return architecture }
        var a = architecture
        if let last = a.layers.lastIndex(where: { if case .dense = $0 { return true } else { return false } }) {
            a.layers.insert(.dropout(rate: rate), at: last)
        }
        return a
    }

    public var trainingConfiguration: TrainingConfiguration {
        TrainingConfiguration(epochs: epochs, batchSize: batchSize, learningRate: learningRate, optimizer: optimizer,
                              l2: l2, seed: seed, threads: threads)
    }
}

/// One epoch in history.json (Keras's names: loss, accuracy, val_loss, val_accuracy).
public struct EpochRecord: Codable, Sendable, Equatable {
    public var epoch: Int
    public var loss: Double
    public var accuracy: Double
    public var valLoss: Double?
    public var valAccuracy: Double?
    public var seconds: Double
    public var imagesPerSecond: Double

    enum CodingKeys: String, CodingKey {
        case epoch, loss, accuracy, seconds
        case valLoss = "val_loss", valAccuracy = "val_accuracy", imagesPerSecond = "images_per_second"
    }
}

/// history.json: the per-epoch records plus the final test figures.
public struct TrainingHistory: Codable, Sendable, Equatable {
    public var dataset: String
    public var architecture: Architecture
    public var epochs: [EpochRecord]
    public var testLoss: Double?
    public var testAccuracy: Double?
    public var trainingSeconds: Double
    public var stopped: Bool

    enum CodingKeys: String, CodingKey {
        case dataset, architecture, epochs, stopped
        case testLoss = "test_loss", testAccuracy = "test_accuracy", trainingSeconds = "training_seconds"
    }

    public func encoded() throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return [UInt8](try encoder.encode(self)) + [0x0a]
    }
}

/// What a caller hears while a run goes on. Return false from `batch` to stop (Ctrl-C).
public struct TrainingEvents {
    public var loaded: (_ train: Int, _ validation: Int, _ test: Int) -> Void = { _, _, _ in }
    public var batch: (TrainingProgress) -> Bool = { _ in true }
    public var epoch: (EpochRecord, _ of: Int) -> Void = { _, _ in }
    public var phase: (String) -> Void = { _ in }
    public init() {}
}

/// The result of a run: the model file (not yet written) and its history.
public struct TrainingOutcome: Sendable {
    public var modelFile: ModelFile
    public var history: TrainingHistory
    /// True when the run was stopped early; nothing should be written then.
    public var stopped: Bool
}

/// K-fold cross-validation figures: per fold and their mean ± sample standard deviation.
public struct CrossValidationReport: Codable, Sendable, Equatable {
    public struct Fold: Codable, Sendable, Equatable {
        public var fold: Int
        public var trainExamples: Int
        public var validationExamples: Int
        public var loss: Double
        public var accuracy: Double
    }
    public var folds: [Fold]
    public var stopped: Bool

    /// (mean, sample standard deviation) of a per-fold figure.
    public static func meanAndDeviation(_ xs: [Double]) -> (mean: Double, std: Double) {
        guard !xs.isEmpty else { return (0, 0) }
        let mean = xs.reduce(0, +) / Double(xs.count)
        guard xs.count > 1 else { return (mean, 0) }
        let v = xs.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(xs.count - 1)
        return (mean, v.squareRoot())
    }
    public var accuracy: (mean: Double, std: Double) { Self.meanAndDeviation(folds.map(\.accuracy)) }
    public var loss: (mean: Double, std: Double) { Self.meanAndDeviation(folds.map(\.loss)) }
}

/// Loads the data, trains, validates each epoch, evaluates on the full test split, and
/// assembles the model file (header, golden samples, input statistics).
public enum TrainingRun {
    /// The data of a run: every `--data` set's training split concatenated (after `limit`), their
    /// test splits, what each contributed, and the parent model and architecture, checked against the images.
    struct LoadedData {
        var full: IDXDataset
        var testSets: [IDXDataset]
        var testNames: [String]
        var uses: [DatasetUse]
        var parent: ModelFile?
        var architecture: Architecture
    }

    static func load(_ options: TrainingOptions) throws -> LoadedData {
        var trainSets: [IDXDataset] = [], testSets: [IDXDataset] = [], testNames: [String] = [], uses: [DatasetUse] = []
        for directory in options.dataDirectories {
            let train = try IDXDataset.load(directory: directory, split: .train)
            var test: IDXDataset?
            do { test = try IDXDataset.load(directory: directory, split: .test) } catch LoupeDataError.datasetNotFound {
                test = nil   // a set without a test split (a captured set) adds training examples only
            }
            trainSets.append(train)
            if let test { testSets.append(test); testNames.append(directory) }
            uses.append(DatasetUse(path: directory, name: ClassNames.datasetName(forDatasetAt: directory),
                                   trainExamples: train.count, testExamples: test?.count ?? 0))
        }
        var full = try IDXDataset.concatenated(trainSets, names: options.dataDirectories)
        if let limit = options.limit { full = full.prefix(limit) }
        var parent: ModelFile?
        if let path = options.initFrom {
            let file = try ModelFile.read(path: path)
            guard file.header.quantization == nil else {
                throw LoupeDataError.datasetMismatch("'\(path)' is an \(file.header.precision) model; fine-tune its fp32 parent\(file.header.quantizedFrom.map { " (sha256 \($0.sha256.prefix(16))…)" } ?? "") and quantize the result")
            }
            guard file.header.normalization == .standard else {
                throw LoupeDataError.datasetMismatch("'\(path)' normalizes pixels as \(file.header.normalization), but training feeds pixel/255; fine-tune only models Loupe trained")
            }
            if options.architectureGiven && options.effectiveArchitecture() != file.header.architecture {
                throw LoupeDataError.datasetMismatch("--init-from '\(path)' has another architecture than --arch/--dropout asks for; fine-tuning keeps the parent's architecture (leave --arch and --dropout out)")
            }
            parent = file
        }
        let architecture = parent?.header.architecture ?? options.effectiveArchitecture()
        // Sized from its shapes before the engine allocates it: what could not be written is not trained.
        let planned = (try? ModelFile.plannedParameterCount(of: architecture)) ?? Int.max
        guard planned <= ModelFile.maxFileBytes / 4 else {
            throw LoupeDataError.architectureTooLarge(parameters: planned == Int.max ? nil : planned, limit: ModelFile.maxFileBytes / 4)
        }
        // So is the activation workspace (outputs, gradients, im2col columns per shard): a small-parameter network
        // with huge activations is refused here rather than exhausting memory in the first batch.
        let workspace = (try? Sequential.trainingWorkspaceBytes(of: architecture, batchSize: options.batchSize, threads: options.threads)) ?? 0
        guard workspace <= TrainingOptions.maxWorkspaceBytes else {
            throw LoupeDataError.trainingWorkspaceTooLarge(bytes: workspace, limit: TrainingOptions.maxWorkspaceBytes,
                                                           batchSize: options.batchSize, threads: max(1, min(options.threads, options.batchSize)))
        }
        // An image architecture must take the images' exact (rows, cols, channels); a flat one their value count.
        guard architecture.inputShape.count == 3 ? architecture.inputShape == full.imageShape
                                                 : architecture.inputShape.reduce(1, *) == full.pixelsPerImage else {
            if let path = options.initFrom {
                throw LoupeDataError.datasetMismatch("the images are \(full.shapeDescription) but --init-from '\(path)' takes input \(architecture.inputShape); fine-tuning needs data of the parent's input shape")
            }
            throw LoupeDataError.datasetMismatch("the images are \(full.shapeDescription) but the architecture takes input \(architecture.inputShape)")
        }
        return LoadedData(full: full, testSets: testSets, testNames: testNames, uses: uses, parent: parent, architecture: architecture)
    }

    public static func run(_ options: TrainingOptions, events: TrainingEvents = TrainingEvents()) throws -> TrainingOutcome {
        let started = monotonicNow()
        events.phase("loading \(options.dataDirectories.joined(separator: ", "))")
        let data = try load(options)
        let (full, testSets, testNames, uses, parent, architecture) = (data.full, data.testSets, data.testNames, data.uses, data.parent, data.architecture)
        let (train, validation) = full.splitLast(fraction: options.validationSplit)
        guard train.count > 0 else { throw LoupeDataError.datasetMismatch("no training images left after the validation split") }
        // Without a test split in any set, the test figures are measured on the validation split.
        let test: IDXDataset
        if testSets.isEmpty {
            guard validation.count > 0 else {
                throw LoupeDataError.datasetMismatch("no --data directory has a test split (t10k-* or test-* files) and --validation-split is 0: give one of them so the model can be measured")
            }
            events.phase("no test split in \(options.dataDirectories.joined(separator: ", ")): the test figures are measured on the \(validation.count) validation images")
            test = validation
        } else {
            test = try IDXDataset.concatenated(testSets, names: testNames)
        }
        guard test.imageShape == full.imageShape else {
            throw LoupeDataError.datasetMismatch("training images are \(full.shapeDescription) but test images are \(test.shapeDescription)")
        }
        let model = try parent?.makeModel() ?? Sequential(architecture: architecture, seed: options.seed)
        let classes = model.outputCount
        let labels = options.labels ?? parent?.header.labels ?? ClassNames.guess(forDatasetAt: options.dataDirectory, classCount: classes)
        guard labels.count == classes else {
            throw LoupeDataError.datasetMismatch("\(labels.count) class names for a network with \(classes) outputs")
        }
        for (name, set) in [("training", full), ("test", test)] {
            if let bad = set.labels.first(where: { Int($0) >= classes }) {
                throw LoupeDataError.datasetMismatch("\(name) label \(bad) is out of range for a network with \(classes) outputs")
            }
        }
        events.loaded(train.count, validation.count, test.count)

        let trainer = Trainer(model: model, configuration: options.trainingConfiguration)
        let trainImages = train.normalizedImages()
        let validationImages = validation.normalizedImages()
        var records: [EpochRecord] = []
        var stopped = false
        var last: EpochResult?
        for epoch in 1...max(1, options.epochs) where options.epochs > 0 {
            let r = trainer.trainEpoch(images: trainImages, labels: train.labels, count: train.count, epoch: epoch, progress: events.batch)
            if r.stopped { stopped = true; break }
            guard r.loss.isFinite else { throw LoupeDataError.trainingDiverged(epoch: epoch, learningRate: options.learningRate) }
            last = r
            var record = EpochRecord(epoch: epoch, loss: r.loss, accuracy: r.accuracy, seconds: r.seconds, imagesPerSecond: r.imagesPerSecond)
            if validation.count > 0 {
                let v = trainer.evaluate(images: validationImages, labels: validation.labels, count: validation.count)
                record.valLoss = v.loss
                record.valAccuracy = v.accuracy
            }
            records.append(record)
            events.epoch(record, options.epochs)
        }
        let trained = trainer.model
        var training = TrainingMetadata(dataset: ClassNames.datasetName(forDatasetAt: options.dataDirectory), epochs: records.count, seed: options.seed)
        training.datasetPath = options.dataDirectory
        if uses.count > 1 || parent != nil { training.datasets = uses }
        if let parent, let path = options.initFrom {
            training.parent = ParentModel(sha256: parent.sha256Hex, path: path, dataset: parent.header.training.dataset,
                                          testAccuracy: parent.header.training.testAccuracy)
        }
        training.trainExamples = train.count
        training.validationExamples = validation.count
        training.testExamples = test.count
        training.batchSize = options.batchSize
        training.learningRate = Double("\(options.learningRate)") ?? Double(options.learningRate)   // 0.001, not 0.0010000000474974513
        switch options.optimizer {
        case .adam: training.optimizer = "adam"
        case let .sgd(momentum): training.optimizer = "sgd(momentum: \(momentum))"
        }
        training.l2 = Double(options.l2)
        training.validationSplit = options.validationSplit
        training.threads = options.threads
        training.trainLoss = last?.loss
        training.trainAccuracy = last?.accuracy
        training.validationLoss = records.last?.valLoss
        training.validationAccuracy = records.last?.valAccuracy

        var testLoss: Double?, testAccuracy: Double?
        var testClasses: [EvaluationReport.ClassMetrics]?
        var predictedShares: [Double]?
        if !stopped {
            events.phase("evaluating on \(test.count) test images")
            let t = trainer.evaluate(images: test.normalizedImages(), labels: test.labels, count: test.count)
            testLoss = t.loss
            testAccuracy = t.accuracy
            testClasses = EvaluationReport(probabilities: t.probabilities, labels: test.labels, count: test.count, classNames: labels).classes
            if !t.predictions.isEmpty {
                var counts = [Double](repeating: 0, count: classes)
                for p in t.predictions where p >= 0 && p < classes { counts[p] += 1 }
                predictedShares = counts.map { $0 / Double(t.predictions.count) }
            }
        }
        training.testLoss = testLoss
        training.testAccuracy = testAccuracy
        training.testClasses = testClasses
        let seconds = monotonicNow() - started
        training.trainingSeconds = records.reduce(0) { $0 + $1.seconds }

        // Golden samples: the first test image of each class, in class order.
        var picked: [Int] = []
        for c in 0..<classes where picked.count < options.goldenSampleCount {
            if let i = test.labels.firstIndex(of: UInt8(c)) { picked.append(i) }
        }
        let n = test.pixelsPerImage
        let goldenImages = picked.flatMap { test.images[$0 * n..<($0 + 1) * n] }
        let golden = ModelFile.goldenSamples(model: trained, images: goldenImages, labels: picked.map { test.labels[$0] }, count: picked.count)
        var statistics = InputStatistics.compute(images: train.images, labels: train.labels, count: train.count,
                                                 pixelsPerImage: train.pixelsPerImage, classCount: classes)
        statistics.predictedClassShares = predictedShares
        let file = try ModelFile(model: trained, labels: labels, training: training, goldenSamples: golden, inputStatistics: statistics)
        let history = TrainingHistory(dataset: training.dataset, architecture: architecture, epochs: records, testLoss: testLoss,
                                      testAccuracy: testAccuracy, trainingSeconds: seconds, stopped: stopped)
        return TrainingOutcome(modelFile: file, history: history, stopped: stopped)
    }

    /// K-fold cross-validation over the training splits of `options.dataDirectories`: the examples
    /// are shuffled once (seeded), cut into `folds` parts, and for each part a fresh model (or the
    /// `initFrom` parent) is trained on the others for `options.epochs` and measured on it. Nothing is written.
    public static func crossValidate(_ options: TrainingOptions, folds: Int, events: TrainingEvents = TrainingEvents()) throws -> CrossValidationReport {
        events.phase("loading \(options.dataDirectories.joined(separator: ", "))")
        let data = try load(options)
        let full = data.full
        guard folds >= 2, folds <= full.count else {
            throw LoupeDataError.datasetMismatch("--folds must be from 2 to the number of training images (\(full.count)), got \(folds)")
        }
        var order = Array(0..<full.count)
        var rng = options.seed &+ 0x9E37_79B9_7F4A_7C15
        for i in stride(from: order.count - 1, to: 0, by: -1) {   // Fisher–Yates, splitmix64
            rng &+= 0x9E37_79B9_7F4A_7C15
            var z = rng
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            z ^= z >> 31
            order.swapAt(i, Int(z % UInt64(i + 1)))
        }
        let p = full.pixelsPerImage
        func subset(_ indices: some Collection<Int>) -> IDXDataset {
            var images = [UInt8](); images.reserveCapacity(indices.count * p)
            var labels = [UInt8](); labels.reserveCapacity(indices.count)
            for i in indices { images += full.images[(i * p)..<((i + 1) * p)]; labels.append(full.labels[i]) }
            return IDXDataset(images: images, labels: labels, count: indices.count, rows: full.rows, cols: full.cols, channels: full.channels)
        }
        var results: [CrossValidationReport.Fold] = []
        for k in 0..<folds {
            let lo = full.count * k / folds, hi = full.count * (k + 1) / folds
            let held = subset(order[lo..<hi])
            let train = subset(order[..<lo] + order[hi...])
            events.phase("fold \(k + 1)/\(folds): training on \(train.count) images, validating on \(held.count)")
            let model = try data.parent?.makeModel() ?? Sequential(architecture: data.architecture, seed: options.seed)
            if let bad = full.labels.first(where: { Int($0) >= model.outputCount }) {
                throw LoupeDataError.datasetMismatch("label \(bad) is out of range for a network with \(model.outputCount) outputs")
            }
            let trainer = Trainer(model: model, configuration: options.trainingConfiguration)
            let images = train.normalizedImages()
            for epoch in 1...max(1, options.epochs) {
                let r = trainer.trainEpoch(images: images, labels: train.labels, count: train.count, epoch: epoch, progress: events.batch)
                if r.stopped { return CrossValidationReport(folds: results, stopped: true) }
                guard r.loss.isFinite else { throw LoupeDataError.trainingDiverged(epoch: epoch, learningRate: options.learningRate) }
            }
            let v = trainer.evaluate(images: held.normalizedImages(), labels: held.labels, count: held.count)
            results.append(.init(fold: k + 1, trainExamples: train.count, validationExamples: held.count, loss: v.loss, accuracy: v.accuracy))
        }
        return CrossValidationReport(folds: results, stopped: false)
    }

    static func monotonicNow() -> Double { monotonicSeconds() }
}
