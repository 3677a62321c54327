// Structured pruning (`loupe prune`, docs/model-lifecycle or docs/performance "Pruning"): whole conv
// filters and dense units are removed, so the smaller network runs the same dense kernels, only
// narrower. The importance of a filter/unit is the L1 norm of its incoming weights (Li et al. 2017,
// "Pruning Filters for Efficient ConvNets") over the inputs that remain; the output layer keeps all
// its units. Fine-tuning the result is the caller's step (the trainer, as for any fp32 model).

extension Architecture {
    /// The conv2d and dense layers in order, with the names of their parameter slots ("conv1", "dense2", …).
    package var convAndDenseLayers: [(index: Int, name: String)] {
        var convIndex = 0, denseIndex = 0
        return layers.enumerated().compactMap { i, layer in
            switch layer {
            case .conv2d: convIndex += 1; return (i, "conv\(convIndex)")
            case .dense: denseIndex += 1; return (i, "dense\(denseIndex)")
            default: return nil
            }
        }
    }
}

extension Sequential {
    /// This fp32 network with only the `keep` fraction (0 < keep ≤ 1) of each hidden conv2d's filters and
    /// dense layer's units: the ⌈keep · n⌉ with the largest L1 norm of incoming weights (ties: the lower
    /// index), kept in their original order; a layer whose count is a multiple of 16 keeps a multiple of
    /// 16 (the fused conv kernels need it). The next layer loses the matching input channels / rows.
    /// Depthwise convolutions are not covered (they tie their channels to the previous layer's).
    public func pruned(keep: Double) throws -> Sequential {
        guard quantization == nil else { throw EngineError.invalidArchitecture("prune the fp32 parent, not the quantized model") }
        guard keep > 0, keep <= 1 else { throw EngineError.invalidInput("keep must be in (0, 1], got \(keep)") }
        let parametric = architecture.convAndDenseLayers
        let lastParametric = parametric.last?.index ?? -1
        // Channels of the tensor flowing between layers: how many the original has, and which of them remain.
        var channels = architecture.inputShape.last ?? 1
        var kept = Array(0..<channels)
        var layers = architecture.layers
        // Per pruned layer: (weight slot, rows kept, columns kept, bias slot); rows index the (…, in) axes flattened.
        var plan: [(weight: ParameterSlot, rows: [Int], columns: [Int], bias: ParameterSlot)] = []
        for (i, layer) in architecture.layers.enumerated() {
            let kind: String
            switch layer {
            case .depthwiseConv2d: kind = "depthwise"
            case .groupedConv2d: kind = "grouped"
            default: continue
            }
            throw EngineError.invalidArchitecture("layer \(i + 1) is a \(kind) convolution; pruning covers conv2d and dense layers (and pooling, activations, flatten, dropout between them)")
        }
        // Pooling, activations, flatten and dropout keep the channel axis as it is (NHWC: channel fastest).
        for (i, name) in parametric {
            let layer = architecture.layers[i]
            guard let weight = slot(named: "\(name).weight"), let bias = slot(named: "\(name).bias") else {
                throw EngineError.invalidArchitecture("no parameter slots for \(name)")
            }
            let outputs = weight.shape[weight.shape.count - 1]
            let inputs = weight.count / outputs
            // Rows of the weight (all axes but the last, flattened) whose input channel remains. A conv's rows are
            // (kh, kw, c); a dense layer's (position, c) with the channel fastest, after a flatten of NHWC.
            guard inputs % channels == 0 else {
                throw EngineError.invalidArchitecture("\(name) has \(inputs) inputs, not a multiple of the \(channels) channels before it")
            }
            let keptSet = Set(kept)
            let rows = (0..<inputs).filter { keptSet.contains($0 % channels) }
            var columns = Array(0..<outputs)
            if i != lastParametric {
                var norm = [Float](repeating: 0, count: outputs)
                for r in rows { for o in 0..<outputs { norm[o] += abs(parameters[weight.offset + r * outputs + o]) } }
                var count = Int((keep * Double(outputs)).rounded(.up))
                if outputs % 16 == 0 { count = (count + 15) / 16 * 16 }
                count = min(max(count, 1), outputs)
                columns = (0..<outputs).sorted { norm[$0] != norm[$1] ? norm[$0] > norm[$1] : $0 < $1 }.prefix(count).sorted()
                switch layer {
                case let .conv2d(_, kernel, stride, padding, activation):
                    layers[i] = .conv2d(filters: count, kernel: kernel, stride: stride, padding: padding, activation: activation)
                case let .dense(_, activation):
                    layers[i] = .dense(units: count, activation: activation)
                default:
                    break
                }
            }
            plan.append((weight, rows, columns, bias))
            channels = outputs
            kept = columns
        }
        let smaller = Architecture(inputShape: architecture.inputShape, layers: layers)
        let compiled = try compile(smaller)   // the smaller network's slots (its weights are filled below)
        var p = [Float](repeating: 0, count: compiled.plan.parameterCount)
        for ((_, name), step) in zip(smaller.convAndDenseLayers, plan) {
            guard let w = compiled.slots.first(where: { $0.name == "\(name).weight" }),
                  let b = compiled.slots.first(where: { $0.name == "\(name).bias" }),
                  w.count == step.rows.count * step.columns.count, b.count == step.columns.count else {
                throw EngineError.invalidArchitecture("the pruned \(name) does not have the expected shape")
            }
            let outputs = step.weight.shape[step.weight.shape.count - 1]
            for (r, row) in step.rows.enumerated() {
                for (c, column) in step.columns.enumerated() {
                    p[w.offset + r * step.columns.count + c] = parameters[step.weight.offset + row * outputs + column]
                }
            }
            for (c, column) in step.columns.enumerated() { p[b.offset + c] = parameters[step.bias.offset + column] }
        }
        return try Sequential(architecture: smaller, parameters: p)
    }
}
