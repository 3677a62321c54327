// Architectures are data: a list of layer specs that encodes to JSON/YAML as
//   {"inputShape": [28, 28, 1], "layers": [{"type": "conv2d", "filters": 32, "kernel": 3,
//    "padding": "valid", "activation": "relu"}, {"type": "maxPool2d", "pool": 2}, ...]}
// Layout everywhere: NHWC float32, batch first. Flatten walks (H, W, C) = Keras's order.
// Optional keys are omitted when they hold their default, so files written before strides, pads
// and the newer activations existed decode (and re-encode) unchanged. Kernels, strides and pool
// windows are one integer when square (as every file before non-square windows wrote them) and
// [height, width] otherwise.

/// A height × width pair: a kernel, a pool window or a stride. An integer literal n means n × n.
public struct Size2D: Sendable, Hashable, ExpressibleByIntegerLiteral, CustomStringConvertible {
    public var height: Int
    public var width: Int
    public init(_ height: Int, _ width: Int) { self.height = height; self.width = width }
    /// side × side.
    public init(_ side: Int) { self.init(side, side) }
    public init(integerLiteral side: Int) { self.init(side, side) }
    public var isSquare: Bool { height == width }
    /// "3" for a square, "3×5" otherwise.
    public var description: String { isSquare ? "\(height)" : "\(height)×\(width)" }
    /// "3×3" or "3×5": always both sides.
    public var area: String { "\(height)×\(width)" }
}

extension Size2D: Codable {
    /// One integer n (n × n) or [height, width].
    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let n = try? c.decode(Int.self) { self.init(n); return }
        let pair = try c.decode([Int].self)
        guard pair.count == 2 else {
            throw DecodingError.dataCorruptedError(in: c, debugDescription: "expected an integer or [height, width], got \(pair.count) integers")
        }
        self.init(pair[0], pair[1])
    }

    /// Square sizes as one integer, so files written before non-square windows re-encode unchanged.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        if isSquare { try c.encode(height) } else { try c.encode([height, width]) }
    }
}

/// How a convolution or pooling window treats the border.
public enum Padding: Sendable, Equatable, CustomStringConvertible {
    /// No padding: output is ⌊(H − kH) / sH⌋ + 1 (and W with kW, sW).
    case valid
    /// Zero padding so the output is ⌈H / sH⌉ (H for stride 1); TensorFlow's split: the total
    /// max((⌈H/sH⌉ − 1)·sH + kH − H, 0) is halved, top/left get the smaller half (ONNX SAME_UPPER).
    /// Columns likewise with W, kW, sW.
    case same
    /// Explicit zero padding per side (ONNX `pads` = [top, left, bottom, right]);
    /// output is ⌊(H + top + bottom − kH) / sH⌋ + 1.
    case explicit(top: Int, left: Int, bottom: Int, right: Int)

    public var description: String {
        switch self {
        case .valid: return "valid"
        case .same: return "same"
        case let .explicit(t, l, b, r): return "explicit [\(t), \(l), \(b), \(r)]"
        }
    }

    /// The padding of each side and the output size for an h×w input, a kernel (or window) and a
    /// stride. Nil when the window does not fit (output < 1) or a size is bad. Rows use the
    /// kernel's and stride's heights, columns their widths.
    public func resolve(height h: Int, width w: Int, kernel: Size2D, stride: Size2D)
        -> (top: Int, left: Int, bottom: Int, right: Int, outHeight: Int, outWidth: Int)? {
        let (kh, kw, sh, sw) = (kernel.height, kernel.width, stride.height, stride.width)
        guard h > 0, w > 0, kh > 0, kw > 0, sh > 0, sw > 0 else { return nil }
        var (t, l, b, r) = (0, 0, 0, 0)
        switch self {
        case .valid: break
        case .same:
            let oh = (h + sh - 1) / sh, ow = (w + sw - 1) / sw
            let th = max((oh - 1) * sh + kh - h, 0), tw = max((ow - 1) * sw + kw - w, 0)
            (t, b, l, r) = (th / 2, th - th / 2, tw / 2, tw - tw / 2)
        case let .explicit(top, left, bottom, right):
            guard top >= 0, left >= 0, bottom >= 0, right >= 0 else { return nil }
            (t, l, b, r) = (top, left, bottom, right)
        }
        guard h + t + b >= kh, w + l + r >= kw else { return nil }
        return (t, l, b, r, (h + t + b - kh) / sh + 1, (w + l + r - kw) / sw + 1)
    }

    /// `resolve` for a kh × kw window and one stride s in both directions.
    public func resolve(height h: Int, width w: Int, kernelHeight kh: Int, kernelWidth kw: Int, stride s: Int)
        -> (top: Int, left: Int, bottom: Int, right: Int, outHeight: Int, outWidth: Int)? {
        resolve(height: h, width: w, kernel: Size2D(kh, kw), stride: Size2D(s))
    }

    /// [top, left, bottom, right] of an explicit padding, nil otherwise.
    var pads: [Int]? {
        if case let .explicit(t, l, b, r) = self { return [t, l, b, r] }
        return nil
    }
}

/// Activation applied after a conv2d or dense layer, or on its own as an `activation` layer.
/// `softmax` is only allowed on the last layer: the engine then treats that layer's output as
/// logits and applies softmax in `predict`, `outputs` and the cross-entropy loss.
public enum Activation: Sendable, Equatable, CustomStringConvertible {
    case linear, relu, softmax
    /// max(x, 0) + alpha·min(x, 0), alpha ≥ 0 (ONNX LeakyRelu, default alpha 0.01).
    case leakyRelu(alpha: Float)
    /// 1 / (1 + e^−x).
    case sigmoid
    /// tanh(x).
    case tanh
    /// min(max(x, min), max); ReLU6 is clip(0, 6).
    case clip(min: Float, max: Float)

    /// The JSON name: "linear", "relu", "softmax", "leakyRelu", "sigmoid", "tanh", "clip".
    public var name: String {
        switch self {
        case .linear: return "linear"
        case .relu: return "relu"
        case .softmax: return "softmax"
        case .leakyRelu: return "leakyRelu"
        case .sigmoid: return "sigmoid"
        case .tanh: return "tanh"
        case .clip: return "clip"
        }
    }

    public var description: String {
        switch self {
        case let .leakyRelu(alpha): return "leakyRelu(alpha \(alpha))"
        case let .clip(lo, hi): return "clip(\(lo), \(hi))"
        default: return name
        }
    }
}

/// One layer of a `Sequential` network.
public enum LayerSpec: Sendable, Equatable {
    /// kH×kW convolution with stride (sH, sW); kernel stored HWIO (kH, kW, inChannels, filters).
    case conv2d(filters: Int, kernel: Size2D, stride: Size2D = 1, padding: Padding, activation: Activation)
    /// Depthwise kH×kW convolution (ONNX Conv with group = channels, Keras DepthwiseConv2D with depth
    /// multiplier 1): output channel c sees input channel c only; kernel stored (kH, kW, channels, 1).
    case depthwiseConv2d(kernel: Size2D, stride: Size2D = 1, padding: Padding, activation: Activation)
    /// Grouped kH×kW convolution (ONNX Conv with group > 1 that is not depthwise, Keras Conv2D(groups:)): the
    /// input channels and the filters are split into `groups` equal groups, and filter f sees only the channels
    /// of its own group. Kernel stored (kH, kW, inChannels / groups, filters) — Keras's grouped layout.
    case groupedConv2d(filters: Int, groups: Int, kernel: Size2D, stride: Size2D = 1, padding: Padding, activation: Activation)
    /// Max pooling over pH×pW windows with stride `stride` (default the window: non-overlapping) and
    /// optional padding (padded cells never win). Floor on sizes that do not divide.
    case maxPool2d(pool: Size2D, stride: Size2D? = nil, padding: Padding = .valid)
    /// Average pooling over pH×pW windows; padded cells are not counted (ONNX count_include_pad = 0).
    case avgPool2d(pool: Size2D, stride: Size2D? = nil, padding: Padding = .valid)
    /// Mean over H and W: (H, W, C) → (1, 1, C).
    case globalAvgPool2d
    /// An activation on its own (any shape; softmax only as the last layer).
    case activation(Activation)
    /// (H, W, C) → H·W·C in (h, w, c) order.
    case flatten
    /// Fully connected; weight stored (in, out). Needs a flat input.
    case dense(units: Int, activation: Activation)
    /// Inverted dropout during training (kept activations scaled by 1/(1-rate)); identity otherwise.
    case dropout(rate: Float)
}

extension LayerSpec: Codable {
    private enum CodingKeys: String, CodingKey {
        case type, filters, groups, kernel, stride, padding, pads, activation, alpha, min, max, pool, units, rate
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let type = try c.decode(String.self, forKey: .type)
        switch type {
        case "conv2d":
            self = .conv2d(filters: try c.decode(Int.self, forKey: .filters),
                           kernel: try c.decode(Size2D.self, forKey: .kernel),
                           stride: try c.decodeIfPresent(Size2D.self, forKey: .stride) ?? 1,
                           padding: try Self.decodePadding(c),
                           activation: try Self.decodeActivation(c) ?? .linear)
        case "depthwiseConv2d":
            self = .depthwiseConv2d(kernel: try c.decode(Size2D.self, forKey: .kernel),
                                    stride: try c.decodeIfPresent(Size2D.self, forKey: .stride) ?? 1,
                                    padding: try Self.decodePadding(c),
                                    activation: try Self.decodeActivation(c) ?? .linear)
        case "groupedConv2d":
            self = .groupedConv2d(filters: try c.decode(Int.self, forKey: .filters),
                                  groups: try c.decode(Int.self, forKey: .groups),
                                  kernel: try c.decode(Size2D.self, forKey: .kernel),
                                  stride: try c.decodeIfPresent(Size2D.self, forKey: .stride) ?? 1,
                                  padding: try Self.decodePadding(c),
                                  activation: try Self.decodeActivation(c) ?? .linear)
        case "maxPool2d", "avgPool2d":
            let pool = try c.decodeIfPresent(Size2D.self, forKey: .pool) ?? 2
            let stride = try c.decodeIfPresent(Size2D.self, forKey: .stride)
            let padding = try Self.decodePadding(c)
            self = type == "maxPool2d" ? .maxPool2d(pool: pool, stride: stride, padding: padding)
                                       : .avgPool2d(pool: pool, stride: stride, padding: padding)
        case "globalAvgPool2d":
            self = .globalAvgPool2d
        case "activation":
            guard let a = try Self.decodeActivation(c) else {
                throw DecodingError.keyNotFound(CodingKeys.activation, .init(codingPath: c.codingPath, debugDescription:
                    "an activation layer needs \"activation\" (linear, relu, softmax, leakyRelu, sigmoid, tanh or clip)"))
            }
            self = .activation(a)
        case "flatten":
            self = .flatten
        case "dense":
            self = .dense(units: try c.decode(Int.self, forKey: .units),
                          activation: try Self.decodeActivation(c) ?? .linear)
        case "dropout":
            self = .dropout(rate: try c.decode(Float.self, forKey: .rate))
        default:
            throw DecodingError.dataCorruptedError(forKey: .type, in: c, debugDescription:
                "unknown layer type \"\(type)\" (expected conv2d, depthwiseConv2d, groupedConv2d, maxPool2d, avgPool2d, globalAvgPool2d, activation, flatten, dense or dropout)")
        }
    }

    private static func decodePadding(_ c: KeyedDecodingContainer<CodingKeys>) throws -> Padding {
        let name = try c.decodeIfPresent(String.self, forKey: .padding)
        if let pads = try c.decodeIfPresent([Int].self, forKey: .pads) {
            guard name == nil || name == "explicit" else {
                throw DecodingError.dataCorruptedError(forKey: .pads, in: c, debugDescription: "give \"padding\" (valid or same) or \"pads\", not both")
            }
            guard pads.count == 4, pads.allSatisfy({ $0 >= 0 }) else {
                throw DecodingError.dataCorruptedError(forKey: .pads, in: c, debugDescription:
                    "\"pads\" must be 4 non-negative integers [top, left, bottom, right], got \(pads)")
            }
            return .explicit(top: pads[0], left: pads[1], bottom: pads[2], right: pads[3])
        }
        switch name {
        case nil, "valid": return .valid
        case "same": return .same
        default:
            throw DecodingError.dataCorruptedError(forKey: .padding, in: c, debugDescription:
                "unknown padding \"\(name!)\" (expected valid or same, or \"pads\": [top, left, bottom, right])")
        }
    }

    private static func decodeActivation(_ c: KeyedDecodingContainer<CodingKeys>) throws -> Activation? {
        guard let name = try c.decodeIfPresent(String.self, forKey: .activation) else { return nil }
        switch name {
        case "linear": return .linear
        case "relu": return .relu
        case "softmax": return .softmax
        case "sigmoid": return .sigmoid
        case "tanh": return .tanh
        case "leakyRelu": return .leakyRelu(alpha: try c.decodeIfPresent(Float.self, forKey: .alpha) ?? 0.01)
        case "clip":
            return .clip(min: try c.decodeIfPresent(Float.self, forKey: .min) ?? 0, max: try c.decodeIfPresent(Float.self, forKey: .max) ?? 6)
        default:
            throw DecodingError.dataCorruptedError(forKey: .activation, in: c, debugDescription:
                "unknown activation \"\(name)\" (expected linear, relu, softmax, leakyRelu, sigmoid, tanh or clip)")
        }
    }

    private static func encode(_ a: Activation, _ c: inout KeyedEncodingContainer<CodingKeys>) throws {
        try c.encode(a.name, forKey: .activation)
        switch a {
        case let .leakyRelu(alpha): try c.encode(alpha, forKey: .alpha)
        case let .clip(lo, hi): try c.encode(lo, forKey: .min); try c.encode(hi, forKey: .max)
        default: break
        }
    }

    private static func encode(_ p: Padding, _ c: inout KeyedEncodingContainer<CodingKeys>) throws {
        if let pads = p.pads { try c.encode(pads, forKey: .pads) } else { try c.encode(p.description, forKey: .padding) }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        switch self {
        case let .conv2d(filters, kernel, stride, padding, activation):
            try c.encode("conv2d", forKey: .type)
            try c.encode(filters, forKey: .filters)
            try c.encode(kernel, forKey: .kernel)
            if stride != 1 { try c.encode(stride, forKey: .stride) }
            try Self.encode(padding, &c)
            try Self.encode(activation, &c)
        case let .depthwiseConv2d(kernel, stride, padding, activation):
            try c.encode("depthwiseConv2d", forKey: .type)
            try c.encode(kernel, forKey: .kernel)
            if stride != 1 { try c.encode(stride, forKey: .stride) }
            try Self.encode(padding, &c)
            try Self.encode(activation, &c)
        case let .groupedConv2d(filters, groups, kernel, stride, padding, activation):
            try c.encode("groupedConv2d", forKey: .type)
            try c.encode(filters, forKey: .filters)
            try c.encode(groups, forKey: .groups)
            try c.encode(kernel, forKey: .kernel)
            if stride != 1 { try c.encode(stride, forKey: .stride) }
            try Self.encode(padding, &c)
            try Self.encode(activation, &c)
        case let .maxPool2d(pool, stride, padding), let .avgPool2d(pool, stride, padding):
            if case .maxPool2d = self { try c.encode("maxPool2d", forKey: .type) } else { try c.encode("avgPool2d", forKey: .type) }
            try c.encode(pool, forKey: .pool)
            if let stride { try c.encode(stride, forKey: .stride) }
            if padding != .valid { try Self.encode(padding, &c) }
        case .globalAvgPool2d:
            try c.encode("globalAvgPool2d", forKey: .type)
        case let .activation(a):
            try c.encode("activation", forKey: .type)
            try Self.encode(a, &c)
        case .flatten:
            try c.encode("flatten", forKey: .type)
        case let .dense(units, activation):
            try c.encode("dense", forKey: .type)
            try c.encode(units, forKey: .units)
            try Self.encode(activation, &c)
        case let .dropout(rate):
            try c.encode("dropout", forKey: .type)
            try c.encode(rate, forKey: .rate)
        }
    }
}

/// A feed-forward network description: input shape (H, W, C) and its layers.
public struct Architecture: Codable, Sendable, Equatable {
    /// (H, W, C), e.g. [28, 28, 1]. A rank-1 shape [n] is allowed for dense-only networks.
    public var inputShape: [Int]
    public var layers: [LayerSpec]

    public init(inputShape: [Int], layers: [LayerSpec]) {
        self.inputShape = inputShape
        self.layers = layers
    }

    /// The seed network: Conv2D(32, 3×3, valid, ReLU) → MaxPool(2×2) → Flatten →
    /// Dense(128, ReLU) → Dense(10, softmax). 693,962 parameters.
    public static let seed = Architecture(inputShape: [28, 28, 1], layers: [
        .conv2d(filters: 32, kernel: 3, padding: .valid, activation: .relu),
        .maxPool2d(pool: 2),
        .flatten,
        .dense(units: 128, activation: .relu),
        .dense(units: 10, activation: .softmax),
    ])
}

/// Errors from building or loading a network. Sentences name the offending layer or slot.
public enum EngineError: Error, Equatable, CustomStringConvertible {
    case invalidArchitecture(String)
    case parameterCountMismatch(expected: Int, got: Int)
    case invalidInput(String)

    public var description: String {
        switch self {
        case .invalidArchitecture(let why): return "invalid architecture: \(why)"
        case let .parameterCountMismatch(expected, got):
            return "parameter count mismatch: the architecture needs \(expected) floats but \(got) were given"
        case .invalidInput(let why): return "invalid input: \(why)"
        }
    }
}
