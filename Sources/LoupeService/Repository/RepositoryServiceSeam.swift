// The seam between the repository and the rest of the service: `LoadedModel` is the service's
// `InferenceModel`, `ModelRepository` its `ModelProvider` (Inference/InferenceModel.swift).
import LoupeData
import LoupeEngine
import Synchronization

extension LoadedModel: InferenceModel {
    public var precision: String { header.precision }
    public var inputShape: [Int] { header.inputShape }
    public var normalization: Normalization { header.normalization }
    public var outputsAreLogits: Bool { !model.endsInSoftmax }
    public var inputTensorName: String { header.inputName ?? OIPTensor.input }
    public var outputTensorName: String { header.outputName ?? (model.endsInSoftmax ? OIPTensor.output : OIPTensor.logits) }
    public var inputLayout: String { header.inputLayout == "NCHW" ? "NCHW" : "NHWC" }
    public func makeRunner(maxBatch: Int) -> any ModelRunner {
        LoadedModelRunner(network: model, maxBatch: maxBatch)
    }
    /// Feeds the drift window of this model name (one short critical section per batch).
    public func observe(pixels: [UInt8], predictedClasses: [Int]) {
        drift.recordBatch(pixels: pixels, predictedClasses: predictedClasses)
    }
    public var cardSource: (header: ModelHeader, directory: String)? {
        let slash = path.lastIndex(of: "/")
        return (header, slash.map { String(path[..<$0]) } ?? ".")
    }
    public func driftSummary() -> DriftWindow.Summary? { drift.summary() }
}

/// One worker's runner: the shared immutable network plus that worker's own workspace.
final class LoadedModelRunner: ModelRunner {
    let network: Sequential
    var workspace: InferenceWorkspace
    /// Made on the first explanation this worker runs for the model.
    var explainer: Explainer?

    init(network: Sequential, maxBatch: Int) {
        self.network = network
        self.workspace = network.makeWorkspace(maxBatch: max(1, maxBatch))
    }

    func predict(_ input: [Float], count: Int, threads: Int) -> [Float] {
        network.outputs(input, count: count, workspace: &workspace, threads: threads)
    }

    func explain(_ input: [Float], count: Int, request: ExplanationRequest) throws(ServiceError) -> [Attribution] {
        try explainImages(input, count: count, request: request)
    }
}

extension ModelRepository: ModelProvider {
    public func model(named name: String?, version: Int?) -> (any InferenceModel)? {
        resolve(model: name, version: version)
    }

    public func servedModels() -> [any InferenceModel] { loadedModels }

    /// The published snapshot's number (every answer below is computed from the snapshot alone).
    public var publishedGeneration: UInt64? { generation.load(ordering: .acquiring) }

    /// Strict readiness (`RepositorySnapshot.isReady`) of the published snapshot, read without
    /// the snapshot's lock (every GET /health and readiness probe asks, from every event loop).
    public var isReady: Bool { publishedReady.load(ordering: .acquiring) }

    public func missingFiles() -> [ModelLoadProblem] {
        statuses.flatMap { status in
            status.versions.filter(\.fileMissing).map {
                ModelLoadProblem(model: status.name, version: $0.version, state: $0.state, reason: $0.reason ?? ModelRepository.missingFileReason)
            }
        }
    }

    public func loadProblems() -> [ModelLoadProblem] {
        statuses.flatMap { status in
            status.versions.filter(\.failed).map {
                ModelLoadProblem(model: status.name, version: $0.version, state: $0.state, reason: $0.reason ?? "failed to load")
            }
        }
    }

    public func requestReload(reason: String) {
        logger.info("reloading the model repository", metadata: ["reason": "\(reason)"])
        scheduleReload()
    }
}
