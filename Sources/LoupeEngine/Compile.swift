@_spi(Kernels) import LoupeKernels
// Architecture → executable plan + named parameter slots.

/// A named region of the flat parameter array, e.g. "conv1.weight" at offset 0 with shape [3, 3, 1, 32].
/// Weights are HWIO for conv2d and (in, out) for dense — Keras's layouts — biases are [units].
public struct ParameterSlot: Codable, Sendable, Equatable {
    public var name: String
    public var offset: Int
    public var shape: [Int]
    public var count: Int { shape.reduce(1, *) }
    public init(name: String, offset: Int, shape: [Int]) {
        self.name = name; self.offset = offset; self.shape = shape
    }
}

struct CompiledNetwork: Sendable {
    var plan: NetworkPlan
    var slots: [ParameterSlot]
    /// Glorot-uniform limits per weight slot: sqrt(6 / (fanIn + fanOut)).
    var glorotLimits: [String: Float]
}

func compile(_ architecture: Architecture) throws -> CompiledNetwork {
    func fail(_ s: String) -> EngineError { .invalidArchitecture(s) }
    guard !architecture.layers.isEmpty else { throw fail("no layers") }
    var shape = architecture.inputShape
    guard shape.count == 3 || shape.count == 1, shape.allSatisfy({ $0 > 0 }) else {
        throw fail("inputShape must be [height, width, channels] or [features] with positive sizes, got \(shape)")
    }
    var stages: [Stage] = []
    var slots: [ParameterSlot] = []
    var limits: [String: Float] = [:]
    var weightRanges: [Range<Int>] = []
    var offset = 0
    var convIndex = 0, denseIndex = 0, depthwiseIndex = 0, groupedIndex = 0
    let inputSize = shape.reduce(1, *)
    var skipNext = false
    var endsInSoftmax = false
    let last = architecture.layers.count - 1
    /// Appends the stage for an activation that is not fused into the layer before it.
    func appendActivation(_ a: Activation, _ where_: String, _ i: Int) throws {
        let size = shape.reduce(1, *)
        switch a {
        case .linear: break
        case .softmax:
            guard i == last else { throw fail("\(where_): softmax is only allowed on the last layer") }
            endsInSoftmax = true
        case .relu: stages.append(Stage(op: .activation(.relu), inputSize: size, outputSize: size))
        case .sigmoid: stages.append(Stage(op: .activation(.sigmoid), inputSize: size, outputSize: size))
        case .tanh: stages.append(Stage(op: .activation(.tanh), inputSize: size, outputSize: size))
        case let .leakyRelu(alpha):
            guard alpha >= 0, alpha.isFinite else { throw fail("\(where_): leakyRelu alpha must be finite and ≥ 0, got \(alpha)") }
            stages.append(Stage(op: .activation(.leakyRelu(alpha: alpha)), inputSize: size, outputSize: size))
        case let .clip(lo, hi):
            guard lo.isFinite, hi.isFinite, lo < hi else { throw fail("\(where_): clip needs finite min < max, got \(lo), \(hi)") }
            stages.append(Stage(op: .activation(.clip(min: lo, max: hi)), inputSize: size, outputSize: size))
        }
    }
    func pool(_ pool: Size2D, _ stride: Size2D?, _ padding: Padding, _ where_: String) throws -> Pool2DGeometry {
        guard shape.count == 3 else { throw fail("\(where_) needs an (H, W, C) input but gets \(shape)") }
        let s = stride ?? pool
        guard (1...256).contains(pool.height), (1...256).contains(pool.width), (1...256).contains(s.height), (1...256).contains(s.width),
              let r = padding.resolve(height: shape[0], width: shape[1], kernel: pool, stride: s) else {
            throw fail("\(where_): a \(pool.area) window with stride \(s) and \(padding) padding does not fit the \(shape[0])×\(shape[1]) input")
        }
        guard max(r.top, r.bottom) < pool.height, max(r.left, r.right) < pool.width else {
            throw fail("\(where_): padding \(padding) must be smaller than the \(pool.area) window")
        }
        return Pool2DGeometry(height: shape[0], width: shape[1], channels: shape[2], kernelHeight: pool.height, kernelWidth: pool.width,
                              strideHeight: s.height, strideWidth: s.width, padTop: r.top, padLeft: r.left,
                              outHeight: r.outHeight, outWidth: r.outWidth)
    }
    /// The geometry of a conv2d (filters K) or depthwise conv (filters = channels) over the current shape.
    func convGeometry(filters: Int, _ kernel: Size2D, _ stride: Size2D, _ padding: Padding, _ activation: Activation,
                      _ where_: String) throws -> ConvGeometry {
        guard shape.count == 3 else { throw fail("\(where_) needs an (H, W, C) input but gets \(shape)") }
        guard filters > 0, kernel.height > 0, kernel.width > 0, stride.height > 0, stride.width > 0 else {
            throw fail("\(where_): filters, kernel and stride must be positive")
        }
        guard kernel.height <= 256, kernel.width <= 256, stride.height <= 256, stride.width <= 256 else {
            throw fail("\(where_): kernel and stride must be at most 256")
        }
        guard activation != .softmax else { throw fail("\(where_): softmax is only allowed on the last (flat) layer") }
        let (h, w, c) = (shape[0], shape[1], shape[2])
        guard let r = padding.resolve(height: h, width: w, kernel: kernel, stride: stride) else {
            throw fail("\(where_): a \(kernel.area) convolution with stride \(stride) and \(padding) padding does not fit a \(h)×\(w) input")
        }
        guard max(r.top, r.bottom) < kernel.height, max(r.left, r.right) < kernel.width else {
            throw fail("\(where_): padding \(padding) must be smaller than the \(kernel.area) kernel")
        }
        return ConvGeometry(height: h, width: w, channels: c, filters: filters, kernelHeight: kernel.height, kernelWidth: kernel.width,
                            padTop: r.top, padLeft: r.left, outHeight: r.outHeight, outWidth: r.outWidth, relu: activation == .relu,
                            strideHeight: stride.height, strideWidth: stride.width)
    }
    for (i, layer) in architecture.layers.enumerated() {
        if skipNext { skipNext = false; continue }
        let where_ = "layer \(i + 1) (\(layer.kindName))"
        let inSize = shape.reduce(1, *)
        switch layer {
        case let .conv2d(filters, kernel, stride, padding, activation):
            let g = try convGeometry(filters: filters, kernel, stride, padding, activation, where_)
            let (oh, ow, c) = (g.outHeight, g.outWidth, g.channels)
            convIndex += 1
            let name = "conv\(convIndex)"
            slots.append(ParameterSlot(name: "\(name).weight", offset: offset, shape: [kernel.height, kernel.width, c, filters]))
            slots.append(ParameterSlot(name: "\(name).bias", offset: offset + g.weightCount, shape: [filters]))
            limits["\(name).weight"] = (6 / Float(g.taps * (c + filters))).squareRoot()
            weightRanges.append(offset..<(offset + g.weightCount))
            offset += g.weightCount + filters
            shape = [oh, ow, filters]
            let fusable = activation == .relu || activation == .linear
            if padding == .valid && stride == 1 && kernel.isSquare && filters % 16 == 0 && fusable {
                // Fast path (square kernels, stride 1): fused with a following non-overlapping, unpadded square max pool.
                var pool = 1
                if i + 1 < architecture.layers.count, case let .maxPool2d(p, ps, pp) = architecture.layers[i + 1],
                   p.isSquare, ps == nil || ps == p, pp == .valid, p.height >= 1, p.height <= 15, oh >= p.height, ow >= p.height {
                    pool = p.height
                    skipNext = true
                }
                let cp = ConvPoolGeometry(conv: g, pool: pool)
                stages.append(Stage(op: .convPool(cp, weight: offset - g.weightCount - filters, bias: offset - filters),
                                    inputSize: inSize, outputSize: cp.outputSize))
                shape = [cp.outHeight, cp.outWidth, filters]
            } else {
                stages.append(Stage(op: .conv(g, weight: offset - g.weightCount - filters, bias: offset - filters),
                                    inputSize: inSize, outputSize: g.outputSize))
                if !fusable { try appendActivation(activation, where_, i) }
            }
        case let .depthwiseConv2d(kernel, stride, padding, activation):
            guard shape.count == 3 else { throw fail("\(where_) needs an (H, W, C) input but gets \(shape)") }
            let c = shape[2]
            let g = try convGeometry(filters: c, kernel, stride, padding, activation, where_)
            depthwiseIndex += 1
            let name = "depthwise\(depthwiseIndex)"
            let wc = g.depthwiseWeightCount
            slots.append(ParameterSlot(name: "\(name).weight", offset: offset, shape: [kernel.height, kernel.width, c, 1]))
            slots.append(ParameterSlot(name: "\(name).bias", offset: offset + wc, shape: [c]))
            // Keras's Glorot for the (kH, kW, C, 1) kernel: fan-in kH·kW·C, fan-out kH·kW·1.
            limits["\(name).weight"] = (6 / Float(g.taps * (c + 1))).squareRoot()
            weightRanges.append(offset..<(offset + wc))
            stages.append(Stage(op: .depthwiseConv(g, weight: offset, bias: offset + wc), inputSize: inSize, outputSize: g.outputSize))
            offset += wc + c
            shape = [g.outHeight, g.outWidth, c]
            if activation != .relu && activation != .linear { try appendActivation(activation, where_, i) }
        case let .groupedConv2d(filters, groups, kernel, stride, padding, activation):
            guard shape.count == 3 else { throw fail("\(where_) needs an (H, W, C) input but gets \(shape)") }
            let c = shape[2]
            guard groups >= 2, c % groups == 0, filters % groups == 0 else {
                throw fail("\(where_): groups must be at least 2 and divide both the \(c) input channels and the \(filters) filters, got \(groups)")
            }
            // One group's geometry: C/G channels in, K/G filters out.
            var g = try convGeometry(filters: filters / groups, kernel, stride, padding, activation, where_)
            g.channels = c / groups
            groupedIndex += 1
            let name = "groupedConv\(groupedIndex)"
            let wc = g.weightCount * groups
            slots.append(ParameterSlot(name: "\(name).weight", offset: offset, shape: [kernel.height, kernel.width, c / groups, filters]))
            slots.append(ParameterSlot(name: "\(name).bias", offset: offset + wc, shape: [filters]))
            // Keras's Glorot for the (kH, kW, C/G, K) kernel: fan-in kH·kW·C/G, fan-out kH·kW·K.
            limits["\(name).weight"] = (6 / Float(g.taps * (c / groups + filters))).squareRoot()
            weightRanges.append(offset..<(offset + wc))
            let outSize = g.outHeight * g.outWidth * filters
            stages.append(Stage(op: .groupedConv(g, groups: groups, weight: offset, bias: offset + wc), inputSize: inSize, outputSize: outSize))
            offset += wc + filters
            shape = [g.outHeight, g.outWidth, filters]
            if activation != .relu && activation != .linear { try appendActivation(activation, where_, i) }
        case let .maxPool2d(p, stride, padding):
            let g = try pool(p, stride, padding, where_)
            stages.append(Stage(op: .maxPool(g), inputSize: inSize, outputSize: g.outputSize))
            shape = [g.outHeight, g.outWidth, shape[2]]
        case let .avgPool2d(p, stride, padding):
            let g = try pool(p, stride, padding, where_)
            stages.append(Stage(op: .avgPool(g), inputSize: inSize, outputSize: g.outputSize))
            shape = [g.outHeight, g.outWidth, shape[2]]
        case .globalAvgPool2d:
            guard shape.count == 3 else { throw fail("\(where_) needs an (H, W, C) input but gets \(shape)") }
            let g = Pool2DGeometry(height: shape[0], width: shape[1], channels: shape[2], kernelHeight: shape[0], kernelWidth: shape[1],
                                   stride: 1, padTop: 0, padLeft: 0, outHeight: 1, outWidth: 1)
            stages.append(Stage(op: .avgPool(g), inputSize: inSize, outputSize: g.outputSize))
            shape = [1, 1, shape[2]]
        case let .activation(a):
            try appendActivation(a, where_, i)
        case .flatten:
            stages.append(Stage(op: .flatten, inputSize: inSize, outputSize: inSize))
            shape = [inSize]
        case let .dense(units, activation):
            guard shape.count == 1 else { throw fail("\(where_) needs a flat input but gets \(shape); add a flatten layer before it") }
            guard units > 0 else { throw fail("\(where_): units must be positive") }
            denseIndex += 1
            let name = "dense\(denseIndex)"
            let wc = inSize * units
            slots.append(ParameterSlot(name: "\(name).weight", offset: offset, shape: [inSize, units]))
            slots.append(ParameterSlot(name: "\(name).bias", offset: offset + wc, shape: [units]))
            limits["\(name).weight"] = (6 / Float(inSize + units)).squareRoot()
            weightRanges.append(offset..<(offset + wc))
            stages.append(Stage(op: .dense(inputs: inSize, outputs: units, relu: activation == .relu, weight: offset, bias: offset + wc),
                                inputSize: inSize, outputSize: units))
            offset += wc + units
            shape = [units]
            if activation != .relu { try appendActivation(activation, where_, i) }
        case let .dropout(rate):
            guard rate >= 0, rate < 1 else { throw fail("\(where_): rate must be in [0, 1), got \(rate)") }
            stages.append(Stage(op: .dropout(rate: rate), inputSize: inSize, outputSize: inSize))
        }
    }
    guard !stages.isEmpty else { throw fail("the network has no computing layers") }
    guard shape.count == 1 else { throw fail("the last layer must produce a flat output (add flatten and dense), got \(shape)") }
    guard shape[0] >= 2 else { throw fail("the network must output at least 2 classes") }
    let plan = NetworkPlan(stages: stages, inputSize: inputSize, outputSize: shape[0], parameterCount: offset, weightRanges: weightRanges,
                           endsInSoftmax: endsInSoftmax)
    return CompiledNetwork(plan: plan, slots: slots, glorotLimits: limits)
}

extension LayerSpec {
    var kindName: String {
        switch self {
        case .conv2d: return "conv2d"
        case .depthwiseConv2d: return "depthwiseConv2d"
        case .groupedConv2d: return "groupedConv2d"
        case .maxPool2d: return "maxPool2d"
        case .avgPool2d: return "avgPool2d"
        case .globalAvgPool2d: return "globalAvgPool2d"
        case .activation: return "activation"
        case .flatten: return "flatten"
        case .dense: return "dense"
        case .dropout: return "dropout"
        }
    }
}
