import FoundationEssentials

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

    public var checksumOK: Bool { storedChecksum != nil && storedChecksum == computedChecksum }
    public var isValid: Bool { error == nil }

    public static func inspect(bytes: [UInt8]) -> ModelInspection {
        var r = ModelInspection(fileSize: bytes.count, magicOK: bytes.starts(with: ModelFile.magic))
        do {
            _ = try ModelFile.decode(bytes: bytes)
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
        if let h = r.header, r.dataOffset! + 4 * h.parameterCount + 32 <= bytes.count { end = r.dataOffset! + 4 * h.parameterCount + 32 }
        if end >= r.dataOffset! + 32 {
            r.storedChecksum = SHA256.hexString(bytes[(end - 32)..<end])
            r.computedChecksum = SHA256.hex(bytes[0..<(end - 32)])
        }
        return r
    }

    init(fileSize: Int, magicOK: Bool) {
        self.fileSize = fileSize
        self.magicOK = magicOK
    }
}
