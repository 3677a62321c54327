/// An 8-bit image, row-major, channels interleaved (H, W, C): C = 1 is gray (0 = black,
/// 255 = white), C = 3 is RGB.
public struct PixelImage: Sendable, Equatable {
    public var width: Int
    public var height: Int
    /// 1 (gray) or 3 (RGB).
    public var channels: Int
    public var pixels: [UInt8]

    public init(width: Int, height: Int, channels: Int = 1, pixels: [UInt8]) {
        precondition(pixels.count == width * height * channels)
        self.width = width
        self.height = height
        self.channels = channels
        self.pixels = pixels
    }

    /// Resamples to `width`×`height` by area averaging (each output sample is the mean of the
    /// input area it covers, with fractional edge weights), each channel on its own. Same size
    /// returns self.
    public func resized(width outW: Int, height outH: Int) -> PixelImage {
        if outW == width && outH == height { return self }
        let c = channels
        var out = [UInt8](repeating: 0, count: outW * outH * c)
        let sx = Double(width) / Double(outW), sy = Double(height) / Double(outH)
        for oy in 0..<outH {
            let y0 = Double(oy) * sy, y1 = y0 + sy
            for ox in 0..<outW {
                let x0 = Double(ox) * sx, x1 = x0 + sx
                for ch in 0..<c {
                    var sum = 0.0, area = 0.0
                    var y = Int(y0)
                    while Double(y) < y1 && y < height {
                        let wy = min(Double(y + 1), y1) - max(Double(y), y0)
                        var x = Int(x0)
                        while Double(x) < x1 && x < width {
                            let w = wy * (min(Double(x + 1), x1) - max(Double(x), x0))
                            sum += w * Double(pixels[(y * width + x) * c + ch])
                            area += w
                            x += 1
                        }
                        y += 1
                    }
                    out[(oy * outW + ox) * c + ch] = UInt8(min(255, max(0, (sum / max(area, 1e-12)).rounded())))
                }
            }
        }
        return PixelImage(width: outW, height: outH, channels: c, pixels: out)
    }

    /// 255 - sample (dark-on-light drawings → the light-on-dark convention of MNIST).
    public func inverted() -> PixelImage {
        PixelImage(width: width, height: height, channels: channels, pixels: pixels.map { 255 - $0 })
    }

    /// A gray image as RGB (each value repeated three times); any other image as it is.
    func expanded(to outChannels: Int) -> PixelImage {
        guard channels == 1, outChannels == 3 else { return self }
        var out = [UInt8](repeating: 0, count: pixels.count * 3)
        for i in 0..<pixels.count { let v = pixels[i]; out[3 * i] = v; out[3 * i + 1] = v; out[3 * i + 2] = v }
        return PixelImage(width: width, height: height, channels: 3, pixels: out)
    }

    /// The image as displayed under an Exif orientation (TIFF tag 0x0112, 1…8): 1 as stored,
    /// 2 mirrored left-right, 3 turned 180°, 4 mirrored top-bottom, 5 transposed, 6 turned 90°
    /// clockwise, 7 transversed, 8 turned 90° counter-clockwise. 5…8 swap width and height.
    public func oriented(_ orientation: Int) -> PixelImage {
        guard (2...8).contains(orientation) else { return self }
        let swaps = orientation >= 5
        let outW = swaps ? height : width, outH = swaps ? width : height
        let c = channels
        var out = [UInt8](repeating: 0, count: pixels.count)
        for oy in 0..<outH {
            for ox in 0..<outW {
                // The stored pixel (sx, sy) shown at (ox, oy).
                let sx: Int, sy: Int
                switch orientation {
                case 2: (sx, sy) = (width - 1 - ox, oy)
                case 3: (sx, sy) = (width - 1 - ox, height - 1 - oy)
                case 4: (sx, sy) = (ox, height - 1 - oy)
                case 5: (sx, sy) = (oy, ox)
                case 6: (sx, sy) = (oy, height - 1 - ox)
                case 7: (sx, sy) = (width - 1 - oy, height - 1 - ox)
                default: (sx, sy) = (width - 1 - oy, ox)   // 8
                }
                let from = (sy * width + sx) * c, to = (oy * outW + ox) * c
                for ch in 0..<c { out[to + ch] = pixels[from + ch] }
            }
        }
        return PixelImage(width: outW, height: outH, channels: c, pixels: out)
    }
}

/// The sample arithmetic PNG and WebP share (so both give the same bytes for the same picture).
enum SampleConversion {
    /// A sample in 0…1 as a byte, rounded.
    static func byte(_ v: Double) -> UInt8 { UInt8(min(255, max(0, (v * 255).rounded()))) }
    /// ITU-R BT.601 luma of stored (gamma-encoded) values.
    static func luma(_ r: Double, _ g: Double, _ b: Double) -> Double { 0.299 * r + 0.587 * g + 0.114 * b }
}

/// A one-channel `PixelImage` (what every decode gives unless asked for 3 channels).
public typealias GrayImage = PixelImage

/// Decodes PNG (every standard colour type, bit depth and Adam7), JPEG (baseline, extended and
/// progressive, gray and YCbCr/RGB, through libjpeg-turbo, Exif orientation applied), WebP (lossy
/// and lossless, still, through libwebp) and PGM (P5 binary, P2 ASCII, maxval up to 65535) into
/// 8-bit gray or RGB — the one decoder `loupe predict` and the server use.
///
/// Conversion, chosen once: for one channel, colour → ITU-R BT.601 luma (Y = 0.299 R + 0.587 G +
/// 0.114 B) on the stored (gamma-encoded) values — for a YCbCr JPEG that is its Y plane, which the
/// encoder computed with the same weights; for three channels, RGB as stored and gray repeated.
/// Samples of any depth are rescaled to 0…255 with rounding; alpha (including tRNS transparency)
/// is composited over black, so transparent areas become background (0) as in MNIST-style images.
/// Gamma, ICC and other ancillary data are ignored.
public enum ImageDecoder {
    /// Bounds on what a decoder will accept before it allocates.
    public struct Limits: Sendable, Equatable {
        /// Largest width or height in pixels.
        public var maxDimension: Int
        /// Largest width × height.
        public var maxPixels: Int
        /// Largest encoded input in bytes.
        public var maxInputBytes: Int

        public init(maxDimension: Int = 4096, maxPixels: Int = 4096 * 4096, maxInputBytes: Int = 32 << 20) {
            self.maxDimension = maxDimension
            self.maxPixels = maxPixels
            self.maxInputBytes = maxInputBytes
        }

        /// 4096 per side, 16 Mi pixels, 32 MiB of input.
        public static let `default` = Limits()

        func check(width: Int, height: Int) throws {
            guard width <= maxDimension, height <= maxDimension, width * height <= maxPixels else {
                throw LoupeDataError.imageTooLarge(width: width, height: height,
                                                   limit: "at most \(maxDimension) pixels per side and \(maxPixels) pixels")
            }
        }
    }

    public enum Format: String, Sendable {
        case png, jpeg, webp, pgm
    }

    /// The format the bytes start with, if any.
    public static func sniff(_ bytes: [UInt8]) -> Format? {
        if bytes.starts(with: PNGDecoder.signature) { return .png }
        if bytes.starts(with: JPEGDecoder.signature) { return .jpeg }
        if WebPDecoder.matches(bytes) { return .webp }
        if bytes.count >= 2 && bytes[0] == UInt8(ascii: "P") && (bytes[1] == UInt8(ascii: "5") || bytes[1] == UInt8(ascii: "2")) { return .pgm }
        return nil
    }

    /// Decodes PNG, JPEG, WebP or PGM bytes (sniffed from the content) into `channels` (1: gray, 3:
    /// RGB) 8-bit samples per pixel. The memory a decode holds is reserved from `budget`
    /// (`LoupeDataError.decodeBudgetExhausted` when it runs out): PNG and PGM reserve as their
    /// output actually grows; JPEG and WebP reserve what their library will hold before it starts, and an
    /// image that would need more than the whole budget is `decodeExceedsBudget`. An image whose
    /// declared size is past `limits` is refused (`imageTooLarge`) before anything is allocated.
    ///
    /// `fitting`: the size the caller will resize the image to, if it will. A JPEG larger than
    /// that is then decoded with libjpeg-turbo's DCT scaling (1/2, 1/4, 1/8 …) to the smallest
    /// size still at least as large on both sides — several times faster than a full decode, and
    /// the caller's area-averaging resize takes it the rest of the way. Other formats ignore it.
    public static func decode(_ bytes: [UInt8], channels: Int = 1, limits: Limits = .default, budget: DecodeBudget = .unlimited,
                              fitting: (width: Int, height: Int)? = nil) throws -> PixelImage {
        precondition(channels == 1 || channels == 3, "channels must be 1 or 3")
        guard bytes.count <= limits.maxInputBytes else {
            throw LoupeDataError.invalidImage(format: "encoded", reason: "\(bytes.count) bytes exceed the \(limits.maxInputBytes)-byte limit")
        }
        switch sniff(bytes) {
        case .png: return try PNGDecoder.decode(bytes, channels: channels, limits: limits, budget: budget)
        case .jpeg: return try JPEGDecoder.decode(bytes, channels: channels, limits: limits, budget: budget, fitting: fitting)
        case .webp: return try WebPDecoder.decode(bytes, channels: channels, limits: limits, budget: budget)
        case .pgm: return try PGMDecoder.decode(bytes, limits: limits, budget: budget).expanded(to: channels)
        case nil:
            if bytes.isEmpty { throw LoupeDataError.unsupportedImageFormat("empty input") }
            let head = bytes.prefix(8).map { b -> String in let s = String(b, radix: 16); return s.count == 1 ? "0" + s : s }.joined(separator: " ")
            throw LoupeDataError.unsupportedImageFormat("the data starts with \(head)")
        }
    }

    /// Decodes an image and brings it to the model's input size and channel count (area-averaged
    /// resize when the size differs): the preprocessing `loupe predict` and the server share.
    public static func decodeForModel(_ bytes: [UInt8], width: Int = 28, height: Int = 28, channels: Int = 1,
                                      limits: Limits = .default, budget: DecodeBudget = .unlimited) throws -> PixelImage {
        try decode(bytes, channels: channels, limits: limits, budget: budget, fitting: (width, height)).resized(width: width, height: height)
    }
}
