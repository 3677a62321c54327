// Decoding to a model's channel count: RGB kept for 3-channel models, BT.601 gray for 1-channel
// ones, for PNG (every fixture kind), PGM and JPEG (JPEGDecoderTests covers JPEG against djpeg).
import Testing
@testable import LoupeData

@Suite struct ChannelDecodingTests {
    /// BT.601 luma of an RGB image, rounded.
    static func luma(_ rgb: PixelImage) -> [UInt8] {
        (0..<(rgb.width * rgb.height)).map { i in
            let r = Double(rgb.pixels[3 * i]), g = Double(rgb.pixels[3 * i + 1]), b = Double(rgb.pixels[3 * i + 2])
            return UInt8((0.299 * r + 0.587 * g + 0.114 * b).rounded())
        }
    }

    /// Every PNG kind decoded to RGB has the gray decode (checked against Pillow-made files) as
    /// its luma, within the rounding of 8-bit RGB; gray kinds give the gray value three times.
    @Test(arguments: ImageDecoderTests.pngFixtures)
    func rgbOfEveryPNGKindHasTheGrayDecodeAsLuma(name: String) throws {
        let png = try fixture(name + ".png")
        let gray = try ImageDecoder.decode(png)
        let rgb = try ImageDecoder.decode(png, channels: 3)
        #expect(rgb.width == gray.width && rgb.height == gray.height && rgb.channels == 3)
        let worst = zip(Self.luma(rgb), gray.pixels).map { abs(Int($0) - Int($1)) }.max() ?? 0
        #expect(worst <= 1, "\(name): luma of RGB differs from gray by \(worst)")
        let colourType = png[25]
        if colourType == 0 || colourType == 4 { #expect(rgb == gray.expanded(to: 3)) }
        if (colourType == 2 || colourType == 3 || colourType == 6) && name != "palette1" {   // palette1: black and white
            // Real colour survives: some pixel has R ≠ B (a swap or a gray conversion would show).
            #expect((0..<(rgb.width * rgb.height)).contains { rgb.pixels[3 * $0] != rgb.pixels[3 * $0 + 2] }, "\(name)")
        }
    }

    @Test func exactRGBForHandMadePNGs() throws {
        func png(_ colourType: UInt8, width: Int, rows: [[UInt8]], extra: [UInt8] = [], depth: UInt8 = 8) -> [UInt8] {
            let raw: [UInt8] = rows.flatMap { (row: [UInt8]) -> [UInt8] in [0] + row }
            return PNGDecoder.signature + PNGWriter.ihdr(width: width, height: rows.count, depth: depth, colorType: colourType) + extra
                + PNGWriter.chunk("IDAT", Deflate.zlib(raw)) + PNGWriter.chunk("IEND", [])
        }
        // 8-bit RGB: as stored.
        let rgb = png(2, width: 2, rows: [[10, 20, 30, 200, 100, 50], [0, 0, 255, 255, 255, 255]])
        #expect(try ImageDecoder.decode(rgb, channels: 3).pixels == [10, 20, 30, 200, 100, 50, 0, 0, 255, 255, 255, 255])
        #expect(try ImageDecoder.decode(rgb).pixels == [18, 124, 29, 255])   // BT.601: 0.299 R + 0.587 G + 0.114 B
        // RGBA: alpha over black.
        let rgba = png(6, width: 2, rows: [[200, 100, 50, 255, 200, 100, 50, 51]])
        #expect(try ImageDecoder.decode(rgba, channels: 3).pixels == [200, 100, 50, 40, 20, 10])
        // Palette with tRNS; an RGB tRNS key is transparent (black).
        let plte = PNGWriter.chunk("PLTE", [255, 0, 0, 0, 128, 255]) + PNGWriter.chunk("tRNS", [255, 102])
        #expect(try ImageDecoder.decode(png(3, width: 2, rows: [[0, 1]], extra: plte), channels: 3).pixels == [255, 0, 0, 0, 51, 102])
        let keyed = png(2, width: 2, rows: [[1, 2, 3, 4, 5, 6]], extra: PNGWriter.chunk("tRNS", [0, 4, 0, 5, 0, 6]))
        #expect(try ImageDecoder.decode(keyed, channels: 3).pixels == [1, 2, 3, 0, 0, 0])
        // Gray and PGM: the value three times.
        #expect(try ImageDecoder.decode(PNGWriter.gray(width: 2, height: 1), channels: 3).pixels == [0, 0, 0, 1, 1, 1])
        #expect(try ImageDecoder.decode(Array("P2 2 1 255 7 9".utf8), channels: 3).pixels == [7, 7, 7, 9, 9, 9])
    }

    @Test func resizeAndInvertWorkPerChannel() throws {
        let rgb = PixelImage(width: 2, height: 1, channels: 3, pixels: [0, 100, 200, 100, 200, 0])
        #expect(rgb.resized(width: 1, height: 1).pixels == [50, 150, 100])
        #expect(rgb.resized(width: 4, height: 1).pixels == [0, 100, 200, 0, 100, 200, 100, 200, 0, 100, 200, 0])
        #expect(rgb.inverted().pixels == [255, 155, 55, 155, 55, 255])
        #expect(try ImageDecoder.decodeForModel(PNGWriter.gray(width: 4, height: 2), width: 2, height: 1, channels: 3).pixels.count == 6)
    }

    @Test func budgetCoversTheRGBOutput() throws {
        let png = try fixture("rgb8.png")
        let budget = DecodeBudget(limit: 1 << 20)
        #expect(try ImageDecoder.decode(png, channels: 3, budget: budget).pixels.count == 13 * 11 * 3)
        #expect(budget.inUse == 0)
        #expect(throws: LoupeDataError.decodeBudgetExhausted(limit: 300)) {
            _ = try ImageDecoder.decode(png, channels: 3, budget: DecodeBudget(limit: 300))
        }
    }
}
