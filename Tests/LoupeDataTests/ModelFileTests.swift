import Testing
import LoupeEngine
@testable import LoupeData

@Suite struct ModelFileTests {
    static let tinyArchitecture = Architecture(inputShape: [4, 4, 1], layers: [
        .conv2d(filters: 2, kernel: 3, padding: .valid, activation: .relu),
        .maxPool2d(pool: 2),
        .flatten,
        .dense(units: 3, activation: .softmax),
    ])

    static func makeFile() throws -> ModelFile {
        let tensors = try ModelFile.expectedTensors(for: tinyArchitecture)
        let count = tensors.reduce(0) { $0 + $1.count }
        var training = TrainingMetadata(dataset: "tiny", epochs: 2, seed: 7, createdAt: "2026-01-02T03:04:05Z")
        training.testAccuracy = 0.5
        let header = ModelHeader(
            architecture: tinyArchitecture, labels: ["a", "b", "c"], parameterCount: count, tensors: tensors,
            training: training,
            goldenSamples: [GoldenSample(pixels: Array(0..<16), label: 1, expectedClass: 2, probabilities: [0.25, 0.25, 0.5])],
            inputStatistics: InputStatistics.compute(images: Array(0..<32), labels: [0, 2], count: 2, pixelsPerImage: 16, classCount: 3))
        return try ModelFile(header: header, parameters: (0..<count).map { Float($0) * 0.5 - 3 })
    }

    @Test func sha256HexOfKnownVectors() {
        // FIPS 180-2 examples: lower-case hex, two digits a byte.
        #expect(SHA256.hex([UInt8]()) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(SHA256.hex(Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(SHA256.hexString([0x00, 0x0F, 0xF0, 0xFF, 0x5A]) == "000ff0ff5a")
        #expect(SHA256.hexString([UInt8]()) == "")
    }

    @Test func tensorsOfTheSeedNetwork() throws {
        let t = try ModelFile.expectedTensors(for: .seed)
        #expect(t.map(\.name) == ["conv1.weight", "conv1.bias", "dense1.weight", "dense1.bias", "dense2.weight", "dense2.bias"])
        #expect(t.map(\.shape) == [[3, 3, 1, 32], [32], [5408, 128], [128], [128, 10], [10]])
        #expect(t.reduce(0) { $0 + $1.count } == 693_962)
        #expect(try ModelFile.outputCount(of: .seed) == 10)
        #expect(t == (try Sequential(architecture: .seed, seed: 1)).parameterSlots.map { TensorEntry(name: $0.name, offset: $0.offset, shape: $0.shape) })
    }

    @Test func roundTrips() throws {
        let file = try Self.makeFile()
        let bytes = try file.encode()
        #expect(Array(bytes.prefix(8)) == [0x89, 0x4C, 0x4F, 0x55, 0x50, 0x45, 0x0D, 0x0A])
        #expect(ModelFile.readUInt32(bytes, 8) == 1)
        let headerLength = Int(ModelFile.readUInt32(bytes, 12))
        let dataOffset = (16 + headerLength + 63) / 64 * 64
        #expect(bytes.count == dataOffset + 4 * file.parameters.count + 32)
        // float32 little-endian: parameter 0 is -3.0 = 0xC0400000
        #expect(Array(bytes[dataOffset..<dataOffset + 4]) == [0x00, 0x00, 0x40, 0xC0])
        let back = try ModelFile.decode(bytes: bytes)
        #expect(back == file)
        #expect(back.sha256Hex == SHA256.hex(bytes.dropLast(32)))
        #expect(back.header.goldenSamples[0].pixels == Array(0..<16))
    }

    @Test func writesAtomicallyAndReads() throws {
        let dir = try TempDir()
        let path = dir.path + "/model.loupe"
        let file = try Self.makeFile()
        try file.write(to: path)
        try file.write(to: path)   // replacing works too
        #expect(dir.files() == ["model.loupe"])
        #expect(try ModelFile.read(path: path) == file)
    }

    @Test func rejectsBadMagicAndVersion() throws {
        var bytes = try Self.makeFile().encode()
        bytes[1] = UInt8(ascii: "X")
        expectProblem(bytes, .badMagic)
        bytes = try Self.makeFile().encode()
        bytes[8] = 3
        expectProblem(bytes, .unsupportedVersion(3))
        expectProblem(Array("hello world, this is not a model".utf8), .badMagic)
        expectProblem([], .truncated(expected: 16, actual: 0))
    }

    @Test func rejectsTruncationAtEveryRegion() throws {
        let bytes = try Self.makeFile().encode()
        for cut in [4, 8, 12, 15, 16, 40, 300, bytes.count - 33, bytes.count - 1] where cut < bytes.count {
            do {
                _ = try ModelFile.decode(bytes: Array(bytes.prefix(cut)))
                Issue.record("truncation at \(cut) accepted")
            } catch let LoupeDataError.modelFile(_, problem) {
                switch problem {
                case .truncated: break
                case .invalidHeader where cut > 16: break   // cut inside the JSON header
                default: Issue.record("cut \(cut): \(problem)")
                }
            }
        }
        do {
            _ = try ModelFile.decode(bytes: bytes + [0])
            Issue.record("trailing byte accepted")
        } catch let LoupeDataError.modelFile(_, problem) {
            #expect(problem == .trailingBytes(expected: bytes.count, actual: bytes.count + 1))
        }
    }

    @Test func rejectsFlippedBitsAnywhere() throws {
        let bytes = try Self.makeFile().encode()
        for position in stride(from: 16, to: bytes.count, by: 37) {
            var b = bytes
            b[position] ^= 0x10
            #expect(throws: LoupeDataError.self, "flip at \(position)") { try ModelFile.decode(bytes: b) }
        }
        var b = bytes
        b[b.count - 40] ^= 1   // a parameter
        do {
            _ = try ModelFile.decode(bytes: b)
        } catch let LoupeDataError.modelFile(_, problem) {
            guard case .checksumMismatch = problem else { Issue.record("\(problem)"); return }
        }
    }

    @Test func rejectsShapeMismatch() throws {
        var file = try Self.makeFile()
        var header = file.header
        header.tensors[0].shape = [3, 3, 1, 3]
        #expect(throws: LoupeDataError.self) { try ModelFile(header: header, parameters: file.parameters) }
        header = file.header
        header.labels = ["a", "b"]
        expectShapeError(header, file.parameters, contains: "2 labels")
        header = file.header
        header.architecture.layers[3] = .dense(units: 4, activation: .softmax)
        expectShapeError(header, file.parameters, contains: "needs")
        header = file.header
        header.inputShape = [28, 28, 1]
        expectShapeError(header, file.parameters, contains: "inputShape")
        expectShapeError(file.header, Array(file.parameters.dropLast()), contains: "declares")
        // A consistently re-encoded file whose tensor table lies is rejected on read too.
        file.header.tensors.swapAt(0, 1)
        let bytes = try file.encode()
        do {
            _ = try ModelFile.decode(bytes: bytes)
            Issue.record("accepted")
        } catch let LoupeDataError.modelFile(_, problem) {
            guard case .shapeMismatch = problem else { Issue.record("\(problem)"); return }
            #expect("\(problem)".contains("conv1.bias"))
        }
    }

    /// `loupe inspect` shows what it can of a file the reader refuses; a parameterCount no file can
    /// hold is reported, not multiplied into an overflow (before, inspect crashed on it).
    @Test func inspectionReportsAnAbsurdParameterCount() throws {
        var file = try Self.makeFile()
        for count in [1 << 62, Int.max, -(1 << 62), Int.min] {
            file.header.parameterCount = count
            let bytes = try file.encode()
            let r = ModelInspection.inspect(bytes: bytes)
            #expect(!r.isValid)
            #expect(r.header?.parameterCount == count)
            #expect("\(r.error.map { "\($0)" } ?? "")".contains("parameterCount"))
            #expect(r.checksumOK, "the checksum is still found at the end of the file")
        }
    }

    @Test func readErrorsNameThePath() throws {
        let dir = try TempDir()
        let path = dir.path + "/broken.loupe"
        try FileIO.writeAtomically(Array(try Self.makeFile().encode().dropLast(5)), to: path)
        do {
            _ = try ModelFile.read(path: path)
            Issue.record("accepted")
        } catch {
            #expect("\(error)".contains(path))
            #expect("\(error)".contains("truncated"))
        }
        #expect(throws: LoupeDataError.self) { try ModelFile.read(path: dir.path + "/missing.loupe") }
    }

    @Test func createdAtIsISO8601() {
        #expect(TrainingMetadata.iso8601(.init(timeIntervalSince1970: 0)) == "1970-01-01T00:00:00Z")
        #expect(TrainingMetadata.iso8601(.init(timeIntervalSince1970: 1_709_210_096)) == "2024-02-29T12:34:56Z")
    }

    func expectProblem(_ bytes: [UInt8], _ expected: ModelFileProblem, sourceLocation: SourceLocation = #_sourceLocation) {
        do {
            _ = try ModelFile.decode(bytes: bytes)
            Issue.record("accepted", sourceLocation: sourceLocation)
        } catch let LoupeDataError.modelFile(_, problem) {
            #expect(problem == expected, sourceLocation: sourceLocation)
        } catch {
            Issue.record("\(error)", sourceLocation: sourceLocation)
        }
    }

    func expectShapeError(_ header: ModelHeader, _ parameters: [Float], contains text: String, sourceLocation: SourceLocation = #_sourceLocation) {
        do {
            _ = try ModelFile(header: header, parameters: parameters)
            Issue.record("accepted", sourceLocation: sourceLocation)
        } catch {
            #expect("\(error)".contains(text), "\(error)", sourceLocation: sourceLocation)
        }
    }
}
