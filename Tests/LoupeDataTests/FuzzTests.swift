import FoundationEssentials
import Testing
import LoupeEngine
@testable import LoupeData

/// Seeded mutation tests: damaged inputs must be rejected with a LoupeDataError (or decode to
/// something), never crash, hang, or allocate without bound. Mutations keep CRCs/checksums valid
/// where the format has them, so the damage reaches the decoders behind those checks.
@Suite struct FuzzTests {
    struct SplitMix64: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    /// Chunk ranges of a PNG: (start of length field, data count).
    static func chunks(_ png: [UInt8]) -> [(start: Int, length: Int)] {
        var out: [(Int, Int)] = []
        var pos = 8
        while pos + 12 <= png.count {
            let length = Int(png[pos]) << 24 | Int(png[pos + 1]) << 16 | Int(png[pos + 2]) << 8 | Int(png[pos + 3])
            guard pos + 12 + length <= png.count else { break }
            out.append((pos, length))
            pos += 12 + length
        }
        return out
    }

    static func fixCRC(_ png: inout [UInt8], _ chunk: (start: Int, length: Int)) {
        let crc = crc32Checksum(png[chunk.start + 4..<chunk.start + 8 + chunk.length])
        let at = chunk.start + 8 + chunk.length
        png[at] = UInt8(crc >> 24); png[at + 1] = UInt8(crc >> 16 & 0xff); png[at + 2] = UInt8(crc >> 8 & 0xff); png[at + 3] = UInt8(crc & 0xff)
    }

    @Test(arguments: ["gray1", "gray16_adam7", "rgb8_trns", "palette4_trns", "palette8_trns_adam7", "gray_alpha16", "rgba16_adam7"])
    func mutatedPNGsNeverCrash(name: String) throws {
        let original = try fixture(name + ".png")
        let chunks = Self.chunks(original)
        var rng = SplitMix64(state: UInt64(name.utf8.reduce(0) { $0 &* 31 &+ UInt64($1) }))
        var decoded = 0, rejected = 0
        for _ in 0..<300 {
            var png = original
            let c = chunks[Int.random(in: 0..<chunks.count, using: &rng)]
            guard c.length > 0 else { continue }
            for _ in 0..<Int.random(in: 1...3, using: &rng) {
                let i = c.start + 8 + Int.random(in: 0..<c.length, using: &rng)
                png[i] = Bool.random(using: &rng) ? UInt8.random(in: 0...255, using: &rng) : png[i] ^ (1 << UInt8.random(in: 0...7, using: &rng))
            }
            Self.fixCRC(&png, c)
            if Bool.random(using: &rng) && Int.random(in: 0..<4, using: &rng) == 0 { png.removeLast(Int.random(in: 1..<png.count, using: &rng)) }
            do {
                let image = try ImageDecoder.decode(png, limits: .init(maxDimension: 4096, maxPixels: 1 << 22))
                #expect(image.pixels.count == image.width * image.height)
                decoded += 1
            } catch is LoupeDataError {
                rejected += 1
            }
        }
        #expect(decoded + rejected > 200)   // mutations of the empty IEND are skipped
        #expect(rejected > 0)
    }

    @Test func mutatedPGMAndIDXNeverCrash() throws {
        var rng = SplitMix64(state: 7)
        let pgms = [try fixture("p5_16bit.pgm"), try fixture("p2_maxval15.pgm")]
        let idx = IDXFile.encode(dimensions: [3, 4, 5], data: (0..<60).map { UInt8($0) })
        let gz = Deflate.gzip(idx)
        for _ in 0..<400 {
            for source in pgms + [idx, gz] {
                var b = source
                for _ in 0..<Int.random(in: 1...4, using: &rng) {
                    let i = Int.random(in: 0..<min(b.count, 40), using: &rng)
                    b[i] = UInt8.random(in: 0...255, using: &rng)
                }
                if Bool.random(using: &rng) { b.removeLast(Int.random(in: 0..<b.count, using: &rng)) }
                if source == idx || source == gz {
                    _ = try? IDXFile.parse(b)
                } else {
                    _ = try? ImageDecoder.decode(b, limits: .init(maxDimension: 1000, maxPixels: 1 << 20))
                }
            }
        }
    }

    /// Rewrites a model file's header JSON (and its checksum), as a forger could.
    static func forge(_ file: ModelFile, _ edit: (inout String) -> Void) throws -> [UInt8] {
        let bytes = try file.encode()
        let h = Int(ModelFile.readUInt32(bytes, 12))
        var json = String(decoding: bytes[16..<16 + h], as: UTF8.self)
        edit(&json)
        let d = (16 + h + 63) / 64 * 64
        let body = Array(bytes[d..<bytes.count - 32])
        var out = Array(bytes[0..<12])
        let j = Array(json.utf8)
        ModelFile.appendUInt32(&out, UInt32(j.count))
        out += j
        out += [UInt8](repeating: 0, count: (16 + j.count + 63) / 64 * 64 - out.count)
        out += body
        return out + SHA256.digest(out)
    }

    @Test func forgedHeadersAreRejectedWithoutHugeAllocations() throws {
        let file = try ModelFileTests.makeFile()
        let cases: [(String, String)] = [
            ("\"units\":3", "\"units\":1099511627776"),
            ("\"units\":3", "\"units\":-3"),
            ("\"filters\":2", "\"filters\":4000000000"),
            ("\"kernel\":3", "\"kernel\":0"),
            ("\"pool\":2", "\"pool\":0"),
            ("\"inputShape\":[4,4,1],\"layers\"", "\"inputShape\":[4000000,4000000,1000],\"layers\""),
            ("\"parameterCount\":", "\"parameterCount\":1"),
            ("\"type\":\"flatten\"", "\"type\":\"mystery\""),
        ]
        for (from, to) in cases {
            let forged = try Self.forge(file) { json in
                #expect(json.contains(from), "the fixture header lacks \(from)")
                json = json.replacing(from, with: to)
            }
            #expect(throws: LoupeDataError.self, "\(to)") { try ModelFile.decode(bytes: forged) }
        }
        // Random digit changes inside the header: rejected or (if harmless) accepted, never a crash.
        var rng = SplitMix64(state: 99)
        for _ in 0..<200 {
            let forged = try Self.forge(file) { json in
                var u = Array(json.utf8)
                let digits = u.indices.filter { u[$0] >= 0x30 && u[$0] <= 0x39 }
                for _ in 0..<2 { u[digits[Int.random(in: 0..<digits.count, using: &rng)]] = UInt8.random(in: 0x30...0x39, using: &rng) }
                json = String(decoding: u, as: UTF8.self)
            }
            _ = try? ModelFile.decode(bytes: forged)
        }
    }
}
