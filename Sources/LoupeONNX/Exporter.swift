// Loupe network → ONNX model (opset 17), so a model trained (or imported) by Loupe runs in ONNX
// Runtime, Triton or anything else that reads ONNX. The graph keeps Loupe's interface: input
// `input` FP32 [N, H, W, C] (the model's normalized pixels, NHWC as the engine and the KServe v2
// endpoint take them), output FP32 [N, K]: `probabilities` with a final Softmax when the network
// ends in softmax, else `logits` (the last layer's raw output, as the engine's `outputs` gives it).
// Inside: Transpose to NCHW, Conv (HWIO weights → OIHW, kernel_shape [kH, kW], strides [sH, sW], pads;
// a depthwise conv is Conv with group = C and weights [C, 1, kH, kW], a grouped conv Conv with group = G and
// weights [K, C/G, kH, kW]), MaxPool/AveragePool
// (strides, pads, count_include_pad 0), GlobalAveragePool, Relu/LeakyRelu/Sigmoid/Tanh/Clip, a
// Transpose back to NHWC before Flatten (so flattening walks (h, w, c) as the engine does and the
// dense weights stay as they are), Gemm. Written through swift-protobuf's generated messages.
import FoundationEssentials
import LoupeEngine
import SwiftProtobuf

public enum ONNXExporter {
    public static let opset: Int64 = 17

    /// With `quantization` (an int8 model, docs/model-format.md §12) the graph is ONNX QDQ: each conv/dense input
    /// goes through QuantizeLinear → DequantizeLinear (uint8, the layer's input scale and zero point) and each
    /// weight is an int8 initializer with per-output-channel DequantizeLinear; biases stay float32.
    public static func export(architecture: Architecture, parameters: [Float], producerVersion: String,
                              quantization: QuantizationParameters? = nil) throws(ImportError) -> [UInt8] {
        guard architecture.inputShape.count == 3 else {
            throw ImportError("the model's input shape \(architecture.inputShape) is not an image (H, W, C); export handles image models")
        }
        var (h, w, c) = (architecture.inputShape[0], architecture.inputShape[1], architecture.inputShape[2])
        var nodes: [Onnx_NodeProto] = []
        var initializers: [Onnx_TensorProto] = []
        var current = "input"
        var offset = 0
        var nchw = false
        var counter = 0
        func name(_ base: String) -> String { counter += 1; return "\(base)_\(counter)" }
        func addNode(_ op: String, _ inputs: [String], ints: [(String, [Int64])] = [], int: [(String, Int64)] = [],
                     floats: [(String, Float)] = []) -> String {
            let out = name(op.lowercased())
            var n = Onnx_NodeProto()
            n.input = inputs; n.output = [out]; n.name = out; n.opType = op
            n.attribute = ints.map { k, v in intsAttribute(k, v) } + int.map { k, v in intAttribute(k, v) }
                + floats.map { k, v in floatAttribute(k, v) }
            nodes.append(n)
            return out
        }
        func addTensor(_ base: String, _ dims: [Int], _ values: [Float]) -> String {
            var t = Onnx_TensorProto()
            t.name = name(base); t.dims = dims.map(Int64.init); t.dataType = Int32(ONNXTensor.float)
            var raw = [UInt8](); raw.reserveCapacity(values.count * 4)
            for v in values { let b = v.bitPattern; raw += [UInt8(b & 0xFF), UInt8(b >> 8 & 0xFF), UInt8(b >> 16 & 0xFF), UInt8(b >> 24)] }
            t.rawData = Data(raw)
            initializers.append(t)
            return t.name
        }
        func activation(_ a: Activation) {
            switch a {
            case .relu: current = addNode("Relu", [current])
            case let .leakyRelu(alpha): current = addNode("LeakyRelu", [current], floats: [("alpha", alpha)])
            case .sigmoid: current = addNode("Sigmoid", [current])
            case .tanh: current = addNode("Tanh", [current])
            case let .clip(lo, hi):
                let lower = addTensor("clip_min", [], [lo]), upper = addTensor("clip_max", [], [hi])
                current = addNode("Clip", [current, lower, upper])
            case .linear, .softmax: break   // the final Softmax is added once at the end
            }
        }
        // QDQ (int8 models): the next conv/dense layer's quantization, in order.
        var quantized = quantization?.layers[...] ?? []
        func addRaw(_ base: String, _ dims: [Int], dataType: Int64, _ raw: [UInt8]) -> String {
            var t = Onnx_TensorProto()
            t.name = name(base); t.dims = dims.map(Int64.init); t.dataType = Int32(dataType); t.rawData = Data(raw)
            initializers.append(t)
            return t.name
        }
        /// QuantizeLinear → DequantizeLinear of the current activation with the layer's input parameters.
        func qdqInput(_ l: QuantizedLayerParameters) {
            let scale = addTensor("x_scale", [], [l.inputScale])
            let zero = addRaw("x_zero_point", [], dataType: 2, [UInt8(l.inputZeroPoint)])
            current = addNode("DequantizeLinear", [addNode("QuantizeLinear", [current, scale, zero]), scale, zero])
        }
        /// An int8 weight (values q · scale[o] along `axis`) as initializer + per-channel DequantizeLinear.
        func qdqWeight(_ base: String, _ dims: [Int], _ values: [Float], scales: [Float], axis: Int) -> String {
            let inner = dims[(axis + 1)...].reduce(1, *)
            let raw = values.enumerated().map { i, v in UInt8(bitPattern: QuantizationMath.quantizeWeight(v, scale: scales[(i / inner) % scales.count])) }
            let q = addRaw(base + "_int8", dims, dataType: 3, raw)
            let scale = addTensor(base + "_scale", [scales.count], scales)
            let zero = addRaw(base + "_zero_point", [scales.count], dataType: 3, [UInt8](repeating: 0, count: scales.count))
            return addNode("DequantizeLinear", [q, scale, zero], int: [("axis", Int64(axis))])
        }
        func toNCHW() {
            if !nchw { current = addNode("Transpose", [current], ints: [("perm", [0, 3, 1, 2])]); nchw = true }
        }
        func resolved(_ padding: Padding, _ k: Size2D, _ s: Size2D, _ index: Int) throws(ImportError) -> (pads: [Int64], h: Int, w: Int) {
            guard let r = padding.resolve(height: h, width: w, kernel: k, stride: s) else {
                throw ImportError("layer \(index + 1): the window does not fit the \(h)×\(w) input")
            }
            return ([r.top, r.left, r.bottom, r.right].map(Int64.init), r.outHeight, r.outWidth)
        }
        func pair(_ s: Size2D) -> [Int64] { [Int64(s.height), Int64(s.width)] }
        var flatSize: Int? = nil
        for (index, layer) in architecture.layers.enumerated() {
            switch layer {
            case .conv2d, .groupedConv2d:
                // A grouped conv is Conv with group = G and weights [K, C/G, kH, kW] (from (kH, kW, C/G, K)); conv2d is group 1.
                let (filters, groups, kernel, stride, padding, act): (Int, Int, Size2D, Size2D, Padding, Activation) = switch layer {
                case let .groupedConv2d(f, g, k, s, p, a): (f, g, k, s, p, a)
                case let .conv2d(f, k, s, p, a): (f, 1, k, s, p, a)
                default: preconditionFailure("unreachable")
                }
                toNCHW()
                guard groups == 1 || quantization == nil else { throw ImportError("layer \(index + 1): grouped convolution has no int8 export") }
                let (kh, kw, cg) = (kernel.height, kernel.width, c / max(1, groups))
                let count = kh * kw * cg * filters
                guard offset + count + filters <= parameters.count else { throw ImportError("the parameters end inside layer \(index)") }
                var oihw = [Float](repeating: 0, count: count)
                for y in 0..<kh { for x in 0..<kw { for i in 0..<cg { for o in 0..<filters {
                    oihw[((o * cg + i) * kh + y) * kw + x] = parameters[offset + ((y * kw + x) * cg + i) * filters + o]
                } } } }
                var weight: String
                if let l = quantized.popFirst() {
                    qdqInput(l)
                    weight = qdqWeight("conv_w", [filters, cg, kh, kw], oihw, scales: l.weightScales, axis: 0)
                } else {
                    weight = addTensor("conv_w", [filters, cg, kh, kw], oihw)
                }
                let bias = addTensor("conv_b", [filters], Array(parameters[(offset + count)..<(offset + count + filters)]))
                offset += count + filters
                let r = try resolved(padding, kernel, stride, index)
                current = addNode("Conv", [current, weight, bias], ints: [("kernel_shape", pair(kernel)), ("pads", r.pads),
                                                                          ("strides", pair(stride))],
                                  int: groups > 1 ? [("group", Int64(groups))] : [])
                activation(act)
                (h, w, c) = (r.h, r.w, filters)
            case let .depthwiseConv2d(kernel, stride, padding, act):
                // ONNX Conv with group = C and weights [C, 1, kH, kW] (from (kH, kW, C, 1)).
                toNCHW()
                guard quantization == nil else { throw ImportError("layer \(index + 1): depthwise convolution has no int8 export") }
                let (kh, kw) = (kernel.height, kernel.width)
                let count = kh * kw * c
                guard offset + count + c <= parameters.count else { throw ImportError("the parameters end inside layer \(index)") }
                var weights = [Float](repeating: 0, count: count)
                for y in 0..<kh { for x in 0..<kw { for ch in 0..<c {
                    weights[(ch * kh + y) * kw + x] = parameters[offset + (y * kw + x) * c + ch]
                } } }
                let weight = addTensor("dwconv_w", [c, 1, kh, kw], weights)
                let bias = addTensor("dwconv_b", [c], Array(parameters[(offset + count)..<(offset + count + c)]))
                offset += count + c
                let r = try resolved(padding, kernel, stride, index)
                current = addNode("Conv", [current, weight, bias], ints: [("kernel_shape", pair(kernel)), ("pads", r.pads),
                                                                          ("strides", pair(stride))], int: [("group", Int64(c))])
                activation(act)
                (h, w) = (r.h, r.w)
            case let .maxPool2d(pool, stride, padding), let .avgPool2d(pool, stride, padding):
                toNCHW()
                let s = stride ?? pool
                let r = try resolved(padding, pool, s, index)
                let isMax = if case .maxPool2d = layer { true } else { false }
                current = addNode(isMax ? "MaxPool" : "AveragePool", [current],
                                  ints: [("kernel_shape", pair(pool)), ("strides", pair(s)), ("pads", r.pads)],
                                  int: isMax ? [] : [("count_include_pad", 0)])
                (h, w) = (r.h, r.w)
            case .globalAvgPool2d:
                toNCHW()
                current = addNode("GlobalAveragePool", [current])
                (h, w) = (1, 1)
            case let .activation(a):
                activation(a)
            case .flatten:
                if nchw { current = addNode("Transpose", [current], ints: [("perm", [0, 2, 3, 1])]); nchw = false }
                current = addNode("Flatten", [current], int: [("axis", 1)])
                flatSize = h * w * c
            case let .dense(units, act):
                guard let n = flatSize else { throw ImportError("dense layer \(index) has no flat input") }
                guard offset + n * units + units <= parameters.count else { throw ImportError("the parameters end inside layer \(index)") }
                var weight: String
                if let l = quantized.popFirst() {
                    qdqInput(l)
                    weight = qdqWeight("dense_w", [n, units], Array(parameters[offset..<(offset + n * units)]), scales: l.weightScales, axis: 1)
                } else {
                    weight = addTensor("dense_w", [n, units], Array(parameters[offset..<(offset + n * units)]))
                }
                let bias = addTensor("dense_b", [units], Array(parameters[(offset + n * units)..<(offset + n * units + units)]))
                offset += n * units + units
                current = addNode("Gemm", [current, weight, bias])
                activation(act)
                flatSize = units
            case .dropout:
                break
            }
        }
        guard let classes = flatSize, offset == parameters.count else {
            throw ImportError("the network does not end in a dense layer, or its parameters do not add up (\(offset) of \(parameters.count) used)")
        }
        let softmaxInput = current
        let endsInSoftmax = architecture.layers.last.map { layer -> Bool in
            switch layer {
            case .dense(_, .softmax), .activation(.softmax): return true
            default: return false
            }
        } ?? false
        let outputName = endsInSoftmax ? "probabilities" : "logits"
        var last = Onnx_NodeProto()
        last.input = [softmaxInput]; last.output = [outputName]
        if endsInSoftmax {
            last.name = "softmax"; last.opType = "Softmax"; last.attribute = [intAttribute("axis", 1)]
        } else {
            last.name = "output"; last.opType = "Identity"
        }
        let inputShape = architecture.inputShape
        var graph = Onnx_GraphProto()
        graph.name = "loupe"
        graph.node = nodes + [last]
        graph.initializer = initializers
        graph.input = [valueInfo("input", [nil] + inputShape.map { Optional($0) })]
        graph.output = [valueInfo(outputName, [nil, classes])]
        var m = Onnx_ModelProto()
        m.irVersion = 8
        m.producerName = "loupe"; m.producerVersion = producerVersion
        var opsetImport = Onnx_OperatorSetIdProto()
        opsetImport.domain = ""; opsetImport.version = opset
        m.opsetImport = [opsetImport]
        m.graph = graph
        do {
            return try m.serializedBytes()
        } catch {
            throw ImportError("the ONNX model could not be serialized: \(error)")
        }
    }

    static func intAttribute(_ name: String, _ value: Int64) -> Onnx_AttributeProto {
        var a = Onnx_AttributeProto()
        a.name = name; a.type = .int; a.i = value
        return a
    }

    static func intsAttribute(_ name: String, _ values: [Int64]) -> Onnx_AttributeProto {
        var a = Onnx_AttributeProto()
        a.name = name; a.type = .ints; a.ints = values
        return a
    }

    static func floatAttribute(_ name: String, _ value: Float) -> Onnx_AttributeProto {
        var a = Onnx_AttributeProto()
        a.name = name; a.type = .float; a.f = value
        return a
    }

    /// A FP32 tensor's name and shape; nil dimensions are the symbolic batch "N".
    static func valueInfo(_ name: String, _ dims: [Int?]) -> Onnx_ValueInfoProto {
        var shape = Onnx_TensorShapeProto()
        shape.dim = dims.map { d in
            var dim = Onnx_TensorShapeProto.Dimension()
            if let d { dim.dimValue = Int64(d) } else { dim.dimParam = "N" }
            return dim
        }
        var tensor = Onnx_TypeProto.Tensor()
        tensor.elemType = Int32(ONNXTensor.float)
        tensor.shape = shape
        var type = Onnx_TypeProto()
        type.tensorType = tensor
        var v = Onnx_ValueInfoProto()
        v.name = name; v.type = type
        return v
    }
}
