import ArgumentParser
import LoupeData
import LoupeEngine
import LoupeONNX

struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write a .loupe model as ONNX (opset 17), for ONNX Runtime, Triton and other runtimes.",
        discussion: """
        The ONNX graph keeps Loupe's interface: input `input` FP32 [N, H, W, C] (normalized \
        pixels, as the KServe v2 endpoint takes them), output `probabilities` FP32 [N, K]. \
        See docs/onnx.md.
        """)

    @OptionGroup var modelOption: ModelOption

    @Option(help: "Output format (onnx).")
    var format: String = "onnx"

    @Option(help: ArgumentHelp("Where to write the ONNX file.", valueName: "path"))
    var output: String

    func validate() throws {
        guard format == "onnx" else { throw ValidationError("--format must be onnx, got '\(format)'.") }
    }

    func run() throws {
        let path = try modelOption.resolvedPath()
        let file = try ModelFile.read(path: path)
        let bytes: [UInt8]
        do {
            bytes = try ONNXExporter.export(architecture: file.header.architecture, parameters: file.parameters,
                                            producerVersion: file.header.training.engineVersion, quantization: file.header.quantization)
        } catch {
            throw Import.ImportFailure(message: "\(path) cannot be exported: \(error)")
        }
        try ModelOutput.write(bytes, to: output)
        Terminal.line("wrote \(output) (\(Format.grouped(bytes.count)) bytes, ONNX opset \(ONNXExporter.opset), input 'input' [N, \(file.header.architecture.inputShape.map(String.init).joined(separator: ", "))] FP32, output 'probabilities'\(file.header.quantization == nil ? "" : "; int8 as QDQ: QuantizeLinear/DequantizeLinear")")
    }
}
