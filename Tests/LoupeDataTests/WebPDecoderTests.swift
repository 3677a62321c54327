// WebP decoding through libwebp, on real files written by Debian's cwebp/img2webp (package webp,
// installed by scripts/install-test-deps.sh): lossless and lossy, with and without alpha, gray
// and RGB output — checked against dwebp's own decode and, for lossless files, against the PNG of
// the same picture (the same conversion to gray and the same alpha compositing). Plus every
// truncation, corrupt bytes, forged sizes (refused before any allocation), the decode budget,
// and animations.
import Testing
@testable import LoupeData

/// WebP files made with cwebp / img2webp in a temporary directory.
final class WebPFactory {
    let dir: TempDir
    private var serial = 0
    init() throws { dir = try TempDir() }

    private func name(_ ext: String) -> String { serial += 1; return dir.path + "/w\(serial).\(ext)" }

    /// cwebp with `options` (e.g. -lossless, -q 80) on `image` (1, 3 or 4 channels), written as PNG first.
    func encode(_ image: PixelImage, _ options: [String] = []) throws -> [UInt8] {
        let input = name("png"), output = name("webp")
        try FileIO.writeAtomically(PNGEncoder.encode(width: image.width, height: image.height, channels: image.channels, pixels: image.pixels), to: input)
        try #require(runProcess(["cwebp", "-quiet"] + options + [input, "-o", output]).status == 0, "cwebp failed (apt install webp)")
        return try FileIO.readFile(output)
    }

    /// An animated WebP of `frames` (img2webp).
    func animate(_ frames: [PixelImage]) throws -> [UInt8] {
        var inputs: [String] = []
        for f in frames {
            let input = name("png")
            try FileIO.writeAtomically(PNGEncoder.encode(width: f.width, height: f.height, channels: f.channels, pixels: f.pixels), to: input)
            inputs.append(input)
        }
        let output = name("webp")
        try #require(runProcess(["img2webp", "-lossless"] + inputs + ["-o", output]).status == 0, "img2webp failed")
        return try FileIO.readFile(output)
    }

    /// dwebp's own decode (RGBA, as a PAM), saved as an RGBA PNG: what Loupe's PNG path makes of
    /// dwebp's pixels is what its WebP path must make of the file.
    func referencePNG(_ webp: [UInt8]) throws -> [UInt8] {
        let input = name("webp"), output = name("pam")
        try FileIO.writeAtomically(webp, to: input)
        try #require(runProcess(["dwebp", "-quiet", input, "-pam", "-o", output]).status == 0, "dwebp failed")
        let pam = try FileIO.readFile(output)
        // "P7\nWIDTH w\nHEIGHT h\nDEPTH 4\nMAXVAL 255\nTUPLTYPE RGB_ALPHA\nENDHDR\n" then RGBA samples.
        let marker = Array("ENDHDR\n".utf8)
        let markerAt = try #require((0..<(pam.count - marker.count)).first { Array(pam[$0..<($0 + marker.count)]) == marker })
        let headerLength = markerAt + marker.count
        var width = 0, height = 0
        for line in String(decoding: pam[..<markerAt], as: UTF8.self).split(separator: "\n") {
            let parts = line.split(separator: " ")
            if parts.first == "WIDTH" { width = Int(parts[1]) ?? 0 }
            if parts.first == "HEIGHT" { height = Int(parts[1]) ?? 0 }
        }
        return PNGEncoder.encode(width: width, height: height, channels: 4, pixels: Array(pam[headerLength..<(headerLength + width * height * 4)]))
    }
}

/// The RGB test picture with an alpha channel: opaque, half and fully transparent areas.
func withAlpha(_ image: PixelImage) -> PixelImage {
    var pixels: [UInt8] = []
    for y in 0..<image.height {
        for x in 0..<image.width {
            let p = (y * image.width + x) * 3
            let a: UInt8 = x < image.width / 4 ? 0 : y < image.height / 2 ? 255 : UInt8(40 + 200 * x / image.width)
            pixels += [image.pixels[p], image.pixels[p + 1], image.pixels[p + 2], a]
        }
    }
    return PixelImage(width: image.width, height: image.height, channels: 4, pixels: pixels)
}

@Suite struct WebPDecoderTests {
    @Test func losslessDecodesLikeThePNGOfTheSamePicture() throws {
        let f = try WebPFactory()
        let colour = testPicture(width: 37, height: 23, channels: 3)
        for image in [colour, withAlpha(colour), testPicture(width: 37, height: 23, channels: 1)] {
            let webp = try f.encode(image, ["-lossless", "-exact"])
            #expect(ImageDecoder.sniff(webp) == .webp)
            let png = PNGEncoder.encode(width: image.width, height: image.height, channels: image.channels, pixels: image.pixels)
            for channels in [1, 3] {
                let decoded = try ImageDecoder.decode(webp, channels: channels)
                #expect(decoded == (try ImageDecoder.decode(png, channels: channels)), "\(image.channels) channels in, \(channels) out")
            }
        }
        // Without alpha, RGB comes back exactly as stored.
        #expect(try ImageDecoder.decode(try f.encode(colour, ["-lossless"]), channels: 3) == colour)
    }

    @Test func lossyDecodesLikeDwebp() throws {
        let f = try WebPFactory()
        let colour = testPicture(width: 40, height: 30, channels: 3)
        for (image, options) in [(colour, ["-q", "90"]), (colour, ["-q", "30", "-sharp_yuv"]), (withAlpha(colour), ["-q", "80"]),
                                 (withAlpha(colour), ["-q", "75", "-alpha_q", "50"])] {
            let webp = try f.encode(image, options)
            let reference = try f.referencePNG(webp)
            for channels in [1, 3] {
                let decoded = try ImageDecoder.decode(webp, channels: channels)
                #expect(decoded == (try ImageDecoder.decode(reference, channels: channels)), "\(options), \(channels) channels")
            }
            // Lossy, but the picture: close to what went in.
            if image.channels == 3 { #expect(maxDifference(try ImageDecoder.decode(webp, channels: 3), image) <= 60) }
        }
    }

    @Test func everyTruncationIsRefusedWithASentence() throws {
        let f = try WebPFactory()
        let image = testPicture(width: 20, height: 14, channels: 3)
        for webp in [try f.encode(image, ["-lossless"]), try f.encode(image, ["-q", "80"]), try f.encode(withAlpha(image), ["-q", "80"])] {
            for length in 0..<webp.count {
                do {
                    _ = try ImageDecoder.decode(Array(webp.prefix(length)))
                    Issue.record("a \(length)-byte prefix of \(webp.count) bytes decoded")
                } catch let error as LoupeDataError {
                    switch error {
                    case .invalidImage(let format, let reason):
                        #expect(format == "WebP", "\(error)")
                        #expect(length < 30 || reason.contains("truncated") || reason.contains("corrupt"), "\(length): \(reason)")
                    case .unsupportedImageFormat: #expect(length < 12)   // not even "RIFF....WEBP"
                    default: Issue.record("\(length): \(error)")
                    }
                }
            }
        }
    }

    @Test func corruptBytesNeverCrashAndBadHeadersAreNamed() throws {
        let f = try WebPFactory()
        let lossless = try f.encode(testPicture(width: 20, height: 14, channels: 3), ["-lossless"])
        // The VP8L signature byte (0x2F after the chunk header) is what libwebp checks first.
        var badSignature = lossless
        let vp8l = try #require(findChunk("VP8L", in: lossless))
        badSignature[vp8l + 8] = 0x2E
        #expect(throws: LoupeDataError.self) { try ImageDecoder.decode(badSignature) }
        // Seeded byte flips anywhere after the container header: an error or an image, never a crash.
        var g = FuzzTests.SplitMix64(state: 7)
        for source in [lossless, try f.encode(testPicture(width: 20, height: 14, channels: 3), ["-q", "70"])] {
            for _ in 0..<300 {
                var bytes = source
                let at = 12 + Int(g.next() % UInt64(bytes.count - 12))
                bytes[at] ^= UInt8(1 + g.next() % 255)
                do {
                    let image = try ImageDecoder.decode(bytes)
                    #expect(image.width == 20 && image.height == 14 || image.pixels.count == image.width * image.height)
                } catch is LoupeDataError {}
            }
        }
    }

    @Test func forgedSizesAreRefusedBeforeAllocating() throws {
        let f = try WebPFactory()
        let lossless = try f.encode(testPicture(width: 20, height: 14, channels: 3), ["-lossless"])
        // VP8L header: signature 0x2F, then width − 1 and height − 1 in 14 bits each, little-endian.
        let at = try #require(findChunk("VP8L", in: lossless)) + 9
        func forged(_ w: Int, _ h: Int) -> [UInt8] {
            var b = lossless
            let bits = UInt32(w - 1) | UInt32(h - 1) << 14 | (UInt32(b[at + 3]) >> 4) << 28
            for i in 0..<4 { b[at + i] = UInt8(truncatingIfNeeded: bits >> (8 * UInt32(i))) }
            return b
        }
        #expect(throws: LoupeDataError.imageTooLarge(width: 16000, height: 16000, limit: "at most 4096 pixels per side and 16777216 pixels")) {
            try ImageDecoder.decode(forged(16000, 16000))
        }
        // Within the size limits but over the decode budget: refused before anything is held.
        let budget = DecodeBudget(limit: 8 << 20)
        do {
            _ = try ImageDecoder.decode(forged(4000, 4000), budget: budget)
            Issue.record("a 4000×4000 WebP decoded within 8 MiB")
        } catch let LoupeDataError.decodeExceedsBudget(needed, limit) {
            #expect(needed > 4000 * 4000 * 4 && limit == 8 << 20)
        }
        #expect(budget.inUse == 0)
        // A small image within a small budget decodes, and gives its reservation back.
        #expect(try ImageDecoder.decode(lossless, budget: budget).width == 20)
        #expect(budget.inUse == 0)
        // A forged size the data cannot fill is an error, not a padded picture.
        #expect(throws: LoupeDataError.self) { try ImageDecoder.decode(forged(200, 100)) }
    }

    @Test func animationsAreRefusedByName() throws {
        let f = try WebPFactory()
        let frame = testPicture(width: 16, height: 16, channels: 3)
        let animated = try f.animate([frame, frame.inverted()])
        #expect(throws: LoupeDataError.invalidImage(format: "WebP", reason: "animated WebP is not supported; send one frame as a still image")) {
            try ImageDecoder.decode(animated)
        }
    }
}

/// The offset of the RIFF chunk `fourCC` (its header) in a WebP file.
func findChunk(_ fourCC: String, in bytes: [UInt8]) -> Int? {
    let tag = Array(fourCC.utf8)
    var at = 12
    while at + 8 <= bytes.count {
        if Array(bytes[at..<(at + 4)]) == tag { return at }
        let size = Int(bytes[at + 4]) | Int(bytes[at + 5]) << 8 | Int(bytes[at + 6]) << 16 | Int(bytes[at + 7]) << 24
        at += 8 + size + (size & 1)
    }
    return nil
}
