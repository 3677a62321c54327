import FoundationEssentials
import Glibc
import Testing
import LoupeEngine
@testable import LoupeData

@Suite struct SupportingTypesTests {
    static let repositoryRoot: String = {
        var path = #filePath
        for _ in 0..<3 { path = String(path[..<path.lastIndex(of: "/")!]) }
        return path
    }()

    @Test(arguments: ["seed", "seed-dropout", "two-conv", "tiny"])
    func shippedArchitecturesBuild(name: String) throws {
        let bytes = try FileIO.readFile(Self.repositoryRoot + "/Config/architectures/\(name).json")
        let architecture = try JSONDecoder().decode(Architecture.self, from: Data(bytes))
        let model = try Sequential(architecture: architecture, seed: 1)
        #expect(model.outputCount == 10 && model.inputCount == 784)
        if name == "seed" { #expect(architecture == .seed) }
    }

    @Test func evaluationReportCountsCorrectly() {
        // 4 examples, 3 classes: truths 0,1,2,2; predictions 0,2,2,1.
        let p: [Float] = [0.8, 0.1, 0.1,  0.2, 0.3, 0.5,  0.1, 0.1, 0.8,  0.3, 0.6, 0.1]
        let r = EvaluationReport(probabilities: p, labels: [0, 1, 2, 2], count: 4, classNames: ["a", "b", "c"])
        #expect(r.accuracy == 0.5)
        #expect(r.confusionMatrix == [[1, 0, 0], [0, 0, 1], [0, 1, 1]])
        #expect(r.classes[0].precision == 1 && r.classes[0].recall == 1 && r.classes[0].f1 == 1)
        #expect(r.classes[1].precision == 0 && r.classes[1].recall == 0 && r.classes[1].f1 == 0)
        #expect(r.classes[2].precision == 0.5 && r.classes[2].recall == 0.5 && r.classes[2].support == 2)
        let expectedLoss = -(log(0.8) + log(0.3) + log(0.8) + log(0.1)) / 4
        #expect(abs(r.loss - expectedLoss) < 1e-6)
    }

    @Test func inputStatistics() {
        let images: [UInt8] = [0, 0, 255, 255,  128, 128, 16, 0]
        let s = InputStatistics.compute(images: images, labels: [1, 1], count: 2, pixelsPerImage: 4, classCount: 3)
        #expect(s.classPriors == [0, 1, 0])
        #expect(abs(s.meanIntensity - Double(0 + 0 + 255 + 255 + 128 + 128 + 16) / 8 / 255) < 1e-12)
        #expect(s.inkFraction == 0.5)
        #expect(s.histogram[0] == 3.0 / 8 && s.histogram[1] == 1.0 / 8 && s.histogram[8] == 2.0 / 8 && s.histogram[15] == 2.0 / 8)
        #expect(abs(s.histogram.reduce(0, +) - 1) < 1e-12)
        let one = ImageStatistics.of(images[0..<4])
        #expect(one.inkFraction == 0.5 && abs(one.meanIntensity - 0.5) < 1e-12)
    }

    @Test func publishesVersionsAtomically() throws {
        let dir = try TempDir()
        let root = dir.path + "/models"
        #expect(ModelRepositoryLayout.nextVersion(root: root, name: "m") == 1)
        let a = try ModelRepositoryLayout.publish(model: [1, 2, 3], history: [4], root: root, name: "m")
        let b = try ModelRepositoryLayout.publish(model: [5], history: [6], root: root, name: "m")
        #expect(a.version == 1 && b.version == 2)
        #expect(a.path == root + "/m/1/model.loupe")
        #expect(try FileIO.readFile(b.path) == [5])
        #expect(try FileIO.readFile(root + "/m/2/history.json") == [6])
        try FileIO.createDirectories(root + "/m/07")   // not canonical: ignored
        try FileIO.createDirectories(root + "/m/.tmp-x")
        #expect(ModelRepositoryLayout.versions(root: root, name: "m") == [1, 2])
        #expect(throws: LoupeDataError.self) { try ModelRepositoryLayout.publish(model: [], history: [], root: root, name: "../x") }
        for p in [root + "/m/1/model.loupe", root + "/m/1/history.json", root + "/m/2/model.loupe", root + "/m/2/history.json"] { unlink(p) }
        for p in [root + "/m/1", root + "/m/2", root + "/m/07", root + "/m/.tmp-x", root + "/m", root] { rmdir(p) }
    }

    /// A small-parameter architecture with huge activations is refused before training allocates anything:
    /// 1024 filters over 28 × 28 need ≈ 7 MB of outputs, gradients and columns per image, 14 GiB at batch 2048.
    @Test func trainingRefusesAWorkspaceOverTheLimitBeforeAllocating() throws {
        let dir = try TempDir()
        try dir.write("train-images-idx3-ubyte", IDXFile.encode(dimensions: [4, 28, 28], data: [UInt8](repeating: 9, count: 4 * 784)))
        try dir.write("train-labels-idx1-ubyte", IDXFile.encode(dimensions: [4], data: [0, 1, 2, 3]))
        var o = TrainingOptions()
        o.dataDirectories = [dir.path]
        o.architecture = Architecture(inputShape: [28, 28, 1], layers: [.conv2d(filters: 1024, kernel: 3, padding: .same, activation: .relu),
                                                                       .globalAvgPool2d, .flatten, .dense(units: 4, activation: .softmax)])
        o.architectureGiven = true
        o.batchSize = 2048; o.threads = 2
        #expect(try Sequential.trainingWorkspaceBytes(of: o.architecture, batchSize: 2048, threads: 2) > TrainingOptions.maxWorkspaceBytes)
        do {
            _ = try TrainingRun.load(o)
            Issue.record("expected the workspace limit to refuse batch 2048")
        } catch let error as LoupeDataError {
            #expect(error.description.hasPrefix("Training this architecture with --batch-size 2048 on 2 threads needs ")
                    && error.description.contains("over the 4.0 GiB loupe train allows"), "\(error)")
        }
        o.batchSize = 8
        #expect(try TrainingRun.load(o).architecture == o.architecture)
    }

    @Test func dropoutOptionInsertsALayerBeforeTheLastDense() {
        var o = TrainingOptions()
        #expect(o.effectiveArchitecture() == .seed)
        o.dropout = 0.5
        let a = o.effectiveArchitecture()
        #expect(a.layers.count == 6)
        #expect(a.layers[4] == .dropout(rate: 0.5))
    }

    @Test func inspectionReportsChecksumAndHeaderOfDamagedFiles() throws {
        let file = try ModelFileTests.makeFile()
        var bytes = try file.encode()
        // The file reads; its made-up golden sample fails the self-test, so it is valid only unchecked.
        let ok = ModelInspection.inspect(bytes: bytes, selfTest: false)
        #expect(ok.isValid && ok.checksumOK && ok.header == file.header && ok.formatVersion == 1)
        let tested = ModelInspection.inspect(bytes: bytes)
        #expect(tested.error == nil && !tested.isValid)
        bytes[bytes.count - 40] ^= 1
        let bad = ModelInspection.inspect(bytes: bytes)
        #expect(!bad.isValid && !bad.checksumOK && bad.header == file.header)
        let junk = ModelInspection.inspect(bytes: Array("not a model".utf8))
        #expect(!junk.magicOK && !junk.isValid && junk.header == nil)
    }

    @Test func classNames() {
        #expect(ClassNames.guess(forDatasetAt: "/usr/share/datasets/fashion-mnist") == ClassNames.fashionMNIST)
        #expect(ClassNames.guess(forDatasetAt: "/data/mnist") == ClassNames.digits)
        #expect(ClassNames.datasetName(forDatasetAt: "/usr/share/datasets/fashion-mnist/") == "fashion-mnist")
    }

    @Test func inflaterCapsOutput() throws {
        let big = Deflate.zlib([UInt8](repeating: 0, count: 1 << 20))
        #expect(big.count < 5000)
        #expect(throws: LoupeDataError.self) { try Inflater.inflateAll(big, format: .zlib, maxOutput: 1000) }
        #expect(try Inflater.inflateAll(big, format: .zlib, maxOutput: 1 << 20).count == 1 << 20)
    }
}
