import ArgumentParser
import FoundationEssentials
import LoupeData
import LoupeEngine

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a CNN on an IDX dataset and write a versioned model.",
        discussion: """
        With no arguments: the seed network (Config/architectures/seed.json) on Fashion-MNIST from \
        \(TrainingOptions.defaultDataDirectory), Adam 1e-3, batch 128, 10 epochs, the last 20% of the \
        training split held out for validation, seed 42. Writes models/<name>/<next version>/model.loupe \
        and history.json (or --output PATH). Ctrl-C stops cleanly and writes nothing.
        """)

    @Option(name: .long, help: ArgumentHelp("Directory of IDX files (train-*, t10k-* where there is a test split; optionally .gz). Repeat to train on several sets: their training splits are concatenated in order, and so are their test splits (a set without one, such as a captured set, adds training images only). Default: \(TrainingOptions.defaultDataDirectory).", valueName: "dir"))
    var data: [String] = []

    @Option(name: .long, parsing: .unconditional, help: ArgumentHelp("K-fold cross-validation: train K models, each on all but one K-th of the (shuffled) training images for --epochs, measure each on its held-out part, and report mean ± std. No model is written unless --output or --name asks for one (then it is trained as usual afterwards).", valueName: "K"))
    var folds: Int?

    @Option(name: .customLong("init-from"), help: ArgumentHelp("Start from this model's weights (fine-tuning): same architecture (its own, unless --arch names the same one) and the data's input shape. Its sha256 and the datasets used are recorded in the new model's header.", valueName: "model.loupe"))
    var initFrom: String?

    @Option(name: .long, help: ArgumentHelp("Architecture JSON file (default: the seed network).", valueName: "file"))
    var arch: String?

    @Option(name: .long, parsing: .unconditional, help: "Epochs.")
    var epochs: Int = 10

    @Option(name: .customLong("batch-size"), parsing: .unconditional, help: "Mini-batch size.")
    var batchSize: Int = 128

    @Option(name: .customLong("learning-rate"), parsing: .unconditional, help: "Learning rate.")
    var learningRate: Float = 1e-3

    @Option(name: .long, help: "Optimizer: adam or sgd (SGD with momentum 0.9).")
    var optimizer: OptimizerName = .adam

    @Option(name: .long, parsing: .unconditional, help: "L2 penalty on weights (Keras kernel_regularizer).")
    var l2: Float = 0

    @Option(name: .long, parsing: .unconditional, help: "Dropout rate inserted before the last dense layer (0 = none).")
    var dropout: Float = 0

    @Option(name: .long, help: "Random seed (initialisation, shuffling, dropout).")
    var seed: UInt64 = 42

    @Option(name: .customLong("validation-split"), parsing: .unconditional, help: "Fraction of the training split (its end, as Keras) held out for validation.")
    var validationSplit: Double = 0.2

    @OptionGroup var threading: ThreadOptions

    @Option(name: .long, help: ArgumentHelp("Write the model file here instead of models/<name>/<version>/ (history goes beside it).", valueName: "path"))
    var output: String?

    @Option(name: .long, help: "Model name in the repository (default: fashion for Fashion-MNIST, else the dataset directory name).")
    var name: String?

    @Option(name: .long, help: ArgumentHelp("Repository root for the default output.", valueName: "dir"))
    var repository: String = "models"

    @Option(name: .long, parsing: .unconditional, help: "Train on the first N training images only (quick runs, tests).")
    var limit: Int?

    enum OptimizerName: String, ExpressibleByArgument, CaseIterable { case adam, sgd }

    func validate() throws {
        guard epochs >= 1 else { throw ValidationError("--epochs must be at least 1, got \(epochs).") }
        guard (1...65536).contains(batchSize) else { throw ValidationError("--batch-size must be 1…65536, got \(batchSize).") }
        guard learningRate > 0, learningRate.isFinite else { throw ValidationError("--learning-rate must be positive, got \(learningRate).") }
        guard l2 >= 0, l2.isFinite else { throw ValidationError("--l2 must be zero or positive, got \(l2).") }
        guard dropout >= 0, dropout < 1 else { throw ValidationError("--dropout must be in [0, 1), got \(dropout).") }
        guard validationSplit >= 0, validationSplit < 1 else { throw ValidationError("--validation-split must be in [0, 1), got \(validationSplit).") }
        if let limit, limit < 1 { throw ValidationError("--limit must be at least 1, got \(limit).") }
        if let folds, folds < 2 { throw ValidationError("--folds must be at least 2, got \(folds).") }
        if output != nil && name != nil { throw ValidationError("--output and --name exclude each other: --name picks a repository path, --output an exact file.") }
        if let name, !ModelRepositoryLayout.isValidName(name) {
            throw ValidationError("--name " + ModelRepositoryLayout.invalidNameMessage(name) + ".")
        }
        if let output, FileIO.isDirectory(output) { throw ValidationError("--output '\(output)' is a directory; give a file path such as \(output)/model.loupe.") }
    }

    func run() throws {
        // Temp files a killed earlier run left where this one writes (named with its pid).
        let stale = output.map { FileIO.removeStaleTemporaries(in: FileIO.directoryName($0)) }
            ?? ModelRepositoryLayout.removeStaleTemporaries(root: repository)
        if !stale.isEmpty { Terminal.line("removed \(stale.count) temporary file(s) a killed loupe process left: \(stale.joined(separator: ", "))") }
        var options = TrainingOptions()
        options.dataDirectories = dataDirectories
        options.initFrom = initFrom
        if let arch { options.architecture = try ArchitectureFile.load(arch); options.architectureGiven = true }
        if dropout > 0 { options.architectureGiven = true }
        options.epochs = epochs
        options.batchSize = batchSize
        options.learningRate = learningRate
        options.optimizer = optimizer == .adam ? .adam : .sgd(momentum: 0.9)
        options.l2 = l2
        options.dropout = dropout > 0 ? dropout : nil
        options.seed = seed
        options.validationSplit = validationSplit
        options.threads = threading.resolved
        options.limit = limit

        let interrupt = Interrupt()
        let display = TrainingDisplay(interactive: Terminal.isInteractive)
        var events = TrainingEvents()
        events.phase = { display.clearBar(); Terminal.line("\($0)…") }
        events.loaded = { train, validation, test in
            Terminal.line("data: \(Format.grouped(train)) training, \(Format.grouped(validation)) validation, \(Format.grouped(test)) test images; \(options.threads) thread\(options.threads == 1 ? "" : "s")")
        }
        events.batch = { progress in
            display.batch(progress, epochs: options.epochs)
            return !interrupt.requested
        }
        events.epoch = { record, total in display.epoch(record, epochs: total) }

        if let folds {
            let cv = try TrainingRun.crossValidate(options, folds: folds, events: events)
            display.clearBar()
            if cv.stopped || interrupt.requested {
                Terminal.line("Interrupted: cross-validation stopped, nothing was written.")
                throw ExitCode(130)
            }
            for f in cv.folds {
                Terminal.line("fold \(f.fold)/\(folds): \(Format.grouped(f.trainExamples)) training, \(Format.grouped(f.validationExamples)) validation images: val_accuracy \(Format.fixed(f.accuracy, 4)), val_loss \(Format.fixed(f.loss, 4))")
            }
            let (a, sa) = cv.accuracy, (l, sl) = cv.loss
            Terminal.line("\(folds)-fold cross-validation: val_accuracy \(Format.fixed(a, 4)) ± \(Format.fixed(sa, 4)), val_loss \(Format.fixed(l, 4)) ± \(Format.fixed(sl, 4)) (mean ± sample std)")
            guard output != nil || name != nil else {
                Terminal.line("no model written (give --output or --name to also train and write one)")
                return
            }
        }
        let outcome = try TrainingRun.run(options, events: events)
        if outcome.stopped || interrupt.requested {
            display.clearBar()
            Terminal.line("Interrupted: training stopped, nothing was written.")
            throw ExitCode(130)
        }
        let bytes = try outcome.modelFile.encode()
        let history = try outcome.history.encoded()
        let path: String
        if let output {
            try ModelOutput.write(bytes, history: history, to: output)
            path = output
        } else {
            let modelName = name ?? initFrom.flatMap(Train.repositoryName(ofModelAt:)) ?? Train.defaultName(forDataAt: dataDirectories[0])
            path = try ModelRepositoryLayout.publish(model: bytes, history: history, root: repository, name: modelName).path
        }
        let t = outcome.modelFile.header.training
        Terminal.line("test accuracy \(Format.fixed(t.testAccuracy ?? 0, 4)), test loss \(Format.fixed(t.testLoss ?? 0, 4)) on \(Format.grouped(t.testExamples ?? 0)) images")
        Terminal.line("wrote \(path) (\(Format.grouped(bytes.count)) bytes, sha256 \(outcome.modelFile.sha256Hex))")
    }

    /// `--data` as given, or the default set.
    var dataDirectories: [String] { data.isEmpty ? [TrainingOptions.defaultDataDirectory] : data }

    /// The model name of a file in a repository (`<root>/<name>/<version>/model.loupe`), so that a
    /// fine-tuned model becomes the next version of its parent's model.
    static func repositoryName(ofModelAt path: String) -> String? {
        let parts = path.split(separator: "/").map(String.init)
        guard parts.count >= 3, parts[parts.count - 1] == ModelRepositoryLayout.modelFileName,
              ModelRepositoryLayout.parseVersion(parts[parts.count - 2]) != nil,
              ModelRepositoryLayout.isValidName(parts[parts.count - 3]) else { return nil }
        return parts[parts.count - 3]
    }

    /// history.json beside model.loupe; <stem>.history.json beside any other file name.
    static func historyPath(forModelAt path: String) -> String {
        let dir = FileIO.directoryName(path)
        let file = String(path.split(separator: "/").last ?? "")
        if file == ModelRepositoryLayout.modelFileName { return dir + "/" + ModelRepositoryLayout.historyFileName }
        let stem = file.hasSuffix(".loupe") ? String(file.dropLast(6)) : file
        return dir + "/" + stem + ".history.json"
    }

    static func defaultName(forDataAt directory: String) -> String {
        if directory.lowercased().contains("fashion") { return "fashion" }
        let base = ClassNames.datasetName(forDatasetAt: directory)
        let cleaned = String(base.unicodeScalars.map { s -> Character in
            (s.properties.isAlphabetic && s.isASCII) || ("0"..."9").contains(s) || s == "-" || s == "_" ? Character(s) : "-"
        })
        return ModelRepositoryLayout.isValidName(cleaned) ? cleaned : "model"
    }
}

/// Architectures are data: JSON files such as Config/architectures/seed.json.
enum ArchitectureFile {
    static func load(_ path: String) throws -> Architecture {
        let bytes = try FileIO.readFile(path, maxBytes: 1 << 20)
        do {
            return try JSONDecoder().decode(Architecture.self, from: Data(bytes))
        } catch {
            throw ValidationError("--arch '\(path)' is not a valid architecture: \(error)")
        }
    }
}
