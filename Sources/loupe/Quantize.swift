import ArgumentParser
import FoundationEssentials
import LoupeData
import LoupeEngine

struct Quantize: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Quantize an fp32 model to int8 (post-training, static) and write it as the next version.",
        discussion: """
        Weights become int8 per output channel (symmetric); each conv/dense layer's input becomes uint8 \
        with a scale and zero point calibrated on the first --calibration training images (default 1,000) \
        by the minmax calibrator (--calibrator percentile clips at the --percentile-th percentile, 99.99). Sums are \
        int32, the last layer's outputs and softmax float32. Both models are measured on the test split; the \
        int8 model records the fp32 parent's accuracy and size. Writes <repository>/<name>/<next version>/ \
        beside the parent, or --output PATH. Format: docs/model-format.md §12.
        """)

    @Argument(help: ArgumentHelp("The fp32 model: a .loupe file, a version directory, or a model directory (its latest version).", valueName: "model"))
    var model: String

    @Option(name: .long, parsing: .unconditional, help: "Number of training images to calibrate the activation ranges on.")
    var calibration: Int = 1000

    @Option(name: .long, help: "Activation-range calibrator: percentile or minmax.")
    var calibrator: Calibrator = .minmax

    @Option(name: .long, parsing: .unconditional, help: "Percentile for --calibrator percentile (50 < p ≤ 100).")
    var percentile: Double = 99.99

    @Option(name: .long, help: ArgumentHelp("Directory of IDX files (default: the dataset the model was trained on, else Fashion-MNIST).", valueName: "dir"))
    var data: String?

    @Option(name: .long, help: ArgumentHelp("Write the quantized model here instead of the next version beside the parent.", valueName: "path"))
    var output: String?

    @OptionGroup var threading: ThreadOptions

    func validate() throws {
        guard (1...60000).contains(calibration) else { throw ValidationError("--calibration must be 1…60000 images, got \(calibration).") }
        guard percentile > 50, percentile <= 100 else { throw ValidationError("--percentile must be in (50, 100], got \(percentile).") }
        if let output, FileIO.isDirectory(output) { throw ValidationError("--output '\(output)' is a directory; give a file path such as \(output)/model.loupe.") }
    }

    func run() throws {
        let (path, parentBytes, parent) = try Quantize.fp32Parent(model) { "\($0) is already quantized (\($1)); give its fp32 parent." }
        // Where the result goes: --output, or the next version of the parent's model directory.
        let destination = output == nil ? try Quantize.repositoryModel(of: path, what: "quantized") : nil
        let fp32 = try parent.makeModel()
        let h = parent.header
        let directory = Quantize.dataDirectory(data, of: h)
        let train = try IDXDataset.load(directory: directory, split: .train)
        guard train.pixelsPerImage == fp32.inputCount else {
            throw ValidationError("the images in \(directory) have \(train.pixelsPerImage) pixels; the model takes \(fp32.inputCount).")
        }
        let n = min(calibration, train.count)
        let calibrationImages = h.normalization.apply(Array(train.images.prefix(n * fp32.inputCount)))
        Terminal.line("calibrating on \(Format.grouped(n)) training images of \(directory) (\(calibrator.rawValue)\(calibrator == .percentile ? " \(percentile)" : ""))…")
        let int8: Sequential
        do {
            int8 = try fp32.quantized(calibrationImages: calibrationImages, count: n, calibrator: calibrator, percentile: percentile,
                                      threads: threading.resolved)
        } catch {
            throw ValidationError("\(path) cannot be quantized: \(error)")
        }
        let test = try IDXDataset.load(directory: directory, split: .test)
        Terminal.line("measuring both models on \(Format.grouped(test.count)) test images…")
        let before = try EvaluationReport.evaluate(model: fp32, dataset: test, classNames: h.labels, normalization: h.normalization, threads: threading.resolved)
        let after = try EvaluationReport.evaluate(model: int8, dataset: test, classNames: h.labels, normalization: h.normalization, threads: threading.resolved)

        // The golden samples are the parent's inputs, with the int8 model's outputs.
        let golden = Quantize.goldenSamples(of: int8, parent: h)
        var training = h.training
        training.testAccuracy = after.accuracy
        training.testLoss = after.loss
        training.testExamples = test.count
        training.createdAt = TrainingMetadata.now()
        var file = try ModelFile(model: int8, labels: h.labels, normalization: h.normalization, training: training,
                                 goldenSamples: golden, inputStatistics: h.inputStatistics)
        var header = file.header
        header.quantizedFrom = QuantizedFrom(sha256: parent.sha256Hex, fileBytes: parentBytes.count, testAccuracy: before.accuracy)
        file = try ModelFile(header: header, parameters: file.parameters)
        let bytes = try file.encode()
        let written: String
        if let output {
            try ModelOutput.write(bytes, to: output)
            written = output
        } else {
            let note = try Quantize.history(file: file, parentPath: path)
            written = try ModelRepositoryLayout.publish(model: bytes, history: note, root: destination!.root, name: destination!.name).path
        }
        Terminal.line(Quantize.comparison(fp32: (before.accuracy, parentBytes.count, fp32.weightBytes), int8: (after.accuracy, bytes.count, int8.weightBytes)))
        Terminal.line("wrote \(written) (int8, format version \(file.version), sha256 \(file.sha256Hex); kernels \(int8KernelName))")
    }

    /// The fp32 model a derived model (quantized, pruned) is made from: its path, bytes and file; a quantized
    /// file is refused with the sentence `refusal(path, precision)`.
    static func fp32Parent(_ model: String, refusal: (String, String) -> String) throws -> (path: String, bytes: [UInt8], file: ModelFile) {
        let path = try ModelPath.resolve(model)
        let bytes = try FileIO.readFile(path, maxBytes: ModelFile.maxFileBytes)
        let file = try ModelFile.decode(bytes: bytes)
        guard file.header.quantization == nil else { throw ValidationError(refusal(path, file.header.precision)) }
        return (path, bytes, file)
    }

    /// --data, else the dataset the parent was trained on (when it is still there), else Fashion-MNIST.
    static func dataDirectory(_ data: String?, of header: ModelHeader) -> String {
        data ?? header.training.datasetPath.flatMap { FileIO.isDirectory($0) ? $0 : nil } ?? TrainingOptions.defaultDataDirectory
    }

    /// Golden samples of a derived model: the parent's inputs, with this model's outputs.
    static func goldenSamples(of model: Sequential, parent h: ModelHeader) -> [GoldenSample] {
        let pixels = h.goldenSamples.flatMap(\.pixels)
        let labels = h.goldenSamples.map { UInt8(clamping: $0.label ?? 0) }
        return ModelFile.goldenSamples(model: model, images: pixels, labels: labels, count: h.goldenSamples.count, normalization: h.normalization)
    }

    /// The repository root and model name of `<repository>/<name>/<version>/model.loupe`, where a derived
    /// model (quantized, pruned) is published as the next version; otherwise a sentence asking for --output.
    static func repositoryModel(of path: String, what: String) throws -> (root: String, name: String) {
        let parts = ModelPath.absolute(path).split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard parts.count >= 4, parts.last == ModelRepositoryLayout.modelFileName, ModelRepositoryLayout.parseVersion(parts[parts.count - 2]) != nil,
              ModelRepositoryLayout.isValidName(parts[parts.count - 3]) else {
            throw ValidationError("\(path) is not <repository>/<name>/<version>/model.loupe; give --output PATH for the \(what) model.")
        }
        return (parts[0..<(parts.count - 3)].joined(separator: "/"), parts[parts.count - 3])
    }

    /// The side-by-side lines `quantize` and `evaluate` print.
    static func comparison(fp32: (accuracy: Double?, fileBytes: Int, weightBytes: Int?), int8: (accuracy: Double?, fileBytes: Int, weightBytes: Int?)) -> String {
        func acc(_ a: Double?) -> String { a.map { Format.fixed($0, 4) } ?? "?" }
        var lines = ["            accuracy    file bytes    weight bytes",
                     "  fp32      \(Format.pad(acc(fp32.accuracy), 8))    \(Format.pad(Format.grouped(fp32.fileBytes), 10, right: true))    \(Format.pad(fp32.weightBytes.map(Format.grouped) ?? "?", 12, right: true))",
                     "  int8      \(Format.pad(acc(int8.accuracy), 8))    \(Format.pad(Format.grouped(int8.fileBytes), 10, right: true))    \(Format.pad(int8.weightBytes.map(Format.grouped) ?? "?", 12, right: true))"]
        if let a = fp32.accuracy, let b = int8.accuracy {
            lines.append("  change    \(Format.fixed((b - a) * 100, 2)) points, file \(Format.fixed(Double(int8.fileBytes) / Double(max(1, fp32.fileBytes)), 3))×")
        }
        return lines.joined(separator: "\n")
    }

    /// history.json of a quantized version: what it was made from and how.
    static func history(file: ModelFile, parentPath: String) throws -> [UInt8] {
        struct Note: Encodable {
            var kind = "quantize"
            var parent: String
            var quantizedFrom: QuantizedFrom?
            var quantization: QuantizationParameters?
            var testAccuracy: Double?
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return [UInt8](try encoder.encode(Note(parent: parentPath, quantizedFrom: file.header.quantizedFrom, quantization: file.header.quantization,
                                               testAccuracy: file.header.training.testAccuracy)))
    }
}

extension Calibrator: ExpressibleByArgument {}
