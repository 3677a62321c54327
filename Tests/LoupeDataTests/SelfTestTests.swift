// The golden-sample self-test that the server's loader and `loupe inspect` both run: a file with one
// changed weight and a recomputed checksum reads fine and fails it; so does a file without golden
// samples, and a sample the tolerance does not cover.
import Testing
import LoupeEngine
@testable import LoupeData

@Suite struct SelfTestTests {
    /// A seeded network with golden samples it computed itself on seeded images.
    static func honestFile(goldenCount: Int = 4) throws -> ModelFile {
        let model = try Sequential(architecture: ModelFileTests.tinyArchitecture, seed: 11)
        var state: UInt64 = 42
        let images = (0..<(goldenCount * 16)).map { _ -> UInt8 in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return UInt8(truncatingIfNeeded: state >> 56)
        }
        let golden = ModelFile.goldenSamples(model: model, images: images, labels: [], count: goldenCount)
        return try ModelFile(model: model, labels: ["a", "b", "c"], training: TrainingMetadata(dataset: "seeded", epochs: 0, seed: 11),
                             goldenSamples: golden)
    }

    /// `file` with one weight changed and the checksum recomputed: every byte-level check passes.
    static func tampered(_ file: ModelFile) throws -> ModelFile {
        var parameters = file.parameters
        // The output bias of the class golden sample 0 predicts, lowered far enough to change it.
        let bias = try #require(file.header.tensors.last)
        parameters[bias.offset + file.header.goldenSamples[0].expectedClass] -= 50
        return try ModelFile(header: file.header, parameters: parameters)
    }

    @Test func anHonestFilePassesAndInspectSaysSo() throws {
        let file = try Self.honestFile()
        try ModelFile.selfTest(model: try file.makeModel(), header: file.header)
        let r = ModelInspection.inspect(bytes: try file.encode())
        #expect(r.error == nil && r.selfTest == .passed(count: 4) && r.isValid)
    }

    @Test func oneChangedWeightWithARecomputedChecksumFails() throws {
        let file = try Self.tampered(try Self.honestFile())
        let bytes = try file.encode()
        #expect(try ModelFile.decode(bytes: bytes) == file, "the tampered file is well-formed: only the self-test can tell")
        #expect(throws: SelfTestFailure.self) { try ModelFile.selfTest(model: try file.makeModel(), header: file.header) }
        let r = ModelInspection.inspect(bytes: bytes)
        #expect(r.error == nil && r.checksumOK)
        guard case let .failed(reason)? = r.selfTest else { Issue.record("self-test did not fail: \(String(describing: r.selfTest))"); return }
        #expect(reason.hasPrefix("golden sample 0: predicted class"), "\(reason)")
        #expect(!r.isValid)
        // Skipped as the server's models.self_test: false skips it.
        let skipped = ModelInspection.inspect(bytes: bytes, selfTest: false)
        #expect(skipped.selfTest == nil && skipped.isValid)
    }

    @Test func aSmallProbabilityChangeIsCaughtByTheTolerance() throws {
        var file = try Self.honestFile()
        var header = file.header
        header.goldenSamples[1].probabilities[0] += 3e-4
        file = try ModelFile(header: header, parameters: file.parameters)
        let model = try file.makeModel()
        #expect(throws: SelfTestFailure.self) { try ModelFile.selfTest(model: model, header: file.header) }
        try ModelFile.selfTest(model: model, header: file.header, tolerance: 1e-3)
        let r = ModelInspection.inspect(bytes: try file.encode())
        guard case let .failed(reason)? = r.selfTest else { Issue.record("self-test did not fail"); return }
        #expect(reason.hasPrefix("golden sample 1: a probability differs from the recorded one by"), "\(reason)")
        #expect(ModelInspection.inspect(bytes: try file.encode(), tolerance: 1e-3).isValid)
    }

    @Test func aFileWithoutGoldenSamplesFailsAsTheServerRefusesIt() throws {
        let file = try Self.honestFile(goldenCount: 0)
        #expect(file.header.goldenSamples.isEmpty)
        let r = ModelInspection.inspect(bytes: try file.encode())
        #expect(r.error == nil)
        #expect(r.selfTest == .failed("the file has no golden samples to test with (set models.self_test: false to serve it anyway)"))
    }
}
