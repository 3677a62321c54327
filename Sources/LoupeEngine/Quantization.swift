// Int8 post-training static quantization: the parameters a quantized model carries, and how they are
// found (calibration). The arithmetic is specified in docs/model-format.md §12; the executor is
// Int8Network.swift, the kernels KernelsInt8/ (C, one function per ISA).
//
// Scheme: weights int8 per output channel, symmetric (q = clamp(rint(w / s), −127, 127), s = max|w| / 127);
// each conv/dense layer's input uint8, asymmetric (scale s, zero point z, q = clamp(rint(x / s) + z, 0, 255)),
// calibrated on training images; int32 accumulation; biases and the combined rescale in float32;
// the last layer's output stays float32 (logits) and softmax runs in float32.

/// The quantization of one conv2d or dense layer ("conv1", "dense2", … as the parameter slots name it).
public struct QuantizedLayerParameters: Codable, Sendable, Equatable {
    /// The layer name, the prefix of its parameter slots ("conv1" for conv1.weight / conv1.bias).
    public var name: String
    /// The layer input's uint8 quantization: x ≈ (q − inputZeroPoint) · inputScale.
    public var inputScale: Float
    public var inputZeroPoint: Int
    /// One positive scale per output channel: w ≈ q · weightScales[o].
    public var weightScales: [Float]

    public init(name: String, inputScale: Float, inputZeroPoint: Int, weightScales: [Float]) {
        self.name = name; self.inputScale = inputScale; self.inputZeroPoint = inputZeroPoint; self.weightScales = weightScales
    }
}

/// How the activation ranges were chosen.
public enum Calibrator: String, Codable, Sendable, Equatable, CaseIterable {
    /// The smallest and largest value seen (always including 0).
    case minmax
    /// The `percentile`-th and (100 − percentile)-th percentiles of the values seen (including 0):
    /// the rare extreme activations are clipped, the rest get finer steps.
    case percentile
}

/// What `loupe quantize` records in the model header (`"quantization"`).
public struct QuantizationParameters: Codable, Sendable, Equatable {
    /// "int8": int8 weights per output channel (symmetric), uint8 activations, int32 accumulation.
    public var precision: String
    public var calibrator: Calibrator
    /// The percentile used by the percentile calibrator (e.g. 99.99), nil for minmax.
    public var percentile: Double?
    /// Number of training images the ranges were calibrated on.
    public var calibrationImages: Int
    /// One entry per conv2d/dense layer, in network order.
    public var layers: [QuantizedLayerParameters]

    public init(precision: String = "int8", calibrator: Calibrator, percentile: Double?, calibrationImages: Int,
                layers: [QuantizedLayerParameters]) {
        self.precision = precision; self.calibrator = calibrator; self.percentile = percentile
        self.calibrationImages = calibrationImages; self.layers = layers
    }
}

/// Weight and activation quantization rules (docs/model-format.md §12), shared by the quantizer, the
/// executor and the tests.
public enum QuantizationMath {
    /// Per-output-channel symmetric scale of a weight laid out (…, out) row-major: max|w| / 127 (1 for an
    /// all-zero channel).
    public static func weightScales(_ weight: ArraySlice<Float>, outputs: Int) -> [Float] {
        var peak = [Float](repeating: 0, count: outputs)
        for (i, w) in weight.enumerated() { peak[i % outputs] = max(peak[i % outputs], abs(w)) }
        return peak.map { $0 > 0 ? $0 / 127 : 1 }
    }

    /// q = clamp(rint(w / s), −127, 127), round half to even. Exact inverse of `Float(q) * s` (the
    /// dequantized weights a quantized model file stores as its float view).
    @inline(__always)
    public static func quantizeWeight(_ w: Float, scale: Float) -> Int8 {
        let t = (w / scale).rounded(.toNearestOrEven)
        return Int8(min(max(t.isNaN ? 0 : t, -127), 127))
    }

    /// Asymmetric uint8 parameters covering [lo, hi] ∪ {0}: scale (hi − lo) / 255, zero point rint(−lo / scale).
    public static func activationParameters(lo: Float, hi: Float) -> (scale: Float, zeroPoint: Int) {
        let l = min(lo, 0), h = max(hi, 0)
        guard h > l, (h - l).isFinite else { return (1, 0) }
        let scale = (h - l) / 255
        let z = Int((-l / scale).rounded(.toNearestOrEven))
        return (scale, min(max(z, 0), 255))
    }
}

extension Sequential {
    /// Calibrates and quantizes this fp32 network: activation ranges from `images` (count × inputCount,
    /// normalized as in training), weights per output channel. The result runs the int8 kernels.
    /// Networks the int8 executor does not cover (see Int8Network) throw a sentence.
    public func quantized(calibrationImages images: [Float], count: Int, calibrator: Calibrator, percentile: Double = 99.99,
                          threads: Int = 1) throws -> Sequential {
        guard quantization == nil else { throw EngineError.invalidArchitecture("the model is already quantized") }
        guard count >= 1, images.count >= count * inputCount else {
            throw EngineError.invalidInput("calibration needs at least one image of \(inputCount) values")
        }
        guard calibrator == .minmax || (percentile > 50 && percentile <= 100) else {
            throw EngineError.invalidInput("the percentile must be in (50, 100], got \(percentile)")
        }
        // Which layers are conv2d/dense, and the architecture prefix whose output is each one's input.
        var layers: [QuantizedLayerParameters] = []
        for (i, name) in architecture.convAndDenseLayers {
            guard let weight = slot(named: "\(name).weight") else {
                throw EngineError.invalidArchitecture("no parameter slot \(name).weight")
            }
            let values = try layerInputs(prefix: i, images: images, count: count, threads: threads)
            let (lo, hi) = Sequential.range(values, calibrator: calibrator, percentile: percentile)
            let (scale, zero) = QuantizationMath.activationParameters(lo: lo, hi: hi)
            let outputs = weight.shape[weight.shape.count - 1]
            let scales = QuantizationMath.weightScales(parameters[weight.offset..<(weight.offset + weight.count)], outputs: outputs)
            layers.append(QuantizedLayerParameters(name: name, inputScale: scale, inputZeroPoint: zero, weightScales: scales))
        }
        let q = QuantizationParameters(calibrator: calibrator, percentile: calibrator == .percentile ? percentile : nil,
                                       calibrationImages: count, layers: layers)
        // The float view of a quantized model holds the dequantized weights q · s (biases unchanged).
        var p = parameters
        for l in layers {
            let slot = slot(named: "\(l.name).weight")!
            let outputs = l.weightScales.count
            for i in 0..<slot.count {
                let s = l.weightScales[i % outputs]
                p[slot.offset + i] = Float(QuantizationMath.quantizeWeight(p[slot.offset + i], scale: s)) * s
            }
        }
        return try Sequential(architecture: architecture, parameters: p, quantization: q)
    }

    /// The inputs of layer `prefix` (its predecessors' output) for the calibration images, as floats.
    private func layerInputs(prefix: Int, images: [Float], count: Int, threads: Int) throws -> [Float] {
        if prefix == 0 { return Array(images.prefix(count * inputCount)) }
        var layers = Array(architecture.layers.prefix(prefix))
        if case .flatten = layers.last {} else { layers.append(.flatten) }
        let head = Architecture(inputShape: architecture.inputShape, layers: layers)
        // Slots are laid out in layer order, so the head's parameters are a prefix of this model's.
        let used = try Sequential(architecture: head, seed: 0).parameterCount
        let model = try Sequential(architecture: head, parameters: Array(parameters.prefix(used)))
        var workspace = model.makeWorkspace(maxBatch: min(count, 256))
        return model.logits(images, count: count, workspace: &workspace, threads: threads)
    }

    /// (lo, hi) of the values by the calibrator's rule.
    static func range(_ values: [Float], calibrator: Calibrator, percentile: Double) -> (Float, Float) {
        guard !values.isEmpty else { return (0, 0) }
        switch calibrator {
        case .minmax:
            return (values.min()!, values.max()!)
        case .percentile:
            let sorted = values.sorted()
            func at(_ p: Double) -> Float {
                let i = Int((p / 100 * Double(sorted.count - 1)).rounded(.toNearestOrEven))
                return sorted[min(max(i, 0), sorted.count - 1)]
            }
            return (at(100 - percentile), at(percentile))
        }
    }
}
