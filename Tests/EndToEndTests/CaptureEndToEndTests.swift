// Captured data and fine-tuning end to end, with the real binary: `loupe serve` with capture on
// writes the requests it answered (and the labels /feedback brought) as IDX sets, `loupe train
// --data` trains on them as they are; `--init-from` fine-tunes a model on inverted images and
// raises its accuracy there, with the lineage in the header and in `loupe inspect`.
import FoundationEssentials
import Glibc
import LoupeData
import LoupeEngine
import Testing

@Suite(.serialized) struct CaptureEndToEndTests {
    /// The captured sets under `root/model`, by name.
    static func sets(_ root: String, _ model: String) -> [String] {
        let dir = root + "/" + model
        guard let d = opendir(dir) else { return [] }
        defer { closedir(d) }
        var out: [String] = []
        while let e = readdir(d) {
            let name = withUnsafeBytes(of: e.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
            if !name.hasPrefix(".") { out.append(dir + "/" + name) }
        }
        return out.sorted()
    }

    static func writeSet(_ dir: String, split: String, pixels: [UInt8], labels: [UInt8]) throws {
        try FileIO.createDirectories(dir)
        try FileIO.writeAtomically(IDXFile.encode(dimensions: [labels.count, 28, 28], data: pixels), to: "\(dir)/\(split)-images-idx3-ubyte")
        try FileIO.writeAtomically(IDXFile.encode(dimensions: [labels.count], data: labels), to: "\(dir)/\(split)-labels-idx1-ubyte")
    }

    @Test func captureWritesAnIDXSetThatTrainReads() throws {
        let repo = try E2E.makeRepository()
        let scratch = try TempDir()
        let captureDir = scratch.path + "/capture"
        let server = try ServeProcess(models: repo.path, settings: ["capture.enabled=true", "capture.sample_rate=1",
                                                                    "capture.dir=\(captureDir)", "capture.flush_interval_s=1"])
        try server.waitReady()
        let n = 40, labelled = 30
        let (pixels, labels) = try E2E.testImages(n)
        for i in 0..<n {
            let r = try HTTP.request(port: server.port, "POST", "/predict",
                                     headers: [("Content-Type", "application/octet-stream"), ("X-Request-ID", "cap-\(i)")],
                                     body: Array(pixels[(i * 784)..<((i + 1) * 784)]))
            #expect(r.status == 200)
        }
        for i in 0..<labelled {
            let r = try HTTP.request(port: server.port, "POST", "/feedback", headers: [("Content-Type", "application/json")],
                                     body: Array(#"{"request_id": "cap-\#(i)", "label": \#(labels[i])}"#.utf8))
            #expect(r.status == 200, "\(r.text)")
        }
        // SIGTERM: the final flush writes what still waits for a label as unlabelled.
        server.process.signal(SIGTERM)
        #expect(server.process.wait(seconds: 30) == 0, "\(server.log)")
        let sets = Self.sets(captureDir, "fashion")
        #expect(!sets.isEmpty, "no set under \(captureDir): \(server.log)")
        var trainPixels: [UInt8] = [], trainLabels: [UInt8] = [], unlabelled = 0, sidecarIDs: Set<String> = []
        for set in sets {
            if FileIO.isRegularFile(set + "/train-images-idx3-ubyte") {
                let d = try IDXDataset.load(directory: set, split: .train)
                trainPixels += d.images; trainLabels += d.labels
            }
            if FileIO.isRegularFile(set + "/unlabelled-images-idx3-ubyte") {
                unlabelled += try IDXFile.read(path: set + "/unlabelled-images-idx3-ubyte").dimensions[0]
                #expect(try IDXFile.read(path: set + "/unlabelled-predictions-idx1-ubyte").dimensions[0] > 0)
            }
            let sidecar = String(decoding: try FileIO.readFile(set + "/capture.json"), as: UTF8.self)
            #expect(sidecar.contains("\"model_version\":1") && sidecar.contains("\"timestamp\":\"20"))
            for i in 0..<n where sidecar.contains("\"request_id\":\"cap-\(i)\"") { sidecarIDs.insert("cap-\(i)") }
        }
        #expect(trainLabels.count == labelled && unlabelled == n - labelled)
        #expect(sidecarIDs.count == n)
        // The labelled images are the requests' pixels with their true labels (in whatever order the
        // flushes took them): compare as a multiset of (pixels, label).
        func key(_ p: ArraySlice<UInt8>, _ l: UInt8) -> [UInt8] { Array(p) + [l] }
        let got = Set((0..<trainLabels.count).map { key(trainPixels[($0 * 784)..<(($0 + 1) * 784)], trainLabels[$0]) })
        let sent = Set((0..<labelled).map { key(pixels[($0 * 784)..<(($0 + 1) * 784)], labels[$0]) })
        #expect(got == sent)

        // `loupe train --data` on the captured sets as they are (no test split: measured on validation).
        let out = scratch.path + "/captured.loupe"
        let trainSets = sets.filter { FileIO.isRegularFile($0 + "/train-images-idx3-ubyte") }
        let train = try CLIProcess.loupe(["train", "--epochs", "1", "--threads", "2", "--output", out]
                                         + trainSets.flatMap { ["--data", $0] })
        #expect(train.status == 0, "\(train.output)")
        #expect(train.output.contains("no test split"))
        let file = try ModelFile.read(path: out)
        #expect(file.header.training.trainExamples.map { $0 + (file.header.training.validationExamples ?? 0) } == labelled)
    }

    /// The server serves [H, W, C] inputs with C = 1 or 3 (a flat [n] model is refused at load); the gray
    /// 28 × 28 case is above. An RGB model's captured set (idx4 images) is what `loupe train --init-from`
    /// that model trains on, with the pixels and labels the clients sent.
    @Test func anRGBModelsCapturedSetTrains() throws {
        let scratch = try TempDir()
        let n = 12, per = 8 * 8 * 3
        let (gray, labels) = try E2E.testImages(n)
        let pixels = (0..<n).flatMap { i in gray[(i * 784)..<(i * 784 + per)] }   // 192 values of each test image as 8×8 RGB
        let model = try Sequential(architecture: Architecture(inputShape: [8, 8, 3], layers: [.flatten, .dense(units: 10, activation: .softmax)]), seed: 3)
        let file = try ModelFile(model: model, labels: ClassNames.fashionMNIST, training: TrainingMetadata(dataset: "fashion-mnist", epochs: 0, seed: 3),
                                 goldenSamples: ModelFile.goldenSamples(model: model, images: pixels, labels: labels, count: 4))
        try scratch.mkdir("models/rgb/1")
        try file.write(to: scratch.path + "/models/rgb/1/model.loupe")
        let captureDir = scratch.path + "/capture"
        let server = try ServeProcess(models: scratch.path + "/models", settings: ["capture.enabled=true", "capture.sample_rate=1",
                                                                                   "capture.dir=\(captureDir)", "capture.flush_interval_s=1"])
        try server.waitReady()
        for i in 0..<n {
            let r = try HTTP.request(port: server.port, "POST", "/predict",
                                     headers: [("Content-Type", "application/octet-stream"), ("X-Request-ID", "rgb-\(i)")],
                                     body: Array(pixels[(i * per)..<((i + 1) * per)]))
            #expect(r.status == 200, "\(r.text)")
            let f = try HTTP.request(port: server.port, "POST", "/feedback", headers: [("Content-Type", "application/json")],
                                     body: Array(#"{"request_id": "rgb-\#(i)", "label": \#(labels[i])}"#.utf8))
            #expect(f.status == 200, "\(f.text)")
        }
        server.process.signal(SIGTERM)
        #expect(server.process.wait(seconds: 30) == 0, "\(server.log)")
        let sets = Self.sets(captureDir, "rgb").filter { FileIO.isRegularFile($0 + "/train-images-idx4-ubyte") }
        #expect(!sets.isEmpty, "no labelled set: \(server.log)")
        let captured = try sets.map { try IDXDataset.load(directory: $0, split: .train) }
        #expect(captured.reduce(0) { $0 + $1.count } == n && captured.allSatisfy { $0.imageShape == [8, 8, 3] })
        let sent = Set((0..<n).map { Array(pixels[($0 * per)..<(($0 + 1) * per)]) + [labels[$0]] })
        let got = Set(captured.flatMap { d in (0..<d.count).map { Array(d.images[($0 * per)..<(($0 + 1) * per)]) + [d.labels[$0]] } })
        #expect(got == sent)
        let out = scratch.path + "/tuned.loupe"
        let train = try CLIProcess.loupe(["train", "--init-from", scratch.path + "/models/rgb/1/model.loupe", "--epochs", "1",
                                          "--threads", "2", "--output", out] + sets.flatMap { ["--data", $0] })
        #expect(train.status == 0, "\(train.output)")
        #expect(try ModelFile.read(path: out).header.architecture.inputShape == [8, 8, 3])
    }

    @Test func aFailingCaptureVolumeStopsCaptureNotRequests() throws {
        let repo = try E2E.makeRepository()
        let scratch = try TempDir()
        try scratch.write("not-a-directory", [1])
        let server = try ServeProcess(models: repo.path, settings: ["capture.enabled=true", "capture.sample_rate=1",
                                                                    "capture.dir=\(scratch.path)/not-a-directory/capture",
                                                                    "capture.flush_interval_s=1", "feedback.max_age_s=1"])
        try server.waitReady()
        let (pixels, _) = try E2E.testImages(1)
        var stopped = false
        let deadline = now() + 20
        var failed = 0
        while now() < deadline && !stopped {
            let r = try HTTP.request(port: server.port, "POST", "/predict", headers: [("Content-Type", "application/octet-stream")], body: pixels)
            if r.status != 200 { failed += 1 }
            let metrics = try HTTP.request(port: server.port, "GET", "/metrics").text
            stopped = metrics.contains("\nloupe_capture_stopped 1\n")
            usleep(100_000)
        }
        #expect(stopped, "\(server.log)")
        #expect(failed == 0)
        #expect(server.process.waitForLine(containing: "capture stopped") != nil, "\(server.log)")
        let after = try HTTP.request(port: server.port, "POST", "/predict", headers: [("Content-Type", "application/octet-stream")], body: pixels)
        #expect(after.status == 200)
        let metrics = try HTTP.request(port: server.port, "GET", "/metrics").text
        #expect(metrics.contains("\nloupe_capture_write_errors_total 1\n"))
    }

    /// A model trained on upright images does badly on inverted ones; fine-tuned from it on
    /// inverted images it does better there, and its header names its parent and datasets.
    @Test func initFromFineTunesOnInvertedImages() throws {
        let scratch = try TempDir()
        let parent = scratch.path + "/parent.loupe"
        let base = try CLIProcess.loupe(["train", "--epochs", "1", "--limit", "6000", "--threads", "2", "--output", parent])
        #expect(base.status == 0, "\(base.output)")
        let test = try IDXDataset.load(directory: E2E.datasetDirectory, split: .test)
        let trainSet = try IDXDataset.load(directory: E2E.datasetDirectory, split: .train)
        let inverted = scratch.path + "/inverted"
        let trainN = 6000, testN = 2000
        try Self.writeSet(inverted, split: "train", pixels: trainSet.images.suffix(trainN * 784).map { 255 - $0 },
                          labels: Array(trainSet.labels.suffix(trainN)))
        try Self.writeSet(inverted, split: "t10k", pixels: test.images.prefix(testN * 784).map { 255 - $0 },
                          labels: Array(test.labels.prefix(testN)))
        func accuracy(_ model: String) throws -> Double {
            let r = try CLIProcess.loupe(["evaluate", "--model", model, "--data", inverted, "--json", "--threads", "2"])
            #expect(r.status == 0, "\(r.output)")
            let line = r.stdout.split(separator: "\n").first { $0.contains("\"accuracy\" :") } ?? ""
            return Double(String((line.split(separator: ":").last ?? "").filter { "0123456789.".contains($0) })) ?? -1
        }
        let before = try accuracy(parent)
        let child = scratch.path + "/child.loupe"
        let tune = try CLIProcess.loupe(["train", "--init-from", parent, "--data", inverted, "--epochs", "1", "--threads", "2", "--output", child])
        #expect(tune.status == 0, "\(tune.output)")
        let after = try accuracy(child)
        #expect(after > before + 0.2, "inverted accuracy \(before) → \(after)")
        let parentFile = try ModelFile.read(path: parent)
        let childFile = try ModelFile.read(path: child)
        #expect(childFile.header.training.parent?.sha256 == parentFile.sha256Hex)
        #expect(childFile.header.training.datasets == [DatasetUse(path: inverted, name: "inverted", trainExamples: trainN, testExamples: testN)])
        #expect(childFile.header.architecture == parentFile.header.architecture)
        let inspect = try CLIProcess.loupe(["inspect", child])
        #expect(inspect.stdout.contains("parent          sha256 \(parentFile.sha256Hex)"), "\(inspect.stdout)")
        #expect(inspect.stdout.contains("datasets        inverted (\(inverted)): 6,000 training, 2,000 test images"), "\(inspect.stdout)")

        // Another input shape is refused with a sentence.
        let small = scratch.path + "/small"
        try FileIO.createDirectories(small)
        try FileIO.writeAtomically(IDXFile.encode(dimensions: [4, 14, 14], data: [UInt8](repeating: 0, count: 4 * 196)), to: small + "/train-images-idx3-ubyte")
        try FileIO.writeAtomically(IDXFile.encode(dimensions: [4], data: [0, 1, 2, 3]), to: small + "/train-labels-idx1-ubyte")
        let refused = try CLIProcess.loupe(["train", "--init-from", parent, "--data", small, "--output", scratch.path + "/no.loupe"])
        #expect(refused.status != 0)
        #expect(refused.output.contains("fine-tuning needs data of the parent's input shape"), "\(refused.output)")
    }
}
