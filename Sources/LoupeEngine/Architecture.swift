// Architectures are data: a list of layer specs that encodes to JSON/YAML as
//   {"inputShape": [28, 28, 1], "layers": [{"type": "conv2d", "filters": 32, "kernel": 3,
//    "padding": "valid", "activation": "relu"}, {"type": "maxPool2d", "pool": 2}, ...]}
// Layout everywhere: NHWC float32, batch first. Flatten walks (H, W, C) = Keras's order.

/// How a convolution treats the border (stride is always 1).
public enum Padding: String, Codable, Sendable, Equatable {
    /// No padding: output is (H - k + 1, W - k + 1).
    case valid
    /// Zero padding so the output is (H, W); Keras's split (top/left gets (k - 1) / 2).
    case same
}

/// Activation applied after a conv2d or dense layer.
/// `softmax` is only allowed on the last layer: the engine then treats that layer's output as
/// logits and applies softmax in `predict` and in the cross-entropy loss.
public enum Activation: String, Codable, Sendable, Equatable {
    case linear, relu, softmax
}

/// One layer of a `Sequential` network.
public enum LayerSpec: Sendable, Equatable {
    /// k×k convolution, stride 1; kernel stored HWIO (k, k, inChannels, filters).
    case conv2d(filters: Int, kernel: Int, padding: Padding, activation: Activation)
    /// Non-overlapping max pooling, pool×pool window, stride pool, floor on odd sizes.
    case maxPool2d(pool: Int)
    /// (H, W, C) → H·W·C in (h, w, c) order.
    case flatten
    /// Fully connected; weight stored (in, out).
    case dense(units: Int, activation: Activation)
    /// Inverted dropout during training (kept activations scaled by 1/(1-rate)); identity otherwise.
    case dropout(rate: Float)
}

extension LayerSpec: Codable {
    private enum CodingKeys: String, CodingKey { case type, filters, kernel, padding, activation, pool, units, rate }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let type = try c.decode(String.self, forKey: .type)
        switch type {
        case "conv2d":
            self = .conv2d(filters: try c.decode(Int.self, forKey: .filters),
                           kernel: try c.decode(Int.self, forKey: .kernel),
                           padding: try c.decodeIfPresent(Padding.self, forKey: .padding) ?? .valid,
                           activation: try c.decodeIfPresent(Activation.self, forKey: .activation) ?? .linear)
        case "maxPool2d":
            self = .maxPool2d(pool: try c.decodeIfPresent(Int.self, forKey: .pool) ?? 2)
        case "flatten":
            self = .flatten
        case "dense":
            self = .dense(units: try c.decode(Int.self, forKey: .units),
                          activation: try c.decodeIfPresent(Activation.self, forKey: .activation) ?? .linear)
        case "dropout":
            self = .dropout(rate: try c.decode(Float.self, forKey: .rate))
        default:
            throw DecodingError.dataCorruptedError(forKey: .type, in: c, debugDescription:
                "unknown layer type \"\(type)\" (expected conv2d, maxPool2d, flatten, dense or dropout)")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        switch self {
        case let .conv2d(filters, kernel, padding, activation):
            try c.encode("conv2d", forKey: .type)
            try c.encode(filters, forKey: .filters)
            try c.encode(kernel, forKey: .kernel)
            try c.encode(padding, forKey: .padding)
            try c.encode(activation, forKey: .activation)
        case let .maxPool2d(pool):
            try c.encode("maxPool2d", forKey: .type)
            try c.encode(pool, forKey: .pool)
        case .flatten:
            try c.encode("flatten", forKey: .type)
        case let .dense(units, activation):
            try c.encode("dense", forKey: .type)
            try c.encode(units, forKey: .units)
            try c.encode(activation, forKey: .activation)
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
