import Testing
import LoupeEngine
@testable import LoupeData

/// Format version 2 (docs/model-format.md §12): int8 weights, float32 biases, quantization header.
@Suite struct QuantizedModelFileTests {
    static let architecture = Architecture(inputShape: [6, 6, 1], layers: [
        .conv2d(filters: 4, kernel: 3, padding: .valid, activation: .relu),
        .maxPool2d(pool: 2),
        .flatten,
        .dense(units: 5, activation: .relu),
        .dense(units: 3, activation: .softmax),
    ])

    static func makeFile() throws -> (ModelFile, Sequential) {
        let fp32 = try Sequential(architecture: architecture, seed: 5)
        var state: UInt32 = 2
        let pixels = (0..<(40 * 36)).map { _ -> UInt8 in state = state &* 1_664_525 &+ 1_013_904_223; return UInt8(state >> 24) }
        let model = try fp32.quantized(calibrationImages: Normalization.standard.apply(pixels), count: 40, calibrator: .minmax)
        let golden = ModelFile.goldenSamples(model: model, images: pixels, labels: [0, 1, 2], count: 3)
        let file = try ModelFile(model: model, labels: ["a", "b", "c"], training: TrainingMetadata(dataset: "tiny", epochs: 1, seed: 5),
                                 goldenSamples: golden)
        return (file, model)
    }

    @Test func roundTripsAsVersion2WithInt8Weights() throws {
        let (file, model) = try Self.makeFile()
        let bytes = try file.encode()
        #expect(ModelFile.readUInt32(bytes, 8) == 2)
        #expect(file.header.tensors.map { $0.dtype ?? "" } == ["int8", "float32", "int8", "float32", "int8", "float32"])
        // conv1.weight 36 int8, conv1.bias 4 floats at 36, dense1.weight 16×5 at 52, …, each 4-aligned.
        #expect(file.header.tensors.map { $0.byteOffset ?? -1 } == [0, 36, 52, 132, 152, 168])
        let headerLength = Int(ModelFile.readUInt32(bytes, 12))
        let dataOffset = (16 + headerLength + 63) / 64 * 64
        #expect(bytes.count == dataOffset + 180 + 32)
        let back = try ModelFile.decode(bytes: bytes)
        #expect(back == file)
        #expect(back.parameters == model.parameters, "the float view is q · scale, exactly")
        // The stored int8 byte is the quantized weight.
        let s0 = file.header.quantization!.layers[0].weightScales[0]
        #expect(Int8(bitPattern: bytes[dataOffset]) == QuantizationMath.quantizeWeight(model.parameters[0], scale: s0))
        let rebuilt = try back.makeModel()
        #expect(rebuilt.precision == "int8")
        try ModelFile.selfTest(model: rebuilt, header: back.header)
    }

    @Test func rejectsVersionAndLayoutMismatches() throws {
        let (file, _) = try Self.makeFile()
        // A quantization header in a version-1 container.
        var bytes = try file.encode()
        bytes[8] = 1
        #expect(throws: LoupeDataError.self) { try ModelFile.decode(bytes: bytes) }
        // A byteOffset that does not follow the table.
        var header = file.header
        header.tensors[1].byteOffset = 40
        #expect(throws: LoupeDataError.self) { try ModelFile(header: header, parameters: file.parameters) }
        header = file.header
        header.tensors[0].dtype = "float32"
        #expect(throws: LoupeDataError.self) { try ModelFile(header: header, parameters: file.parameters) }
        // Scales that do not fit the layer.
        header = file.header
        header.quantization!.layers[0].weightScales.removeLast()
        #expect(throws: LoupeDataError.self) { try ModelFile(header: header, parameters: file.parameters) }
    }

    /// A re-signed file whose parameterCount disagrees with its tensor table (a valid checksum proves
    /// nothing): refused with the shape error, as a version-1 file is — before, the reader sized the
    /// float view by parameterCount and wrote the tensors past its end (the process crashed).
    @Test func refusesAParameterCountThatDisagreesWithTheTensors() throws {
        let (file, _) = try Self.makeFile()
        for count in [0, 10, file.parameters.count - 1, file.parameters.count + 1] {
            var lying = file
            lying.header.parameterCount = count
            let bytes = try lying.encode()
            do {
                _ = try ModelFile.decode(bytes: bytes)
                Issue.record("parameterCount \(count) accepted")
            } catch let LoupeDataError.modelFile(_, problem) {
                guard case let .shapeMismatch(why) = problem else { Issue.record("\(problem)"); continue }
                #expect(why.contains("\(file.parameters.count) parameters") && why.contains("\(count)"), "\(why)")
            }
            #expect(!ModelInspection.inspect(bytes: bytes).isValid)
        }
    }

    @Test func inspectionFindsTheChecksumOfAVersion2File() throws {
        let (file, _) = try Self.makeFile()
        let r = ModelInspection.inspect(bytes: try file.encode())
        #expect(r.isValid && r.checksumOK && r.formatVersion == 2)
        #expect(r.selfTest == .passed(count: 3))
    }
}
