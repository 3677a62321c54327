/// An 8-bit grayscale image, row-major, 0 = black, 255 = white.
public struct GrayImage: Sendable, Equatable {
    public var width: Int
    public var height: Int
    public var pixels: [UInt8]

    public init(width: Int, height: Int, pixels: [UInt8]) {
        precondition(pixels.count == width * height)
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    /// Resamples to `width`×`height` by area averaging (each output pixel is the mean of the
    /// input area it covers, with fractional edge weights). Same size returns self.
    public func resized(width outW: Int, height outH: Int) -> GrayImage {
        if outW == width && outH == height { return self }
        var out = [UInt8](repeating: 0, count: outW * outH)
        let sx = Double(width) / Double(outW), sy = Double(height) / Double(outH)
        for oy in 0..<outH {
            let y0 = Double(oy) * sy, y1 = y0 + sy
            for ox in 0..<outW {
                let x0 = Double(ox) * sx, x1 = x0 + sx
                var sum = 0.0, area = 0.0
                var y = Int(y0)
                while Double(y) < y1 && y < height {
                    let wy = min(Double(y + 1), y1) - max(Double(y), y0)
                    var x = Int(x0)
                    while Double(x) < x1 && x < width {
                        let w = wy * (min(Double(x + 1), x1) - max(Double(x), x0))
                        sum += w * Double(pixels[y * width + x])
                        area += w
                        x += 1
                    }
                    y += 1
                }
                out[oy * outW + ox] = UInt8(min(255, max(0, (sum / max(area, 1e-12)).rounded())))
            }
        }
        return GrayImage(width: outW, height: outH, pixels: out)
    }

    /// 255 - pixel (dark-on-light drawings → the light-on-dark convention of MNIST).
    public func inverted() -> GrayImage {
        GrayImage(width: width, height: height, pixels: pixels.map { 255 - $0 })
    }
}

/// Decodes PNG (every standard colour type, bit depth and Adam7) and PGM (P5 binary, P2 ASCII,
/// maxval up to 65535) into 8-bit grayscale — the one decoder `loupe predict` and the server use.
///
/// Conversion, chosen once: colour → ITU-R BT.601 luma (Y = 0.299 R + 0.587 G + 0.114 B), on the
/// stored (gamma-encoded) values; samples of any depth are rescaled to 0…255 with rounding;
/// alpha (including tRNS transparency) is composited over black, so transparent areas become
/// background (0) as in MNIST-style images. Gamma, ICC and other ancillary chunks are ignored.
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
        case png, pgm
    }

    /// The format the bytes start with, if any.
    public static func sniff(_ bytes: [UInt8]) -> Format? {
        if bytes.starts(with: PNGDecoder.signature) { return .png }
        if bytes.count >= 2 && bytes[0] == UInt8(ascii: "P") && (bytes[1] == UInt8(ascii: "5") || bytes[1] == UInt8(ascii: "2")) { return .pgm }
        return nil
    }

    /// Decodes PNG or PGM bytes (sniffed from the content) into 8-bit gray. The memory a decode
    /// holds grows with the data actually present and is reserved from `budget` as it grows
    /// (`LoupeDataError.decodeBudgetExhausted` when it runs out); an image whose declared size is
    /// past `limits` is refused (`imageTooLarge`) before anything is allocated.
    public static func decode(_ bytes: [UInt8], limits: Limits = .default, budget: DecodeBudget = .unlimited) throws -> GrayImage {
        guard bytes.count <= limits.maxInputBytes else {
            throw LoupeDataError.invalidImage(format: "encoded", reason: "\(bytes.count) bytes exceed the \(limits.maxInputBytes)-byte limit")
        }
        switch sniff(bytes) {
        case .png: return try PNGDecoder.decode(bytes, limits: limits, budget: budget)
        case .pgm: return try PGMDecoder.decode(bytes, limits: limits, budget: budget)
        case nil:
            if bytes.isEmpty { throw LoupeDataError.unsupportedImageFormat("empty input") }
            if bytes.starts(with: [0xFF, 0xD8, 0xFF]) {
                throw LoupeDataError.unsupportedImageFormat("this is a JPEG file, which is not supported yet (convert it to PNG)")
            }
            let head = bytes.prefix(8).map { b -> String in let s = String(b, radix: 16); return s.count == 1 ? "0" + s : s }.joined(separator: " ")
            throw LoupeDataError.unsupportedImageFormat("the data starts with \(head)")
        }
    }

    /// Decodes an image and brings it to the model's input size (area-averaged resize when it
    /// differs): the preprocessing `loupe predict` and the server share.
    public static func decodeForModel(_ bytes: [UInt8], width: Int = 28, height: Int = 28, limits: Limits = .default) throws -> GrayImage {
        try decode(bytes, limits: limits).resized(width: width, height: height)
    }
}
