import LoupeData
import LoupeEngine

/// Why a version could not be loaded; `description` is the sentence that is logged, counted and
/// shown in the repository index.
public struct ModelLoadError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Stage: String, Sendable { case read, verify, build, selfTest = "self-test" }
    public var stage: Stage
    public var message: String
    /// The file changed between the scan and the end of the read: not a verdict on the file,
    /// the pass retries it once it settles.
    public var fileChanged = false
    public var description: String { "\(stage.rawValue): \(message)" }
}

/// Reads, verifies, builds and self-tests one version. Pure apart from reading the file.
enum ModelLoader {
    /// `expected` is the file state the scan saw and judged settled; a different state at open
    /// time, or a change during the read, throws with `fileChanged` set.
    static func load(name: String, version: Int, path: String, expected: FileIdentity?, configuration: RepositoryConfiguration,
                     drift: (ModelHeader) -> DriftWindow) throws(ModelLoadError) -> LoadedModel {
        let clock = ContinuousClock()
        let start = clock.now
        let bytes: [UInt8]
        let identity: FileIdentity
        do {
            (bytes, identity) = try RepositoryFileSystem.readStable(path, maxBytes: configuration.maxModelBytes)
        } catch let error as RepositoryFileError where error.changedDuringRead {
            throw ModelLoadError(stage: .read, message: "\(error)", fileChanged: true)
        } catch {
            throw ModelLoadError(stage: .read, message: "\(error)")
        }
        if let expected, expected != identity {
            throw ModelLoadError(stage: .read, message: "\(path) changed after it was scanned", fileChanged: true)
        }
        let file: ModelFile
        do {
            file = try ModelFile.decode(bytes: bytes)
        } catch {
            throw ModelLoadError(stage: .verify, message: "\(error)")
        }
        if let required = configuration.requiredInputShape, file.header.inputShape != required {
            throw ModelLoadError(stage: .verify, message:
                "input shape \(file.header.inputShape) is not the \(required) this server feeds")
        }
        let shape = file.header.inputShape, side = configuration.maxInputSide
        guard shape.count == 3, (1...side).contains(shape[0]), (1...side).contains(shape[1]), shape[2] == 1 || shape[2] == 3 else {
            throw ModelLoadError(stage: .verify, message:
                "input shape \(shape) cannot be fed: the server takes images [height, width, channels] with 1 or 3 channels and sides up to \(side) (models.max_input_side)")
        }
        let model: Sequential
        do {
            model = try file.makeModel()
        } catch {
            throw ModelLoadError(stage: .build, message: "\(error)")
        }
        // What one worker allocates for this model, from the layouts its buffers are then made from: the inference
        // workspace (fp32, or an int8 model's own scratch) and, made on the first /explain, the explanation workspace.
        let inference = model.inferenceWorkspaceBytes(maxBatch: configuration.workspaceBatch, threads: configuration.workspaceThreads)
        let explanation = model.explanationWorkspaceBytes
        let (sum, overflow) = inference.addingReportingOverflow(explanation)
        let workspace = overflow ? Int.max : sum
        guard workspace <= configuration.maxWorkspaceBytes else {
            let perImage = model.inferenceWorkspaceBytes(maxBatch: 1, threads: 1)
            let explained = explanation > 0 ? " + \(mebibytes(explanation)) for explanations (\(Explainer.maxBatch) images at a time, made on the first /explain)" : ""
            throw ModelLoadError(stage: .build, message:
                "its activations need \(mebibytes(workspace)) of workspace per inference worker: \(mebibytes(inference)) for batches of \(configuration.workspaceBatch) images (batching.max_batch_size) on \(configuration.workspaceThreads) thread\(configuration.workspaceThreads == 1 ? "" : "s") (inference.threads), \(mebibytes(perImage)) for one image\(explained), over models.max_workspace_bytes (\(mebibytes(configuration.maxWorkspaceBytes))); lower batching.max_batch_size or raise the limit if the memory is there")
        }
        guard model.outputCount == file.header.labels.count else {
            throw ModelLoadError(stage: .build, message:
                "the network has \(model.outputCount) outputs but the header names \(file.header.labels.count) labels")
        }
        if configuration.selfTest {
            try selfTest(model: model, header: file.header, tolerance: configuration.selfTestTolerance)
        }
        let duration = start.duration(to: clock.now)
        let seconds = Double(duration.components.seconds) + Double(duration.components.attoseconds) * 1e-18
        return LoadedModel(
            name: name, version: version, sha256: file.sha256Hex, header: file.header, model: model,
            loadedAt: Double(RepositoryFileSystem.nowNanoseconds()) / 1e9, loadDuration: seconds,
            path: path, drift: drift(file.header), fileIdentity: identity)
    }

    /// The golden-sample self-test, as `loupe inspect` runs it (ModelFile.selfTest, LoupeData).
    static func selfTest(model: Sequential, header: ModelHeader, tolerance: Float) throws(ModelLoadError) {
        do throws(SelfTestFailure) {
            try ModelFile.selfTest(model: model, header: header, tolerance: tolerance)
        } catch {
            throw ModelLoadError(stage: .selfTest, message: error.message)
        }
    }
}

/// "11.3 MiB" (to a tenth), for load messages.
private func mebibytes(_ bytes: Int) -> String { "\((Double(bytes) / 1_048_576 * 10).rounded() / 10) MiB" }
