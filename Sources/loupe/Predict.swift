import ArgumentParser
import FoundationEssentials
import LoupeData
import LoupeEngine

struct Predict: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Classify PNG, JPEG, WebP or PGM files offline, with the same decoding the server uses.",
        discussion: """
        Images are converted to 8-bit gray (BT.601 luma, alpha over black), JPEGs turned upright \
        by their Exif orientation, and, when their size differs from the model's input, resized by area averaging. Models trained on MNIST-style \
        data expect light objects on a black background; use --invert for dark-on-light images.
        """)

    @OptionGroup var modelOption: ModelOption

    @Argument(help: ArgumentHelp("PNG, JPEG, WebP or PGM files.", valueName: "file"))
    var files: [String]

    @Option(name: .customLong("top-k"), parsing: .unconditional, help: "How many classes to list per image.")
    var topK: Int = 3

    @Flag(name: .long, help: "Invert the images (255 - pixel) before classifying.")
    var invert = false

    @Flag(name: .long, help: "Print JSON (the server's /predict response shape).")
    var json = false

    @OptionGroup var threading: ThreadOptions

    func validate() throws {
        guard !files.isEmpty else { throw ValidationError("Give at least one image file.") }
        guard topK >= 0 else { throw ValidationError("--top-k must be an integer from 0 to the model's number of classes, received \(topK).") }
    }

    struct Prediction: Encodable {
        struct Ranked: Encodable { var `class`: Int; var label: String; var confidence: Float }
        var file: String
        var `class`: Int
        var label: String
        var confidence: Float
        var topK: [Ranked]
        var probabilities: [Float]
        enum CodingKeys: String, CodingKey { case file, `class`, label, confidence, topK = "top_k", probabilities }
    }

    func run() throws {
        let path = try modelOption.resolvedPath()
        let file = try ModelFile.read(path: path)
        let model = try file.makeModel()
        // The same bounds and sentence as the server's ?top_k=.
        guard topK <= model.outputCount else {
            throw ValidationError("--top-k must be an integer from 0 to \(model.outputCount), received \(topK).")
        }
        let shape = file.header.inputShape
        guard shape.count == 3, shape[2] == 1 || shape[2] == 3 else {
            throw ValidationError("this model takes input \(shape); predict handles image models (H, W, 1) and (H, W, 3) only.")
        }
        // Every file that decodes is classified; each one that does not is named with its problem
        // on stderr, and the exit status is then 1.
        let (pixels, files, failures) = Self.decode(self.files, shape: shape, invert: invert)
        defer {
            for failure in failures { Terminal.error(failure) }
        }
        if files.isEmpty { throw ExitCode(1) }
        var workspace = model.makeWorkspace(maxBatch: files.count)
        let probabilities = model.predict(file.header.normalization.apply(pixels), count: files.count, workspace: &workspace, threads: threading.resolved)
        let k = model.outputCount
        let labels = file.header.labels
        var results: [Prediction] = []
        for (i, f) in files.enumerated() {
            let p = Array(probabilities[i * k..<(i + 1) * k])
            let ranked = p.indices.sorted { p[$0] > p[$1] || (p[$0] == p[$1] && $0 < $1) }
            let top = ranked.prefix(topK).map { Prediction.Ranked(class: $0, label: labels[$0], confidence: p[$0]) }
            results.append(Prediction(file: f, class: ranked[0], label: labels[ranked[0]], confidence: p[ranked[0]], topK: top, probabilities: p))
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            struct Output: Encodable { var model: String; var predictions: [Prediction] }
            Terminal.line(String(decoding: try encoder.encode(Output(model: path, predictions: results)), as: UTF8.self))
        } else {
            let width = min(40, files.map(\.count).max() ?? 0)
            for r in results {
                let top = r.topK.map { "\($0.label) \(Format.fixed(Double($0.confidence), 3))" }.joined(separator: ", ")
                Terminal.line("\(Format.pad(r.file, width))  \(r.label) (\(r.class))  \(Format.fixed(Double(r.confidence), 3))   top-\(r.topK.count): \(top)")
            }
        }
        if !failures.isEmpty { throw ExitCode(1) }
    }

    /// Decodes each file to the model's (H, W) and channel count (BT.601 gray or RGB), as the server does; the pixels of the files that
    /// decode back to back, their names, and a line per file that does not.
    static func decode(_ paths: [String], shape: [Int], invert: Bool) -> (pixels: [UInt8], files: [String], failures: [String]) {
        var pixels: [UInt8] = []
        var files: [String] = []
        var failures: [String] = []
        for f in paths {
            do {
                var image = try ImageDecoder.decodeForModel(try FileIO.readFile(f, maxBytes: ImageDecoder.Limits.default.maxInputBytes),
                                                            width: shape[1], height: shape[0], channels: shape[2])
                if invert { image = image.inverted() }
                pixels += image.pixels
                files.append(f)
            } catch {
                failures.append("\(f): \(error)")
            }
        }
        return (pixels, files, failures)
    }
}
