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

/// `loupe prune` on the shipped model, end to end: the next version is a smaller fp32 network (half the conv
/// filters and hidden dense units), fine-tuned, recording its parent, whose golden samples the Python reader
/// reproduces; and it quantizes like any fp32 model.
@Suite(.serialized) struct PruneEndToEndTests {
    @Test func pruneWritesASmallerFineTunedNextVersion() throws {
        let python = try ServeToolsTests.require("python3")
        let dir = try TempDir()
        let repo = dir.path + "/models"
        try FileManager.default.createDirectory(atPath: repo + "/fashion/1", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: E2E.root + "/models/fashion/1/model.loupe", toPath: repo + "/fashion/1/model.loupe")

        let p = try CLIProcess.loupe(["prune", repo + "/fashion", "--keep", "0.5", "--epochs", "1", "--limit", "6000"])
        #expect(p.status == 0, "\(p.output)")
        #expect(p.stdout.contains("pruned, keep 0.5") && p.stdout.contains("wrote \(repo)/fashion/2/model.loupe"), "\(p.output)")
        let file = try ModelFile.read(path: repo + "/fashion/2/model.loupe")
        #expect(file.header.architecture.layers.first == .conv2d(filters: 16, kernel: 3, padding: .valid, activation: .relu))
        #expect(file.header.architecture.layers.contains(.dense(units: 64, activation: .relu)))
        #expect(file.header.training.parent?.path.hasSuffix("fashion/1/model.loupe") == true)
        let accuracy = try #require(file.header.training.testAccuracy)
        #expect(accuracy > 0.85, "pruned and fine-tuned on 4,800 images for one epoch: \(accuracy)")
        let golden = try CLIProcess.run(python, [E2E.root + "/scripts/read_loupe.py", repo + "/fashion/2/model.loupe", "--check-golden"])
        #expect(golden.status == 0, "\(golden.output)")
        let q = try CLIProcess.loupe(["quantize", repo + "/fashion/2", "--calibration", "200"])
        #expect(q.status == 0 && q.stdout.contains("wrote \(repo)/fashion/3/model.loupe (int8"), "\(q.output)")

        // A quantized model and a keep outside (0, 1] are refused with a sentence.
        let int8 = try CLIProcess.loupe(["prune", repo + "/fashion/3", "--output", dir.path + "/x.loupe"])
        #expect(int8.status != 0 && int8.stderr.contains("prune its fp32 parent"), "\(int8.output)")
        let bad = try CLIProcess.loupe(["prune", repo + "/fashion/1", "--keep", "0", "--output", dir.path + "/x.loupe"])
        #expect(bad.status != 0 && bad.stderr.contains("--keep must be in (0, 1]"), "\(bad.output)")
    }
}
