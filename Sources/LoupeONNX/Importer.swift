// ONNX graph → Loupe architecture + parameters. The graph must be a chain (each node takes the
// previous node's output) made of operators the engine can run exactly; anything else is refused
// with a sentence naming the node, its operator and what is supported — never a wrong answer.
//
// Layout: the engine runs NHWC. ONNX convolutions are NCHW, so the importer tracks which layout
// the current tensor has in the graph (NHWC at an input declared [N,H,W,C], NCHW after a
// Transpose [0,3,1,2] or at an input declared [N,C,H,W]); convolution weights are turned from
// OIHW to HWIO (a depthwise Conv's [C,1,kH,kW] to (kH,kW,C,1)), and the first dense layer after flattening an NCHW tensor has its rows permuted
// from (c, h, w) to the engine's (h, w, c) order. Batch-norm is folded into the conv or dense
// layer before it; Relu is merged into the layer it follows (also across max pooling and
// flattening, with which it commutes); LeakyRelu, Sigmoid, Tanh and Clip are merged into a conv or
// dense layer they directly follow, else become `activation` layers. A graph may end in Softmax
// (probabilities) or in raw scores (logits, kept as logits by the engine).
import LoupeEngine

public struct ImportError: Error, Equatable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// What an import produced.
public struct ImportedNetwork: Sendable {
    public var architecture: Architecture
    public var parameters: [Float]
    public var inputName: String
    public var outputName: String
    /// How the graph's input is laid out: "NHWC" or "NCHW".
    public var inputLayout: String
    public var opset: Int64
}

public enum ONNXImporter {
    public static let supportedOperators = ["Conv", "BatchNormalization", "Relu", "LeakyRelu", "Sigmoid", "Tanh", "Clip", "MaxPool",
                                            "AveragePool", "GlobalAveragePool", "Flatten", "Reshape", "Transpose",
                                            "Gemm", "MatMul", "Add", "Softmax", "Dropout", "Identity"]
    static var supported: String { supportedOperators.joined(separator: ", ") }

    /// The attributes the importer reads, with the type each must have (the same in every
    /// supported operator): one stored with another type is refused, never skipped for its default.
    static let attributeTypes: [String: String] = [
        "kernel_shape": "INTS", "strides": "INTS", "pads": "INTS", "dilations": "INTS", "perm": "INTS",
        "group": "INT", "axis": "INT", "transA": "INT", "transB": "INT", "ceil_mode": "INT", "storage_order": "INT",
        "count_include_pad": "INT", "training_mode": "INT",
        "alpha": "FLOAT", "beta": "FLOAT", "epsilon": "FLOAT", "min": "FLOAT", "max": "FLOAT",
        "auto_pad": "STRING",
    ]

    /// The default largest image side (`models.max_input_side`, Config/loupe.yaml).
    public static let defaultMaxInputSide = 256

    /// `maxInputSide`: the largest image height or width accepted (the serving configuration's
    /// `models.max_input_side`, so an imported model is one the server will load).
    public static func importModel(_ model: ONNXModel, maxInputSide: Int = defaultMaxInputSide) throws(ImportError) -> ImportedNetwork {
        guard model.opset != 0 else {   // no default-domain entry in opset_import: which operator versions it means is unknown
            throw ImportError("the model names no opset of the default domain (\"\" or ai.onnx); Loupe imports opsets 7 to 21 of the default domain")
        }
        guard (7...21).contains(model.opset) else {
            throw ImportError("the model uses opset \(model.opset); Loupe imports opsets 7 to 21 of the default domain")
        }
        let graphInputs = model.inputs.filter { model.initializers[$0.name] == nil }
        guard graphInputs.count == 1, let input = graphInputs.first else {
            throw ImportError("the graph has \(graphInputs.count) inputs; Loupe imports graphs with exactly one input (the image batch)")
        }
        guard model.outputs.count == 1, let output = model.outputs.first else {
            throw ImportError("the graph has \(model.outputs.count) outputs; Loupe imports graphs with exactly one output (the class scores)")
        }
        guard input.elementType == ONNXTensor.float else {
            throw ImportError("input '\(input.name)' has element type \(input.elementType); Loupe imports FP32 inputs (type 1)")
        }
        guard input.shape.count == 4, let d1 = input.shape[1], let d2 = input.shape[2], let d3 = input.shape[3] else {
            throw ImportError("input '\(input.name)' has shape \(input.shape.map { $0.map(String.init) ?? "?" }); Loupe imports image inputs [N,C,H,W] or [N,H,W,C] with fixed H, W, C")
        }
        var b = Builder(model: model)
        let firstIsConv = model.nodes.first?.opType == "Conv"
        if [1, 3].contains(d1) && (![1, 3].contains(d3) || firstIsConv) {
            b.shape = (d2, d3, d1); b.nchw = true
        } else if [1, 3].contains(d3) {
            b.shape = (d1, d2, d3); b.nchw = false
        } else {
            throw ImportError("input '\(input.name)' has shape [N,\(d1),\(d2),\(d3)]: neither [N,C,H,W] nor [N,H,W,C] with C = 1 or 3")
        }
        let inputShape = [b.shape.h, b.shape.w, b.shape.c]
        let inputLayout = b.nchw ? "NCHW" : "NHWC"
        guard b.shape.h <= maxInputSide && b.shape.w <= maxInputSide else {
            throw ImportError("input '\(input.name)' is \(b.shape.h)×\(b.shape.w); Loupe imports images up to \(maxInputSide)×\(maxInputSide) (models.max_input_side; raise it in the configuration to import larger ones)")
        }
        b.current = input.name
        for node in model.nodes { try b.apply(node) }
        guard b.current == output.name else {
            throw ImportError("the graph's output '\(output.name)' is not the end of its chain of nodes (which ends at '\(b.current)')")
        }
        guard b.flat != nil else {
            throw ImportError("the graph's output is an image tensor (\(b.shape.h)×\(b.shape.w)×\(b.shape.c)), not class scores; Loupe imports classifiers whose output is [N, classes] (add Flatten)")
        }
        let architecture = Architecture(inputShape: inputShape, layers: b.layers)
        do {
            _ = try Sequential(architecture: architecture, parameters: b.parameters)
        } catch {
            throw ImportError("the engine cannot build the imported network: \(error)")
        }
        return ImportedNetwork(architecture: architecture, parameters: b.parameters, inputName: input.name, outputName: output.name,
                               inputLayout: inputLayout, opset: model.opset)
    }

    struct Builder {
        let model: ONNXModel
        var current = ""
        /// Spatial shape (h, w, c) while the tensor is an image; `flat` once flattened.
        var shape = (h: 0, w: 0, c: 0)
        var flat: Int? = nil
        var nchw = false
        /// After flattening an NCHW tensor of c > 1 channels: the (h, w, c) of that tensor, so the
        /// next dense layer's rows are permuted from (c, h, w) order.
        var flattenedFromNCHW: (h: Int, w: Int, c: Int)? = nil
        var layers: [LayerSpec] = []
        var parameters: [Float] = []
        /// Index in `layers` of the last conv/dense layer, and where its weights and bias start in
        /// `parameters` (the bias follows the weights).
        var lastParametric: (layer: Int, weightStart: Int, biasOffset: Int, units: Int)? = nil
        /// Only elementwise-commuting layers (max pool, flatten, dropout) since the last parametric one.
        var activationMayMerge = false
        var endsInSoftmax = false

        init(model: ONNXModel) { self.model = model }

        func refuse(_ node: ONNXNode, _ why: String) -> ImportError {
            ImportError("\(node.label): \(why)")
        }

        func initializer(_ node: ONNXNode, _ index: Int) throws(ImportError) -> ONNXTensor {
            guard index < node.inputs.count, !node.inputs[index].isEmpty else { throw refuse(node, "input \(index) is missing") }
            let name = node.inputs[index]
            guard let t = model.initializers[name] else {
                throw refuse(node, "input '\(name)' must be a constant initializer (weights computed at run time are not supported)")
            }
            return t
        }

        mutating func apply(_ node: ONNXNode) throws(ImportError) {
            guard node.domain.isEmpty || node.domain == "ai.onnx" else { throw refuse(node, "operator domain '\(node.domain)' is not supported; Loupe imports the default ONNX domain: \(ONNXImporter.supported)") }
            guard node.inputs.first == current else {
                throw refuse(node, "it does not take the previous node's output '\(current)': Loupe imports chains of nodes (one path from input to output)")
            }
            guard !endsInSoftmax else { throw refuse(node, "nothing may follow the final Softmax") }
            // An attribute read below but stored with another type would be skipped and its default used.
            for (key, value) in node.attributes.sorted(by: { $0.key < $1.key }) {
                guard let expected = ONNXImporter.attributeTypes[key], value.typeName != expected else { continue }
                let stored = value.typeName.map { "is \($0)" } ?? "has no type (or one Loupe does not read)"
                throw refuse(node, "attribute '\(key)' \(stored); Loupe reads it as \(expected)")
            }
            let out = node.outputs.first ?? ""
            switch node.opType {
            case "Identity", "Dropout":
                break
            case "Transpose":
                let perm = node.ints("perm") ?? []
                guard flat == nil else { throw refuse(node, "a transpose of a flat tensor is not supported") }
                if perm == [0, 3, 1, 2] && !nchw { nchw = true }
                else if perm == [0, 2, 3, 1] && nchw { nchw = false }
                else { throw refuse(node, "perm \(perm) on a \(nchw ? "NCHW" : "NHWC") tensor; Loupe imports the NHWC↔NCHW pairs [0,3,1,2] and [0,2,3,1]") }
            case "Reshape":
                let shapeTensor = try initializer(node, 1)
                guard shapeTensor.dataType == ONNXTensor.int64 else {
                    throw refuse(node, "the shape input '\(shapeTensor.name)' has element type \(shapeTensor.dataType); ONNX Reshape takes an INT64 shape tensor (type 7)")
                }
                let target = shapeTensor.int64s
                if flat == nil, target.count == 2, target[1] == -1 || Int(target[1]) == shape.h * shape.w * shape.c {
                    flatten()
                } else if flat == nil, shape.c == 1, target.count == 4,
                          (nchw ? target.dropFirst() == [Int64(shape.h), Int64(shape.w), 1] : target.dropFirst() == [1, Int64(shape.h), Int64(shape.w)]) {
                    nchw.toggle()   // with one channel, NHWC and NCHW hold the same bytes
                } else {
                    throw refuse(node, "reshape to \(target) is not supported; Loupe imports Reshape to [N,-1] (flatten) and the one-channel NHWC↔NCHW reshape")
                }
            case "Flatten":
                guard (node.int("axis") ?? 1) == 1 else { throw refuse(node, "axis \(node.int("axis")!) is not supported; Loupe imports Flatten with axis 1") }
                if flat == nil { flatten() }
            case "Conv": try conv(node)
            case "BatchNormalization": try batchNorm(node)
            case "Relu":
                if let last = lastParametric, activationMayMerge || layerIsLast(last.layer), activationOf(last.layer) == .linear {
                    try setActivation(.relu, on: last.layer, node)
                } else {
                    appendActivation(.relu)
                }
            case "LeakyRelu":
                let alpha = node.float("alpha") ?? 0.01
                guard alpha >= 0, alpha.isFinite else { throw refuse(node, "alpha \(alpha) is not supported; Loupe imports LeakyRelu with a finite alpha ≥ 0") }
                try activation(.leakyRelu(alpha: alpha), node)
            case "Sigmoid": try activation(.sigmoid, node)
            case "Tanh": try activation(.tanh, node)
            case "Clip": try clip(node)
            case "AveragePool": try pool(node, max: false)
            case "GlobalAveragePool":
                guard flat == nil else { throw refuse(node, "pooling after flattening is not supported") }
                guard nchw || shape.c == 1 else { throw refuse(node, "the tensor is NHWC here; ONNX pooling takes NCHW (add Transpose [0,3,1,2])") }
                layers.append(.globalAvgPool2d)
                shape = (1, 1, shape.c)
                activationMayMerge = false
            case "MaxPool":
                guard node.outputs.count <= 1 || node.outputs[1].isEmpty else { throw refuse(node, "the Indices output of MaxPool is not supported") }
                try pool(node, max: true)
            case "Gemm": try gemm(node)
            case "MatMul": try matMul(node)
            case "Add":
                // Only into a layer without an activation yet: Relu(x·W) + b is not Relu(x·W + b).
                guard let last = lastParametric, layerIsLast(last.layer), case .dense(_, .linear) = layers[last.layer] else {
                    throw refuse(node, "an Add must directly follow a MatMul or Gemm (as its bias, before any activation); other additions are not supported")
                }
                let bias = try initializer(node, 1)
                guard bias.count == last.units, bias.dataType == ONNXTensor.float else {
                    throw refuse(node, "the bias has \(bias.count) values for \(last.units) units")
                }
                for k in 0..<last.units { parameters[last.biasOffset + k] += bias.floats[k] }
            case "Softmax":
                guard flat != nil else { throw refuse(node, "Softmax must come after the image is flattened (it is over the classes)") }
                let axis = node.int("axis") ?? (model.opset >= 13 ? -1 : 1)
                guard axis == 1 || axis == -1 else { throw refuse(node, "axis \(axis) is not supported; Loupe imports Softmax over the classes (axis 1 or -1)") }
                if let last = lastParametric, layerIsLast(last.layer), case .dense(_, .linear) = layers[last.layer] {
                    try setActivation(.softmax, on: last.layer, node)
                } else {
                    layers.append(.activation(.softmax))
                }
                endsInSoftmax = true
            default:
                throw refuse(node, "operator \(node.opType) is not supported; Loupe imports \(ONNXImporter.supported)")
            }
            current = out
        }

        func layerIsLast(_ index: Int) -> Bool { index == layers.count - 1 }

        mutating func flatten() {
            if nchw && shape.c > 1 && shape.h * shape.w > 1 { flattenedFromNCHW = shape }
            flat = shape.h * shape.w * shape.c
            layers.append(.flatten)
        }

        mutating func setActivation(_ activation: Activation, on index: Int, _ node: ONNXNode) throws(ImportError) {
            switch layers[index] {
            case let .conv2d(filters, kernel, stride, padding, a):
                guard a == .linear else { throw refuse(node, "the layer before already has activation \(a)") }
                layers[index] = .conv2d(filters: filters, kernel: kernel, stride: stride, padding: padding, activation: activation)
            case let .depthwiseConv2d(kernel, stride, padding, a):
                guard a == .linear else { throw refuse(node, "the layer before already has activation \(a)") }
                layers[index] = .depthwiseConv2d(kernel: kernel, stride: stride, padding: padding, activation: activation)
            case let .groupedConv2d(filters, groups, kernel, stride, padding, a):
                guard a == .linear else { throw refuse(node, "the layer before already has activation \(a)") }
                layers[index] = .groupedConv2d(filters: filters, groups: groups, kernel: kernel, stride: stride, padding: padding, activation: activation)
            case let .dense(units, a):
                guard a == .linear else { throw refuse(node, "the layer before already has activation \(a)") }
                layers[index] = .dense(units: units, activation: activation)
            default: throw refuse(node, "no conv or dense layer to attach it to")
            }
        }

        /// Conv: any kH×kW kernel, strides (sH, sW), pads or auto_pad, dilation 1; group 1, group = channels
        /// with one filter per group (depthwise), or any other group dividing the channels and filters (grouped).
        mutating func conv(_ node: ONNXNode) throws(ImportError) {
            guard flat == nil, nchw else {
                throw refuse(node, flat != nil ? "a Conv after flattening is not supported" : "the tensor is NHWC here; ONNX Conv takes NCHW (add Transpose [0,3,1,2])")
            }
            let w = try initializer(node, 1)
            guard w.dataType == ONNXTensor.float, w.dims.count == 4 else { throw refuse(node, "weights of shape \(w.dims); expected [F, C, kH, kW] floats") }
            let (f, c, kh, kw) = (w.dims[0], w.dims[1], w.dims[2], w.dims[3])
            guard (node.ints("dilations") ?? [1, 1]).allSatisfy({ $0 == 1 }) else {
                throw refuse(node, "dilations \(node.ints("dilations")!) are not supported; Loupe imports Conv with dilation 1 only")
            }
            let group = Int(node.int("group") ?? 1)
            // Depthwise: one channel and one filter per group; other groups > 1: a grouped convolution.
            let depthwise = group != 1 && group == shape.c && c == 1 && f == shape.c
            if group == 1 {
                guard c == shape.c else { throw refuse(node, "weights for \(c) input channels, the tensor has \(shape.c)") }
            } else if !depthwise {
                guard group > 1, shape.c % group == 0, f % group == 0, c * group == shape.c else {
                    throw refuse(node, "group \(group) with weights \(w.dims) on \(shape.c) channels is not supported; a grouped Conv needs a group that divides the input channels and the filters, and weights [F, C / group, kH, kW] (here [\(f), \(group > 0 ? shape.c / group : 0), kH, kW])")
                }
            }
            guard kh >= 1, kw >= 1, kh <= 256, kw <= 256 else { throw refuse(node, "a \(kh)×\(kw) kernel is not supported (sides 1 to 256)") }
            if let ks = node.ints("kernel_shape"), ks != [Int64(kh), Int64(kw)] {
                throw refuse(node, "kernel_shape \(ks) disagrees with the weights' \(kh)×\(kw)")
            }
            let kernel = Size2D(kh, kw)
            let stride = try strides(node)
            let padding = try padding(node, kernel: kernel, stride: stride)
            guard let r = padding.resolve(height: shape.h, width: shape.w, kernel: kernel, stride: stride),
                  max(r.top, r.bottom) < kh, max(r.left, r.right) < kw else {
                throw refuse(node, "the \(kh)×\(kw) kernel with stride \(stride) and \(padding) padding does not fit the \(shape.h)×\(shape.w) image (pads must be smaller than the kernel)")
            }
            var bias = [Float](repeating: 0, count: f)
            if node.inputs.count > 2, !node.inputs[2].isEmpty {
                let bt = try initializer(node, 2)
                guard bt.count == f, bt.dataType == ONNXTensor.float else { throw refuse(node, "bias of \(bt.count) values for \(f) filters") }
                bias = bt.floats
            }
            // OIHW → HWIO (depthwise: [C, 1, kH, kW] → (kH, kW, C, 1), the same loop with one input channel).
            let outputs = depthwise ? 1 : f, inputs = depthwise ? f : c
            var hwio = [Float](repeating: 0, count: w.count)
            for o in 0..<f { for i in 0..<c { for y in 0..<kh { for x in 0..<kw {
                let channel = depthwise ? o : i, filter = depthwise ? 0 : o
                hwio[((y * kw + x) * inputs + channel) * outputs + filter] = w.floats[((o * c + i) * kh + y) * kw + x]
            } } } }
            // (A grouped Conv's [F, C/G, kH, kW] becomes (kH, kW, C/G, F) by the same loop: Keras's grouped layout.)
            layers.append(depthwise ? .depthwiseConv2d(kernel: kernel, stride: stride, padding: padding, activation: .linear)
                          : group > 1 ? .groupedConv2d(filters: f, groups: group, kernel: kernel, stride: stride, padding: padding, activation: .linear)
                          : .conv2d(filters: f, kernel: kernel, stride: stride, padding: padding, activation: .linear))
            let weightStart = parameters.count
            parameters += hwio
            lastParametric = (layers.count - 1, weightStart, parameters.count, f)
            parameters += bias
            activationMayMerge = true
            shape = (r.outHeight, r.outWidth, f)
        }

        mutating func batchNorm(_ node: ONNXNode) throws(ImportError) {
            guard let last = lastParametric, layerIsLast(last.layer), activationOf(last.layer) == .linear else {
                throw refuse(node, "BatchNormalization must directly follow a Conv or Gemm, into which it is folded")
            }
            guard flat != nil || nchw || shape.c == 1 else {
                throw refuse(node, "the tensor is NHWC here; ONNX BatchNormalization normalizes axis 1 as the channels (NCHW)")
            }
            guard (node.int("training_mode") ?? 0) == 0 else {
                throw refuse(node, "training_mode \(node.int("training_mode")!) is not supported; Loupe imports BatchNormalization in inference mode (training_mode 0, the running mean and variance)")
            }
            let gamma = try initializer(node, 1), beta = try initializer(node, 2), mean = try initializer(node, 3), variance = try initializer(node, 4)
            let n = last.units
            for t in [gamma, beta, mean, variance] where t.count != n || t.dataType != ONNXTensor.float {
                throw refuse(node, "'\(t.name)' has \(t.count) values for \(n) channels")
            }
            let epsilon = node.float("epsilon") ?? 1e-5
            let weightStart = last.weightStart
            // Per output channel k: W' = W·s, b' = (b − mean)·s + beta, s = gamma / sqrt(var + eps).
            // Output channels are the fastest-varying index of both HWIO and (in, out) weights.
            for k in 0..<n {
                let s = gamma.floats[k] / (variance.floats[k] + epsilon).squareRoot()
                var i = weightStart + k
                while i < last.biasOffset { parameters[i] *= s; i += n }
                parameters[last.biasOffset + k] = (parameters[last.biasOffset + k] - mean.floats[k]) * s + beta.floats[k]
            }
        }

        /// MaxPool / AveragePool: any kH×kW window, strides (sH, sW), explicit pads or auto_pad, no dilation or ceil mode.
        mutating func pool(_ node: ONNXNode, max isMax: Bool) throws(ImportError) {
            guard flat == nil else { throw refuse(node, "pooling after flattening is not supported") }
            guard nchw || shape.c == 1 else { throw refuse(node, "the tensor is NHWC here; ONNX pooling takes NCHW (add Transpose [0,3,1,2])") }
            let window = node.ints("kernel_shape") ?? []
            guard window.count == 2, window.allSatisfy({ $0 >= 1 && $0 <= 256 }) else {
                throw refuse(node, "kernel_shape \(window) is not supported; Loupe imports 2-D windows with sides 1 to 256")
            }
            guard (node.int("ceil_mode") ?? 0) == 0 else { throw refuse(node, "ceil_mode 1 is not supported (floor only)") }
            guard (node.ints("dilations") ?? [1, 1]).allSatisfy({ $0 == 1 }) else {
                throw refuse(node, "dilations \(node.ints("dilations")!) are not supported; Loupe imports pooling with dilation 1 only")
            }
            guard (node.int("storage_order") ?? 0) == 0 else { throw refuse(node, "storage_order 1 is not supported") }
            let k = Size2D(Int(window[0]), Int(window[1]))
            let stride = try strides(node)
            let padding = try padding(node, kernel: k, stride: stride)
            guard let r = padding.resolve(height: shape.h, width: shape.w, kernel: k, stride: stride),
                  Swift.max(r.top, r.bottom) < k.height, Swift.max(r.left, r.right) < k.width else {
                throw refuse(node, "the \(k.area) window with stride \(stride) and \(padding) padding does not fit the \(shape.h)×\(shape.w) image (pads must be smaller than the window)")
            }
            if !isMax, (node.int("count_include_pad") ?? 0) != 0, r.top + r.left + r.bottom + r.right != 0 {
                throw refuse(node, "count_include_pad 1 with padding is not supported; Loupe averages over the cells inside the image (count_include_pad 0)")
            }
            let s: Size2D? = stride == k ? nil : stride
            layers.append(isMax ? .maxPool2d(pool: k, stride: s, padding: padding) : .avgPool2d(pool: k, stride: s, padding: padding))
            shape = (r.outHeight, r.outWidth, shape.c)
            // ReLU commutes with max pooling, not with averaging.
            if !isMax { activationMayMerge = false }
        }

        /// Strides (sH, sW), default 1.
        func strides(_ node: ONNXNode) throws(ImportError) -> Size2D {
            let strides = node.ints("strides") ?? [1, 1]
            guard strides.count == 2, strides.allSatisfy({ $0 >= 1 && $0 <= 256 }) else {
                throw refuse(node, "strides \(strides) are not supported; Loupe imports two strides from 1 to 256")
            }
            return Size2D(Int(strides[0]), Int(strides[1]))
        }

        /// `pads` / `auto_pad` as an engine padding for a kH×kW window with strides (sH, sW) over the current image.
        func padding(_ node: ONNXNode, kernel k: Size2D, stride s: Size2D) throws(ImportError) -> Padding {
            let autoPad = node.string("auto_pad") ?? "NOTSET"
            let (h, w) = (shape.h, shape.w)
            switch autoPad {
            case "VALID": return .valid
            case "SAME_UPPER": return .same
            case "SAME_LOWER":
                // The extra cell of an odd total goes to the top/left.
                guard let r = Padding.same.resolve(height: h, width: w, kernel: k, stride: s) else {
                    throw refuse(node, "the window does not fit the \(h)×\(w) image")
                }
                return .explicit(top: r.bottom, left: r.right, bottom: r.top, right: r.left)
            case "NOTSET":
                let pads = node.ints("pads") ?? [0, 0, 0, 0]
                guard pads.count == 4, pads.allSatisfy({ $0 >= 0 }), pads[0] < Int64(k.height), pads[2] < Int64(k.height),
                      pads[1] < Int64(k.width), pads[3] < Int64(k.width) else {
                    throw refuse(node, "pads \(pads) are not supported; Loupe imports 4 pads [top, left, bottom, right], each smaller than the \(k.area) window")
                }
                // ONNX orders pads [top, left, bottom, right] (x1_begin, x2_begin, x1_end, x2_end).
                let explicit = Padding.explicit(top: Int(pads[0]), left: Int(pads[1]), bottom: Int(pads[2]), right: Int(pads[3]))
                if pads.allSatisfy({ $0 == 0 }) { return .valid }
                if let a = Padding.same.resolve(height: h, width: w, kernel: k, stride: s),
                   [a.top, a.left, a.bottom, a.right] == pads.map({ Int($0) }) { return .same }
                return explicit
            default:
                throw refuse(node, "auto_pad \(autoPad) is not supported; Loupe imports NOTSET (with pads), VALID, SAME_UPPER and SAME_LOWER")
            }
        }

        func activationOf(_ index: Int) -> Activation? {
            switch layers[index] {
            case let .conv2d(_, _, _, _, a), let .depthwiseConv2d(_, _, _, a), let .groupedConv2d(_, _, _, _, _, a), let .dense(_, a): return a
            default: return nil
            }
        }

        /// Merges an activation into the conv/dense layer it directly follows, else appends an activation layer.
        mutating func activation(_ a: Activation, _ node: ONNXNode) throws(ImportError) {
            if let last = lastParametric, layerIsLast(last.layer), activationOf(last.layer) == .linear {
                try setActivation(a, on: last.layer, node)
            } else {
                appendActivation(a)
            }
        }

        mutating func appendActivation(_ a: Activation) {
            layers.append(.activation(a))
            activationMayMerge = false
        }

        /// Clip: bounds from the min/max inputs (opset 11+) or attributes (older); absent = unbounded.
        mutating func clip(_ node: ONNXNode) throws(ImportError) {
            func bound(_ index: Int, _ attribute: String) throws(ImportError) -> Float? {
                if index < node.inputs.count, !node.inputs[index].isEmpty {
                    let t = try initializer(node, index)
                    guard t.dataType == ONNXTensor.float, t.count == 1 else { throw refuse(node, "its \(attribute) must be one float, '\(t.name)' has \(t.count)") }
                    return t.floats[0]
                }
                return node.float(attribute)
            }
            let lo = try bound(1, "min") ?? -Float.greatestFiniteMagnitude, hi = try bound(2, "max") ?? Float.greatestFiniteMagnitude
            guard lo.isFinite, hi.isFinite, lo < hi else { throw refuse(node, "bounds [\(lo), \(hi)] are not supported; Loupe imports finite min < max") }
            if lo == -Float.greatestFiniteMagnitude && hi == Float.greatestFiniteMagnitude { return }   // identity
            if lo == 0 && hi == Float.greatestFiniteMagnitude { try activation(.relu, node); return }
            try activation(.clip(min: lo, max: hi), node)
        }

        /// Appends a dense layer from ONNX weights `w[in][out]` (already un-transposed) and bias.
        mutating func dense(_ node: ONNXNode, inputs n: Int, units: Int, weight: (Int, Int) -> Float, bias: [Float]) throws(ImportError) {
            guard let size = flat else { throw refuse(node, "a dense layer needs a flat input (add Flatten before it)") }
            guard size == n else { throw refuse(node, "weights for \(n) inputs, the tensor has \(size)") }
            var w = [Float](repeating: 0, count: n * units)
            // Engine input j (h, w, c order) is ONNX input i: the same, or (c, h, w) order after
            // flattening an NCHW tensor.
            for j in 0..<n {
                var i = j
                if let s = flattenedFromNCHW {
                    let c = j % s.c, x = (j / s.c) % s.w, y = j / (s.c * s.w)
                    i = (c * s.h + y) * s.w + x
                }
                for o in 0..<units { w[j * units + o] = weight(i, o) }
            }
            flattenedFromNCHW = nil
            layers.append(.dense(units: units, activation: .linear))
            let weightStart = parameters.count
            parameters += w
            lastParametric = (layers.count - 1, weightStart, parameters.count, units)
            parameters += bias
            activationMayMerge = true
            flat = units
        }

        mutating func gemm(_ node: ONNXNode) throws(ImportError) {
            guard (node.int("transA") ?? 0) == 0 else { throw refuse(node, "transA = 1 is not supported") }
            let b = try initializer(node, 1)
            guard b.dataType == ONNXTensor.float, b.dims.count == 2 else { throw refuse(node, "B of shape \(b.dims); expected a 2-D float matrix") }
            let transB = (node.int("transB") ?? 0) == 1
            let (n, units) = transB ? (b.dims[1], b.dims[0]) : (b.dims[0], b.dims[1])
            let alpha = node.float("alpha") ?? 1, beta = node.float("beta") ?? 1
            var bias = [Float](repeating: 0, count: units)
            if node.inputs.count > 2, !node.inputs[2].isEmpty {
                let c = try initializer(node, 2)
                guard c.dataType == ONNXTensor.float, c.count == units || c.count == 1 else { throw refuse(node, "C of \(c.count) values for \(units) units") }
                bias = c.count == 1 ? [Float](repeating: c.floats[0] * beta, count: units) : c.floats.map { $0 * beta }
            }
            let floats = b.floats
            try dense(node, inputs: n, units: units,
                      weight: transB ? { i, o in alpha * floats[o * n + i] } : { i, o in alpha * floats[i * units + o] }, bias: bias)
        }

        mutating func matMul(_ node: ONNXNode) throws(ImportError) {
            let b = try initializer(node, 1)
            guard b.dataType == ONNXTensor.float, b.dims.count == 2 else { throw refuse(node, "B of shape \(b.dims); expected a 2-D float matrix") }
            let (n, units) = (b.dims[0], b.dims[1])
            let floats = b.floats
            try dense(node, inputs: n, units: units, weight: { i, o in floats[i * units + o] }, bias: [Float](repeating: 0, count: units))
        }
    }
}
