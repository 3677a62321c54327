// Loupe network → ONNX model (opset 17), so a model trained (or imported) by Loupe runs in ONNX
// Runtime, Triton or anything else that reads ONNX. The graph keeps Loupe's interface: input
// `input` FP32 [N, H, W, C] (the model's normalized pixels, NHWC as the engine and the KServe v2
// endpoint take them), output FP32 [N, K]: `probabilities` with a final Softmax when the network
// ends in softmax, else `logits` (the last layer's raw output, as the engine's `outputs` gives it).
// Inside: Transpose to NCHW, Conv (HWIO weights → OIHW, strides, pads), MaxPool/AveragePool
// (strides, pads, count_include_pad 0), GlobalAveragePool, Relu/LeakyRelu/Sigmoid/Tanh/Clip, a
// Transpose back to NHWC before Flatten (so flattening walks (h, w, c) as the engine does and the
// dense weights stay as they are), Gemm.
import LoupeEngine

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
        var nodes: [(inout ProtoWriter) -> Void] = []
        var initializers: [(inout ProtoWriter) -> Void] = []
        var current = "input"
        var offset = 0
        var nchw = false
        var counter = 0
        func name(_ base: String) -> String { counter += 1; return "\(base)_\(counter)" }
        func addNode(_ op: String, _ inputs: [String], ints: [(String, [Int64])] = [], int: [(String, Int64)] = [],
                     floats: [(String, Float)] = []) -> String {
            let out = name(op.lowercased())
            let nodeName = out
            nodes.append { n in
                for i in inputs { n.string(1, i) }
                n.string(2, out); n.string(3, nodeName); n.string(4, op)
                for (k, v) in ints { n.message(5) { a in a.string(1, k); a.int64s(8, v); a.int(20, 7) } }
                for (k, v) in int { n.message(5) { a in a.string(1, k); a.int(3, v); a.int(20, 2) } }
                for (k, v) in floats { n.message(5) { a in a.string(1, k); a.float(2, v); a.int(20, 1) } }
            }
            return out
        }
        func addTensor(_ base: String, _ dims: [Int], _ values: [Float]) -> String {
            let tensorName = name(base)
            initializers.append { t in
                t.int64s(1, dims.map(Int64.init)); t.int(2, 1); t.string(8, tensorName)
                var raw = [UInt8](); raw.reserveCapacity(values.count * 4)
                for v in values { let b = v.bitPattern; raw += [UInt8(b & 0xFF), UInt8(b >> 8 & 0xFF), UInt8(b >> 16 & 0xFF), UInt8(b >> 24)] }
                t.bytes(9, raw)
            }
            return tensorName
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
            let tensorName = name(base)
            initializers.append { t in t.int64s(1, dims.map(Int64.init)); t.int(2, dataType); t.string(8, tensorName); t.bytes(9, raw) }
            return tensorName
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
        func resolved(_ padding: Padding, _ k: Int, _ s: Int, _ index: Int) throws(ImportError) -> (pads: [Int64], h: Int, w: Int) {
            guard let r = padding.resolve(height: h, width: w, kernelHeight: k, kernelWidth: k, stride: s) else {
                throw ImportError("layer \(index + 1): the window does not fit the \(h)×\(w) input")
            }
            return ([r.top, r.left, r.bottom, r.right].map(Int64.init), r.outHeight, r.outWidth)
        }
        var flatSize: Int? = nil
        for (index, layer) in architecture.layers.enumerated() {
            switch layer {
            case let .conv2d(filters, kernel, stride, padding, act):
                toNCHW()
                let count = kernel * kernel * c * filters
                guard offset + count + filters <= parameters.count else { throw ImportError("the parameters end inside layer \(index)") }
                var oihw = [Float](repeating: 0, count: count)
                for y in 0..<kernel { for x in 0..<kernel { for i in 0..<c { for o in 0..<filters {
                    oihw[((o * c + i) * kernel + y) * kernel + x] = parameters[offset + ((y * kernel + x) * c + i) * filters + o]
                } } } }
                var weight: String
                if let l = quantized.popFirst() {
                    qdqInput(l)
                    weight = qdqWeight("conv_w", [filters, c, kernel, kernel], oihw, scales: l.weightScales, axis: 0)
                } else {
                    weight = addTensor("conv_w", [filters, c, kernel, kernel], oihw)
                }
                let bias = addTensor("conv_b", [filters], Array(parameters[(offset + count)..<(offset + count + filters)]))
                offset += count + filters
                let r = try resolved(padding, kernel, stride, index)
                current = addNode("Conv", [current, weight, bias], ints: [("kernel_shape", [Int64(kernel), Int64(kernel)]), ("pads", r.pads),
                                                                          ("strides", [Int64(stride), Int64(stride)])])
                activation(act)
                (h, w, c) = (r.h, r.w, filters)
            case let .maxPool2d(pool, stride, padding), let .avgPool2d(pool, stride, padding):
                toNCHW()
                let s = stride ?? pool
                let r = try resolved(padding, pool, s, index)
                let isMax = if case .maxPool2d = layer { true } else { false }
                current = addNode(isMax ? "MaxPool" : "AveragePool", [current],
                                  ints: [("kernel_shape", [Int64(pool), Int64(pool)]), ("strides", [Int64(s), Int64(s)]), ("pads", r.pads)],
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
        if !endsInSoftmax { nodes.append { n in n.string(1, softmaxInput); n.string(2, outputName); n.string(3, "output"); n.string(4, "Identity") } }
        let inputShape = architecture.inputShape
        var m = ProtoWriter()
        m.int(1, 8)                                   // ir_version
        m.string(2, "loupe"); m.string(3, producerVersion)
        m.message(8) { o in o.string(1, ""); o.int(2, opset) }
        m.message(7) { g in
            for node in nodes { g.message(1, node) }
            if endsInSoftmax {
                g.message(1) { n in n.string(1, softmaxInput); n.string(2, outputName); n.string(3, "softmax"); n.string(4, "Softmax")
                    n.message(5) { a in a.string(1, "axis"); a.int(3, 1); a.int(20, 2) } }
            }
            g.string(2, "loupe")
            for t in initializers { g.message(5, t) }
            g.message(11, valueInfo("input", [nil] + inputShape.map { Optional($0) }))
            g.message(12, valueInfo(outputName, [nil, classes]))
        }
        return m.bytes
    }

    static func valueInfo(_ name: String, _ dims: [Int?]) -> (inout ProtoWriter) -> Void {
        { v in
            v.string(1, name)
            v.message(2) { t in t.message(1) { tt in
                tt.int(1, 1)
                tt.message(2) { s in for d in dims { s.message(1) { dim in if let d { dim.int(1, Int64(d)) } else { dim.string(2, "N") } } } }
            } }
        }
    }
}
