import ArgumentParser
import Glibc
import LoupeData
import LoupeEngine

struct Prune: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Remove the least important conv filters and dense units, fine-tune, and write the next version.",
        discussion: """
        Structured pruning of an fp32 model: each hidden conv2d layer keeps the --keep fraction of its filters and \
        each hidden dense layer of its units (those with the largest L1 norm of incoming weights; a count that is a \
        multiple of 16 stays one; the output layer keeps all its units), the next layer loses the matching inputs, \
        then the smaller network is fine-tuned for --epochs on the training split (Adam, --learning-rate) as \
        `loupe train --init-from` does. Prints the parent's, the pruned (before fine-tuning) and the fine-tuned \
        model's test accuracy and size. Writes <repository>/<name>/<next version>/ beside the parent, or --output PATH.
        """)

    @Argument(help: ArgumentHelp("The fp32 model: a .loupe file, a version directory, or a model directory (its latest version).", valueName: "model"))
    var model: String

    @Option(name: .long, parsing: .unconditional, help: "Fraction of each hidden layer's filters/units to keep, in (0, 1].")
    var keep: Double = 0.5

    @Option(name: .long, parsing: .unconditional, help: "Fine-tuning epochs after pruning (0: none).")
    var epochs: Int = 3

    @Option(name: .customLong("learning-rate"), parsing: .unconditional, help: "Adam learning rate for fine-tuning.")
    var learningRate: Float = 5e-4

    @Option(name: .long, parsing: .unconditional, help: "Use only the first N training images (quick runs).")
    var limit: Int?

    @Option(name: .long, help: ArgumentHelp("Directory of IDX files (default: the dataset the model was trained on, else Fashion-MNIST).", valueName: "dir"))
    var data: String?

    @Option(name: .long, help: ArgumentHelp("Write the pruned model here instead of the next version beside the parent.", valueName: "path"))
    var output: String?

    @OptionGroup var threading: ThreadOptions

    func validate() throws {
        guard keep > 0, keep <= 1 else { throw ValidationError("--keep must be in (0, 1], got \(keep).") }
        guard (0...1000).contains(epochs) else { throw ValidationError("--epochs must be 0…1000, got \(epochs).") }
        guard learningRate > 0, learningRate.isFinite else { throw ValidationError("--learning-rate must be positive, got \(learningRate).") }
        if let limit, limit < 1 { throw ValidationError("--limit must be at least 1, got \(limit).") }
        if let output, FileIO.isDirectory(output) { throw ValidationError("--output '\(output)' is a directory; give a file path such as \(output)/model.loupe.") }
    }

    func run() throws {
        let (path, parentBytes, parent) = try Quantize.fp32Parent(model) { "\($0) is \($1); prune its fp32 parent (and quantize the result)." }
        let destination = output == nil ? try Quantize.repositoryModel(of: path, what: "pruned") : nil
        let h = parent.header
        let full = try parent.makeModel()
        let small: Sequential
        do {
            small = try full.pruned(keep: keep)
        } catch {
            throw ValidationError("\(path) cannot be pruned: \(error)")
        }
        let directory = Quantize.dataDirectory(data, of: h)
        let test = try IDXDataset.load(directory: directory, split: .test)
        Terminal.line("pruned to \(Format.grouped(small.parameterCount)) of \(Format.grouped(full.parameterCount)) parameters; measuring on \(Format.grouped(test.count)) test images…")
        let before = try EvaluationReport.evaluate(model: full, dataset: test, classNames: h.labels, normalization: h.normalization, threads: threading.resolved)
        let cut = try EvaluationReport.evaluate(model: small, dataset: test, classNames: h.labels, normalization: h.normalization, threads: threading.resolved)

        // Fine-tuning is `train --init-from` on the pruned model, staged as a file beside nothing else.
        let staged = try ModelFile(model: small, labels: h.labels, normalization: h.normalization, training: h.training,
                                   goldenSamples: Quantize.goldenSamples(of: small, parent: h), inputStatistics: h.inputStatistics)
        let stagedPath = "/tmp/loupe-prune-\(getpid()).loupe"
        try FileIO.writeAtomically(try staged.encode(), to: stagedPath)
        defer { unlink(stagedPath) }
        var options = TrainingOptions()
        options.dataDirectories = [directory]
        options.initFrom = stagedPath
        options.epochs = epochs
        options.learningRate = learningRate
        options.threads = threading.resolved
        options.limit = limit
        options.labels = h.labels
        var events = TrainingEvents()
        events.phase = { Terminal.line("\($0)…") }
        events.epoch = { record, total in
            Terminal.line("epoch \(record.epoch)/\(total): loss \(Format.fixed(record.loss, 4)), accuracy \(Format.fixed(record.accuracy, 4))"
                          + (record.valAccuracy.map { ", val_accuracy \(Format.fixed($0, 4))" } ?? ""))
        }
        let outcome = try TrainingRun.run(options, events: events)
        guard !outcome.stopped else { throw ExitCode(130) }
        var header = outcome.modelFile.header
        header.training.parent = ParentModel(sha256: parent.sha256Hex, path: path, dataset: h.training.dataset, testAccuracy: h.training.testAccuracy)
        let file = try ModelFile(header: header, parameters: outcome.modelFile.parameters)
        let bytes = try file.encode()
        let history = try outcome.history.encoded()
        let written: String
        if let output {
            try ModelOutput.write(bytes, history: history, to: output)
            written = output
        } else {
            written = try ModelRepositoryLayout.publish(model: bytes, history: history, root: destination!.root, name: destination!.name).path
        }
        let after = header.training.testAccuracy
        func row(_ name: String, _ accuracy: Double?, _ parameters: Int, _ fileBytes: Int?) -> String {
            "  \(Format.pad(name, 22))\(Format.pad(accuracy.map { Format.fixed($0, 4) } ?? "?", 8))    \(Format.pad(Format.grouped(parameters), 10, right: true))    \(Format.pad(fileBytes.map(Format.grouped) ?? "—", 10, right: true))"
        }
        Terminal.line(["                        accuracy    parameters    file bytes",
                       row("fp32 parent", before.accuracy, full.parameterCount, parentBytes.count),
                       row("pruned, keep \(keep)", cut.accuracy, small.parameterCount, nil),
                       row("fine-tuned \(epochs) epochs", after, small.parameterCount, bytes.count)].joined(separator: "\n"))
        Terminal.line("wrote \(written) (sha256 \(file.sha256Hex))")
    }
}
