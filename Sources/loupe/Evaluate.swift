import ArgumentParser
import FoundationEssentials
import LoupeData
import LoupeEngine

struct Evaluate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure a model on a test split: accuracy, loss, per-class precision/recall/F1 and ROC AUC, calibration, confusion matrix; or compare two models.",
        discussion: """
        ROC AUC is one-vs-rest per class (and its macro mean). Calibration: the expected calibration error (ECE) \
        of the top-1 confidence over 10 bins, with the reliability table. --compare OTHER runs a second model on \
        the same images and tests the accuracy difference with McNemar's test (exact binomial below 25 \
        discordant images, else χ² with continuity correction).
        """)

    @OptionGroup var modelOption: ModelOption

    @Option(name: .long, help: ArgumentHelp("Directory of IDX files (default: the dataset the model was trained on, else Fashion-MNIST).", valueName: "dir"))
    var data: String?

    @Option(name: .long, help: "Which split to evaluate: test or train.")
    var split: String = "test"

    @Flag(name: .long, help: "Print the report as JSON.")
    var json = false

    @Option(name: .long, help: ArgumentHelp("A second model to run on the same images: both reports side by side and McNemar's test.", valueName: "path"))
    var compare: String?

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
        let report = try Self.report(file: file, model: model, path: path, dataset: dataset, directory: directory, threads: threading.resolved)
        var other: (report: EvaluationReport, file: ModelFile, comparison: ModelComparison)?
        if let compare {
            let otherPath = try ModelPath.resolve(compare)
            let otherFile = try ModelFile.read(path: otherPath)
            guard otherFile.header.labels.count == file.header.labels.count else {
                throw ValidationError("--compare '\(compare)' has \(otherFile.header.labels.count) classes but '\(path)' has \(file.header.labels.count); models compared on one set need the same classes.")
            }
            let r = try Self.report(file: otherFile, model: try otherFile.makeModel(), path: otherPath, dataset: dataset,
                                    directory: directory, threads: threading.resolved)
            other = (r.report, otherFile, ModelComparison(first: report.predicted, second: r.predicted, labels: dataset.labels))
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            if let other {
                struct Both: Encodable { var first: EvaluationReport; var second: EvaluationReport; var comparison: ModelComparison }
                Terminal.line(String(decoding: try encoder.encode(Both(first: report.report, second: other.report, comparison: other.comparison)), as: UTF8.self))
            } else {
                Terminal.line(String(decoding: try encoder.encode(report.report), as: UTF8.self))
            }
        } else if let other {
            Evaluate.printComparison(report.report, other.report, other.comparison, split: split, sha256: [file.sha256Hex, other.file.sha256Hex])
        } else {
            Evaluate.printReport(report.report, split: split, sha256: file.sha256Hex)
            Terminal.line()
            Terminal.line("precision \(file.header.precision)\(file.header.quantization == nil ? "" : " (int8 kernels: \(int8KernelName))")")
            if let parent = file.header.quantizedFrom {
                let size = (try? FileIO.readFile(path, maxBytes: ModelFile.maxFileBytes))?.count
                Terminal.line("beside its fp32 parent (sha256 \(parent.sha256.prefix(16))…; parent accuracy as measured by loupe quantize on the test split):")
                Terminal.line(Quantize.comparison(fp32: (parent.testAccuracy, parent.fileBytes, nil),
                                                  int8: (report.report.accuracy, size ?? 0, model.weightBytes)))
            }
        }
    }

    /// The report of one model and its top-1 class per image.
    static func report(file: ModelFile, model: Sequential, path: String, dataset: IDXDataset, directory: String,
                       threads: Int) throws -> (report: EvaluationReport, predicted: [Int]) {
        guard file.header.labels.count == model.outputCount else {
            throw LoupeDataError.datasetMismatch("the model has \(model.outputCount) outputs but \(file.header.labels.count) class names")
        }
        let probabilities = try EvaluationReport.predictAll(model: model, dataset: dataset, normalization: file.header.normalization, threads: threads)
        let report = EvaluationReport(probabilities: probabilities, labels: dataset.labels, count: dataset.count,
                                      classNames: file.header.labels, model: path, dataset: directory)
        return (report, EvaluationReport.predictedClasses(probabilities, count: dataset.count, classes: model.outputCount))
    }

    static func printComparison(_ a: EvaluationReport, _ b: EvaluationReport, _ c: ModelComparison, split: String, sha256: [String]) {
        Terminal.line("data       \(a.dataset ?? "?"), \(split) split, \(Format.grouped(a.count)) images")
        Terminal.line("A          \(a.model ?? "?") (sha256 \(sha256[0].prefix(16))…)")
        Terminal.line("B          \(b.model ?? "?") (sha256 \(sha256[1].prefix(16))…)")
        Terminal.line()
        Terminal.line(Format.pad("", 16) + Format.pad("A", 10, right: true) + Format.pad("B", 10, right: true))
        func row(_ name: String, _ x: Double?, _ y: Double?) {
            Terminal.line(Format.pad(name, 16) + Format.pad(x.map { Format.fixed($0, 4) } ?? "-", 10, right: true)
                          + Format.pad(y.map { Format.fixed($0, 4) } ?? "-", 10, right: true))
        }
        row("accuracy", a.accuracy, b.accuracy)
        row("loss", a.loss, b.loss)
        row("macro F1", a.macroF1, b.macroF1)
        row("macro ROC AUC", a.macroROCAUC, b.macroROCAUC)
        row("ECE", a.calibrationError, b.calibrationError)
        for (i, (x, y)) in zip(a.classes, b.classes).enumerated() {
            row("AUC \(i) \(x.label)".prefix(16).description, x.rocAUC, y.rocAUC)
        }
        Terminal.line()
        Terminal.line("both right \(Format.grouped(c.bothRight)), only A \(Format.grouped(c.onlyFirst)), only B \(Format.grouped(c.onlySecond)), both wrong \(Format.grouped(c.bothWrong))")
        Terminal.line("McNemar    B − A accuracy \(c.accuracyDifference >= 0 ? "+" : "")\(Format.fixed(c.accuracyDifference, 4)), statistic \(Format.fixed(c.mcnemarStatistic, 3)), p = \(Format.fixed(c.pValue, 4)) (\(c.method))\(c.pValue < 0.05 ? ": the difference is significant at 5%" : ": not significant at 5%")")
    }

    static func printReport(_ r: EvaluationReport, split: String, sha256: String) {
        Terminal.line("model     \(r.model ?? "?") (sha256 \(sha256.prefix(16))…)")
        Terminal.line("data      \(r.dataset ?? "?"), \(split) split, \(Format.grouped(r.count)) images")
        Terminal.line("accuracy  \(Format.fixed(r.accuracy, 4)) (\(Format.percent(r.accuracy)))")
        Terminal.line("loss      \(Format.fixed(r.loss, 4))")
        Terminal.line("macro F1  \(Format.fixed(r.macroF1, 4))")
        Terminal.line("ROC AUC   \(r.macroROCAUC.map { Format.fixed($0, 4) } ?? "-") (macro, one-vs-rest)")
        Terminal.line("ECE       \(Format.fixed(r.calibrationError, 4)) (expected calibration error, 10 bins)")
        Terminal.line()
        let nameWidth = max(12, (r.classes.map { $0.label.count }.max() ?? 0) + 4)
        Terminal.line(Format.pad("class", nameWidth) + Format.pad("precision", 11, right: true) + Format.pad("recall", 9, right: true)
                      + Format.pad("f1", 9, right: true) + Format.pad("support", 9, right: true) + Format.pad("ROC AUC", 9, right: true))
        for (i, c) in r.classes.enumerated() {
            Terminal.line(Format.pad("\(i) \(c.label)", nameWidth) + Format.pad(Format.fixed(c.precision, 4), 11, right: true)
                          + Format.pad(Format.fixed(c.recall, 4), 9, right: true) + Format.pad(Format.fixed(c.f1, 4), 9, right: true)
                          + Format.pad(String(c.support), 9, right: true) + Format.pad(c.rocAUC.map { Format.fixed($0, 4) } ?? "-", 9, right: true))
        }
        Terminal.line()
        Terminal.line("reliability (top-1 confidence bins: images, mean confidence, accuracy)")
        for row in r.reliability where row.count > 0 {
            Terminal.line("  [\(Format.fixed(row.lower, 1)), \(Format.fixed(row.upper, 1))\(row.upper >= 1 ? "]" : ")")"
                          + Format.pad(Format.grouped(row.count), 9, right: true)
                          + Format.pad(Format.fixed(row.meanConfidence ?? 0, 4), 9, right: true)
                          + Format.pad(Format.fixed(row.accuracy ?? 0, 4), 9, right: true))
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
