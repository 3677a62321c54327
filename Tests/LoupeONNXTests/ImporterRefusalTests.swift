// The importer never imports a wrong model silently: a graph it would have to change the meaning
// of (a bias added after an activation, an attribute of the wrong type it would otherwise skip, a
// batch-norm in training mode) is refused with a sentence naming the node and what was expected.
import FoundationEssentials
import LoupeEngine
import SwiftProtobuf
import Testing
@testable import LoupeONNX

@Suite struct ImporterRefusalTests {
    /// x [N,1,2,2] → Flatten → MatMul(w [4,2]) → `middle` → Add(b [2]) → y.
    static func denseGraph(middle: [Onnx_NodeProto]) throws -> ONNXModel {
        var graph = Onnx_GraphProto()
        var chain = [ONNXModelTests.node("Flatten", ["x"], "f"), ONNXModelTests.node("MatMul", ["f", "w"], "m")]
        var last = "m"
        for var n in middle { n.input[0] = last; last = n.output[0]; chain.append(n) }
        chain.append(ONNXModelTests.node("Add", [last, "b"], "y"))
        graph.node = chain
        graph.initializer = [ONNXModelTests.tensor("w", [4, 2], [1, -1, 2, -2, 3, -3, 4, -4]),
                             ONNXModelTests.tensor("b", [2], [-5, 5])]
        graph.input = [ONNXExporter.valueInfo("x", [nil, 1, 2, 2])]
        graph.output = [ONNXExporter.valueInfo("y", [nil, 2])]
        var model = ONNXModelTests.tinyModel()
        model.graph = graph
        return try ONNXModel(bytes: try ONNXModelTests.bytes(model))
    }

    func refusal(_ model: ONNXModel) -> String {
        do {
            let imported = try ONNXImporter.importModel(model)
            return "imported as \(imported.architecture.layers)"
        } catch {
            return error.message
        }
    }

    @Test func aBiasAddedDirectlyAfterMatMulIsFolded() throws {
        let imported = try ONNXImporter.importModel(try Self.denseGraph(middle: []))
        #expect(imported.architecture.layers == [.flatten, .dense(units: 2, activation: .linear)])
        #expect(imported.parameters == [1, -1, 2, -2, 3, -3, 4, -4, -5, 5])   // (in, out) weights, then the Add as the bias
    }

    /// Relu(x·w) + b is not Relu(x·w + b): the Add cannot become the dense layer's bias once an
    /// activation was merged into that layer.
    @Test func anAddAfterAnActivationIsRefusedNotFoldedIntoTheBias() throws {
        for op in ["Relu", "Sigmoid", "Tanh"] {
            let message = refusal(try Self.denseGraph(middle: [ONNXModelTests.node(op, ["?"], "a")]))
            #expect(message.hasPrefix("node Add → y: an Add must directly follow a MatMul or Gemm"), "\(op): \(message)")
        }
    }

    /// An attribute the importer reads, stored with another type (or none), would be skipped and its
    /// default used — a strided or dilated Conv imported as a plain one. It is refused by name.
    @Test func anAttributeOfTheWrongTypeIsRefusedNotIgnored() throws {
        func conv(_ attribute: Onnx_AttributeProto) throws -> String {
            let bytes = try ONNXModelTests.edited { m in m.graph.node[0].attribute.append(attribute) }
            return refusal(try ONNXModel(bytes: bytes))
        }
        #expect(try conv(ONNXExporter.intAttribute("strides", 2))
                == "node Conv → c: attribute 'strides' is INT; Loupe reads it as INTS")
        #expect(try conv(ONNXExporter.intAttribute("dilations", 2))
                == "node Conv → c: attribute 'dilations' is INT; Loupe reads it as INTS")
        #expect(try conv(ONNXExporter.intsAttribute("group", [1]))
                == "node Conv → c: attribute 'group' is INTS; Loupe reads it as INT")
        var untyped = ONNXExporter.intsAttribute("pads", [1, 1, 1, 1])
        untyped.type = .undefined
        #expect(try conv(untyped) == "node Conv → c: attribute 'pads' has no type (or one Loupe does not read); Loupe reads it as INTS")
        #expect(try conv(ONNXExporter.intAttribute("auto_pad", 1)) == "node Conv → c: attribute 'auto_pad' is INT; Loupe reads it as STRING")
        // Attributes it does not read keep their meaning-free defaults (a float "momentum" on a Conv is not looked at).
        #expect(try conv(ONNXExporter.floatAttribute("momentum", 0.9)).hasPrefix("imported as "))
    }

    @Test func aBatchNormalizationInTrainingModeIsRefused() throws {
        /// tinyModel with a BatchNormalization after its Conv.
        func withBatchNorm(trainingMode: Int64) throws -> ONNXModel {
            try ONNXModel(bytes: try ONNXModelTests.edited { m in
                var bn = ONNXModelTests.node("BatchNormalization", ["c", "s", "bb", "mu", "var"], "n")
                bn.attribute = [ONNXExporter.intAttribute("training_mode", trainingMode)]
                m.graph.node.insert(bn, at: 1)
                m.graph.node[2].input[0] = "n"
                m.graph.initializer += [ONNXModelTests.tensor("s", [2], [1, 1]), ONNXModelTests.tensor("bb", [2], [0, 0]),
                                        ONNXModelTests.tensor("mu", [2], [0, 0]), ONNXModelTests.tensor("var", [2], [1, 1])]
            })
        }
        #expect(refusal(try withBatchNorm(trainingMode: 1))
                == "node BatchNormalization → n: training_mode 1 is not supported; Loupe imports BatchNormalization in inference mode (training_mode 0, the running mean and variance)")
        #expect(refusal(try withBatchNorm(trainingMode: 0)).hasPrefix("imported as "))
    }

    /// ONNX's GlobalAveragePool and BatchNormalization work on axis 1 as the channels (NCHW). On a tensor
    /// that is NHWC in the graph (an NHWC input, or after Transpose [0,2,3,1]) axis 1 is the height: the
    /// pool would average over (W, C) and the batch-norm scale rows, not what the engine's per-channel
    /// layers do — refused, as Conv and the other pools on NHWC are.
    @Test func channelOperatorsOnAnNHWCTensorAreRefused() throws {
        var graph = Onnx_GraphProto()
        graph.node = [ONNXModelTests.node("GlobalAveragePool", ["x"], "g"), ONNXModelTests.node("Flatten", ["g"], "f"),
                      ONNXModelTests.node("Gemm", ["f", "w"], "y")]
        graph.initializer = [ONNXModelTests.tensor("w", [3, 2], [1, 2, 3, 4, 5, 6])]
        graph.input = [ONNXExporter.valueInfo("x", [nil, 3, 3, 3])]   // read as NHWC (3 rows of 3 pixels of 3 channels)
        graph.output = [ONNXExporter.valueInfo("y", [nil, 2])]
        var model = ONNXModelTests.tinyModel()
        model.graph = graph
        #expect(refusal(try ONNXModel(bytes: try ONNXModelTests.bytes(model)))
                == "node GlobalAveragePool → g: the tensor is NHWC here; ONNX pooling takes NCHW (add Transpose [0,3,1,2])")

        let transposed = try ONNXModelTests.edited { m in
            var bn = ONNXModelTests.node("BatchNormalization", ["t", "s", "bb", "mu", "var"], "n")
            bn.attribute = []
            m.graph.node.insert(ONNXModelTests.node("Transpose", ["c"], "t", ints: [("perm", [0, 2, 3, 1])]), at: 1)
            m.graph.node.insert(bn, at: 2)
            m.graph.node.insert(ONNXModelTests.node("Transpose", ["n"], "u", ints: [("perm", [0, 3, 1, 2])]), at: 3)
            m.graph.node[4].input[0] = "u"
            m.graph.initializer += [ONNXModelTests.tensor("s", [2], [2, 2]), ONNXModelTests.tensor("bb", [2], [0, 0]),
                                    ONNXModelTests.tensor("mu", [2], [0, 0]), ONNXModelTests.tensor("var", [2], [1, 1])]
        }
        #expect(refusal(try ONNXModel(bytes: transposed))
                == "node BatchNormalization → n: the tensor is NHWC here; ONNX BatchNormalization normalizes axis 1 as the channels (NCHW)")
    }

    /// A model whose opset_import names only other domains has no default-domain opset (read as 0):
    /// which version of each operator it means is unknown, so it is refused, not imported as some version.
    @Test func aModelWithoutADefaultDomainOpsetIsRefused() throws {
        let bytes = try ONNXModelTests.edited { m in
            var custom = Onnx_OperatorSetIdProto()
            custom.domain = "com.example"; custom.version = 1
            m.opsetImport = [custom]
        }
        #expect(refusal(try ONNXModel(bytes: bytes))
                == "the model names no opset of the default domain (\"\" or ai.onnx); Loupe imports opsets 7 to 21 of the default domain")
    }

    /// ONNX Reshape takes its shape as an INT64 tensor; one of another type (INT32 here) is named as such,
    /// not reported as a reshape to [] (its values are not read).
    @Test func aReshapeWhoseShapeIsNotInt64IsRefusedByItsType() throws {
        let bytes = try ONNXModelTests.edited { m in
            m.graph.node[2] = ONNXModelTests.node("Reshape", ["r", "shape"], "f")
            var shape = Onnx_TensorProto()
            shape.name = "shape"; shape.dims = [2]; shape.dataType = 6   // INT32
            shape.int32Data = [0, -1]
            m.graph.initializer.append(shape)
        }
        #expect(refusal(try ONNXModel(bytes: bytes))
                == "node Reshape → f: the shape input 'shape' has element type 6; ONNX Reshape takes an INT64 shape tensor (type 7)")
    }
}
