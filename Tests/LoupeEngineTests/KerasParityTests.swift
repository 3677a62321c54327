import Glibc
import Testing
@testable import LoupeEngine
@_spi(Kernels) import LoupeKernels

/// Reads a committed fixture file (see Fixtures/make_keras_fixture.py) next to this source file.
func fixtureBytes(_ name: String) throws -> [UInt8] {
    let dir = String(#filePath.prefix(upTo: #filePath.lastIndex(of: "/")!))
    let path = dir + "/Fixtures/" + name
    guard let f = fopen(path, "rb") else { throw FixtureError(path: path) }
    defer { fclose(f) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 1 << 16)
    while true {
        let n = fread(&chunk, 1, chunk.count, f)
        if n <= 0 { break }
        bytes.append(contentsOf: chunk[0..<n])
    }
    return bytes
}

struct FixtureError: Error { var path: String }

func fixtureFloats(_ name: String) throws -> [Float] {
    let b = try fixtureBytes(name)
    var out = [Float](repeating: 0, count: b.count / 4)
    for i in 0..<out.count {
        var bits = UInt32(b[4 * i])
        bits |= UInt32(b[4 * i + 1]) << 8
        bits |= UInt32(b[4 * i + 2]) << 16
        bits |= UInt32(b[4 * i + 3]) << 24
        out[i] = Float(bitPattern: bits)
    }
    return out
}

@Suite struct KerasParityTests {
    /// Keras's trained weights load without any transpose and reproduce Keras's outputs.
    @Test(arguments: [1, 2]) func kerasWeightsReproduceKerasOutputs(threads: Int) throws {
        let weights = try fixtureFloats("keras_weights.f32")
        let pixels = try fixtureBytes("keras_images.u8")
        let kerasProbs = try fixtureFloats("keras_probs.f32")
        let kerasLogits = try fixtureFloats("keras_logits.f32")
        let n = pixels.count / 784
        #expect(n == 32)
        let model = try Sequential(architecture: .seed, parameters: weights)
        let input = pixels.map { Float($0) / 255 }
        var ws = model.makeWorkspace(maxBatch: 16)
        let logits = model.logits(input, count: n, workspace: &ws, threads: threads)
        let probs = model.predict(input, count: n, workspace: &ws, threads: threads)
        var maxLogit: Float = 0, maxProb: Float = 0
        for i in 0..<(n * 10) {
            maxLogit = max(maxLogit, abs(logits[i] - kerasLogits[i]))
            maxProb = max(maxProb, abs(probs[i] - kerasProbs[i]))
        }
        // Tolerance 1e-4 absolute on logits (their magnitude is up to ~30) and on probabilities.
        #expect(maxLogit <= 1e-4, "max |logit - Keras| = \(maxLogit)")
        #expect(maxProb <= 1e-4, "max |prob - Keras| = \(maxProb)")
    }
}
