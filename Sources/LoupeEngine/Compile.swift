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
    var convIndex = 0, denseIndex = 0
    let inputSize = shape.reduce(1, *)
    var skipNext = false
    for (i, layer) in architecture.layers.enumerated() {
        if skipNext { skipNext = false; continue }
        let where_ = "layer \(i + 1) (\(layer.kindName))"
        let inSize = shape.reduce(1, *)
        switch layer {
        case let .conv2d(filters, kernel, padding, activation):
            guard shape.count == 3 else { throw fail("\(where_) needs an (H, W, C) input but gets \(shape)") }
            guard filters > 0, kernel > 0 else { throw fail("\(where_): filters and kernel must be positive") }
            guard activation != .softmax || i == architecture.layers.count - 1 else { throw fail("\(where_): softmax is only allowed on the last layer") }
            let (h, w, c) = (shape[0], shape[1], shape[2])
            let pad = padding == .same ? (kernel - 1) / 2 : 0
            let oh = padding == .same ? h : h - kernel + 1, ow = padding == .same ? w : w - kernel + 1
            guard oh > 0, ow > 0 else { throw fail("\(where_): a \(kernel)×\(kernel) valid convolution does not fit a \(h)×\(w) input") }
            convIndex += 1
            let name = "conv\(convIndex)"
            let g = ConvGeometry(height: h, width: w, channels: c, filters: filters, kernel: kernel, padTop: pad, padLeft: pad,
                                 outHeight: oh, outWidth: ow, relu: activation == .relu)
            slots.append(ParameterSlot(name: "\(name).weight", offset: offset, shape: [kernel, kernel, c, filters]))
            slots.append(ParameterSlot(name: "\(name).bias", offset: offset + g.weightCount, shape: [filters]))
            limits["\(name).weight"] = (6 / Float(kernel * kernel * (c + filters))).squareRoot()
            weightRanges.append(offset..<(offset + g.weightCount))
            offset += g.weightCount + filters
            shape = [oh, ow, filters]
            if padding == .valid && filters % 16 == 0 {
                // Fast path: fused with a following max pool (validated like the pool layer itself).
                var pool = 1
                if i + 1 < architecture.layers.count, case let .maxPool2d(p) = architecture.layers[i + 1],
                   p >= 1, p <= 15, oh >= p, ow >= p {
                    pool = p
                    skipNext = true
                }
                let cp = ConvPoolGeometry(conv: g, pool: pool)
                stages.append(Stage(op: .convPool(cp, weight: offset - g.weightCount - filters, bias: offset - filters),
                                    inputSize: inSize, outputSize: cp.outputSize))
                shape = [cp.outHeight, cp.outWidth, filters]
            } else {
                stages.append(Stage(op: .conv(g, weight: offset - g.weightCount - filters, bias: offset - filters),
                                    inputSize: inSize, outputSize: g.outputSize))
            }
        case let .maxPool2d(pool):
            guard shape.count == 3 else { throw fail("\(where_) needs an (H, W, C) input but gets \(shape)") }
            guard pool >= 1, pool <= 15, shape[0] >= pool, shape[1] >= pool else {
                throw fail("\(where_): pool \(pool) must be 1...15 and fit the \(shape[0])×\(shape[1]) input")
            }
            let g = PoolGeometry(height: shape[0], width: shape[1], channels: shape[2], pool: pool)
            stages.append(Stage(op: .pool(g), inputSize: inSize, outputSize: g.outputSize))
            shape = [g.outHeight, g.outWidth, shape[2]]
        case .flatten:
            stages.append(Stage(op: .flatten, inputSize: inSize, outputSize: inSize))
            shape = [inSize]
        case let .dense(units, activation):
            guard shape.count == 1 else { throw fail("\(where_) needs a flat input but gets \(shape); add a flatten layer before it") }
            guard units > 0 else { throw fail("\(where_): units must be positive") }
            guard activation != .softmax || i == architecture.layers.count - 1 else { throw fail("\(where_): softmax is only allowed on the last layer") }
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
        case let .dropout(rate):
            guard rate >= 0, rate < 1 else { throw fail("\(where_): rate must be in [0, 1), got \(rate)") }
            stages.append(Stage(op: .dropout(rate: rate), inputSize: inSize, outputSize: inSize))
        }
    }
    guard shape.count == 1 else { throw fail("the last layer must produce a flat output (add flatten and dense), got \(shape)") }
    guard shape[0] >= 2 else { throw fail("the network must output at least 2 classes") }
    let plan = NetworkPlan(stages: stages, inputSize: inputSize, outputSize: shape[0], parameterCount: offset, weightRanges: weightRanges)
    return CompiledNetwork(plan: plan, slots: slots, glorotLimits: limits)
}

extension LayerSpec {
    var kindName: String {
        switch self {
        case .conv2d: return "conv2d"
        case .maxPool2d: return "maxPool2d"
        case .flatten: return "flatten"
        case .dense: return "dense"
        case .dropout: return "dropout"
        }
    }
}
