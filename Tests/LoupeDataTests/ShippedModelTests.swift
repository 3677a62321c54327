import Testing
import LoupeEngine
@testable import LoupeData

/// The default model committed in models/fashion/1 must stay readable and must still pass its
/// own self-test with the current engine (a kernel change that moves its outputs would make
/// the server refuse it).
@Suite struct ShippedModelTests {
    static let path = SupportingTypesTests.repositoryRoot + "/models/fashion/1/model.loupe"

    @Test func shippedModelIsValidAndMatchesTheDocumentedLayout() throws {
        let bytes = try FileIO.readFile(Self.path)
        let file = try ModelFile.decode(bytes: bytes)
        #expect(file.header.architecture == .seed)
        #expect(file.header.labels == ClassNames.fashionMNIST)
        #expect(file.header.training.seed == 42 && file.header.training.epochs == 10)
        #expect((file.header.training.testAccuracy ?? 0) >= 0.893)
        // docs/model-format.md §1's worked example.
        #expect(ModelFile.readUInt32(bytes, 12) == 14_593)
        #expect(bytes.count == 2_790_536)
        #expect(file.sha256Hex == "1382a202081616ea093972b357fdca72b5957ec21540dc66afd59d07ffd388c1")
    }

    @Test(arguments: [1, 2])
    func goldenSamplesReproduceWithTheCurrentEngine(threads: Int) throws {
        let file = try ModelFile.read(path: Self.path)
        let model = try file.makeModel()
        let golden = file.header.goldenSamples
        #expect(golden.count == 10)
        var workspace = model.makeWorkspace(maxBatch: golden.count)
        let input = file.header.normalization.apply(golden.flatMap(\.pixels))
        let p = model.predict(input, count: golden.count, workspace: &workspace, threads: threads)
        for (i, g) in golden.enumerated() {
            let row = Array(p[i * 10..<(i + 1) * 10])
            let best = row.indices.max { row[$0] < row[$1] }!
            #expect(best == g.expectedClass)
            let worst = zip(row, g.probabilities).map { abs($0 - $1) }.max()!
            #expect(worst <= 1e-4, "golden sample \(i) differs by \(worst)")
        }
    }
}
