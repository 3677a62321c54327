import ArgumentParser
import FoundationEssentials
import LoupeData
import LoupeEngine

struct Evaluate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure a model on a test split: accuracy, loss, per-class precision/recall/F1, confusion matrix.")

    @OptionGroup var modelOption: ModelOption

    @Option(name: .long, help: ArgumentHelp("Directory of IDX files (default: the dataset the model was trained on, else Fashion-MNIST).", valueName: "dir"))
    var data: String?

    @Option(name: .long, help: "Which split to evaluate: test or train.")
    var split: String = "test"

    @Flag(name: .long, help: "Print the report as JSON.")
    var json = false

    @OptionGroup var threading: ThreadOptions

    func validate() throws {
        guard IDXDataset.Split(rawValue: split) != nil else { throw ValidationError("--split must be test or train, got '\(split)'.") }
    }

    func run() throws {
        let path = try modelOption.resolvedPath()
        let file = try ModelFile.read(path: path)
        let model = try file.makeModel()
        let directory = data ?? file.header.training.datasetPath.flatMap { FileIO.isDirectory($0) ? $0 : nil } ?? TrainingOptions.defaultDataDirectory
        let dataset = try IDXDataset.load(directory: directory, split: IDXDataset.Split(rawValue: split)!)
        let report = try EvaluationReport.evaluate(model: model, dataset: dataset, classNames: file.header.labels,
                                                   normalization: file.header.normalization, threads: threading.resolved,
                                                   modelName: path, datasetName: directory)
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            Terminal.line(String(decoding: try encoder.encode(report), as: UTF8.self))
        } else {
            Evaluate.printReport(report, split: split, sha256: file.sha256Hex)
            Terminal.line()
            Terminal.line("precision \(file.header.precision)\(file.header.quantization == nil ? "" : " (int8 kernels: \(int8KernelName))")")
            if let parent = file.header.quantizedFrom {
                let size = (try? FileIO.readFile(path, maxBytes: ModelFile.maxFileBytes))?.count
                Terminal.line("beside its fp32 parent (sha256 \(parent.sha256.prefix(16))…; parent accuracy as measured by loupe quantize on the test split):")
                Terminal.line(Quantize.comparison(fp32: (parent.testAccuracy, parent.fileBytes, nil),
                                                  int8: (report.accuracy, size ?? 0, model.weightBytes)))
            }
        }
    }

    static func printReport(_ r: EvaluationReport, split: String, sha256: String) {
        Terminal.line("model     \(r.model ?? "?") (sha256 \(sha256.prefix(16))…)")
        Terminal.line("data      \(r.dataset ?? "?"), \(split) split, \(Format.grouped(r.count)) images")
        Terminal.line("accuracy  \(Format.fixed(r.accuracy, 4)) (\(Format.percent(r.accuracy)))")
        Terminal.line("loss      \(Format.fixed(r.loss, 4))")
        Terminal.line("macro F1  \(Format.fixed(r.macroF1, 4))")
        Terminal.line()
        let nameWidth = max(12, (r.classes.map { $0.label.count }.max() ?? 0) + 4)
        Terminal.line(Format.pad("class", nameWidth) + Format.pad("precision", 11, right: true) + Format.pad("recall", 9, right: true)
                      + Format.pad("f1", 9, right: true) + Format.pad("support", 9, right: true))
        for (i, c) in r.classes.enumerated() {
            Terminal.line(Format.pad("\(i) \(c.label)", nameWidth) + Format.pad(Format.fixed(c.precision, 4), 11, right: true)
                          + Format.pad(Format.fixed(c.recall, 4), 9, right: true) + Format.pad(Format.fixed(c.f1, 4), 9, right: true)
                          + Format.pad(String(c.support), 9, right: true))
        }
        Terminal.line()
        Terminal.line("confusion matrix (rows: true class, columns: predicted class)")
        let cell = max(5, String(r.confusionMatrix.flatMap { $0 }.max() ?? 0).count + 1)
        Terminal.line(Format.pad("", nameWidth) + r.classes.indices.map { Format.pad(String($0), cell, right: true) }.joined())
        for (i, row) in r.confusionMatrix.enumerated() {
            Terminal.line(Format.pad("\(i) \(r.classes[i].label)", nameWidth) + row.map { Format.pad(String($0), cell, right: true) }.joined())
        }
    }
}
