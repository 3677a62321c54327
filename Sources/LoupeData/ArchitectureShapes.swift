import LoupeEngine

extension ModelFile {
    /// The tensors an architecture needs, exactly the engine's parameter slots (conv1.weight
    /// HWIO, conv1.bias, dense1.weight (in, out), dense1.bias, …, packed from element 0).
    /// Throws when the engine rejects the architecture.
    public static func expectedTensors(for architecture: Architecture) throws -> [TensorEntry] {
        try layout(of: architecture).tensors
    }

    /// The network's output size (number of classes).
    public static func outputCount(of architecture: Architecture) throws -> Int {
        try layout(of: architecture).outputs
    }

    static func layout(of architecture: Architecture) throws -> (tensors: [TensorEntry], outputs: Int) {
        // Size the network before the engine allocates it: a file's architecture is untrusted
        // input (a valid checksum proves nothing), and `dense(units: 1 << 40)` must be an error,
        // not an allocation.
        let count = try plannedParameterCount(of: architecture)
        guard count <= maxFileBytes / 4 else {
            throw LoupeDataError.modelFile(path: nil, problem: .shapeMismatch("the architecture needs \(count) parameters, more than a model file can hold"))
        }
        let model: Sequential
        do {
            model = try Sequential(architecture: architecture, seed: 0)
        } catch {
            throw LoupeDataError.modelFile(path: nil, problem: .invalidHeader("the architecture is invalid: \(error)"))
        }
        return (model.parameterSlots.map { TensorEntry(name: $0.name, offset: $0.offset, shape: $0.shape) }, model.outputCount)
    }
}

extension ModelFile {
    /// A model file for a trained network: tensor table and parameters from the engine.
    public init(model: Sequential, labels: [String], normalization: Normalization = .standard, training: TrainingMetadata,
                goldenSamples: [GoldenSample] = [], inputStatistics: InputStatistics? = nil) throws {
        var tensors = model.parameterSlots.map { TensorEntry(name: $0.name, offset: $0.offset, shape: $0.shape) }
        if let q = model.quantization { tensors = ModelFile.quantizedTensorEntries(tensors, quantization: q) }
        var header = ModelHeader(
            architecture: model.architecture, labels: labels, normalization: normalization,
            parameterCount: model.parameterCount, tensors: tensors,
            training: training, goldenSamples: goldenSamples, inputStatistics: inputStatistics)
        header.quantization = model.quantization
        try self.init(header: header, parameters: model.parameters)
    }

    /// The engine network this file describes.
    public func makeModel() throws -> Sequential {
        try Sequential(architecture: header.architecture, parameters: parameters, quantization: header.quantization)
    }

    /// Golden samples for `model`: runs the given UInt8 images through it and records the
    /// outputs. `images` is count × inputCount pixels; `labels` the dataset's labels.
    public static func goldenSamples(model: Sequential, images: [UInt8], labels: [UInt8], count: Int,
                                     normalization: Normalization = .standard) -> [GoldenSample] {
        guard count > 0 else { return [] }
        let n = model.inputCount
        var workspace = model.makeWorkspace(maxBatch: count)
        // The network's own outputs (softmax probabilities only when the last layer is softmax).
        let probabilities = model.outputs(normalization.apply(Array(images.prefix(count * n))), count: count, workspace: &workspace, threads: 1)
        let k = model.outputCount
        return (0..<count).map { i in
            let p = Array(probabilities[i * k..<(i + 1) * k])
            let best = p.indices.max { p[$0] < p[$1] } ?? 0
            return GoldenSample(pixels: Array(images[i * n..<(i + 1) * n]), label: i < labels.count ? Int(labels[i]) : nil,
                                expectedClass: best, probabilities: p)
        }
    }
}

extension ModelFile {
    /// Parameter count of an architecture, computed with overflow checks and without
    /// allocating (shapes as in docs/model-format.md §3). Throws on overflow or bad sizes;
    /// architectural errors the engine reports better are left to it (counted as 0 here).
    static func plannedParameterCount(of architecture: Architecture) throws -> Int {
        // A negative size is an architectural error too (the engine names the layer): counted as 0.
        do { return try plannedParameterCount(architecture) } catch is NegativeSize { return 0 }
    }

    private struct NegativeSize: Error {}

    private static func plannedParameterCount(_ architecture: Architecture) throws -> Int {
        func bad(_ why: String) -> LoupeDataError { .modelFile(path: nil, problem: .shapeMismatch(why)) }
        let limit = 1 << 40
        func mul(_ values: [Int]) throws -> Int {
            var r = 1
            for v in values {
                guard v >= 0 else { throw NegativeSize() }
                guard v <= limit else { throw bad("size \(v) is out of range") }
                let (p, o) = r.multipliedReportingOverflow(by: v)
                guard !o, p <= limit else { throw bad("sizes overflow") }
                r = p
            }
            return r
        }
        var shape = architecture.inputShape
        guard !shape.isEmpty, shape.count <= 3 else { return 0 }
        _ = try mul(shape)
        var total = 0
        for layer in architecture.layers {
            switch layer {
            case let .conv2d(filters, kernel, stride, padding, _):
                guard shape.count == 3 else { return total }
                total += try mul([kernel.height, kernel.width, shape[2], filters]) + (try mul([filters]))
                guard let r = padding.resolve(height: shape[0], width: shape[1], kernel: kernel, stride: stride) else { return total }
                shape = [r.outHeight, r.outWidth, filters]
            case let .groupedConv2d(filters, groups, kernel, stride, padding, _):
                guard shape.count == 3, groups > 0 else { return total }
                total += try mul([kernel.height, kernel.width, shape[2] / groups, filters]) + (try mul([filters]))
                guard let r = padding.resolve(height: shape[0], width: shape[1], kernel: kernel, stride: stride) else { return total }
                shape = [r.outHeight, r.outWidth, filters]
            case let .depthwiseConv2d(kernel, stride, padding, _):
                guard shape.count == 3 else { return total }
                total += try mul([kernel.height, kernel.width, shape[2]]) + (try mul([shape[2]]))
                guard let r = padding.resolve(height: shape[0], width: shape[1], kernel: kernel, stride: stride) else { return total }
                shape = [r.outHeight, r.outWidth, shape[2]]
            case let .maxPool2d(pool, stride, padding), let .avgPool2d(pool, stride, padding):
                guard shape.count == 3, pool.height > 0, pool.width > 0,
                      let r = padding.resolve(height: shape[0], width: shape[1], kernel: pool, stride: stride ?? pool) else { return total }
                shape = [r.outHeight, r.outWidth, shape[2]]
            case .globalAvgPool2d:
                guard shape.count == 3 else { return total }
                shape = [1, 1, shape[2]]
            case .activation:
                break
            case .flatten:
                shape = [try mul(shape)]
            case let .dense(units, _):
                guard shape.count == 1 else { return total }
                total += try mul([shape[0], units]) + (try mul([units]))
                shape = [units]
            case .dropout:
                break
            }
            guard total <= limit else { throw bad("the architecture needs more than \(limit) parameters") }
        }
        return total
    }
}
