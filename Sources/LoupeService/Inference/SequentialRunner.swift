// Runs a LoupeEngine `Sequential` on one worker with that worker's own preallocated workspace.
import LoupeEngine

public final class SequentialRunner: ModelRunner {
    let network: Sequential
    var workspace: InferenceWorkspace

    public init(network: Sequential, maxBatch: Int) {
        self.network = network
        self.workspace = network.makeWorkspace(maxBatch: maxBatch)
    }

    public func predict(_ input: [Float], count: Int, threads: Int) -> [Float] {
        network.predict(input, count: count, workspace: &workspace, threads: threads)
    }
}
