// The model-format tools on hand-made files: `loupe inspect` runs the golden self-test as the
// server's loader does, and the independent reader `scripts/read_loupe.py` follows
// docs/model-format.md — unknown keys ignored, `null` optional keys taken as absent, golden-sample
// sizes checked, missing keys and unknown layer types refused with a sentence — agreeing with Loupe's
// own reader on every file.
import FoundationEssentials
import Glibc
import LoupeData
import LoupeEngine
import Testing

@Suite struct ModelFormatToolsTests {
    static let reader = CLIProcess.repositoryRoot + "/scripts/read_loupe.py"
    static let architecture = Architecture(inputShape: [6, 6, 1], layers: [
        .conv2d(filters: 2, kernel: 3, padding: .valid, activation: .relu),
        .maxPool2d(pool: 2),
        .flatten,
        .dense(units: 3, activation: .softmax),
    ])

    /// A seeded network with 4 golden samples it computed on seeded images.
    static func honestFile(dataset: String = "seeded") throws -> ModelFile {
        let model = try Sequential(architecture: architecture, seed: 5)
        var state: UInt64 = 7
        let images = (0..<(4 * 36)).map { _ -> UInt8 in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return UInt8(truncatingIfNeeded: state >> 56)
        }
        let golden = ModelFile.goldenSamples(model: model, images: images, labels: [0, 1, 2, 0], count: 4)
        return try ModelFile(model: model, labels: ["a", "b", "c"], training: TrainingMetadata(dataset: dataset, epochs: 0, seed: 5),
                             goldenSamples: golden)
    }

    static func headerJSON(_ header: ModelHeader) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(header), as: UTF8.self)
    }

    /// §1's container around any header text: magic, version, length, zero padding to 64, the
    /// float32 data, SHA-256 — what another writer could produce, without Loupe's checks.
    static func container(_ json: String, _ parameters: [Float]) -> [UInt8] {
        let header = Array(json.utf8)
        func le32(_ v: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }
        var out = ModelFile.magic + le32(1) + le32(UInt32(header.count)) + header
        out += [UInt8](repeating: 0, count: (64 - out.count % 64) % 64)
        for p in parameters { out += le32(p.bitPattern) }
        return out + SHA256.digest(out)
    }

    static func headerLength(_ file: [UInt8]) -> Int { (12..<16).reduce(0) { $0 | Int(file[$1]) << (8 * ($1 - 12)) } }

    struct Verdicts { var inspect: CLIProcess.Result; var python: CLIProcess.Result; var golden: CLIProcess.Result }

    /// Loupe's `inspect`, the Python reader, and the Python reader with `--check-golden` on `bytes`.
    static func judge(_ bytes: [UInt8], in dir: TempDir, as name: String) throws -> Verdicts {
        try dir.write(name, bytes)
        let path = dir.path + "/" + name
        return Verdicts(inspect: try CLIProcess.loupe(["inspect", path]),
                        python: try CLIProcess.run("python3", [reader, path]),
                        golden: try CLIProcess.run("python3", [reader, path, "--check-golden"]))
    }

    /// An int8 file with a non-square kernel, unequal strides, same padding and a second strided conv: the
    /// independent reader reproduces its golden samples from §3 and §12 (the server's fused int8 kernel).
    @Test func theReaderReproducesInt8NonSquareStridedConvs() throws {
        let architecture = Architecture(inputShape: [9, 10, 1], layers: [
            .conv2d(filters: 16, kernel: Size2D(2, 3), stride: Size2D(1, 2), padding: .same, activation: .relu),
            .conv2d(filters: 8, kernel: 3, stride: 2, padding: .valid, activation: .linear),
            .flatten,
            .dense(units: 3, activation: .softmax),
        ])
        let fp32 = try Sequential(architecture: architecture, seed: 9)
        var state: UInt64 = 3
        let images = (0..<(6 * 90)).map { _ -> UInt8 in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return UInt8(truncatingIfNeeded: state >> 56)
        }
        let model = try fp32.quantized(calibrationImages: images.map { Float($0) / 255 }, count: 6, calibrator: .minmax)
        let golden = ModelFile.goldenSamples(model: model, images: images, labels: [0, 1, 2, 0, 1, 2], count: 6)
        let file = try ModelFile(model: model, labels: ["a", "b", "c"], training: TrainingMetadata(dataset: "seeded", epochs: 0, seed: 9),
                                 goldenSamples: golden)
        let verdicts = try Self.judge(try file.encode(), in: try TempDir(), as: "int8.loupe")
        #expect(verdicts.inspect.status == 0 && verdicts.inspect.stdout.contains("int8"), "\(verdicts.inspect.output)")
        #expect(verdicts.golden.status == 0, "\(verdicts.golden.output)")
    }

    /// A small file whose architecture claims far more parameters than it holds (dense units 3 → 25,000,000:
    /// 225 M parameters, 900 MB of floats) is refused from its sizes. Before, the reader built the claimed
    /// network to lay its tensors out — a 1 KB file cost ~1 GB — so under a 600 MB address-space limit
    /// `inspect` (like the server's loader) died instead of answering.
    @Test func anArchitectureLargerThanTheFileIsRefusedBeforeTheEngineBuildsIt() throws {
        let dir = try TempDir()
        let file = try Self.honestFile()
        let json = try Self.headerJSON(file.header)
        #expect(json.contains("\"units\":3"))
        try dir.write("claims.loupe", Self.container(json.replacing("\"units\":3", with: "\"units\":25000000"), file.parameters))
        let r = try CLIProcess.run("bash", ["-c", "ulimit -v 600000 && exec \"$0\" inspect --no-self-test \"$1\"", CLIProcess.loupePath, dir.path + "/claims.loupe"])
        #expect(r.status == 1, "\(r.output)")
        #expect(r.stdout.contains("the architecture needs 225000020 parameters, the file holds \(file.parameters.count)"), "\(r.output)")
    }

    /// The header's figures are whatever a writer put there: a huge one is printed, not converted to an Int
    /// (before, `inspect` — the tool for looking at odd files — died on "trainAccuracy": 1e300).
    @Test func inspectPrintsHugeHeaderFigures() throws {
        let dir = try TempDir()
        let file = try Self.honestFile()
        var header = file.header
        header.training.trainAccuracy = 1e300
        header.training.testAccuracy = -1e300
        header.training.trainingSeconds = 1e300
        try ModelFile(header: header, parameters: file.parameters).write(to: dir.path + "/odd.loupe")
        let r = try CLIProcess.loupe(["inspect", dir.path + "/odd.loupe"])
        #expect(r.status == 0, "\(r.output)")
        #expect(r.stdout.contains("train accuracy 1e+300") && r.stdout.contains("test accuracy -1e+300"), "\(r.stdout)")
        #expect(r.stdout.contains("1e+300 s of training") && r.stdout.contains("status          valid"), "\(r.stdout)")
    }

    /// A header's parameterCount beyond what any file holds (2^62: its byte count overflows Int) is reported as an
    /// invalid file with a sentence; before, `inspect` printing the header's figures trapped on 4 × parameterCount.
    @Test func inspectOfAnOverflowingParameterCountSaysInvalid() throws {
        let dir = try TempDir()
        let file = try Self.honestFile()
        let json = try Self.headerJSON(file.header)
        let count = "\"parameterCount\":\(file.parameters.count)"
        #expect(json.contains(count))
        try dir.write("huge.loupe", Self.container(json.replacing(count, with: "\"parameterCount\":4611686018427387904"), file.parameters))
        let r = try CLIProcess.loupe(["inspect", dir.path + "/huge.loupe"])
        #expect(r.status == 1, "\(r.output)")
        #expect(r.stdout.contains("parameters      4,611,686,018,427,387,904 float32 (more than"), "\(r.stdout)")
        #expect(r.stdout.contains("INVALID:") && r.stdout.contains("parameterCount 4611686018427387904 is out of range"), "\(r.stdout)")
        // The smallest Int too (no positive Int to print it from).
        try dir.write("min.loupe", Self.container(json.replacing(count, with: "\"parameterCount\":-9223372036854775808"), file.parameters))
        let m = try CLIProcess.loupe(["inspect", dir.path + "/min.loupe"])
        #expect(m.status == 1 && m.stdout.contains("parameters      -9,223,372,036,854,775,808 float32"), "\(m.output)")
    }

    @Test func inspectRunsTheGoldenSelfTestAsTheServerDoes() throws {
        let dir = try TempDir()
        let honest = try Self.honestFile()
        let ok = try Self.judge(try honest.encode(), in: dir, as: "honest.loupe")
        #expect(ok.inspect.status == 0, "\(ok.inspect.output)")
        #expect(ok.inspect.stdout.contains("self-test       passed (4 golden samples"), "\(ok.inspect.stdout)")
        #expect(ok.inspect.stdout.contains("status          valid"))
        #expect(ok.golden.status == 0, "\(ok.golden.output)")

        // One weight changed — the output bias of the class golden sample 0 predicts — and the
        // checksum recomputed: every byte-level check passes, only the self-test can tell.
        var parameters = honest.parameters
        let bias = try #require(honest.header.tensors.last)
        parameters[bias.offset + honest.header.goldenSamples[0].expectedClass] -= 50
        let tampered = try ModelFile(header: honest.header, parameters: parameters)
        let bad = try Self.judge(try tampered.encode(), in: dir, as: "tampered.loupe")
        #expect(bad.inspect.status == 1, "\(bad.inspect.output)")
        #expect(bad.inspect.stdout.contains("(verified)"), "the checksum is fine: \(bad.inspect.stdout)")
        #expect(bad.inspect.stdout.contains("self-test       FAILED: golden sample 0: predicted class"), "\(bad.inspect.stdout)")
        #expect(bad.inspect.stdout.contains("INVALID: \(dir.path)/tampered.loupe: self-test: golden sample 0"), "\(bad.inspect.stdout)")
        #expect(!bad.inspect.stdout.contains("status          valid"))
        let json = try CLIProcess.loupe(["inspect", "--json", dir.path + "/tampered.loupe"])
        #expect(json.status == 1 && json.stdout.contains("\"selfTest\" : \"failed\"") && json.stdout.contains("\"valid\" : false"), "\(json.output)")
        let skipped = try CLIProcess.loupe(["inspect", "--no-self-test", dir.path + "/tampered.loupe"])
        #expect(skipped.status == 0 && skipped.stdout.contains("self-test       not run"), "\(skipped.output)")
        // The independent reader agrees: well-formed, and its golden check fails.
        #expect(bad.python.status == 0, "\(bad.python.output)")
        #expect(bad.golden.status == 1 && bad.golden.stderr.contains("invalid: golden sample 0 predicts"), "\(bad.golden.output)")
    }

    @Test func unknownKeysAreIgnoredAndNullOptionalKeysAreAbsent() throws {
        let dir = try TempDir()
        let honest = try Self.honestFile()
        var json = try Self.headerJSON(honest.header)
        // Unknown keys at the top, in every tensor entry (§2), and null for optional keys (§2):
        // padding (default valid), label, inputStatistics, a training figure.
        json = "{\"comment\":\"written by hand\",\"inputStatistics\":null," + json.dropFirst()
        json = json.replacing("{\"name\":\"", with: "{\"dtype\":\"float32\",\"name\":\"")
        json = json.replacing("\"padding\":\"valid\"", with: "\"padding\":null")
        json = json.replacing("\"label\":0,", with: "\"label\":null,")
        json = json.replacing("\"dataset\":\"seeded\"", with: "\"dataset\":\"seeded\",\"testAccuracy\":null")
        #expect(json.contains("\"dtype\":\"float32\",\"name\":\"conv1.weight\"") && json.contains("\"padding\":null")
                && json.contains("\"label\":null"), "the mutations applied: \(json)")
        let v = try Self.judge(Self.container(json, honest.parameters), in: dir, as: "extended.loupe")
        #expect(v.inspect.status == 0, "\(v.inspect.output)")
        #expect(v.python.status == 0, "\(v.python.output)")
        #expect(v.golden.status == 0 && v.golden.stdout.contains("\"goldenMaxAbsDiff\""), "\(v.golden.output)")
    }

    @Test func bothReadersRefuseTheSameFilesWithASentence() throws {
        let dir = try TempDir()
        let honest = try Self.honestFile()
        let json = try Self.headerJSON(honest.header)
        var short = honest.header
        short.goldenSamples[0].pixels.removeLast()          // 35 of 36 pixels (the 783 of 784)
        var unflat = honest.header                           // dense straight after the pooling
        unflat.architecture.layers.remove(at: 2)
        unflat.inputShape = unflat.architecture.inputShape
        let cases: [(name: String, bytes: [UInt8], loupe: String, python: String)] = [
            ("short-golden", Self.container(try Self.headerJSON(short), honest.parameters),
             "shape mismatch: golden sample 0 has 35 pixels", "shape mismatch: golden sample 0 has 35 pixels"),
            ("no-labels", Self.container(json.replacing("\"labels\":[\"a\",\"b\",\"c\"],", with: ""), honest.parameters),
             "missing key 'labels'", "invalid header: missing key 'labels'"),
            ("no-expected-class", Self.container(json.replacing("\"expectedClass\":", with: "\"expected\":"), honest.parameters),
             "missing key 'goldenSamples[0].expectedClass'", "invalid header: missing key 'goldenSamples[0].expectedClass'"),
            ("null-labels", Self.container(json.replacing("\"labels\":[\"a\",\"b\",\"c\"]", with: "\"labels\":null"), honest.parameters),
             "labels", "invalid header: 'labels' is null"),
            ("conv3d", Self.container(json.replacing("\"type\":\"conv2d\"", with: "\"type\":\"conv3d\""), honest.parameters),
             "unknown layer type \"conv3d\"", "invalid header: unknown layer type 'conv3d'"),
            ("unflat-dense", Self.container(try Self.headerJSON(unflat), honest.parameters),
             "needs a flat input", "needs a flat input"),
        ]
        for c in cases {
            let v = try Self.judge(c.bytes, in: dir, as: c.name + ".loupe")
            #expect(v.inspect.status == 1 && v.inspect.output.contains(c.loupe), "\(c.name): loupe inspect: \(v.inspect.output)")
            for r in [v.python, v.golden] {
                #expect(r.status == 1, "\(c.name): read_loupe.py: \(r.output)")
                #expect(r.stderr.hasPrefix("invalid: ") && r.stderr.contains(c.python), "\(c.name): \(r.stderr)")
                #expect(!r.stderr.contains("Traceback"), "\(c.name): the reader crashed: \(r.stderr)")
            }
        }
    }

    @Test func theDocumentedContainerErrorsAreTheReadersErrors() throws {
        let dir = try TempDir()
        // A file whose header leaves padding before the data (16 + H not a multiple of 64).
        var good = try Self.honestFile().encode()
        if (16 + Self.headerLength(good)) % 64 == 0 { good = try Self.honestFile(dataset: "seeded-x").encode() }
        // A header length over 16 MiB: "invalid header", before any size check (§8 step 3).
        var long = good
        long.replaceSubrange(12..<16, with: [0x01, 0x00, 0x00, 0x01])   // 16 MiB + 1
        // A non-zero padding byte with the checksum recomputed (§8 step 7).
        var padded = Array(good.dropLast(32))
        let headerLength = Self.headerLength(good)
        try #require((16 + headerLength) % 64 != 0, "the header leaves padding")
        padded[16 + headerLength] = 0x20
        padded += SHA256.digest(padded)
        for (name, bytes, loupe, python) in [
            ("long", long, "invalid JSON header: declared length 16777217 bytes exceeds the 16777216-byte limit",
             "invalid header: declared length 16777217 bytes exceeds the 16777216-byte limit"),
            ("padding", padded, "invalid JSON header: padding byte at offset \(16 + headerLength) is not zero",
             "invalid header: padding byte at offset \(16 + headerLength) is not zero"),
        ] {
            let v = try Self.judge(bytes, in: dir, as: name + ".loupe")
            #expect(v.inspect.status == 1 && v.inspect.output.contains(loupe), "\(name): \(v.inspect.output)")
            #expect(v.python.status == 1 && v.python.stderr.contains(python), "\(name): \(v.python.output)")
        }
    }
}
