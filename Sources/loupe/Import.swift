import ArgumentParser
import FoundationEssentials
import LoupeData
import LoupeEngine
import LoupeONNX
import LoupeService

struct Import: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Turn an ONNX model (a small CNN from torch.onnx.export, tf2onnx, …) into a .loupe model.",
        discussion: """
        Writes the next version models/<name>/<v>/model.loupe (or --output FILE), with golden \
        samples computed by the imported network on seeded inputs, so the server self-tests it \
        like any trained model. Supported operators and layouts: docs/onnx.md. Anything else is \
        refused with the node, its operator and what is supported.
        """)

    @Argument(help: ArgumentHelp("The ONNX model file.", valueName: "model.onnx"))
    var model: String

    @Option(help: "Model name in the repository (default: the file's stem).")
    var name: String?

    @Option(help: ArgumentHelp("Repository root for the default output.", valueName: "dir"))
    var repository: String = "models"

    @Option(help: ArgumentHelp("Write the model file here instead of the repository.", valueName: "path"))
    var output: String?

    @Option(help: ArgumentHelp("Class labels: a file with one label per line, or a,b,c (default 0…K-1).", valueName: "labels"))
    var labels: String?

    @Option(parsing: .unconditional, help: "Input normalization: model input = pixel × scale + offset (default: pixel / 255; negative inverts).")
    var scale: Float = 1.0 / 255.0

    @Option(parsing: .unconditional, help: "Input normalization offset (see --scale), e.g. -1 with --scale 0.0078125 for [-1, 1].")
    var offset: Float = 0

    @Option(parsing: .unconditional, help: ArgumentHelp("Largest input height or width to import (default: models.max_input_side of the configuration serve reads, 256).",
                               valueName: "pixels"))
    var maxInputSide: Int?

    @Option(help: "YAML configuration file whose models.max_input_side applies (default: $LOUPE_CONFIG, else none).")
    var config: String?

    func validate() throws {
        guard scale.isFinite, scale != 0 else {
            throw ValidationError("--scale must be a finite number other than 0 (model input = pixel × scale + offset), got \(scale).")
        }
        guard offset.isFinite else { throw ValidationError("--offset must be a finite number, got \(offset).") }
        if let maxInputSide, !(1...4096).contains(maxInputSide) {
            throw ValidationError("--max-input-side must be from 1 to 4096, got \(maxInputSide).")
        }
    }

    /// --max-input-side, else `models.max_input_side` as `loupe serve` would read it (file < LOUPE_* environment),
    /// so an imported model is one the server loads.
    func resolvedMaxInputSide() throws -> Int {
        if let maxInputSide { return maxInputSide }
        let environment = environmentVariables()
        var warnings: [String] = []
        do {
            return try ServiceConfiguration.load(file: config ?? environment["LOUPE_CONFIG"], environment: environment, overrides: [],
                                                 warnings: &warnings).maxInputSide
        } catch {
            throw ImportFailure(message: "\(error)")
        }
    }

    /// A refusal: printed as "Error: <sentence>", exit status 1 (no usage text: the arguments were fine).
    struct ImportFailure: Error, CustomStringConvertible { var message: String; var description: String { message } }

    func run() throws {
        let maxSide = try resolvedMaxInputSide()
        let bytes: [UInt8]
        do {
            bytes = try FileIO.readFile(model, maxBytes: 1 << 30)
        } catch {
            throw ImportFailure(message: "cannot read \(model): \(error)")
        }
        let network: ImportedNetwork
        do {
            network = try ONNXImporter.importModel(try ONNXModel(bytes: bytes), maxInputSide: maxSide)
        } catch let error as ProtoError {
            throw ImportFailure(message: "\(model) is not a readable ONNX model: \(error)")
        } catch {
            throw ImportFailure(message: "\(model) cannot be imported: \(error)")
        }
        let engine = try Sequential(architecture: network.architecture, parameters: network.parameters)
        let k = engine.outputCount
        let classNames = try resolvedLabels(count: k)
        let normalization = Normalization(scale: scale, offset: offset)
        // Golden samples: the imported network's own answers on seeded images (smooth random
        // patterns, so they exercise every layer), recorded to the last bit.
        let n = engine.inputCount
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        let count = 8
        var pixels = [UInt8](repeating: 0, count: count * n)
        for i in 0..<pixels.count {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            pixels[i] = UInt8(truncatingIfNeeded: state >> 56)
        }
        let golden = ModelFile.goldenSamples(model: engine, images: pixels, labels: [], count: count, normalization: normalization)
        let stem = String((model.split(separator: "/").last ?? "model").split(separator: ".").first ?? "model")
        let training = TrainingMetadata(dataset: "onnx:\(stem)", epochs: 0, seed: 0)
        let base = try ModelFile(model: engine, labels: classNames, normalization: normalization, training: training, goldenSamples: golden)
        // The graph's tensor names and input layout, so the server's KServe v2 endpoints speak the graph's names.
        var header = base.header
        header.inputName = network.inputName
        header.outputName = network.outputName
        header.inputLayout = network.inputLayout
        let file = try ModelFile(header: header, parameters: base.parameters)
        let encoded = try file.encode()
        let path: String
        if let output {
            try ModelOutput.write(encoded, to: output)
            path = output
        } else {
            // The file imported, exactly (its name may hold dots and quotes), as JSON.
            struct ImportRecord: Encodable { var imported_from: String; var opset: Int64; var input_layout: String }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            let record = ImportRecord(imported_from: String(model.split(separator: "/").last ?? Substring(model)), opset: network.opset,
                                      input_layout: network.inputLayout)
            let history = [UInt8](try encoder.encode(record)) + [0x0A]
            path = try ModelRepositoryLayout.publish(model: encoded, history: history, root: repository, name: name ?? stem).path
        }
        let layers = network.architecture.layers.map(Inspect.describe).joined(separator: " → ")
        Terminal.line("imported \(model) (opset \(network.opset), input '\(network.inputName)' \(network.inputLayout) \(network.architecture.inputShape), output '\(network.outputName)')")
        Terminal.line("  \(layers)")
        Terminal.line("wrote \(path) (\(Format.grouped(encoded.count)) bytes, \(Format.grouped(engine.parameterCount)) parameters, sha256 \(file.sha256Hex))")
    }

    func resolvedLabels(count k: Int) throws -> [String] {
        guard let labels else { return (0..<k).map(String.init) }
        let list: [String]
        if FileIO.isRegularFile(labels) {
            list = String(decoding: try FileIO.readFile(labels), as: UTF8.self).split(whereSeparator: \.isNewline)
                .map { String($0.drop(while: { $0 == " " }).reversed().drop(while: { $0 == " " }).reversed()) }.filter { !$0.isEmpty }
        } else {
            list = labels.split(separator: ",").map { String($0) }
        }
        guard list.count == k else { throw ValidationError("--labels gives \(list.count) labels; the model has \(k) classes") }
        return list
    }
}
