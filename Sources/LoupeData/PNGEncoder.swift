// A minimal PNG writer (8-bit gray, RGB or RGBA, no interlace, filter 0 on every row, one zlib IDAT)
// and the attribution heatmap the server's /explain?format=png and `loupe explain --png` draw.

public enum PNGEncoder {
    /// pixels: height rows of width × channels bytes (1 = gray, 3 = RGB, 4 = RGBA).
    public static func encode(width: Int, height: Int, channels: Int, pixels: [UInt8]) -> [UInt8] {
        precondition(width > 0 && height > 0 && [1, 3, 4].contains(channels) && pixels.count == width * height * channels,
                     "PNGEncoder: \(pixels.count) bytes for \(width)×\(height)×\(channels)")
        let colorType: UInt8 = channels == 1 ? 0 : channels == 3 ? 2 : 6
        var raw = [UInt8](); raw.reserveCapacity(height * (width * channels + 1))
        let stride = width * channels
        for y in 0..<height {
            raw.append(0)
            raw.append(contentsOf: pixels[(y * stride)..<((y + 1) * stride)])
        }
        var out: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        var ihdr = [UInt8]()
        appendBigEndian(UInt32(width), to: &ihdr); appendBigEndian(UInt32(height), to: &ihdr)
        ihdr += [8, colorType, 0, 0, 0]
        chunk("IHDR", ihdr, into: &out)
        chunk("IDAT", Deflate.zlib(raw), into: &out)
        chunk("IEND", [], into: &out)
        return out
    }

    private static func chunk(_ type: String, _ data: [UInt8], into out: inout [UInt8]) {
        appendBigEndian(UInt32(data.count), to: &out)
        let start = out.count
        out.append(contentsOf: Array(type.utf8))
        out.append(contentsOf: data)
        appendBigEndian(crc32Checksum(out[start...]), to: &out)
    }

    private static func appendBigEndian(_ v: UInt32, to out: inout [UInt8]) {
        out += [UInt8(v >> 24), UInt8((v >> 16) & 0xFF), UInt8((v >> 8) & 0xFF), UInt8(v & 0xFF)]
    }
}

/// The image — gray for one channel, its colours desaturated for RGB — with its attributions laid over it
/// in a diverging colour map: positive (evidence for the class) red, negative (against) blue, opacity
/// growing with |attribution| / max |attribution|.
public enum AttributionHeatmap {
    /// How much of an RGB image's colour stays under the overlay (0 = gray, 1 = full colour).
    public static let saturation: Float = 0.35

    /// pixels: the image's 8-bit values (height × width × channels; one channel is gray, three are RGB, shown
    /// desaturated); attributions: one per input value, summed over the channels of each pixel. Each pixel
    /// becomes a scale × scale block. Returns RGB bytes of (height·scale) × (width·scale).
    public static func render(pixels: [UInt8], attributions: [Float], width: Int, height: Int, channels: Int,
                              scale: Int) -> [UInt8] {
        precondition(pixels.count == width * height * channels && attributions.count == width * height * channels && scale >= 1)
        var a = [Float](repeating: 0, count: width * height)
        var image = [Float](repeating: 0, count: width * height * 3)
        for p in 0..<(width * height) {
            var s: Float = 0, g: Float = 0
            for c in 0..<channels { s += attributions[p * channels + c]; g += Float(pixels[p * channels + c]) }
            a[p] = s.isFinite ? s : 0
            g /= Float(channels)
            for c in 0..<3 {
                // One channel: gray. Three: each colour moved towards the pixel's gray (its channel mean).
                image[p * 3 + c] = channels == 3 ? g + saturation * (Float(pixels[p * 3 + c]) - g) : g
            }
        }
        let peak = a.reduce(Float(0)) { max($0, abs($1)) }
        let W = width * scale, H = height * scale
        var out = [UInt8](repeating: 0, count: W * H * 3)
        for y in 0..<height { for x in 0..<width {
            let p = y * width + x
            let v = peak > 0 ? a[p] / peak : 0
            let alpha = min(1, abs(v)).squareRoot() * 0.85
            let colour: [Float] = v >= 0 ? [230, 40, 30] : [40, 110, 240]
            // The image dimmed underneath so the colours stay readable on white strokes.
            let rgb = (0..<3).map { c -> UInt8 in
                let base = 0.55 * image[p * 3 + c] + 10
                return UInt8(max(0, min(255, (base + (colour[c] - base) * alpha).rounded())))
            }
            for dy in 0..<scale { for dx in 0..<scale {
                let o = ((y * scale + dy) * W + x * scale + dx) * 3
                out[o] = rgb[0]; out[o + 1] = rgb[1]; out[o + 2] = rgb[2]
            }}
        }}
        return out
    }

    /// The whole heatmap as a PNG; scale makes the longer side at least 224 pixels (at most 16×).
    public static func png(pixels: [UInt8], attributions: [Float], width: Int, height: Int, channels: Int) -> [UInt8] {
        let scale = max(1, min(16, 224 / max(1, max(width, height))))
        let rgb = render(pixels: pixels, attributions: attributions, width: width, height: height, channels: channels, scale: scale)
        return PNGEncoder.encode(width: width * scale, height: height * scale, channels: 3, pixels: rgb)
    }
}
