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
        let header = ModelHeader(
            architecture: model.architecture, labels: labels, normalization: normalization,
            parameterCount: model.parameterCount,
            tensors: model.parameterSlots.map { TensorEntry(name: $0.name, offset: $0.offset, shape: $0.shape) },
            training: training, goldenSamples: goldenSamples, inputStatistics: inputStatistics)
        try self.init(header: header, parameters: model.parameters)
    }

    /// The engine network this file describes.
    public func makeModel() throws -> Sequential {
        try Sequential(architecture: header.architecture, parameters: parameters)
    }

    /// Golden samples for `model`: runs the given UInt8 images through it and records the
    /// outputs. `images` is count × inputCount pixels; `labels` the dataset's labels.
    public static func goldenSamples(model: Sequential, images: [UInt8], labels: [UInt8], count: Int,
                                     normalization: Normalization = .standard) -> [GoldenSample] {
        guard count > 0 else { return [] }
        let n = model.inputCount
        var workspace = model.makeWorkspace(maxBatch: count)
        let probabilities = model.predict(normalization.apply(Array(images.prefix(count * n))), count: count, workspace: &workspace, threads: 1)
        let k = model.outputCount
        return (0..<count).map { i in
            let p = Array(probabilities[i * k..<(i + 1) * k])
            let best = p.indices.max { p[$0] < p[$1] } ?? 0
            return GoldenSample(pixels: Array(images[i * n..<(i + 1) * n]), label: i < labels.count ? Int(labels[i]) : nil,
                                expectedClass: best, probabilities: p)
        }
    }
}
