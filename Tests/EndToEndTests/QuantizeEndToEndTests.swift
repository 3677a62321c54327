import Foundation
import LoupeData
import LoupeEngine
import Testing

/// `loupe quantize` on the shipped model, end to end: the next version is an int8 file both readers accept
/// (the Python one reproducing its golden samples from docs/model-format.md §12), and its ONNX QDQ export
/// gives ONNX Runtime the same top-1 as Loupe on every test image.
@Suite(.serialized) struct QuantizeEndToEndTests {
    @Test func quantizeWritesTheNextVersionAndItsQDQExportAgreesWithONNXRuntime() throws {
        let python = try ServeToolsTests.require("python3")
        let dir = try TempDir()
        let repo = dir.path + "/models"
        try FileManager.default.createDirectory(atPath: repo + "/fashion/1", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: E2E.root + "/models/fashion/1/model.loupe", toPath: repo + "/fashion/1/model.loupe")

        let q = try CLIProcess.loupe(["quantize", repo + "/fashion", "--calibration", "500"])
        #expect(q.status == 0, "\(q.output)")
        #expect(q.stdout.contains("int8  ") && q.stdout.contains("wrote \(repo)/fashion/2/model.loupe (int8, format version 2"), "\(q.output)")
        let path = repo + "/fashion/2/model.loupe"
        let file = try ModelFile.read(path: path)
        #expect(file.header.precision == "int8" && file.header.quantization?.calibrationImages == 500)
        let parent = try #require(file.header.quantizedFrom)
        let accuracy = try #require(file.header.training.testAccuracy), parentAccuracy = try #require(parent.testAccuracy)
        #expect(accuracy >= parentAccuracy - 0.003, "int8 \(accuracy) vs fp32 \(parentAccuracy): more than 0.3 points lost")

        let inspect = try CLIProcess.loupe(["inspect", path])
        #expect(inspect.status == 0 && inspect.stdout.contains("precision       int8") && inspect.stdout.contains("self-test       passed"), "\(inspect.output)")
        let golden = try CLIProcess.run(python, [E2E.root + "/scripts/read_loupe.py", path, "--check-golden"])
        #expect(golden.status == 0 && golden.stdout.contains("\"precision\": \"int8\""), "\(golden.output)")
        // Quantizing an int8 model is refused with a sentence.
        let again = try CLIProcess.loupe(["quantize", path, "--output", dir.path + "/x.loupe"])
        #expect(again.status != 0 && again.stderr.contains("already quantized"), "\(again.output)")

        // Loupe's top-1 on every test image, then ONNX Runtime's on the QDQ export.
        let test = try IDXDataset.load(directory: E2E.datasetDirectory, split: .test)
        let model = try file.makeModel()
        var workspace = model.makeWorkspace(maxBatch: 256)
        let probabilities = model.predict(file.header.normalization.apply(test.images), count: test.count, workspace: &workspace, threads: 2)
        let top1 = (0..<test.count).map { UInt8(Ranking.argmax(probabilities[($0 * 10)..<(($0 + 1) * 10)])) }
        FileManager.default.createFile(atPath: dir.path + "/top1.u8", contents: Data(top1))
        let export = try CLIProcess.loupe(["export", "--model", path, "--format", "onnx", "--output", dir.path + "/int8.onnx"])
        #expect(export.status == 0 && export.stdout.contains("QDQ"), "\(export.output)")
        let check = try CLIProcess.run(python, [E2E.root + "/Tests/EndToEndTests/python/quantized_onnx_check.py", dir.path + "/int8.onnx",
                                                dir.path + "/top1.u8", E2E.datasetDirectory])
        #expect(check.status == 0 && check.stdout.contains("\"disagreements\": 0"), "\(check.output)")
    }
}
