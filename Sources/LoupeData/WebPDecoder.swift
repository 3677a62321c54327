import CWebP

/// WebP (lossy VP8 and lossless VP8L, with or without alpha; still images) through libwebp
/// (Debian's libwebp7), to gray (BT.601 luma) or RGB with alpha composited over black — the same
/// conversion as PNG, so a lossless WebP and a PNG of one picture decode to the same samples.
///
/// `WebPGetFeatures` reads the RIFF container and the bitstream's frame header without decoding:
/// a size past `limits` is refused (`imageTooLarge`) and the memory the decode will hold — the
/// RGB(A) buffer libwebp writes into (ours, allocated after the check), the output, and libwebp's
/// own buffers (for lossless or alpha data, an ARGB word per pixel plus an alpha plane; for lossy,
/// rows of macroblocks) — is reserved from the decode budget before anything is allocated.
/// Animated WebPs are refused; a truncated or corrupt file is an error with libwebp's status.
enum WebPDecoder {
    /// "RIFF" size "WEBP".
    static func matches(_ bytes: [UInt8]) -> Bool {
        bytes.count >= 12 && bytes.starts(with: [0x52, 0x49, 0x46, 0x46]) && bytes[8..<12].elementsEqual([0x57, 0x45, 0x42, 0x50])
    }

    static func fail(_ reason: String) -> LoupeDataError { .invalidImage(format: "WebP", reason: reason) }

    static func decode(_ bytes: [UInt8], channels: Int, limits: ImageDecoder.Limits, budget: DecodeBudget) throws -> PixelImage {
        var features = WebPBitstreamFeatures()
        let status = bytes.withUnsafeBufferPointer { WebPGetFeatures($0.baseAddress, $0.count, &features) }
        guard status == VP8_STATUS_OK else { throw fail(describe(status, stage: "its header")) }
        guard features.has_animation == 0 else { throw fail("animated WebP is not supported; send one frame as a still image") }
        let width = Int(features.width), height = Int(features.height)
        try limits.check(width: width, height: height)
        let alpha = features.has_alpha != 0
        let decodedChannels = alpha ? 4 : 3
        let pixels = width * height
        let bufferBytes = pixels * decodedChannels
        let outputBytes = pixels * channels
        let working = (features.format == 2 || alpha ? 5 * pixels : 0) + 256 * width + (256 << 10)
        let needed = bufferBytes + outputBytes + working
        guard needed <= budget.limit else { throw LoupeDataError.decodeExceedsBudget(needed: needed, limit: budget.limit) }
        var reservation = DecodeReservation(budget)
        defer { reservation.releaseAll() }
        try reservation.cover(needed, cap: needed)

        var config = WebPDecoderConfig()
        guard WebPInitDecoderConfig(&config) != 0 else { throw fail("libwebp could not start a decoder (version mismatch)") }
        var decoded = [UInt8](repeating: 0, count: bufferBytes)
        let decodeStatus = decoded.withUnsafeMutableBufferPointer { out in
            bytes.withUnsafeBufferPointer { webp -> VP8StatusCode in
                config.output.colorspace = alpha ? MODE_RGBA : MODE_RGB
                config.output.is_external_memory = 1
                config.output.u.RGBA.rgba = out.baseAddress
                config.output.u.RGBA.stride = Int32(width * decodedChannels)
                config.output.u.RGBA.size = out.count
                defer { WebPFreeDecBuffer(&config.output) }
                return WebPDecode(webp.baseAddress, webp.count, &config)
            }
        }
        guard decodeStatus == VP8_STATUS_OK else { throw fail(describe(decodeStatus, stage: "its image data")) }
        if channels == 3 && !alpha { return PixelImage(width: width, height: height, channels: 3, pixels: decoded) }
        var out = [UInt8](repeating: 0, count: outputBytes)
        for i in 0..<pixels {
            let p = i * decodedChannels
            let r = Double(decoded[p]), g = Double(decoded[p + 1]), b = Double(decoded[p + 2])
            // The same arithmetic, in the same order, as PNG's 8-bit RGB and RGBA rows.
            if channels == 3 {
                let a = Double(decoded[p + 3]) / 255
                out[3 * i] = SampleConversion.byte(r / 255 * a)
                out[3 * i + 1] = SampleConversion.byte(g / 255 * a)
                out[3 * i + 2] = SampleConversion.byte(b / 255 * a)
            } else if alpha {
                out[i] = SampleConversion.byte(SampleConversion.luma(r, g, b) / 255 * Double(decoded[p + 3]) / 255)
            } else {
                out[i] = SampleConversion.byte(SampleConversion.luma(r, g, b) / 255)
            }
        }
        return PixelImage(width: width, height: height, channels: channels, pixels: out)
    }

    /// libwebp's status as a sentence for the sender.
    static func describe(_ status: VP8StatusCode, stage: String) -> String {
        switch status {
        case VP8_STATUS_NOT_ENOUGH_DATA: return "the file is truncated (libwebp ran out of data reading \(stage))"
        case VP8_STATUS_BITSTREAM_ERROR: return "the data is corrupt (libwebp found a bitstream error in \(stage))"
        case VP8_STATUS_UNSUPPORTED_FEATURE: return "the file uses a feature libwebp does not support"
        case VP8_STATUS_OUT_OF_MEMORY: return "libwebp ran out of memory"
        default: return "libwebp could not read \(stage) (status \(status.rawValue))"
        }
    }
}
