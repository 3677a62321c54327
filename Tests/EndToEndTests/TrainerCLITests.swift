import FoundationEssentials
import Glibc
import Testing
import LoupeData

/// The real `loupe` binary: a short real training run on Fashion-MNIST, then evaluate, predict
/// and inspect on what it wrote, the independent Python reader on the file, and error paths.
/// Needs the dataset at /usr/share/datasets/fashion-mnist (apt `dataset-fashion-mnist`).
@Suite(.serialized) struct TrainerCLITests {
    static let dataset = TrainingOptions.defaultDataDirectory
    /// What 1 epoch on the full training split (48,000 train / 12,000 validation, seed 42,
    /// 2 threads) must reach on the full 10,000-image test set. Measured: 0.8613 (debug and
    /// release builds alike); a broken engine or data path lands near 0.10.
    static let requiredAccuracy = 0.84

    /// One training run shared by the tests of this suite.
    final class Trained: @unchecked Sendable {
        let scratch = try! TempDir()
        let result: CLIProcess.Result
        var repository: String { scratch.path + "/models" }
        var modelPath: String { repository + "/fashion/1/model.loupe" }
        init() {
            result = (try? CLIProcess.loupe(["train", "--epochs", "1", "--threads", "2",
                                             "--repository", scratch.path + "/models"])) ?? CLIProcess.Result(status: -1, stdout: "", stderr: "spawn failed")
        }
    }
    static let trained = Trained()

    @Test func trainWritesAVersionedModelThatReachesTheStatedAccuracy() throws {
        let t = Self.trained
        #expect(t.result.status == 0, "\(t.result.output)")
        #expect(t.result.stdout.contains("epoch 1/1"))
        #expect(t.result.stdout.contains("val_accuracy"))
        #expect(t.scratch.files("/models/fashion") == ["1"])
        #expect(t.scratch.files("/models/fashion/1") == ["history.json", "model.loupe"])
        let file = try ModelFile.read(path: t.modelPath)
        let accuracy = try #require(file.header.training.testAccuracy)
        #expect(accuracy >= Self.requiredAccuracy, "test accuracy \(accuracy)")
        #expect(file.header.training.testExamples == 10_000)
        #expect(file.header.training.trainExamples == 48000 && file.header.training.validationExamples == 12000)
        #expect(file.header.labels == ClassNames.fashionMNIST)
        #expect(file.header.goldenSamples.count == 10)
        #expect(file.header.inputStatistics?.sampleCount == 48000)
        // Per-class test figures (the console's model card shows them): support sums to the test split.
        let classes = try #require(file.header.training.testClasses)
        #expect(classes.map(\.label) == ClassNames.fashionMNIST)
        #expect(classes.reduce(0) { $0 + $1.support } == 10_000)
        #expect(classes.allSatisfy { $0.precision > 0 && $0.precision <= 1 && $0.recall > 0 && $0.recall <= 1 })
        let history = String(decoding: try FileIO.readFile(t.repository + "/fashion/1/history.json"), as: UTF8.self)
        for key in ["\"loss\"", "\"accuracy\"", "\"val_loss\"", "\"val_accuracy\"", "\"seconds\"", "\"images_per_second\"", "\"test_accuracy\""] {
            #expect(history.contains(key), "history.json lacks \(key)")
        }
    }

    @Test func evaluateAgreesWithTheRecordedTestAccuracy() throws {
        let t = Self.trained
        let file = try ModelFile.read(path: t.modelPath)
        let r = try CLIProcess.loupe(["evaluate", "--model", t.repository + "/fashion", "--json", "--threads", "2"])
        #expect(r.status == 0, "\(r.output)")
        #expect(r.stdout.contains("\"confusionMatrix\""))
        #expect(r.stdout.contains("\"Ankle boot\""))
        let recorded = try #require(file.header.training.testAccuracy)
        #expect(r.stdout.contains("\"accuracy\" : \(recorded)"), "\(r.stdout.prefix(400))")
        let text = try CLIProcess.loupe(["evaluate", "--model", t.modelPath])
        #expect(text.status == 0)
        #expect(text.stdout.contains("confusion matrix"))
        #expect(text.stdout.contains("9 Ankle boot"))
    }

    @Test func predictClassifiesPNGAndPGMLikeTheGoldenSamples() throws {
        let t = Self.trained
        let file = try ModelFile.read(path: t.modelPath)
        let golden = file.header.goldenSamples
        var paths: [String] = []
        for (i, g) in golden.prefix(4).enumerated() {
            let pgm = t.scratch.path + "/g\(i).pgm"
            try FileIO.writeAtomically(Array("P5\n28 28\n255\n".utf8) + g.pixels, to: pgm)
            let png = t.scratch.path + "/g\(i).png"
            try FileIO.writeAtomically(Self.png(g.pixels), to: png)
            paths += [pgm, png]
        }
        let r = try CLIProcess.loupe(["predict", "--model", t.modelPath, "--json"] + paths)
        #expect(r.status == 0, "\(r.output)")
        struct Output: Decodable {
            struct P: Decodable { var file: String; var `class`: Int; var label: String; var confidence: Float }
            var model: String
            var predictions: [P]
        }
        let out = try JSONDecoder().decode(Output.self, from: Data(r.stdout.utf8))
        #expect(out.predictions.map(\.file) == paths)
        for (i, g) in golden.prefix(4).enumerated() {
            #expect(out.predictions[2 * i].class == g.expectedClass, "PGM of golden sample \(i)")
            #expect(out.predictions[2 * i + 1].class == g.expectedClass, "PNG of golden sample \(i)")
            #expect(abs(out.predictions[2 * i].confidence - g.probabilities[g.expectedClass]) < 1e-4)
        }
        let plain = try CLIProcess.loupe(["predict", "--model", t.modelPath, paths[0]])
        #expect(plain.status == 0 && plain.stdout.contains(file.header.labels[golden[0].expectedClass]))
    }

    @Test func inspectShowsTheHeaderAndVerifiesTheChecksum() throws {
        let t = Self.trained
        let r = try CLIProcess.loupe(["inspect", t.modelPath])
        #expect(r.status == 0, "\(r.output)")
        for text in ["(verified)", "693,962", "conv1.weight", "Ankle boot", "seed 42", "status          valid"] {
            #expect(r.stdout.contains(text), "inspect output lacks \(text)")
        }
    }

    @Test func independentPythonReaderAgrees() throws {
        let t = Self.trained
        let file = try ModelFile.read(path: t.modelPath)
        let r = try CLIProcess.run("python3", [CLIProcess.repositoryRoot + "/scripts/read_loupe.py", t.modelPath, "--check-golden"])
        #expect(r.status == 0, "\(r.output)")
        #expect(r.stdout.contains("\"sha256\": \"\(file.sha256Hex)\""))
        #expect(r.stdout.contains("\"parameterCount\": 693962"))
        #expect(r.stdout.contains("\"goldenMaxAbsDiff\""))
    }

    @Test func corruptModelsAreRejectedByEveryCommand() throws {
        let t = Self.trained
        var bytes = try FileIO.readFile(t.modelPath)
        bytes[bytes.count / 2] ^= 0x01
        let bad = t.scratch.path + "/corrupt.loupe"
        try FileIO.writeAtomically(bytes, to: bad)
        let inspect = try CLIProcess.loupe(["inspect", bad])
        #expect(inspect.status == 1)
        #expect(inspect.stdout.contains("MISMATCH"))
        #expect(inspect.output.contains("checksum mismatch"))
        let evaluate = try CLIProcess.loupe(["evaluate", "--model", bad])
        #expect(evaluate.status != 0)
        #expect(evaluate.stderr.contains("checksum mismatch"), "\(evaluate.output)")
        let python = try CLIProcess.run("python3", [CLIProcess.repositoryRoot + "/scripts/read_loupe.py", bad])
        #expect(python.status == 1 && python.stderr.contains("checksum mismatch"))
        let truncated = t.scratch.path + "/truncated.loupe"
        try FileIO.writeAtomically(Array(bytes.prefix(1000)), to: truncated)
        let p = try CLIProcess.loupe(["predict", "--model", truncated, "/dev/null"])
        #expect(p.status != 0 && p.stderr.contains("truncated"), "\(p.output)")
    }

    @Test func shippedModelReproducesItsRecordedTestAccuracy() throws {
        let path = CLIProcess.repositoryRoot + "/models/fashion/1/model.loupe"
        let recorded = try #require(try ModelFile.read(path: path).header.training.testAccuracy)
        let r = try CLIProcess.loupe(["evaluate", "--model", path, "--json", "--data", Self.dataset])
        #expect(r.status == 0, "\(r.output)")
        // Another CPU may run other kernels (AVX2 vs AVX-512): float summation order may then flip
        // a borderline image or two, never more than 0.1%.
        let report = try JSONDecoder().decode(EvaluationReport.self, from: Data(r.stdout.utf8))
        #expect(abs(report.accuracy - recorded) <= 0.001, "recorded \(recorded), measured \(report.accuracy)")
        #expect(report.count == 10_000)
    }

    @Test func errorPathsGiveAClearMessageAndNonZeroExit() throws {
        let scratch = try TempDir()
        let noData = try CLIProcess.loupe(["train", "--data", scratch.path, "--output", scratch.path + "/m.loupe"])
        #expect(noData.status != 0)
        #expect(noData.stderr.contains("train-images-idx3-ubyte"), "\(noData.output)")
        let missingDir = try CLIProcess.loupe(["train", "--data", scratch.path + "/nope"])
        #expect(missingDir.status != 0 && missingDir.stderr.contains("nope"))
        let badEpochs = try CLIProcess.loupe(["train", "--epochs", "0"])
        #expect(badEpochs.status == 64 && badEpochs.stderr.contains("--epochs"))
        let badOptimizer = try CLIProcess.loupe(["train", "--optimizer", "rmsprop"])
        #expect(badOptimizer.status == 64)
        let both = try CLIProcess.loupe(["train", "--output", "x.loupe", "--name", "y"])
        #expect(both.status == 64 && both.stderr.contains("exclude"))
        let noModel = try CLIProcess.loupe(["evaluate", "--model", scratch.path + "/none.loupe"])
        #expect(noModel.status != 0 && noModel.stderr.contains("none.loupe"))
        let notImage = scratch.path + "/x.txt"
        try FileIO.writeAtomically(Array("hello".utf8), to: notImage)
        let predict = try CLIProcess.loupe(["predict", "--model", Self.trained.modelPath, notImage])
        #expect(predict.status != 0 && predict.stderr.contains("Unsupported image format"), "\(predict.output)")
        // A learning rate that makes the loss NaN: the run stops at that epoch with a sentence and writes
        // nothing (before, it trained on and then crashed measuring the test split: Int(NaN)).
        let diverged = try CLIProcess.loupe(["train", "--limit", "512", "--epochs", "3", "--optimizer", "sgd", "--learning-rate", "1e30",
                                            "--threads", "1", "--output", scratch.path + "/diverged.loupe"])
        #expect(diverged.status == 1, "\(diverged.output)")
        #expect(diverged.stderr.contains("Training diverged in epoch 1: the training loss is not a number"), "\(diverged.stderr)")
        #expect(diverged.stderr.contains("a lower --learning-rate (1e+30)"), "\(diverged.stderr)")
        #expect(scratch.files() == ["x.txt"], "a failed run left files behind")
    }

    /// A 150-byte gzipped IDX file whose header claims 1024×1024×1024 images fails as truncated from the
    /// bytes that inflate. Before, the reader allocated (and zeroed) the claimed gigabyte first, so under a
    /// 600 MB address-space limit `train --data` died instead of naming the file.
    @Test func aGzippedIDXThatClaimsAGigabyteFailsFromItsBytes() throws {
        let dir = try TempDir()
        func be32(_ v: Int) -> [UInt8] { [UInt8(v >> 24 & 0xff), UInt8(v >> 16 & 0xff), UInt8(v >> 8 & 0xff), UInt8(v & 0xff)] }
        try dir.write("train-images-idx3-ubyte.gz", Deflate.gzip([0, 0, 8, 3] + be32(1024) + be32(1024) + be32(1024) + [UInt8](repeating: 0, count: 100)))
        try dir.write("train-labels-idx1-ubyte.gz", Deflate.gzip([0, 0, 8, 1] + be32(1024) + [UInt8](repeating: 0, count: 1024)))
        let r = try CLIProcess.run("bash", ["-c", "ulimit -v 600000 && exec \"$0\" train --data \"$1\" --output \"$1/m.loupe\"",
                                            CLIProcess.loupePath, dir.path])
        #expect(r.status == 1, "\(r.output)")
        #expect(r.stderr.contains("truncated: dimensions 1024×1024×1024 need 1073741824 data bytes, the file has 100"), "\(r.stderr)")
    }

    /// An --arch with a zero too many (dense units 1,280,000,000) is a sentence naming the parameter count and
    /// the limit, before anything is allocated or trained; before, the engine tried to allocate 4 TB and the process
    /// died, and one just past the limit (278 M parameters) trained to the end and then failed to write (minutes lost).
    @Test func anArchitectureTooLargeForAModelFileIsASentence() throws {
        let dir = try TempDir()
        for (units, count) in [("1280000000", "1,017,600,000,010"), ("350000", "278,250,010")] {
            try dir.write("arch.json", #"{"inputShape": [28, 28, 1], "layers": [{"type": "flatten"}, {"type": "dense", "units": \#(units), "activation": "relu"}, {"type": "dense", "units": 10, "activation": "softmax"}]}"#)
            let r = try CLIProcess.loupe(["train", "--arch", dir.path + "/arch.json", "--limit", "100", "--epochs", "1", "--output", dir.path + "/m.loupe"])
            #expect(r.status == 1, "\(units): \(r.output.prefix(500))")
            #expect(r.stderr.contains("The architecture needs \(count) parameters; a model file holds at most 268,435,456"), "\(r.stderr.prefix(500))")
        }
        // A negative size is the engine's sentence, not a size one.
        try dir.write("arch.json", #"{"inputShape": [28, 28, 1], "layers": [{"type": "flatten"}, {"type": "dense", "units": -5, "activation": "relu"}, {"type": "dense", "units": 10, "activation": "softmax"}]}"#)
        let negative = try CLIProcess.loupe(["train", "--arch", dir.path + "/arch.json", "--limit", "100", "--epochs", "1", "--output", dir.path + "/m.loupe"])
        #expect(negative.status == 1 && negative.stderr.contains("units must be positive"), "\(negative.output.prefix(500))")
        #expect(dir.files() == ["arch.json"])
    }

    @Test func ctrlCStopsTrainingAndWritesNothing() throws {
        let scratch = try TempDir()
        let p = try CLIProcess.start(CLIProcess.loupePath, ["train", "--epochs", "20", "--limit", "20000", "--threads", "2",
                                                              "--repository", scratch.path + "/models"])
        var waited = 0
        while !p.stdoutSoFar().contains("data:") && waited < 6000 { usleep(10_000); waited += 1 }
        usleep(300_000)
        p.signal(SIGINT)
        let r = try p.wait(timeout: 120)
        #expect(r.status == 130, "\(r.output)")
        #expect(r.stdout.contains("nothing was written"))
        let leftovers = scratch.files("/models/fashion")
        #expect(leftovers.isEmpty, "left behind: \(leftovers)")
    }

    @Test func anyIDXDirectoryWithEveryTrainingFlag() throws {
        // A synthetic digits-like set (uncompressed IDX): class c = a bright 4-row band at row 2c.
        let scratch = try TempDir()
        let data = scratch.path + "/my-digits"
        try FileIO.createDirectories(data)
        func make(_ n: Int) -> (images: [UInt8], labels: [UInt8]) {
            var images: [UInt8] = [], labels: [UInt8] = []
            for i in 0..<n {
                let c = i % 10
                var img = [UInt8](repeating: 0, count: 784)
                for y in (2 * c + 2)..<(2 * c + 6) { for x in 4..<24 { img[y * 28 + x] = UInt8(150 + (i * 7 + x) % 100) } }
                images += img
                labels.append(UInt8(c))
            }
            return (images, labels)
        }
        let train = make(600), test = make(200)
        try FileIO.writeAtomically(IDXFile.encode(dimensions: [600, 28, 28], data: train.images), to: data + "/train-images-idx3-ubyte")
        try FileIO.writeAtomically(IDXFile.encode(dimensions: [600], data: train.labels), to: data + "/train-labels-idx1-ubyte")
        try FileIO.writeAtomically(Deflate.gzip(IDXFile.encode(dimensions: [200, 28, 28], data: test.images)), to: data + "/t10k-images-idx3-ubyte.gz")
        try FileIO.writeAtomically(Deflate.gzip(IDXFile.encode(dimensions: [200], data: test.labels)), to: data + "/t10k-labels-idx1-ubyte.gz")
        let arch = CLIProcess.repositoryRoot + "/Config/architectures/tiny.json"
        let args = ["train", "--data", data, "--arch", arch, "--epochs", "3", "--batch-size", "32", "--learning-rate", "0.05",
                    "--optimizer", "sgd", "--l2", "0.0001", "--dropout", "0.1", "--seed", "7", "--validation-split", "0.1",
                    "--threads", "1", "--repository", scratch.path + "/repo"]
        let first = try CLIProcess.loupe(args)
        #expect(first.status == 0, "\(first.output)")
        let second = try CLIProcess.loupe(args + ["--name", "digits"])
        #expect(second.status == 0, "\(second.output)")
        let third = try CLIProcess.loupe(args)
        #expect(third.status == 0, "\(third.output)")
        #expect(scratch.files("/repo") == ["digits", "my-digits"])
        #expect(scratch.files("/repo/my-digits") == ["1", "2"])
        let file = try ModelFile.read(path: scratch.path + "/repo/my-digits/2/model.loupe")
        #expect(file.header.labels == ClassNames.digits)
        #expect(file.header.training.optimizer == "sgd(momentum: 0.9)")
        #expect(file.header.training.seed == 7 && file.header.training.epochs == 3)
        #expect(file.header.training.trainExamples == 540 && file.header.training.testExamples == 200)
        #expect(file.header.architecture.layers.contains(.dropout(rate: 0.1)))
        #expect((file.header.training.testAccuracy ?? 0) > 0.5, "an easy synthetic task: \(file.header.training.testAccuracy ?? 0)")
        // Same seed, same threads: bit-identical parameters.
        let again = try ModelFile.read(path: scratch.path + "/repo/my-digits/1/model.loupe")
        #expect(again.parameters == file.parameters)
        // A mismatched dataset is refused with a sentence.
        try FileIO.writeAtomically(IDXFile.encode(dimensions: [599], data: Array(train.labels.prefix(599))), to: data + "/train-labels-idx1-ubyte")
        let bad = try CLIProcess.loupe(args)
        #expect(bad.status != 0 && bad.stderr.contains("600 images") && bad.stderr.contains("599 labels"), "\(bad.output)")
    }

    @Test func trainsAStridedPaddedColourArchitectureOnRank4IDX() throws {
        // 12×12×3 images (rank-4 IDX): class c = a bright 4×4 patch in colour channel c % 3, quadrant c / 3.
        let scratch = try TempDir()
        let data = scratch.path + "/colour"
        try FileIO.createDirectories(data)
        func make(_ n: Int, salt: Int) -> (images: [UInt8], labels: [UInt8]) {
            var images: [UInt8] = [], labels: [UInt8] = []
            for i in 0..<n {
                let c = i % 6
                var img = [UInt8](repeating: 0, count: 12 * 12 * 3)
                for v in img.indices { img[v] = UInt8((v * 31 + i * 17 + salt) % 40) }
                let top = (c / 3) * 6 + (i / 6) % 3, left = (i / 18) % 7
                for y in top..<(top + 4) { for x in left..<(left + 4) { img[(y * 12 + x) * 3 + c % 3] = 220 } }
                images += img
                labels.append(UInt8(c))
            }
            return (images, labels)
        }
        let train = make(480, salt: 1), test = make(120, salt: 5)
        try FileIO.writeAtomically(IDXFile.encode(dimensions: [480, 12, 12, 3], data: train.images), to: data + "/train-images-idx4-ubyte")
        try FileIO.writeAtomically(IDXFile.encode(dimensions: [480], data: train.labels), to: data + "/train-labels-idx1-ubyte")
        try FileIO.writeAtomically(IDXFile.encode(dimensions: [120, 12, 12, 3], data: test.images), to: data + "/t10k-images-idx4-ubyte")
        try FileIO.writeAtomically(IDXFile.encode(dimensions: [120], data: test.labels), to: data + "/t10k-labels-idx1-ubyte")
        let arch = scratch.path + "/arch.json"
        try FileIO.writeAtomically(Array("""
            {"inputShape": [12, 12, 3], "layers": [
              {"type": "conv2d", "filters": 16, "kernel": 3, "padding": "same", "activation": "leakyRelu", "alpha": 0.1},
              {"type": "maxPool2d", "pool": 3, "stride": 2, "pads": [1, 1, 1, 1]},
              {"type": "conv2d", "filters": 8, "kernel": 3, "stride": 2, "pads": [1, 1, 0, 0], "activation": "clip", "min": 0, "max": 6},
              {"type": "avgPool2d", "pool": 2, "stride": 1},
              {"type": "flatten"},
              {"type": "dense", "units": 6}
            ]}
            """.utf8), to: arch)
        let args = ["train", "--data", data, "--arch", arch, "--epochs", "8", "--batch-size", "16", "--learning-rate", "0.01",
                    "--seed", "3", "--threads", "2", "--output", scratch.path + "/colour.loupe"]
        let run = try CLIProcess.loupe(args)
        #expect(run.status == 0, "\(run.output)")
        let file = try ModelFile.read(path: scratch.path + "/colour.loupe")
        #expect(file.header.architecture.inputShape == [12, 12, 3])
        #expect(file.header.architecture.layers[2] == .conv2d(filters: 8, kernel: 3, stride: 2, padding: .explicit(top: 1, left: 1, bottom: 0, right: 0),
                                                               activation: .clip(min: 0, max: 6)))
        #expect((file.header.training.testAccuracy ?? 0) > 0.6, "an easy synthetic task: \(file.header.training.testAccuracy ?? 0)")
        #expect(file.header.goldenSamples.allSatisfy { $0.pixels.count == 12 * 12 * 3 })
        // An architecture for other images is refused with both shapes named.
        try FileIO.writeAtomically(Array(#"{"inputShape": [12, 12, 1], "layers": [{"type": "flatten"}, {"type": "dense", "units": 6}]}"#.utf8), to: arch)
        let bad = try CLIProcess.loupe(args)
        #expect(bad.status != 0 && bad.stderr.contains("12×12×3") && bad.stderr.contains("[12, 12, 1]"), "\(bad.output)")
    }

    /// An 8-bit gray PNG (filter 0) of a 28×28 image.
    static func png(_ pixels: [UInt8]) -> [UInt8] {
        func be32(_ v: Int) -> [UInt8] { [UInt8(v >> 24 & 0xff), UInt8(v >> 16 & 0xff), UInt8(v >> 8 & 0xff), UInt8(v & 0xff)] }
        func chunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
            let body = Array(type.utf8) + data
            return be32(data.count) + body + be32(Int(crc32Checksum(body[...])))
        }
        var raw: [UInt8] = []
        for y in 0..<28 { raw.append(0); raw += pixels[y * 28..<(y + 1) * 28] }
        return [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + chunk("IHDR", be32(28) + be32(28) + [8, 0, 0, 0, 0])
            + chunk("IDAT", Deflate.zlib(raw)) + chunk("IEND", [])
    }
}
