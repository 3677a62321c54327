import ArgumentParser
import FoundationEssentials
import LoupeData
import LoupeEngine

struct Explain: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Explain predictions offline: which pixels moved the class's probability, as POST /explain does.",
        discussion: """
        The same decoding, engine gradients and heatmap as the server's /explain. Methods: \
        integrated_gradients (default; --steps, --baseline black|blur), saliency (|∂p/∂x|), gradient_x_input, \
        occlusion (--window, --stride). Any input size; images are decoded to the model's H×W×C (RGB kept \
        for 3-channel models, whose attributions are per channel). --png OUTDIR writes <file name>.explain.png per \
        image (the files must have different names): the image (gray, or desaturated colour for RGB) with positive attributions (summed over \
        channels) in red and negative ones in blue.
        """)

    @OptionGroup var modelOption: ModelOption

    @Argument(help: ArgumentHelp("PNG, JPEG, WebP or PGM files.", valueName: "file"))
    var files: [String]

    @Option(name: .long, help: "integrated_gradients, saliency, gradient_x_input or occlusion.")
    var method: String = AttributionMethod.integratedGradients.rawValue

    @Option(name: .long, parsing: .unconditional, help: "The class to explain (default: each image's predicted class).")
    var target: Int?

    @Option(name: .long, help: "Attribute the class's probability or its logit.")
    var output: String = ExplainedScore.probability.rawValue

    @Option(name: .long, parsing: .unconditional, help: "Integrated-gradients steps, 1…1024.")
    var steps: Int = 32

    @Option(name: .long, help: "Integrated-gradients baseline: black or blur.")
    var baseline: String = "black"

    @Option(name: .long, parsing: .unconditional, help: "Occlusion window side in pixels.")
    var window: Int = 4

    @Option(name: .long, parsing: .unconditional, help: "Occlusion stride in pixels.")
    var stride: Int = 2

    @Option(name: .long, help: ArgumentHelp("Write a heatmap PNG per image into this directory.", valueName: "outdir"))
    var png: String?

    @Flag(name: .long, help: "Invert the images (255 - pixel) before explaining.")
    var invert = false

    func validate() throws {
        guard !files.isEmpty else { throw ValidationError("Give at least one image file.") }
        guard steps >= 1 && steps <= AttributionOptions.maxSteps else {
            throw ValidationError("--steps must be 1…\(AttributionOptions.maxSteps), received \(steps).")
        }
        guard AttributionMethod(rawValue: method) != nil else {
            throw ValidationError("--method must be integrated_gradients, saliency, gradient_x_input or occlusion, received '\(method)'.")
        }
        guard ExplainedScore(rawValue: output) != nil else { throw ValidationError("--output must be probability or logit, received '\(output)'.") }
        guard baseline == "black" || baseline == "blur" else { throw ValidationError("--baseline must be black or blur, received '\(baseline)'.") }
        if png != nil {
            // One heatmap file per input file name: two inputs of one name would write the same file.
            var seen: [String: String] = [:]
            for f in files {
                let name = Self.heatmapName(f)
                if let first = seen[name] {
                    throw ValidationError("--png: \(first) and \(f) both write \(name); give files of different names.")
                }
                seen[name] = f
            }
        }
    }

    /// The heatmap file --png writes for an input file: `<file name>.explain.png`.
    static func heatmapName(_ file: String) -> String { String(file.split(separator: "/").last ?? Substring(file)) + ".explain.png" }

    func run() throws {
        let path = try modelOption.resolvedPath()
        let file = try ModelFile.read(path: path)
        let model = try file.makeModel()
        let shape = file.header.inputShape
        guard shape.count == 3, shape[2] == 1 || shape[2] == 3 else {
            throw ValidationError("this model takes input \(shape); explain handles image models (H, W, 1) and (H, W, 3).")
        }
        if let target, target < 0 || target >= model.outputCount {
            throw ValidationError("--target must be a class from 0 to \(model.outputCount - 1), received \(target).")
        }
        var explainer: Explainer
        do { explainer = try Explainer(model: model) } catch {
            throw ValidationError("this model cannot be explained: \(error)")
        }
        let normalization = file.header.normalization
        var options = AttributionOptions(method: AttributionMethod(rawValue: method)!, score: ExplainedScore(rawValue: output)!,
                                         steps: steps, baseline: .constant(normalization.offset), window: window, stride: stride,
                                         fill: normalization.offset)
        if baseline == "blur" { options.baseline = .blur(sigma: max(1, Float(max(shape[0], shape[1])) / 7)) }
        do { try explainer.validate(options) } catch EngineError.invalidInput(let why) {
            throw ValidationError(why.prefix(1).uppercased() + why.dropFirst() + ".")
        }
        let (pixels, files, failures) = Predict.decode(self.files, shape: shape, invert: invert)
        defer { for failure in failures { Terminal.error(failure) } }
        if files.isEmpty { throw ExitCode(1) }
        let d = model.inputCount
        let labels = file.header.labels
        let width = min(40, files.map(\.count).max() ?? 0)
        if let png { try FileIO.createDirectories(png) }
        for (i, f) in files.enumerated() {
            let imagePixels = Array(pixels[(i * d)..<((i + 1) * d)])
            let a = try explainer.explain(normalization.apply(imagePixels), target: target, options: options)
            var line = "\(Format.pad(f, width))  \(labels[a.target]) (\(a.target))  p \(Format.fixed(Double(a.probabilities[a.target]), 3))"
            line += "  Σ attributions \(Format.fixed(Double(a.map.reduce(0, +)), 4))"
            if let b = a.baselineScore { line += " (score − baseline \(Format.fixed(Double(a.score - b), 4)))" }
            if let png {
                let out = png + "/" + Self.heatmapName(f)
                try FileIO.writeAtomically(AttributionHeatmap.png(pixels: imagePixels, attributions: a.map, width: shape[1],
                                                                  height: shape[0], channels: shape[2]), to: out)
                line += "  → \(out)"
            }
            Terminal.line(line)
        }
        if !failures.isEmpty { throw ExitCode(1) }
    }
}
