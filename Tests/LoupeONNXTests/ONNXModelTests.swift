// ONNX parsing on swift-protobuf's generated messages: a model written with them reads back and
// imports; every truncation is refused (never a crash or a wrong model); what protobuf cannot check
// — external data, raw_data of the wrong length, values that do not match the dims — is refused
// with a sentence naming the tensor; the exporter's bytes read back as the same network.
import FoundationEssentials
import LoupeEngine
import SwiftProtobuf
import Testing
@testable import LoupeONNX

@Suite struct ONNXModelTests {
    static func tensor(_ name: String, _ dims: [Int64], _ values: [Float]) -> Onnx_TensorProto {
        var t = Onnx_TensorProto()
        t.name = name; t.dims = dims; t.dataType = Int32(ONNXTensor.float)
        var raw: [UInt8] = []
        for v in values { let b = v.bitPattern; for i in 0..<4 { raw.append(UInt8(truncatingIfNeeded: b >> (8 * UInt32(i)))) } }
        t.rawData = Data(raw)
        return t
    }

    static func node(_ op: String, _ inputs: [String], _ output: String, ints: [(String, [Int64])] = []) -> Onnx_NodeProto {
        var n = Onnx_NodeProto()
        n.input = inputs; n.output = [output]; n.opType = op
        n.attribute = ints.map { name, v in ONNXExporter.intsAttribute(name, v) }
        return n
    }

    /// A small graph: Conv → Relu → Flatten → Gemm → Softmax on a 1×5×5 input.
    static func tinyModel() -> Onnx_ModelProto {
        var graph = Onnx_GraphProto()
        graph.node = [node("Conv", ["x", "w", "b"], "c", ints: [("kernel_shape", [3, 3])]),
                      node("Relu", ["c"], "r"), node("Flatten", ["r"], "f"),
                      node("Gemm", ["f", "g", "gb"], "y"), node("Softmax", ["y"], "p")]
        graph.initializer = [tensor("w", [2, 1, 3, 3], (0..<18).map { Float($0) / 10 }), tensor("b", [2], [0.1, -0.2]),
                             tensor("g", [2 * 3 * 3, 4], (0..<72).map { Float($0 % 7) / 7 - 0.4 }), tensor("gb", [4], [0, 1, 2, 3])]
        graph.input = [ONNXExporter.valueInfo("x", [nil, 1, 5, 5])]
        graph.output = [ONNXExporter.valueInfo("p", [nil, 4])]
        var model = Onnx_ModelProto()
        model.irVersion = 8
        var opset = Onnx_OperatorSetIdProto()
        opset.version = 17
        model.opsetImport = [opset]
        model.graph = graph
        return model
    }

    static func bytes(_ model: Onnx_ModelProto) throws -> [UInt8] { try model.serializedBytes() }

    /// `tinyModel` with one change, as bytes.
    static func edited(_ edit: (inout Onnx_ModelProto) -> Void) throws -> [UInt8] {
        var m = tinyModel()
        edit(&m)
        return try bytes(m)
    }

    @Test func aWrittenModelReadsBackAndImports() throws {
        let model = try ONNXModel(bytes: try Self.bytes(Self.tinyModel()))
        #expect(model.opset == 17 && model.irVersion == 8 && model.nodes.map(\.opType) == ["Conv", "Relu", "Flatten", "Gemm", "Softmax"])
        #expect(model.initializers["w"]?.floats.count == 18 && model.inputs.first?.shape == [nil, 1, 5, 5])
        #expect(model.nodes[0].ints("kernel_shape") == [3, 3])
        let imported = try ONNXImporter.importModel(model)
        #expect(imported.architecture.inputShape == [5, 5, 1] && imported.inputLayout == "NCHW")
        // HWIO: weight (y, x, c=0, o) = OIHW (o, 0, y, x); the 2×9 ONNX weights interleave by filter.
        #expect(Array(imported.parameters.prefix(4)) == [0.0, 0.9, 0.1, 1.0])
    }

    @Test func valuesInFloatDataAndInt64RawDataRead() throws {
        var packed = Onnx_TensorProto()
        packed.name = "w"; packed.dims = [2, 1, 3, 3]; packed.dataType = Int32(ONNXTensor.float)
        packed.floatData = (0..<18).map { Float($0) / 10 }
        var shape = Onnx_TensorProto()
        shape.name = "s"; shape.dims = [2]; shape.dataType = Int32(ONNXTensor.int64)
        shape.rawData = Data([0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x20, 0, 0, 0, 0, 0, 0, 0])
        let model = try ONNXModel(bytes: try Self.edited { m in m.graph.initializer[0] = packed; m.graph.initializer.append(shape) })
        #expect(model.initializers["w"] == (try ONNXModel(bytes: try Self.bytes(Self.tinyModel()))).initializers["w"])
        #expect(model.initializers["s"]?.int64s == [-1, 32])
    }

    @Test func everyTruncationIsRefusedNeverMisread() throws {
        let whole = try Self.bytes(Self.tinyModel())
        for cut in 0..<whole.count {
            #expect(throws: (any Error).self, "cut at \(cut)") {
                _ = try ONNXImporter.importModel(try ONNXModel(bytes: Array(whole.prefix(cut))))
            }
        }
        // A cut inside a field is a protobuf error with a sentence.
        #expect(throws: ProtoError("malformed protobuf: the data ends inside a field: the file is truncated or not an ONNX model")) {
            _ = try ONNXModel(bytes: Array(whole.prefix(whole.count / 2)))
        }
    }

    @Test func bytesThatAreNotAModelAreRefused() {
        #expect(throws: ProtoError.self) { _ = try ONNXModel(bytes: Array("not a model".utf8)) }
        #expect(throws: ProtoError("no graph: this is not an ONNX model (or the file is truncated)")) { _ = try ONNXModel(bytes: []) }
        // Field 1 as a varint overflowing 64 bits; field 7 (graph) with a length past the end.
        #expect(throws: ProtoError.self) { _ = try ONNXModel(bytes: [0x08, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x02]) }
        #expect(throws: ProtoError.self) { _ = try ONNXModel(bytes: [0x3A, 0x05, 1, 2]) }
    }

    @Test func tensorsThatDoNotHoldTheirValuesAreRefusedByName() throws {
        func refusal(_ edit: (inout Onnx_ModelProto) -> Void) throws -> String {
            do {
                _ = try ONNXModel(bytes: try Self.edited(edit))
                return "accepted"
            } catch let error as ProtoError {
                return error.message
            } catch {
                return "\(error)"
            }
        }
        #expect(try refusal { $0.graph.initializer[1].rawData.removeLast(4) } == "tensor 'b': 4 bytes of raw data for 2 floats")
        #expect(try refusal { m in
            m.graph.initializer[1].clearRawData(); m.graph.initializer[1].floatData = [1]
        } == "tensor 'b' declares 2 values and holds 1")
        #expect(try refusal { $0.graph.initializer[1].dims = [-2] } == "tensor 'b' has a negative or huge dimension [-2]")
        #expect(try refusal { $0.graph.initializer[2].dims = [1 << 20, 1 << 20] }.hasPrefix("tensor 'g' declares [1048576, 1048576] elements"))
        let external = try refusal { m in
            m.graph.initializer[0].clearRawData()
            m.graph.initializer[0].dataLocation = .external
            var location = Onnx_StringStringEntryProto()
            location.key = "location"; location.value = "weights.bin"
            m.graph.initializer[0].externalData = [location]
        }
        #expect(external.hasPrefix("tensor 'w' keeps its data in an external file"), "\(external)")
        #expect(try refusal { $0.graph.sparseInitializer = [Onnx_SparseTensorProto()] } == "sparse initializers are not supported")
        #expect(try refusal { $0.opsetImport = [] }.hasPrefix("no opset_import: the model names no operator set"))
    }

    @Test func theExportersBytesReadBackAsTheSameNetwork() throws {
        let network = try Sequential(architecture: Architecture(inputShape: [6, 6, 1], layers: [
            .conv2d(filters: 2, kernel: 3, padding: .same, activation: .relu), .maxPool2d(pool: 2), .flatten,
            .dense(units: 3, activation: .softmax),
        ]), seed: 3)
        let bytes = try ONNXExporter.export(architecture: network.architecture, parameters: network.parameters, producerVersion: "test")
        let model = try ONNXModel(bytes: bytes)
        #expect(model.producer == "loupe" && model.opset == ONNXExporter.opset && model.irVersion == 8)
        #expect(model.inputs.map(\.name) == ["input"] && model.inputs[0].shape == [nil, 6, 6, 1])
        #expect(model.outputs.map(\.name) == ["probabilities"] && model.outputs[0].shape == [nil, 3])
        let back = try ONNXImporter.importModel(model)
        #expect(back.architecture == network.architecture)
        #expect(back.parameters == network.parameters)
    }
}
