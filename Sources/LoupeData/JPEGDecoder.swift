import CTurboJPEG

/// JPEG through libjpeg-turbo's TurboJPEG API (Debian's libturbojpeg0): baseline, extended and
/// progressive, Huffman or arithmetic, 8-bit, gray or YCbCr/RGB, to gray (libjpeg's gray output:
/// the Y plane, i.e. BT.601 luma) or RGB; the Exif orientation is applied after decoding.
///
/// Before libjpeg-turbo sees the bytes, `JPEGHeader` reads the frame header: a size past `limits`
/// is refused (`imageTooLarge`, a 60000×60000 "bomb" costs nothing), and the memory the decode
/// will hold — the output, libjpeg's row buffers and, for progressive or multi-scan files, every
/// DCT coefficient of the image — is reserved from the decode budget first. Progressive files
/// with an absurd number of scans are stopped (TJFLAG_LIMITSCANS). A truncated or corrupt file is
/// an error, not a gray-padded picture: libjpeg's warnings fail the decode, except the harmless
/// "extraneous bytes before marker" that some cameras write.
enum JPEGDecoder {
    /// SOI; what follows is for `JPEGHeader` to judge (and to name when it is wrong).
    static let signature: [UInt8] = [0xFF, 0xD8]

    static func fail(_ reason: String) -> LoupeDataError { .invalidImage(format: "JPEG", reason: reason) }

    static func decode(_ bytes: [UInt8], channels: Int, limits: ImageDecoder.Limits, budget: DecodeBudget,
                       fitting: (width: Int, height: Int)? = nil) throws -> PixelImage {
        let header = try JPEGHeader.parse(bytes)
        guard !header.isLossless else { throw fail("lossless JPEG (SOF\(header.frameType)) is not supported") }
        guard !header.isHierarchical else { throw fail("hierarchical JPEG (SOF\(header.frameType)) is not supported") }
        guard header.precision == 8 else { throw fail("\(header.precision)-bit samples are not supported (8-bit only)") }
        switch header.components.count {
        case 1, 3: break
        case 4: throw fail("CMYK/YCCK JPEGs are not supported; save it as RGB or grayscale")
        default: throw fail("\(header.components.count) colour components are not supported (1 or 3)")
        }
        try limits.check(width: header.width, height: header.height)

        let factor = scalingFactor(header, fitting: fitting)
        let width = scaled(header.width, factor), height = scaled(header.height, factor)
        let outputBytes = width * height * channels
        let needed = workingMemory(header) + outputBytes * (header.orientation == 1 ? 1 : 2)
        guard needed <= budget.limit else { throw LoupeDataError.decodeExceedsBudget(needed: needed, limit: budget.limit) }
        var reservation = DecodeReservation(budget)
        defer { reservation.releaseAll() }
        try reservation.cover(needed, cap: needed)

        guard let handle = tjInitDecompress() else { throw fail("libjpeg-turbo could not start a decompressor") }
        defer { tjDestroy(handle) }
        let format = channels == 1 ? TJPF_GRAY : TJPF_RGB
        var status: Int32 = 0
        let pixels = [UInt8](unsafeUninitializedCapacity: outputBytes) { out, initialized in
            status = bytes.withUnsafeBufferPointer { jpeg in
                tjDecompress2(handle, jpeg.baseAddress, UInt(jpeg.count), out.baseAddress, Int32(width), 0, Int32(height),
                              format.rawValue, TJFLAG_LIMITSCANS)
            }
            initialized = outputBytes   // UInt8 needs no initialization; only read when status is 0
        }
        if status != 0 {
            let message = String(cString: tjGetErrorStr2(handle)).trimmingSuffix(".")
            let warningOnly = tjGetErrorCode(handle) == TJERR_WARNING.rawValue
            if !(warningOnly && message.contains("extraneous bytes before marker")) {
                throw fail(describe(message, endsWithEOI: bytes.suffix(2) == [0xFF, 0xD9]))
            }
        }
        return PixelImage(width: width, height: height, channels: channels, pixels: pixels).oriented(header.orientation)
    }

    /// libjpeg's messages, with what they mean for the sender where that is not plain. libjpeg
    /// reads a cut-off file as if EOI followed, so a file cut inside a table between scans fails
    /// as "Bogus Huffman table definition": a missing EOI is named as the likely cause.
    static func describe(_ message: String, endsWithEOI: Bool) -> String {
        if message.contains("Premature end of JPEG file") || message.contains("premature end of data segment") {
            return "the file is truncated (libjpeg-turbo: \(message))"
        }
        if !endsWithEOI { return "the file is truncated or corrupt: it does not end with EOI, FF D9 (libjpeg-turbo: \(message))" }
        return "the data is corrupt (libjpeg-turbo: \(message))"
    }

    /// The smallest of libjpeg-turbo's scaling factors (≤ 1) that keeps the decoded image at least
    /// `fitting` on both sides once oriented; 1/1 without `fitting` or for a smaller image.
    static func scalingFactor(_ header: JPEGHeader, fitting: (width: Int, height: Int)?) -> tjscalingfactor {
        let one = tjscalingfactor(num: 1, denom: 1)
        guard let fitting else { return one }
        // The target in stored orientation: Exif 5…8 turn the image a quarter.
        let (tw, th) = header.orientation >= 5 ? (fitting.height, fitting.width) : (fitting.width, fitting.height)
        var count: Int32 = 0
        guard let factors = tjGetScalingFactors(&count) else { return one }
        var best = one
        for f in UnsafeBufferPointer(start: factors, count: Int(count)) where f.num <= f.denom {
            let w = scaled(header.width, f), h = scaled(header.height, f)
            if w >= tw && h >= th && w * h < scaled(header.width, best) * scaled(header.height, best) { best = f }
        }
        return best
    }

    /// TJSCALED: ceil(dimension × num / denom).
    static func scaled(_ dimension: Int, _ f: tjscalingfactor) -> Int {
        (dimension * Int(f.num) + Int(f.denom) - 1) / Int(f.denom)
    }

    /// What libjpeg holds while decoding, beside the output, from the frame header alone: per
    /// component, a few iMCU rows of samples (with context rows for fancy upsampling) and, when
    /// the data comes in several scans (progressive, or components in separate scans), the whole
    /// coefficient array (64 × 2 bytes per block); plus 64 KiB of tables and state.
    static func workingMemory(_ header: JPEGHeader) -> Int {
        let maxH = header.components.map(\.h).max() ?? 1, maxV = header.components.map(\.v).max() ?? 1
        var total = 64 << 10
        for c in header.components {
            let blocksWide = ((header.width * c.h + maxH - 1) / maxH + 7) / 8
            let blocksHigh = ((header.height * c.v + maxV - 1) / maxV + 7) / 8
            total += blocksWide * 8 * c.v * 8 * 3
            if header.hasMultipleScans {
                let paddedWide = (blocksWide + c.h - 1) / c.h * c.h, paddedHigh = (blocksHigh + c.v - 1) / c.v * c.v
                total += paddedWide * paddedHigh * 128
            }
        }
        return total
    }
}

fileprivate extension String {
    func trimmingSuffix(_ suffix: String) -> String { hasSuffix(suffix) ? String(dropLast(suffix.count)) : self }
}
