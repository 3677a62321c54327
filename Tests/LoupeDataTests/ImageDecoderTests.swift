import Dispatch
import Synchronization
import Testing
@testable import LoupeData

/// Fixtures: Tests/LoupeDataTests/Fixtures/images, made by scripts/make_image_fixtures.py
/// (hand-encoded PNGs, cross-checked with Pillow, and the gray each must decode to).
let fixtureDirectory: String = {
    let file = #filePath
    return String(file[..<file.lastIndex(of: "/")!]) + "/Fixtures/images"
}()

func fixture(_ name: String) throws -> [UInt8] { try FileIO.readFile(fixtureDirectory + "/" + name) }

/// A minimal PNG writer for crafting broken files: chunks with correct CRCs unless told otherwise.
enum PNGWriter {
    static func chunk(_ type: String, _ data: [UInt8], corruptCRC: Bool = false) -> [UInt8] {
        let typeBytes = Array(type.utf8)
        var crc = crc32Checksum((typeBytes + data)[...])
        if corruptCRC { crc ^= 1 }
        return be32(data.count) + typeBytes + data + be32(Int(crc))
    }
    static func be32(_ v: Int) -> [UInt8] { [UInt8(v >> 24 & 0xff), UInt8(v >> 16 & 0xff), UInt8(v >> 8 & 0xff), UInt8(v & 0xff)] }
    static func ihdr(width: Int, height: Int, depth: UInt8 = 8, colorType: UInt8 = 0, interlace: UInt8 = 0) -> [UInt8] {
        chunk("IHDR", be32(width) + be32(height) + [depth, colorType, 0, 0, interlace])
    }
    /// An 8-bit gray image whose rows use `filter` (raw bytes are the pixels, unfiltered data).
    static func gray(width: Int, height: Int, filter: UInt8 = 0, extraRaw: [UInt8] = [], idat: [UInt8]? = nil) -> [UInt8] {
        var raw: [UInt8] = []
        for y in 0..<height { raw.append(filter); raw += (0..<width).map { UInt8(($0 + y) % 256) } }
        raw += extraRaw
        return PNGDecoder.signature + ihdr(width: width, height: height) + chunk("IDAT", idat ?? Deflate.zlib(raw)) + chunk("IEND", [])
    }
}

@Suite struct ImageDecoderTests {
    static let pngFixtures = [
        "gray1", "gray2", "gray4", "gray8", "gray16", "gray1_adam7", "gray8_adam7", "gray16_adam7", "gray8_trns", "gray2_trns",
        "rgb8", "rgb16", "rgb8_adam7", "rgb8_trns", "rgb16_trns",
        "palette1", "palette2", "palette4", "palette8", "palette4_trns", "palette8_trns_adam7", "palette2_adam7",
        "gray_alpha8", "gray_alpha16", "gray_alpha8_adam7", "rgba8", "rgba16", "rgba8_adam7", "rgba16_adam7",
        // written by Pillow's encoder
        "pillow_rgba", "pillow_rgb", "pillow_gray", "pillow_gray_alpha", "pillow_bilevel", "pillow_palette", "pillow_gray16",
    ]

    @Test(arguments: pngFixtures)
    func decodesEveryPNGKind(name: String) throws {
        let image = try ImageDecoder.decode(try fixture(name + ".png"))
        let expected = try ImageDecoder.decode(try fixture(name + ".expected.pgm"))
        #expect(image.width == 13 && image.height == 11)
        #expect(image == expected)
        // The content is not degenerate: the pattern covers dark and bright values.
        #expect(Set(image.pixels).count > 2 || name.hasPrefix("gray1") || name.hasPrefix("palette1") || name == "pillow_bilevel")
    }

    @Test func decodesPGM() throws {
        let p5 = try ImageDecoder.decode(try fixture("p5_8bit.pgm"))
        #expect(p5.width == 13 && p5.height == 11)
        #expect(p5.pixels[0] == 0 && p5.pixels[1] == 37 && p5.pixels[13] == 11)
        #expect(try ImageDecoder.decode(try fixture("p5_16bit.pgm")) == ImageDecoder.decode(try fixture("p5_16bit.expected.pgm")))
        #expect(try ImageDecoder.decode(try fixture("p2_maxval15.pgm")) == ImageDecoder.decode(try fixture("p2_maxval15.expected.pgm")))
        let tiny = try ImageDecoder.decode(Array("P2 2 1 65535 0 65535".utf8))
        #expect(tiny.pixels == [0, 255])
        let mid = try ImageDecoder.decode(Array("P2 3 1 2 0 1 2\n".utf8))
        #expect(mid.pixels == [0, 128, 255])
    }

    @Test func rejectsBrokenPGM() {
        expectError(Array("P5 2 2 255\n\u{1}\u{2}\u{3}".utf8), contains: "truncated")
        expectError(Array("P2 2 1 10 3 11".utf8), contains: "above maxval")
        expectError(Array("P5 2 2 70000\n".utf8), contains: "maxval")
        expectError(Array("P5 0 2 255\n".utf8), contains: "size")
        expectError(Array("P2 2 2 255 1 2 3".utf8), contains: "truncated")
        expectError(Array("P5 2 x 255\n".utf8), contains: "height")
        expectError(Array("P5 99999 99999 255\n".utf8), contains: "larger than allowed")
    }

    @Test func rejectsBadSignatureAndUnknownFormats() {
        var png = PNGWriter.gray(width: 4, height: 4)
        png[1] = UInt8(ascii: "X")
        expectError(png, contains: "Unsupported image format")
        expectError([], contains: "empty")
        expectError(Array("GIF89a".utf8), contains: "47 49 46")
    }

    @Test func roundTripsEveryFilterType() throws {
        for filter in UInt8(0)...4 {
            // Filtered bytes equal the raw pixels when the data is built as "filtered = pixels":
            // decode must apply the filter, so only filter 0 returns the raw pattern; others must
            // still decode without error and differ in a predictable way for filter 2 (Up).
            let image = try ImageDecoder.decode(PNGWriter.gray(width: 5, height: 3, filter: filter))
            #expect(image.width == 5 && image.height == 3)
            if filter == 0 { #expect(image.pixels == [0, 1, 2, 3, 4, 1, 2, 3, 4, 5, 2, 3, 4, 5, 6]) }
            if filter == 2 { #expect(image.pixels == [0, 1, 2, 3, 4, 1, 3, 5, 7, 9, 3, 6, 9, 12, 15]) }
            if filter == 1 { #expect(Array(image.pixels[0..<5]) == [0, 1, 3, 6, 10]) }
        }
    }

    @Test func rejectsCorruptPNG() throws {
        let good = try fixture("rgb8.png")
        // CRC: flip a byte inside the IDAT payload.
        var bad = good
        bad[bad.count - 20] ^= 0x55
        expectError(bad, contains: "CRC")
        // Truncated at several points.
        for cut in [10, 20, 33, good.count / 2, good.count - 12, good.count - 1] {
            expectError(Array(good.prefix(cut)), contains: "truncated")
        }
        // Bad filter byte.
        expectError(PNGWriter.gray(width: 4, height: 3, filter: 7), contains: "filter type 7")
        // Image data longer than IHDR implies (oversized zlib output).
        expectError(PNGWriter.gray(width: 4, height: 3, extraRaw: [UInt8](repeating: 9, count: 100_000)), contains: "inflates to more than")
        // Image data shorter than IHDR implies.
        expectError(PNGWriter.gray(width: 4, height: 3, idat: Deflate.zlib([0, 1, 2])), contains: "truncated")
        // Corrupt zlib stream.
        expectError(PNGWriter.gray(width: 4, height: 3, idat: [0x78, 0x9c, 0xff, 0xff, 0xff, 0x00]), contains: "image data")
        // Absurd dimensions: refused before any allocation.
        let huge = PNGDecoder.signature + PNGWriter.ihdr(width: 1 << 30, height: 1 << 30) + PNGWriter.chunk("IDAT", Deflate.zlib([0])) + PNGWriter.chunk("IEND", [])
        expectError(huge, contains: "larger than allowed")
        let zero = PNGDecoder.signature + PNGWriter.ihdr(width: 0, height: 5) + PNGWriter.chunk("IEND", [])
        expectError(zero, contains: "size")
        // Invalid bit depth for the colour type, unknown colour type.
        expectError(PNGDecoder.signature + PNGWriter.ihdr(width: 2, height: 2, depth: 4, colorType: 2) + PNGWriter.chunk("IEND", []), contains: "bit depth 4")
        expectError(PNGDecoder.signature + PNGWriter.ihdr(width: 2, height: 2, depth: 8, colorType: 5) + PNGWriter.chunk("IEND", []), contains: "colour type 5")
        // Missing IHDR, IDAT, PLTE; unknown critical chunk.
        expectError(PNGDecoder.signature + PNGWriter.chunk("IEND", []), contains: "IHDR")
        expectError(PNGDecoder.signature + PNGWriter.ihdr(width: 2, height: 2) + PNGWriter.chunk("IEND", []), contains: "no IDAT")
        expectError(PNGDecoder.signature + PNGWriter.ihdr(width: 2, height: 2, colorType: 3) + PNGWriter.chunk("IDAT", Deflate.zlib([0, 0, 0, 0, 0, 0])) + PNGWriter.chunk("IEND", []), contains: "PLTE")
        expectError(PNGDecoder.signature + PNGWriter.ihdr(width: 2, height: 2) + PNGWriter.chunk("ABCD", [1]) + PNGWriter.chunk("IEND", []), contains: "critical chunk ABCD")
        // Palette index beyond PLTE.
        let pal = PNGDecoder.signature + PNGWriter.ihdr(width: 2, height: 1, colorType: 3) + PNGWriter.chunk("PLTE", [1, 2, 3])
            + PNGWriter.chunk("IDAT", Deflate.zlib([0, 0, 5])) + PNGWriter.chunk("IEND", [])
        expectError(pal, contains: "palette index 5")
        // A chunk CRC that lies.
        expectError(PNGDecoder.signature + PNGWriter.chunk("IHDR", PNGWriter.be32(2) + PNGWriter.be32(2) + [8, 0, 0, 0, 0], corruptCRC: true), contains: "CRC mismatch in chunk IHDR")
    }

    @Test func limitsAreConfigurable() throws {
        let png = try fixture("gray8.png")
        #expect(throws: LoupeDataError.self) { try ImageDecoder.decode(png, limits: .init(maxDimension: 12)) }
        #expect(throws: LoupeDataError.self) { try ImageDecoder.decode(png, limits: .init(maxPixels: 100)) }
        #expect(throws: LoupeDataError.self) { try ImageDecoder.decode(png, limits: .init(maxInputBytes: 50)) }
        #expect(try ImageDecoder.decode(png, limits: .init(maxDimension: 13, maxPixels: 143)).width == 13)
    }

    @Test func resizesByAreaAveraging() {
        let image = GrayImage(width: 4, height: 2, pixels: [0, 100, 200, 255, 50, 150, 250, 5])
        #expect(image.resized(width: 2, height: 1).pixels == [75, 178])
        #expect(image.resized(width: 4, height: 2) == image)
        let up = GrayImage(width: 1, height: 1, pixels: [7]).resized(width: 3, height: 3)
        #expect(up.pixels == [UInt8](repeating: 7, count: 9))
        let rows: [UInt8] = (0..<56).flatMap { (y: Int) -> [UInt8] in [UInt8](repeating: UInt8(y / 2 * 9), count: 56) }
        let big = GrayImage(width: 56, height: 56, pixels: rows)
        let small = big.resized(width: 28, height: 28)
        #expect(small.pixels[0] == 0 && small.pixels[28] == 9 && small.pixels[27 * 28] == UInt8(27 * 9))
        #expect(image.inverted().pixels[0] == 255)
    }

    /// Decodes reuse zlib's state and the row buffers of earlier ones (PNGScratch): whatever came
    /// before — a large image whose stream needed zlib's window, a stream that failed half-way, an
    /// interlaced one, another colour type — the next decode gives what a first decode gives, here
    /// checked against the fixtures' expected PGMs and the writer's known pattern, on one thread
    /// and on four at once.
    @Test func decodesAfterAnyEarlierDecodeAsAfterNone() throws {
        let big = PNGWriter.gray(width: 300, height: 300)   // 90 KB of image data: several inflate calls
        let bigPixels = (0..<300).flatMap { y in (0..<300).map { UInt8(($0 + y) % 256) } }
        let kinds = ["gray8", "rgba16_adam7", "palette2", "gray_alpha8_adam7", "pillow_rgba", "gray1"]
        let fixtures = try kinds.map { (png: try fixture($0 + ".png"), expected: try ImageDecoder.decode(try fixture($0 + ".expected.pgm"))) }
        let broken: [(bytes: [UInt8], text: String)] = [
            (PNGWriter.gray(width: 4, height: 3, idat: [0x78, 0x9c, 0xff, 0xff, 0xff, 0x00]), "image data"),
            (PNGWriter.gray(width: 4, height: 3, extraRaw: [UInt8](repeating: 9, count: 100_000)), "inflates to more than"),
            (PNGWriter.gray(width: 4, height: 3, idat: Deflate.zlib([0, 1, 2])), "truncated"),
            (PNGWriter.gray(width: 4, height: 3, filter: 7), "filter type 7"),
        ]
        @Sendable func round(_ r: Int) -> [String] {
            var problems: [String] = []
            for i in 0..<(fixtures.count + broken.count + 1) {
                let k = (i + r) % (fixtures.count + broken.count + 1)
                if k < fixtures.count {
                    if (try? ImageDecoder.decode(fixtures[k].png)) != fixtures[k].expected { problems.append("\(kinds[k]) after round \(r)") }
                } else if k < fixtures.count + broken.count {
                    let b = broken[k - fixtures.count]
                    do { _ = try ImageDecoder.decode(b.bytes); problems.append("no error for \(b.text)") } catch {
                        if !"\(error)".contains(b.text) { problems.append("\(error) instead of \(b.text)") }
                    }
                } else if (try? ImageDecoder.decode(big))?.pixels != bigPixels {
                    problems.append("the 300×300 image after round \(r)")
                }
            }
            return problems
        }
        for r in 0..<12 { #expect(round(r) == []) }
        let results = Mutex<[String]>([])
        DispatchQueue.concurrentPerform(iterations: 4) { t in
            var found: [String] = []
            for r in 0..<10 { found += round(r + t) }
            results.withLock { $0 += found }
        }
        #expect(results.withLock { $0 } == [])
    }

    /// The image bytes with each row filtered by `filters[y]` as an encoder does (ISO 15948 §9.2,
    /// plainly: x minus its predictor from the unfiltered neighbours a, b, c).
    static func filtered(_ pixels: [UInt8], width: Int, height: Int, bpp: Int, filters: [UInt8]) -> [UInt8] {
        let rb = width * bpp
        var out: [UInt8] = []
        for y in 0..<height {
            out.append(filters[y])
            for i in 0..<rb {
                let x = Int(pixels[y * rb + i])
                let a = i >= bpp ? Int(pixels[y * rb + i - bpp]) : 0
                let b = y > 0 ? Int(pixels[(y - 1) * rb + i]) : 0
                let c = i >= bpp && y > 0 ? Int(pixels[(y - 1) * rb + i - bpp]) : 0
                let predictor: Int
                switch filters[y] {
                case 0: predictor = 0
                case 1: predictor = a
                case 2: predictor = b
                case 3: predictor = (a + b) / 2
                case 4:
                    let p = a + b - c, pa = abs(p - a), pb = abs(p - b), pc = abs(p - c)
                    predictor = pa <= pb && pa <= pc ? a : (pb <= pc ? b : c)
                default: predictor = 0   // an invalid filter type: the decoder must refuse the row
                }
                out.append(UInt8(truncatingIfNeeded: x - predictor))
            }
        }
        return out
    }

    static func png(width: Int, height: Int, colorType: UInt8, idat: [UInt8]) -> [UInt8] {
        PNGDecoder.signature + PNGWriter.ihdr(width: width, height: height, colorType: colorType) + PNGWriter.chunk("IDAT", idat) + PNGWriter.chunk("IEND", [])
    }

    /// Random gray and RGB images, every row with a random filter, decode to their pixels — small
    /// ones through the whole-image path, 300×300 ones row by row, and both paths on every image.
    @Test func filteredRowsDecodeToThePixels() throws {
        var random = SystemRandomNumberGenerator()
        for (width, height) in [(1, 1), (3, 2), (28, 28), (13, 11), (64, 40), (300, 300)] {
            for (colorType, bpp) in [(UInt8(0), 1), (UInt8(2), 3)] {
                let pixels = (0..<(width * height * bpp)).map { _ in UInt8.random(in: 0...255, using: &random) }
                let filters = (0..<height).map { _ in UInt8.random(in: 0...4, using: &random) }
                let bytes = Self.png(width: width, height: height, colorType: colorType,
                                     idat: Deflate.zlib(Self.filtered(pixels, width: width, height: height, bpp: bpp, filters: filters)))
                for wholeImage in [true, false] {
                    let image = try PNGDecoder.decode(bytes, channels: bpp, limits: .default, wholeImage: wholeImage)
                    #expect(image.pixels == pixels, "\(width)×\(height) colour type \(colorType), whole image \(wholeImage)")
                }
            }
        }
    }

    /// The whole-image path gives what the row-by-row path gives — the same image or the same
    /// refusal — for the fixtures, for 1 and 3 channels, and for images broken in every way a
    /// stream can break (a bad filter type on the first, a middle or the last row, a stream that
    /// breaks, ends early, or runs long, with a bad row before the break).
    @Test func wholeImagePathAgreesWithRowByRow() throws {
        var inputs = try Self.pngFixtures.map { try fixture($0 + ".png") }
        var random = SystemRandomNumberGenerator()
        for (width, height, colorType, bpp) in [(28, 28, UInt8(0), 1), (9, 5, UInt8(2), 3)] {
            let pixels = (0..<(width * height * bpp)).map { _ in UInt8.random(in: 0...255, using: &random) }
            for badRow in [-1, 0, height / 2, height - 1] {
                let filters = (0..<height).map { $0 == badRow ? UInt8(5) : UInt8($0 % 5) }
                let raw = Self.filtered(pixels, width: width, height: height, bpp: bpp, filters: filters)
                let z = Deflate.zlib(raw)
                inputs.append(Self.png(width: width, height: height, colorType: colorType, idat: z))
                inputs.append(Self.png(width: width, height: height, colorType: colorType, idat: Array(z.prefix(z.count / 2))))   // breaks
                inputs.append(Self.png(width: width, height: height, colorType: colorType, idat: Deflate.zlib(Array(raw.prefix(raw.count * 2 / 3)))))   // ends early
                inputs.append(Self.png(width: width, height: height, colorType: colorType, idat: Deflate.zlib(raw + [0, 1, 2])))   // runs long
                var corrupt = z
                corrupt[corrupt.count - 3] ^= 0xff   // the Adler-32 check
                inputs.append(Self.png(width: width, height: height, colorType: colorType, idat: corrupt))
            }
        }
        func outcome(_ bytes: [UInt8], channels: Int, wholeImage: Bool) -> String {
            do { return "\(try PNGDecoder.decode(bytes, channels: channels, limits: .default, wholeImage: wholeImage))" } catch { return "\(error)" }
        }
        var refusals = 0
        for bytes in inputs {
            for channels in [1, 3] {
                let rows = outcome(bytes, channels: channels, wholeImage: false)
                #expect(outcome(bytes, channels: channels, wholeImage: true) == rows)
                if rows.contains("Invalid PNG") { refusals += 1 }
            }
        }
        #expect(refusals >= 60)   // the broken ones were refused (and alike), not decoded
    }

    func expectError(_ bytes: [UInt8], contains text: String, sourceLocation: SourceLocation = #_sourceLocation) {
        do {
            _ = try ImageDecoder.decode(bytes)
            Issue.record("expected an error containing '\(text)'", sourceLocation: sourceLocation)
        } catch {
            #expect("\(error)".contains(text), "\(error)", sourceLocation: sourceLocation)
        }
    }
}
