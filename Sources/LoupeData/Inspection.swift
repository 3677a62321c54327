import FoundationEssentials
import LoupeEngine

/// What `loupe inspect` shows: the container fields and whatever of the header could be read,
/// with the checksum and validation status — also for files the strict reader rejects.
public struct ModelInspection: Sendable {
    public var fileSize: Int
    public var magicOK: Bool
    public var formatVersion: UInt32?
    public var headerLength: Int?
    public var dataOffset: Int?
    /// The header, when its JSON decodes.
    public var header: ModelHeader?
    /// Stored and recomputed SHA-256 (hex), when the file is long enough to hold one.
    public var storedChecksum: String?
    public var computedChecksum: String?
    /// nil when the strict reader accepts the file; otherwise its error.
    public var error: LoupeDataError?
    /// The server's load-time checks after reading: building the network and the golden-sample
    /// self-test (`ModelFile.selfTest`). nil when they were not run (the file did not read, or
    /// `selfTest: false`); otherwise `.passed` or why not.
    public var selfTest: SelfTestOutcome?

    public enum SelfTestOutcome: Sendable, Equatable {
        /// Every golden sample reproduced (`count` of them).
        case passed(count: Int)
        /// The network could not be built, or a golden sample did not reproduce: the sentence.
        case failed(String)
    }

    public var checksumOK: Bool { storedChecksum != nil && storedChecksum == computedChecksum }
    /// The file reads and, where the self-test ran, passed it: what the server would serve.
    public var isValid: Bool {
        if case .failed? = selfTest { return false }
        return error == nil
    }

    /// Reads `bytes` as the server does: the strict reader, then (when `selfTest`) the network is
    /// built and run on the golden samples with `tolerance`, as the server's loader does with
    /// `models.self_test` and `models.self_test_tolerance`.
    public static func inspect(bytes: [UInt8], selfTest: Bool = true, tolerance: Float = ModelFile.defaultSelfTestTolerance) -> ModelInspection {
        var r = ModelInspection(fileSize: bytes.count, magicOK: bytes.starts(with: ModelFile.magic))
        do {
            let file = try ModelFile.decode(bytes: bytes)
            if selfTest { r.selfTest = Self.selfTest(file, tolerance: tolerance) }
        } catch let e as LoupeDataError {
            r.error = e
        } catch {
            r.error = .modelFile(path: nil, problem: .invalidHeader("\(error)"))
        }
        guard r.magicOK, bytes.count >= 16 else { return r }
        r.formatVersion = ModelFile.readUInt32(bytes, 8)
        let length = Int(ModelFile.readUInt32(bytes, 12))
        r.headerLength = length
        guard length <= ModelFile.maxHeaderBytes, bytes.count >= 16 + length else { return r }
        r.dataOffset = ModelFile.alignUp(16 + length)
        r.header = try? JSONDecoder().decode(ModelHeader.self, from: Data(bytes[16..<16 + length]))
        var end = bytes.count
        // parameterCount is whatever the file says: only a count a file can hold sizes the data section.
        if let h = r.header, let dataBytes = h.quantization.flatMap({ q in (try? ModelFile.storedTensors(header: h, quantization: q)).map(ModelFile.dataBytes) })
            ?? ((0...ModelFile.maxFileBytes / 4).contains(h.parameterCount) ? 4 * h.parameterCount : nil) {
            if r.dataOffset! + dataBytes + 32 <= bytes.count { end = r.dataOffset! + dataBytes + 32 }
        }
        if end >= r.dataOffset! + 32 {
            r.storedChecksum = SHA256.hexString(bytes[(end - 32)..<end])
            r.computedChecksum = SHA256.hex(bytes[0..<(end - 32)])
        }
        return r
    }

    static func selfTest(_ file: ModelFile, tolerance: Float) -> SelfTestOutcome {
        let model: Sequential
        do {
            model = try file.makeModel()
        } catch {
            return .failed("the network cannot be built: \(error)")
        }
        guard model.outputCount == file.header.labels.count else {
            return .failed("the network has \(model.outputCount) outputs but the header names \(file.header.labels.count) labels")
        }
        do {
            try ModelFile.selfTest(model: model, header: file.header, tolerance: tolerance)
        } catch {
            return .failed(error.message)
        }
        return .passed(count: file.header.goldenSamples.count)
    }

    init(fileSize: Int, magicOK: Bool) {
        self.fileSize = fileSize
        self.magicOK = magicOK
    }
}
