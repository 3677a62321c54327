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
    ///
    /// `orderChannels`: the output channels of a conv2d that feeds a dense layer through channel-wise layers only are
    /// reordered so that channels which are zero on the same pixels of the calibration images share the dense
    /// layer's 4-byte input groups (`zeroGroupOrder`); the kernels skip all-zero groups, and on the seed network
    /// 44 % of the groups are zero instead of 28 %. A permutation of hidden units is the same function: the int8
    /// model's outputs are bit for bit those of the unordered one (the same int32 sums, added in another order).
    public func quantized(calibrationImages images: [Float], count: Int, calibrator: Calibrator, percentile: Double = 99.99,
                          threads: Int = 1, orderChannels: Bool = true) throws -> Sequential {
        guard quantization == nil else { throw EngineError.invalidArchitecture("the model is already quantized") }
        guard count >= 1, images.count >= count * inputCount else {
            throw EngineError.invalidInput("calibration needs at least one image of \(inputCount) values")
        }
        guard calibrator == .minmax || (percentile > 50 && percentile <= 100) else {
            throw EngineError.invalidInput("the percentile must be in (50, 100], got \(percentile)")
        }
        // Which layers are conv2d/dense, and the architecture prefix whose output is each one's input.
        var layers: [QuantizedLayerParameters] = []
        var reorder: (conv: Int, dense: Int, order: [Int])?
        let parametric = architecture.convAndDenseLayers
        for (l, (i, name)) in parametric.enumerated() {
            guard let weight = slot(named: "\(name).weight") else {
                throw EngineError.invalidArchitecture("no parameter slot \(name).weight")
            }
            let values = try layerInputs(prefix: i, images: images, count: count, threads: threads)
            let (lo, hi) = Sequential.range(values, calibrator: calibrator, percentile: percentile)
            let (scale, zero) = QuantizationMath.activationParameters(lo: lo, hi: hi)
            let outputs = weight.shape[weight.shape.count - 1]
            let scales = QuantizationMath.weightScales(parameters[weight.offset..<(weight.offset + weight.count)], outputs: outputs)
            layers.append(QuantizedLayerParameters(name: name, inputScale: scale, inputZeroPoint: zero, weightScales: scales))
            if orderChannels, reorder == nil, zero == 0, l > 0, let channels = groupableChannels(conv: parametric[l - 1].index, dense: i) {
                let order = Sequential.zeroGroupOrder(values, channels: channels, inverseScale: 1 / scale)
                if order != Array(0..<channels) { reorder = (l - 1, l, order) }
            }
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
        guard let reorder else { return try Sequential(architecture: architecture, parameters: p, quantization: q) }
        // Channel j of the conv becomes its old channel order[j]: its weight columns, bias and scale, and the dense
        // layer's input rows (position, channel) with the channel fastest.
        var reordered = q
        let conv = layers[reorder.conv], channels = reorder.order.count
        reordered.layers[reorder.conv].weightScales = reorder.order.map { conv.weightScales[$0] }
        let old = p
        for suffix in ["weight", "bias"] {
            let s = slot(named: "\(conv.name).\(suffix)")!
            for row in 0..<(s.count / channels) {
                for (j, c) in reorder.order.enumerated() { p[s.offset + row * channels + j] = old[s.offset + row * channels + c] }
            }
        }
        let dense = slot(named: "\(layers[reorder.dense].name).weight")!
        let outputs = dense.shape[dense.shape.count - 1]
        for position in 0..<(dense.count / outputs / channels) {
            for (j, c) in reorder.order.enumerated() {
                let to = dense.offset + (position * channels + j) * outputs, from = dense.offset + (position * channels + c) * outputs
                for o in 0..<outputs { p[to + o] = old[from + o] }
            }
        }
        return try Sequential(architecture: architecture, parameters: p, quantization: reordered)
    }

    /// The conv2d's filters when layer `conv` (a conv2d) reaches the dense layer `dense` through channel-wise layers
    /// only (pooling, activations, dropout, flatten: NHWC keeps the channel fastest, so the dense layer's 4-byte input
    /// groups are 4 channels of one position) and the filters come in whole groups of 4; otherwise nil.
    private func groupableChannels(conv: Int, dense: Int) -> Int? {
        guard case let .conv2d(filters, _, _, _, _) = architecture.layers[conv], case .dense = architecture.layers[dense],
              filters % 4 == 0, filters > 4 else { return nil }
        for layer in architecture.layers[(conv + 1)..<dense] {
            switch layer {
            case .maxPool2d, .avgPool2d, .globalAvgPool2d, .activation, .dropout, .flatten: continue
            default: return nil
            }
        }
        return filters
    }

    /// An order of `channels` channels (order[j] = the channel placed at j) that makes many groups of 4 consecutive
    /// channels all zero at once: `values` (…, channels) with the channel fastest, zero when it quantizes to 0
    /// (rint(v · inverseScale) ≤ 0 with zero point 0). Greedy (the channel most often zero, then the one most often
    /// zero together with the group so far, up to 4), then swaps between groups while they add all-zero (pixel, group)
    /// pairs; the identity when that is not better. Deterministic (ties to the lower channel).
    static func zeroGroupOrder(_ values: [Float], channels: Int, inverseScale: Float) -> [Int] {
        let pixels = values.count / channels, words = (pixels + 63) / 64
        // One bit set per pixel where the channel is zero.
        var zero = [[UInt64]](repeating: [UInt64](repeating: 0, count: words), count: channels)
        for p in 0..<pixels {
            for c in 0..<channels where (values[p * channels + c] * inverseScale).rounded(.toNearestOrEven) <= 0 {
                zero[c][p / 64] |= 1 << UInt64(p % 64)
            }
        }
        func allZero(_ group: ArraySlice<Int>) -> Int {
            var n = 0
            for w in 0..<words { n += group.reduce(~UInt64(0)) { $0 & zero[$1][w] }.nonzeroBitCount }
            return n
        }
        func total(_ order: [Int]) -> Int { stride(from: 0, to: channels, by: 4).reduce(0) { $0 + allZero(order[$1..<($1 + 4)]) } }
        var left = Array(0..<channels), order: [Int] = []
        while !left.isEmpty {
            var group = [left.max { allZero([$0]) != allZero([$1]) ? allZero([$0]) < allZero([$1]) : $0 > $1 }!]
            left.removeAll { $0 == group[0] }
            while group.count < 4 {
                let next = left.max { a, b in
                    let x = allZero(ArraySlice(group + [a])), y = allZero(ArraySlice(group + [b]))
                    return x != y ? x < y : a > b
                }!
                group.append(next)
                left.removeAll { $0 == next }
            }
            order += group
        }
        var improved = true, passes = 0
        while improved, passes < 16 {
            improved = false
            passes += 1
            for i in 0..<channels {
                for j in (i + 1)..<channels where i / 4 != j / 4 {
                    let gi = i / 4 * 4, gj = j / 4 * 4
                    let before = allZero(order[gi..<(gi + 4)]) + allZero(order[gj..<(gj + 4)])
                    order.swapAt(i, j)
                    if allZero(order[gi..<(gi + 4)]) + allZero(order[gj..<(gj + 4)]) > before { improved = true } else { order.swapAt(i, j) }
                }
            }
        }
        return total(order) > total(Array(0..<channels)) ? order : Array(0..<channels)
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
