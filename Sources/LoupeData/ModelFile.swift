import FoundationEssentials
import LoupeEngine

/// A `.loupe` model file: JSON header + float32 parameters + SHA-256. Byte layout in
/// docs/model-format.md:
///
///     offset  size  field
///     0       8     magic 89 4C 4F 55 50 45 0D 0A ("\x89LOUPE\r\n")
///     8       4     format version, UInt32 little-endian (1)
///     12      4     header length H in bytes, UInt32 little-endian
///     16      H     header, UTF-8 JSON (ModelHeader)
///     16+H    pad   zero bytes up to D = the next multiple of 64
///     D       4·P   P = parameterCount float32 values, little-endian
///     D+4·P   32    SHA-256 of bytes [0, D+4·P)
public struct ModelFile: Sendable, Equatable {
    public var header: ModelHeader
    public var parameters: [Float]
    /// SHA-256 (lower-case hex) over every byte before the checksum — the stored checksum of
    /// a file that was read, or of the bytes `encode()` produces.
    public private(set) var sha256Hex: String

    public static let magic: [UInt8] = [0x89, 0x4C, 0x4F, 0x55, 0x50, 0x45, 0x0D, 0x0A]
    public static let formatVersion: UInt32 = 1
    /// Quantized models (header `quantization`): tensors stored as int8 or float32 (§12).
    public static let quantizedFormatVersion: UInt32 = 2
    /// The version this file is written as.
    public var version: UInt32 { header.quantization == nil ? ModelFile.formatVersion : ModelFile.quantizedFormatVersion }
    /// Alignment of the tensor data section, in bytes from the start of the file.
    public static let alignment = 64
    /// Largest accepted JSON header (16 MiB).
    public static let maxHeaderBytes = 16 << 20
    /// Largest accepted file (1 GiB).
    public static let maxFileBytes = 1 << 30

    /// Builds a file from a header and parameters, checking they agree (see `validate`).
    public init(header: ModelHeader, parameters: [Float]) throws {
        self.header = header
        self.parameters = parameters
        self.sha256Hex = ""
        try validate()
        self.sha256Hex = SHA256.hexString(try encode().suffix(32))
    }

    private init(header: ModelHeader, parameters: [Float], sha256Hex: String) {
        self.header = header
        self.parameters = parameters
        self.sha256Hex = sha256Hex
    }

    // MARK: Reading

    /// Reads and verifies a model file: magic, version, size, checksum, header, shapes.
    public static func read(path: String) throws -> ModelFile {
        let bytes = try FileIO.readFile(path, maxBytes: maxFileBytes)
        do {
            return try decode(bytes: bytes)
        } catch let LoupeDataError.modelFile(nil, problem) {
            throw LoupeDataError.modelFile(path: path, problem: problem)
        }
    }

    /// Decodes and verifies model-file bytes.
    public static func decode(bytes: [UInt8]) throws -> ModelFile {
        func fail(_ p: ModelFileProblem) -> LoupeDataError { .modelFile(path: nil, problem: p) }
        guard bytes.count >= 8 else {
            if bytes.elementsEqual(magic.prefix(bytes.count)) { throw fail(.truncated(expected: 16, actual: bytes.count)) }
            throw fail(.badMagic)
        }
        guard bytes[0..<8].elementsEqual(magic) else { throw fail(.badMagic) }
        guard bytes.count >= 16 else { throw fail(.truncated(expected: 16, actual: bytes.count)) }
        let version = readUInt32(bytes, 8)
        guard version == formatVersion || version == quantizedFormatVersion else { throw fail(.unsupportedVersion(version)) }
        let headerLength = Int(readUInt32(bytes, 12))
        guard headerLength <= maxHeaderBytes else {
            throw fail(.invalidHeader("declared length \(headerLength) bytes exceeds the \(maxHeaderBytes)-byte limit"))
        }
        guard bytes.count >= 16 + headerLength else {
            throw fail(.truncated(expected: 16 + headerLength, actual: bytes.count))
        }
        let dataOffset = alignUp(16 + headerLength)
        let header: ModelHeader
        do {
            header = try JSONDecoder().decode(ModelHeader.self, from: Data(bytes[16..<16 + headerLength]))
        } catch {
            // A damaged header is most usefully reported as damage when the checksum says so.
            if bytes.count >= dataOffset + 32 {
                let stored = SHA256.hexString(bytes.suffix(32))
                let computed = SHA256.hex(bytes.dropLast(32))
                if stored != computed { throw fail(.checksumMismatch(stored: stored, computed: computed)) }
            }
            throw fail(.invalidHeader(describe(error)))
        }
        guard header.parameterCount >= 0, header.parameterCount <= maxFileBytes / 4 else {
            throw fail(.invalidHeader("parameterCount \(header.parameterCount) is out of range"))
        }
        guard (header.quantization != nil) == (version == quantizedFormatVersion) else {
            throw fail(.invalidHeader(version == quantizedFormatVersion ? "a version-2 file must have a 'quantization' header"
                                                                         : "a 'quantization' header needs format version 2"))
        }
        // The architecture is sized before the engine builds it (storedTensors, validate): one that needs more
        // parameters than the header declares, or than the data section could hold (a byte each at least), is
        // refused here, so what is allocated follows the file's size, never what its architecture claims.
        if let planned = try? plannedParameterCount(of: header.architecture) {
            guard planned <= header.parameterCount else {
                throw fail(.shapeMismatch("the architecture needs \(planned) parameters, the file holds \(header.parameterCount)"))
            }
            guard planned <= bytes.count - dataOffset - 32 else { throw fail(.truncated(expected: dataOffset + planned + 32, actual: bytes.count)) }
        }
        // Version 2: the storage layout follows from the architecture's tensors; checked before any byte is read.
        var storage: [StoredTensor]? = nil
        if let q = header.quantization {
            do { storage = try storedTensors(header: header, quantization: q) } catch let LoupeDataError.modelFile(_, problem) { throw fail(problem) }
            // The float view is sized by parameterCount and the tensors are read into it by the table.
            let needed = storage!.reduce(0) { $0 + $1.entry.count }
            guard header.parameterCount == needed else {
                throw fail(.shapeMismatch("the architecture needs \(needed) parameters, the file holds \(header.parameterCount)"))
            }
        }
        let dataBytes = storage.map(ModelFile.dataBytes) ?? 4 * header.parameterCount
        let expected = dataOffset + dataBytes + 32
        guard bytes.count >= expected else { throw fail(.truncated(expected: expected, actual: bytes.count)) }
        guard bytes.count == expected else { throw fail(.trailingBytes(expected: expected, actual: bytes.count)) }
        let stored = SHA256.hexString(bytes[(expected - 32)...])
        let computed = SHA256.hex(bytes[0..<(expected - 32)])
        guard stored == computed else { throw fail(.checksumMismatch(stored: stored, computed: computed)) }
        for i in 16 + headerLength..<dataOffset where bytes[i] != 0 {
            throw fail(.invalidHeader("padding byte at offset \(i) is not zero"))
        }
        var parameters = [Float](repeating: 0, count: header.parameterCount)
        if let storage {
            ModelFile.readStored(storage, bytes: bytes, dataOffset: dataOffset, into: &parameters)
        } else {
            parameters.withUnsafeMutableBytes { dst in
                bytes.withUnsafeBytes { src in
                    dst.copyMemory(from: UnsafeRawBufferPointer(rebasing: src[dataOffset..<dataOffset + 4 * header.parameterCount]))
                }
            }
            #if _endian(big)
            for i in parameters.indices { parameters[i] = Float(bitPattern: UInt32(littleEndian: parameters[i].bitPattern)) }
            #endif
        }
        let file = ModelFile(header: header, parameters: parameters, sha256Hex: stored)
        do {
            try file.validate()
        } catch let LoupeDataError.modelFile(_, problem) {
            throw fail(problem)
        }
        return file
    }

    // MARK: Writing

    /// The file's bytes.
    public func encode() throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let json = [UInt8](try encoder.encode(header))
        var out = ModelFile.magic
        ModelFile.appendUInt32(&out, version)
        ModelFile.appendUInt32(&out, UInt32(json.count))
        out += json
        let dataOffset = ModelFile.alignUp(out.count)
        out += [UInt8](repeating: 0, count: dataOffset - out.count)
        if let q = header.quantization {
            let storage = try ModelFile.storedTensors(header: header, quantization: q)
            out += ModelFile.writeStored(storage, parameters: parameters)
            out += SHA256.digest(out)
            return out
        }
        out += [UInt8](repeating: 0, count: 4 * parameters.count)
        out.withUnsafeMutableBytes { dst in
            parameters.withUnsafeBytes { src in
                UnsafeMutableRawBufferPointer(rebasing: dst[dataOffset...]).copyMemory(from: src)
            }
        }
        #if _endian(big)
        for (i, p) in parameters.enumerated() {
            let v = p.bitPattern
            for k in 0..<4 { out[dataOffset + 4 * i + k] = UInt8(v >> (8 * UInt32(k)) & 0xff) }
        }
        #endif
        out += SHA256.digest(out)
        return out
    }

    /// Writes the file atomically (temp file in the same directory, fsync, rename, fsync of
    /// the directory): readers see the old file or the whole new one, never a partial one.
    public func write(to path: String) throws {
        try FileIO.writeAtomically(try encode(), to: path)
    }

    // MARK: Validation

    /// Checks the header against itself, the parameters and the architecture: input shape,
    /// label count vs. output size, tensor table vs. the engine's parameter slots.
    public func validate() throws {
        func fail(_ s: String) -> LoupeDataError { .modelFile(path: nil, problem: .shapeMismatch(s)) }
        guard header.inputShape == header.architecture.inputShape else {
            throw fail("inputShape \(header.inputShape) differs from the architecture's \(header.architecture.inputShape)")
        }
        guard parameters.count == header.parameterCount else {
            throw fail("the header declares \(header.parameterCount) parameters, \(parameters.count) are present")
        }
        let (expected, outputs) = try ModelFile.layout(of: header.architecture)
        let expectedCount = expected.reduce(0) { $0 + $1.count }
        guard header.parameterCount == expectedCount else {
            throw fail("the architecture needs \(expectedCount) parameters, the file holds \(header.parameterCount)")
        }
        guard header.tensors.count == expected.count else {
            throw fail("the architecture has \(expected.count) tensors, the file lists \(header.tensors.count)")
        }
        for (have, want) in zip(header.tensors, expected) {
            guard have.name == want.name else { throw fail("tensor '\(have.name)' is where '\(want.name)' was expected") }
            guard have.shape == want.shape else { throw fail("tensor '\(have.name)' has shape \(have.shape), the architecture needs \(want.shape)") }
            guard have.offset == want.offset else { throw fail("tensor '\(have.name)' starts at element \(have.offset), expected \(want.offset)") }
        }
        if let q = header.quantization {
            _ = try ModelFile.storedTensors(header: header, quantization: q)
            do {
                _ = try Sequential(architecture: header.architecture, parameters: parameters, quantization: q)
            } catch {
                throw fail("the quantization does not fit the network: \(error)")
            }
        }
        // In version 1, dtype and byteOffset are unknown tensor-entry keys like any other (§2): ignored.
        guard header.labels.count == outputs else {
            throw fail("\(header.labels.count) labels for a network with \(outputs) outputs")
        }
        for (i, g) in header.goldenSamples.enumerated() {
            guard g.pixels.count == header.inputCount, g.probabilities.count == outputs, (0..<outputs).contains(g.expectedClass) else {
                throw fail("golden sample \(i) has \(g.pixels.count) pixels and \(g.probabilities.count) probabilities (expected \(header.inputCount) and \(outputs))")
            }
        }
    }

    // MARK: Helpers

    static func alignUp(_ n: Int) -> Int { (n + alignment - 1) / alignment * alignment }

    static func readUInt32(_ b: [UInt8], _ at: Int) -> UInt32 {
        UInt32(b[at]) | UInt32(b[at + 1]) << 8 | UInt32(b[at + 2]) << 16 | UInt32(b[at + 3]) << 24
    }

    static func appendUInt32(_ out: inout [UInt8], _ v: UInt32) {
        out += [UInt8(v & 0xff), UInt8(v >> 8 & 0xff), UInt8(v >> 16 & 0xff), UInt8(v >> 24)]
    }

    static func describe(_ error: any Error) -> String {
        if let d = error as? DecodingError {
            switch d {
            case let .keyNotFound(key, ctx):
                return "missing key '\(path(ctx.codingPath + [key]))'"
            case let .typeMismatch(_, ctx), let .valueNotFound(_, ctx):
                return "wrong type at '\(path(ctx.codingPath))': \(ctx.debugDescription)"
            case let .dataCorrupted(ctx):
                return ctx.codingPath.isEmpty ? "not valid JSON (\(ctx.debugDescription))" : "bad value at '\(path(ctx.codingPath))': \(ctx.debugDescription)"
            @unknown default:
                return "\(d)"
            }
        }
        return "\(error)"
    }

    private static func path(_ keys: [any CodingKey]) -> String {
        // "goldenSamples[0].expectedClass": array indices attach to their key without a dot.
        keys.reduce(into: "") { out, key in
            if let i = key.intValue { out += "[\(i)]" } else { out += (out.isEmpty ? "" : ".") + key.stringValue }
        }
    }
}
