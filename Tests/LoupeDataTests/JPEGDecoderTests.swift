// JPEG decoding through libjpeg-turbo, on real files written by Debian's cjpeg and transformed
// losslessly by jpegtran (libjpeg-turbo-progs, installed by scripts/install-test-deps.sh):
// baseline, progressive, arithmetic, gray and YCbCr, all eight Exif orientations, scaled
// decoding, truncation, corruption and decompression bombs. Plus the pure header and Exif
// parsers at every truncation.
import Glibc
import Testing
@testable import LoupeData

/// JPEG files made with cjpeg/jpegtran in a temporary directory.
final class JPEGFactory {
    let dir: TempDir
    private var serial = 0
    init() throws { dir = try TempDir() }

    private func name(_ ext: String) -> String { serial += 1; return dir.path + "/f\(serial).\(ext)" }

    /// P5 (gray) or P6 (RGB) bytes of an image.
    static func pnm(_ image: PixelImage) -> [UInt8] {
        Array("\(image.channels == 1 ? "P5" : "P6")\n\(image.width) \(image.height)\n255\n".utf8) + image.pixels
    }

    /// cjpeg with `options` (e.g. -quality 90, -progressive, -sample 1x1) on `image`.
    func encode(_ image: PixelImage, _ options: [String] = []) throws -> [UInt8] {
        let input = name(image.channels == 1 ? "pgm" : "ppm"), output = name("jpg")
        try FileIO.writeAtomically(Self.pnm(image), to: input)
        try #require(runProcess(["cjpeg"] + options + ["-outfile", output, input]).status == 0, "cjpeg failed (apt install libjpeg-turbo-progs)")
        return try FileIO.readFile(output)
    }

    /// jpegtran with `options` (lossless: -progressive, -arithmetic, -rotate 90, -flip horizontal …).
    func transform(_ jpeg: [UInt8], _ options: [String]) throws -> [UInt8] {
        let input = name("jpg"), output = name("jpg")
        try FileIO.writeAtomically(jpeg, to: input)
        try #require(runProcess(["jpegtran"] + options + ["-outfile", output, input]).status == 0, "jpegtran \(options) failed")
        return try FileIO.readFile(output)
    }

    /// djpeg's own decode (-pnm, plus `options` such as -grayscale), as an image.
    func reference(_ jpeg: [UInt8], _ options: [String] = []) throws -> PixelImage {
        let input = name("jpg"), output = name("pnm")
        try FileIO.writeAtomically(jpeg, to: input)
        try #require(runProcess(["djpeg", "-pnm"] + options + ["-outfile", output, input]).status == 0, "djpeg failed")
        return try Self.parsePNM(try FileIO.readFile(output))
    }

    /// djpeg writes "P5|P6\nW H\n255\n" then the samples.
    static func parsePNM(_ bytes: [UInt8]) throws -> PixelImage {
        var fields: [String] = [], i = 0, current = ""
        while fields.count < 4 {
            let c = bytes[i]; i += 1
            if c == 0x20 || c == 0x0A { if !current.isEmpty { fields.append(current); current = "" } } else { current.append(Character(UnicodeScalar(c))) }
        }
        let channels = fields[0] == "P6" ? 3 : 1
        let w = try #require(Int(fields[1])), h = try #require(Int(fields[2]))
        return PixelImage(width: w, height: h, channels: channels, pixels: Array(bytes[i..<(i + w * h * channels)]))
    }
}

/// A smooth, strongly asymmetric test picture (gradients, a bright block near the top-left, a
/// colour cast on the right) so that any wrong flip or turn is far from the original.
func testPicture(width: Int, height: Int, channels: Int) -> PixelImage {
    var pixels: [UInt8] = []
    for y in 0..<height {
        for x in 0..<width {
            let block = x < width / 3 && y < height / 4 ? 120 : 0
            let g = min(255, 20 + 180 * x / width + 40 * y / height + block)
            if channels == 1 { pixels.append(UInt8(g)); continue }
            pixels += [UInt8(min(255, g + 60 * x / width)), UInt8(g), UInt8(max(0, g - 50 * y / height))]
        }
    }
    return PixelImage(width: width, height: height, channels: channels, pixels: pixels)
}

func maxDifference(_ a: PixelImage, _ b: PixelImage) -> Int {
    guard a.width == b.width, a.height == b.height, a.channels == b.channels else { return 256 }
    return zip(a.pixels, b.pixels).map { abs(Int($0) - Int($1)) }.max() ?? 0
}

/// An Exif APP1 segment whose IFD0 has one entry besides the orientation (so the parser must walk).
func exifSegment(orientation: Int, bigEndian: Bool) -> [UInt8] {
    func u16(_ v: Int) -> [UInt8] { bigEndian ? [UInt8(v >> 8), UInt8(v & 0xFF)] : [UInt8(v & 0xFF), UInt8(v >> 8)] }
    func u32(_ v: Int) -> [UInt8] { bigEndian ? u16(v >> 16) + u16(v & 0xFFFF) : u16(v & 0xFFFF) + u16(v >> 16) }
    let tiff = (bigEndian ? [0x4D, 0x4D] : [0x49, 0x49]) + u16(42) + u32(8)
        + u16(2)
        + u16(0x010F) + u16(2) + u32(4) + Array("Cam\0".utf8)      // Make, ASCII, inline
        + u16(0x0112) + u16(3) + u32(1) + u16(orientation) + u16(0) // Orientation, SHORT
        + u32(0)                                                    // no IFD1
    let body = Array("Exif".utf8) + [0, 0] + tiff
    return [0xFF, 0xE1, UInt8((body.count + 2) >> 8), UInt8((body.count + 2) & 0xFF)] + body
}

func be16(_ v: Int) -> [UInt8] { [UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }

/// The JPEG with `segment` inserted right after SOI.
func inserting(_ segment: [UInt8], into jpeg: [UInt8]) -> [UInt8] { Array(jpeg[0..<2]) + segment + Array(jpeg[2...]) }

@Suite struct JPEGDecoderTests {
    @Test func baselineGrayAndColourEqualDjpeg() throws {
        let f = try JPEGFactory()
        let gray = testPicture(width: 40, height: 30, channels: 1)
        let grayJPEG = try f.encode(gray, ["-quality", "90"])
        #expect(ImageDecoder.sniff(grayJPEG) == .jpeg)
        let decodedGray = try ImageDecoder.decode(grayJPEG)
        #expect(decodedGray == (try f.reference(grayJPEG)))
        #expect(maxDifference(decodedGray, gray) <= 12)
        // Gray JPEG asked for RGB: the gray value three times.
        #expect(try ImageDecoder.decode(grayJPEG, channels: 3) == decodedGray.expanded(to: 3))

        let colour = testPicture(width: 40, height: 30, channels: 3)
        for sampling in ["2x2", "2x1", "1x1"] {   // 4:2:0, 4:2:2, 4:4:4 YCbCr
            let jpeg = try f.encode(colour, ["-quality", "92", "-sample", sampling])
            let rgb = try ImageDecoder.decode(jpeg, channels: 3)
            #expect(rgb.channels == 3 && rgb.width == 40 && rgb.height == 30)
            #expect(rgb == (try f.reference(jpeg)), "\(sampling)")
            #expect(maxDifference(rgb, colour) <= 40, "\(sampling)")
            // One channel: the Y plane, which is djpeg -grayscale, and BT.601 luma of the picture.
            let y = try ImageDecoder.decode(jpeg)
            #expect(y == (try f.reference(jpeg, ["-grayscale"])), "\(sampling)")
            let luma = PixelImage(width: 40, height: 30, pixels: (0..<1200).map { i in
                let r = Double(colour.pixels[3 * i]), g = Double(colour.pixels[3 * i + 1]), b = Double(colour.pixels[3 * i + 2])
                return UInt8((0.299 * r + 0.587 * g + 0.114 * b).rounded())
            })
            #expect(maxDifference(y, luma) <= 12, "\(sampling)")
        }
    }

    @Test func progressiveAndArithmeticDecodeToTheSamePixelsAsBaseline() throws {
        let f = try JPEGFactory()
        for channels in [1, 3] {
            let baseline = try f.encode(testPicture(width: 45, height: 35, channels: channels), ["-quality", "85"])
            let expected = try ImageDecoder.decode(baseline, channels: channels)
            // jpegtran re-codes the same coefficients: the pixels must not change.
            let progressive = try f.transform(baseline, ["-progressive"])
            #expect(try JPEGHeader.parse(progressive).isProgressive)
            #expect(try ImageDecoder.decode(progressive, channels: channels) == expected)
            let arithmetic = try f.transform(baseline, ["-arithmetic"])
            #expect(try JPEGHeader.parse(arithmetic).frameType == 9)
            #expect(try ImageDecoder.decode(arithmetic, channels: channels) == expected)
            // cjpeg's own progressive encoder.
            let direct = try f.encode(testPicture(width: 45, height: 35, channels: channels), ["-quality", "85", "-progressive"])
            #expect(try ImageDecoder.decode(direct, channels: channels) == expected)
        }
    }

    /// Orientation o shows the stored image turned or mirrored; jpegtran stores the inverse
    /// transform losslessly, so decoding with the tag must give back the original picture.
    @Test(arguments: 1...8) func everyExifOrientationShowsTheOriginal(orientation: Int) throws {
        let f = try JPEGFactory()
        let inverse: [Int: [String]] = [
            1: [], 2: ["-flip", "horizontal"], 3: ["-rotate", "180"], 4: ["-flip", "vertical"],
            5: ["-transpose"], 6: ["-rotate", "270"], 7: ["-transverse"], 8: ["-rotate", "90"],
        ]
        for (channels, sampling, tolerance) in [(1, "1x1", 3), (3, "1x1", 4), (3, "2x2", 8)] {
            let picture = testPicture(width: 48, height: 32, channels: channels)
            let original = try f.encode(picture, ["-quality", "95", "-sample", sampling])
            let upright = try ImageDecoder.decode(original, channels: channels)
            let stored = try f.transform(original, ["-perfect"] + inverse[orientation]!)
            let tagged = inserting(exifSegment(orientation: orientation, bigEndian: orientation % 2 == 0), into: stored)
            #expect(try JPEGHeader.parse(tagged).orientation == orientation)
            let shown = try ImageDecoder.decode(tagged, channels: channels)
            #expect(shown.width == 48 && shown.height == 32, "orientation \(orientation): \(shown.width)×\(shown.height)")
            #expect(maxDifference(shown, upright) <= tolerance, "orientation \(orientation), \(channels) channels \(sampling)")
            if orientation != 1 {
                // The test can fail: the stored pixels, shown as they are, are far from the original.
                let asStored = try ImageDecoder.decode(stored, channels: channels)
                #expect(maxDifference(asStored.resized(width: 48, height: 32), upright) > 60)
            }
        }
    }

    @Test func scaledDecodingKeepsAtLeastTheTargetSize() throws {
        let f = try JPEGFactory()
        let big = try f.encode(testPicture(width: 640, height: 480, channels: 3), ["-quality", "90"])
        let scaled = try ImageDecoder.decode(big, fitting: (28, 28))
        #expect(scaled.width == 80 && scaled.height == 60)            // 1/8
        let wide = try ImageDecoder.decode(big, fitting: (100, 10))
        #expect(wide.width == 160 && wide.height == 120)              // 1/4: 1/8 would be 80 wide
        #expect(try ImageDecoder.decode(big, fitting: (640, 480)).width == 640)
        #expect(try ImageDecoder.decode(big, fitting: (1000, 1000)).width == 640)
        // Scaled then area-averaged is close to full decode then area-averaged.
        let full = try ImageDecoder.decode(big).resized(width: 28, height: 28)
        let fast = try ImageDecoder.decodeForModel(big, width: 28, height: 28)
        #expect(fast.width == 28 && fast.height == 28)
        #expect(maxDifference(full, fast) <= 6)
        #expect(maxDifference(try ImageDecoder.decode(big, channels: 3).resized(width: 28, height: 28),
                              try ImageDecoder.decodeForModel(big, width: 28, height: 28, channels: 3)) <= 6)
        // A quarter-turned photo: the target is compared with the turned size.
        let turned = inserting(exifSegment(orientation: 6, bigEndian: true), into: big)
        let t = try ImageDecoder.decode(turned, fitting: (28, 100))
        #expect(t.width == 120 && t.height == 160)
    }

    @Test func everyTruncationIsAnErrorNeverAPicture() throws {
        let f = try JPEGFactory()
        for options in [["-quality", "90"], ["-quality", "90", "-progressive"]] {
            let jpeg = try f.encode(testPicture(width: 28, height: 28, channels: 3), options + ["-sample", "2x2"])
            var truncatedMessages = 0
            for cut in 0..<jpeg.count {
                do {
                    _ = try ImageDecoder.decode(Array(jpeg.prefix(cut)))
                    Issue.record("\(options): \(cut) of \(jpeg.count) bytes decoded")
                } catch let error as LoupeDataError {
                    if "\(error)".contains("truncated") { truncatedMessages += 1 }
                    if cut >= 3, case .invalidImage(let format, _) = error { #expect(format == "JPEG") }
                }
            }
            // 0 bytes is "empty input", 1 byte is no known format; from SOI on, each cut says so.
            #expect(truncatedMessages == jpeg.count - 2, "\(options): \(truncatedMessages) of \(jpeg.count) say 'truncated'")
        }
    }

    @Test func corruptFilesAreErrorsWithASentence() throws {
        let f = try JPEGFactory()
        let jpeg = try f.encode(testPicture(width: 32, height: 32, channels: 3), ["-quality", "90"])
        let header = try JPEGHeader.parse(jpeg)
        #expect(header.components.count == 3 && header.frameType == 0)
        let sos = try #require(firstMarker(0xDA, in: jpeg))
        let scanStart = sos + 2 + (Int(jpeg[sos + 2]) << 8 | Int(jpeg[sos + 3]))
        // A quantization table that was never defined.
        var badTable = jpeg
        let sof = try #require(firstMarker(0xC0, in: jpeg))
        badTable[sof + 2 + 2 + 6 + 2] = 3        // component 0's Tq
        expectJPEGError(badTable, contains: "corrupt")
        // Entropy-coded data replaced by garbage.
        var garbage = jpeg
        for i in scanStart..<(jpeg.count - 2) { garbage[i] = UInt8((i * 37) & 0x7F) }
        expectJPEGError(garbage, contains: "JPEG")
        // Markers out of place, segments that lie about their length.
        expectJPEGError([0xFF, 0xD8, 0xFF, 0xD9], contains: "before any scan")
        expectJPEGError([0xFF, 0xD8, 0x00, 0x00], contains: "expected a marker at byte 2")
        expectJPEGError([0xFF, 0xD8, 0xFF, 0xDB, 0x00, 0x01], contains: "length 1")
        expectJPEGError(Array(jpeg[0..<2]) + Array(jpeg[scanStart - 20..<jpeg.count]), contains: "JPEG")
        // SOS before SOF.
        expectJPEGError([0xFF, 0xD8, 0xFF, 0xDA, 0x00, 0x08, 1, 1, 0, 0, 63, 0], contains: "before the frame header")
        // Bytes after a good file's EOI are ignored; libjpeg's "extraneous bytes before marker"
        // warning (junk between the scan and EOI, as some cameras write) is tolerated.
        #expect(try ImageDecoder.decode(jpeg + [1, 2, 3]) == ImageDecoder.decode(jpeg))
        #expect(try ImageDecoder.decode(Array(jpeg.dropLast(2)) + [0x12, 0x34, 0x56, 0xFF, 0xD9]) == ImageDecoder.decode(jpeg))
        // Every single-byte corruption: an error or a picture, never a crash.
        for i in 2..<jpeg.count {
            var b = jpeg
            b[i] ^= 0x5A
            do { _ = try ImageDecoder.decode(b, channels: i % 2 == 0 ? 1 : 3) } catch is LoupeDataError {}
        }
    }

    @Test func unsupportedKindsAreNamed() throws {
        func frame(_ type: UInt8, precision: UInt8 = 8, components: Int = 3, width: Int = 16, height: Int = 16, sampling: UInt8 = 0x11) -> [UInt8] {
            let comps: [UInt8] = (0..<components).flatMap { (i: Int) -> [UInt8] in [UInt8(i + 1), sampling, 0] }
            var sof: [UInt8] = [0xFF, 0xC0 | type]
            sof += be16(8 + 3 * components)
            sof.append(precision)
            sof += be16(height)
            sof += be16(width)
            sof.append(UInt8(components))
            let sos: [UInt8] = [0xFF, 0xDA, 0, 8, 1, 1, 0, 0, 63, 0, 0x12, 0x34, 0xFF, 0xD9]
            return [0xFF, 0xD8] + sof + comps + sos
        }
        expectJPEGError(frame(3), contains: "lossless")
        expectJPEGError(frame(5), contains: "hierarchical")
        expectJPEGError(frame(1, precision: 12), contains: "12-bit")
        expectJPEGError(frame(0, components: 4), contains: "CMYK")
        expectJPEGError(frame(0, components: 2), contains: "2 colour components")
        expectJPEGError(frame(0, sampling: 0x05), contains: "sampling factors 0×5")
        expectJPEGError(frame(0, height: 0), contains: "DNL")
        expectJPEGError(frame(0, width: 0), contains: "width 0")
    }

    /// A header that claims 60000×60000: refused by the size limit (413 in the server) or, when the
    /// limits allow it, by the decode budget — before libjpeg-turbo allocates anything.
    @Test func decompressionBombsAreRefusedBeforeAllocating() throws {
        func bomb(width: Int, height: Int, progressive: Bool) -> [UInt8] {
            let start: [UInt8] = [0xFF, 0xD8, 0xFF, progressive ? 0xC2 : 0xC0, 0, 17, 8]
            let components: [UInt8] = [3, 1, 0x22, 0, 2, 0x11, 0, 3, 0x11, 0]
            let scan: [UInt8] = [0xFF, 0xDA, 0, 12, 3, 1, 0, 2, 0, 3, 0, 0, 63, 0]
            let data = [UInt8](repeating: 0x55, count: 64) + [0xFF, 0xD9]
            return start + be16(height) + be16(width) + components + scan + data
        }
        let budget = DecodeBudget(limit: 64 << 20)
        do {
            _ = try ImageDecoder.decode(bomb(width: 60000, height: 60000, progressive: false), budget: budget)
            Issue.record("a 60000×60000 header decoded")
        } catch let LoupeDataError.imageTooLarge(width, height, _) {
            #expect(width == 60000 && height == 60000)
        }
        let generous = ImageDecoder.Limits(maxDimension: 65535, maxPixels: 1 << 32)
        #expect(throws: LoupeDataError.self) {
            _ = try ImageDecoder.decode(bomb(width: 60000, height: 60000, progressive: true), limits: generous, budget: budget)
        }
        do {
            _ = try ImageDecoder.decode(bomb(width: 4096, height: 4096, progressive: true), budget: budget)
            Issue.record("a 4096×4096 progressive header fitted a 64 MiB budget")
        } catch let LoupeDataError.decodeExceedsBudget(needed, limit) {
            // 2 bytes per coefficient of Y and two quarter-size chroma planes, and the output.
            #expect(needed > 4096 * 4096 * 2 * 3 / 2 + 4096 * 4096 && limit == 64 << 20)
        }
        // Within the budget, but the budget is in use: retry later.
        #expect(budget.reserve(62 << 20))
        #expect(throws: LoupeDataError.decodeBudgetExhausted(limit: 64 << 20)) {
            _ = try ImageDecoder.decode(bomb(width: 1000, height: 1000, progressive: true), budget: budget)
        }
        budget.release(62 << 20)
        // Room enough: libjpeg-turbo is called and finds the data is garbage; nothing stays reserved.
        #expect(throws: LoupeDataError.self) { _ = try ImageDecoder.decode(bomb(width: 1000, height: 1000, progressive: true), budget: budget) }
        #expect(budget.inUse == 0)
    }

    @Test func budgetIsReservedWhileDecodingAndReturned() throws {
        let f = try JPEGFactory()
        let jpeg = try f.encode(testPicture(width: 300, height: 200, channels: 3), ["-progressive"])
        let budget = DecodeBudget(limit: 1 << 20)
        #expect(try ImageDecoder.decode(jpeg, channels: 3, budget: budget).pixels.count == 180_000)
        #expect(budget.inUse == 0)
        // 300×200×3 of output + the coefficients: more than 200 KB.
        #expect(throws: LoupeDataError.decodeExceedsBudget(needed: JPEGDecoder.workingMemory(try JPEGHeader.parse(jpeg)) + 180_000, limit: 200_000)) {
            _ = try ImageDecoder.decode(jpeg, channels: 3, budget: DecodeBudget(limit: 200_000))
        }
    }

    // MARK: the pure parsers

    @Test func headerParserAtEveryTruncation() throws {
        let f = try JPEGFactory()
        let jpeg = inserting(exifSegment(orientation: 6, bigEndian: false),
                             into: try f.encode(testPicture(width: 20, height: 10, channels: 3), ["-sample", "2x1"]))
        let header = try JPEGHeader.parse(jpeg)
        #expect(header.width == 20 && header.height == 10 && header.precision == 8 && header.orientation == 6)
        #expect(header.components.map(\.h) == [2, 1, 1] && header.components.map(\.v) == [1, 1, 1])
        #expect(header.firstScanComponents == 3 && !header.hasMultipleScans)
        let sosEnd = try #require(firstMarker(0xDA, in: jpeg)).advanced(by: 2 + 12)
        for cut in 0..<sosEnd {
            #expect(throws: LoupeDataError.self, "cut at \(cut)") { _ = try JPEGHeader.parse(Array(jpeg.prefix(cut))) }
        }
        #expect(try JPEGHeader.parse(Array(jpeg.prefix(sosEnd))) == header)
        // Every byte of the header region set to a few values: a LoupeDataError or a sane header.
        for i in 2..<sosEnd {
            for value: UInt8 in [0x00, 0x01, 0x7F, 0xC2, 0xD9, 0xDA, 0xFF] {
                var mutated = Array(jpeg.prefix(sosEnd))
                mutated[i] = value
                do {
                    let h = try JPEGHeader.parse(mutated)
                    #expect(h.width > 0 && h.height > 0 && (1...8).contains(h.orientation) && !h.components.isEmpty)
                } catch is LoupeDataError {}
            }
        }
        // Fill bytes before a marker and a TEM marker are allowed.
        let padded = Array(jpeg[0..<2]) + [0xFF, 0xFF, 0xFF, 0x01] + Array(jpeg[2...])
        #expect(try JPEGHeader.parse(padded) == header)
    }

    @Test func exifOrientationAtEveryTruncationAndByteOrder() {
        for bigEndian in [false, true] {
            for orientation in 1...8 {
                let segment = exifSegment(orientation: orientation, bigEndian: bigEndian)
                let body = Array(segment[4...])
                #expect(ExifOrientation.parse(app1: body[...]) == orientation)
                // The orientation value ends 6 ("Exif\0\0") + 8 (header) + 2 (count) + 12 + 10 bytes in.
                let valueEnd = 6 + 8 + 2 + 12 + 10
                for cut in 0..<body.count {
                    let parsed = ExifOrientation.parse(app1: body.prefix(cut))
                    #expect(parsed == (cut >= valueEnd ? orientation : nil), "cut \(cut)")
                }
            }
        }
        var body = Array(exifSegment(orientation: 3, bigEndian: true)[4...])
        let valueAt = 6 + 8 + 2 + 12 + 8
        // Out-of-range values, a wrong type or count, a bad byte order, an IFD offset past the end.
        for (offset, value) in [(valueAt + 1, UInt8(0)), (valueAt + 1, 9), (valueAt - 5, 4), (valueAt - 1, 2), (6, 0x41), (6 + 7, 0xF0)] {
            let saved = body[offset]
            body[offset] = value
            #expect(ExifOrientation.parse(app1: body[...]) == nil, "byte \(offset) = \(value)")
            body[offset] = saved
        }
        #expect(ExifOrientation.parse(app1: body[...]) == 3)
        #expect(ExifOrientation.parse(app1: Array("http://ns.adobe.com/xap/1.0/\0<x/>".utf8)[...]) == nil)
        // An IFD that claims 65535 entries in a short segment ends at the segment.
        var many = body
        many[6 + 8] = 0xFF; many[6 + 9] = 0xFF
        many[6 + 8 + 2 + 12 + 1] = 0x13                              // tag 0x0113: no orientation anywhere
        #expect(ExifOrientation.parse(app1: many[...]) == nil)
        // Every byte of a segment set to every value of a few: no trap, and nil or a valid orientation.
        for bigEndian in [false, true] {
            let original = Array(exifSegment(orientation: 5, bigEndian: bigEndian)[4...])
            for i in original.indices {
                for value: UInt8 in [0x00, 0x01, 0x03, 0x12, 0x2A, 0x49, 0x4D, 0x7F, 0x80, 0xFF] {
                    var mutated = original
                    mutated[i] = value
                    if let o = ExifOrientation.parse(app1: mutated[...]) { #expect((1...8).contains(o)) }
                }
            }
        }
    }

    @Test func orientedMatchesItsDefinition() {
        // 3×2: a b c / d e f
        let image = PixelImage(width: 3, height: 2, pixels: [1, 2, 3, 4, 5, 6])
        #expect(image.oriented(1).pixels == [1, 2, 3, 4, 5, 6])
        #expect(image.oriented(2).pixels == [3, 2, 1, 6, 5, 4])
        #expect(image.oriented(3).pixels == [6, 5, 4, 3, 2, 1])
        #expect(image.oriented(4).pixels == [4, 5, 6, 1, 2, 3])
        #expect(image.oriented(5).pixels == [1, 4, 2, 5, 3, 6])
        #expect(image.oriented(6).pixels == [4, 1, 5, 2, 6, 3])   // turned clockwise: d a / e b / f c
        #expect(image.oriented(7).pixels == [6, 3, 5, 2, 4, 1])
        #expect(image.oriented(8).pixels == [3, 6, 2, 5, 1, 4])   // turned counter-clockwise
        #expect(image.oriented(6).width == 2 && image.oriented(6).height == 3)
        let rgb = PixelImage(width: 2, height: 1, channels: 3, pixels: [1, 2, 3, 4, 5, 6])
        #expect(rgb.oriented(2).pixels == [4, 5, 6, 1, 2, 3])
    }

    func firstMarker(_ marker: UInt8, in bytes: [UInt8]) -> Int? {
        var i = 2
        while i + 3 < bytes.count {
            guard bytes[i] == 0xFF else { return nil }
            if bytes[i + 1] == marker { return i }
            i += 2 + (Int(bytes[i + 2]) << 8 | Int(bytes[i + 3]))
        }
        return nil
    }

    func expectJPEGError(_ bytes: [UInt8], contains text: String, sourceLocation: SourceLocation = #_sourceLocation) {
        do {
            _ = try ImageDecoder.decode(bytes)
            Issue.record("expected an error containing '\(text)'", sourceLocation: sourceLocation)
        } catch {
            #expect("\(error)".contains(text), "\(error)", sourceLocation: sourceLocation)
            #expect("\(error)".hasPrefix("Invalid JPEG image: "), "\(error)", sourceLocation: sourceLocation)
        }
    }
}
