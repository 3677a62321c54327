/// PGM: P5 (binary) and P2 (ASCII), maxval 1…65535 (two bytes per sample, big-endian, above 255).
/// Samples are rescaled to 0…255 with rounding. '#' comments are allowed in the header.
enum PGMDecoder {
    static func decode(_ bytes: [UInt8], limits: ImageDecoder.Limits, budget: DecodeBudget = .unlimited) throws -> GrayImage {
        func fail(_ s: String) -> LoupeDataError { .invalidImage(format: "PGM", reason: s) }
        let binary = bytes[1] == UInt8(ascii: "5")
        var i = 2
        func isSpace(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 || b == 0x0a || b == 0x0d || b == 0x0b || b == 0x0c }
        func skipSpaceAndComments() {
            while i < bytes.count {
                if isSpace(bytes[i]) { i += 1 }
                else if bytes[i] == UInt8(ascii: "#") {
                    while i < bytes.count && bytes[i] != 0x0a && bytes[i] != 0x0d { i += 1 }
                } else { break }
            }
        }
        func number(_ what: String) throws -> Int {
            skipSpaceAndComments()
            var v = 0
            var digits = 0
            while i < bytes.count, bytes[i] >= 0x30, bytes[i] <= 0x39 {
                v = v * 10 + Int(bytes[i] - 0x30)
                digits += 1
                i += 1
                if v > 1 << 31 { throw fail("\(what) is too large") }
            }
            guard digits > 0 else {
                throw i >= bytes.count ? fail("truncated header (no \(what))") : fail("expected \(what), found byte 0x\(String(bytes[i], radix: 16))")
            }
            return v
        }
        guard bytes.count > 2, isSpace(bytes[2]) || bytes[2] == UInt8(ascii: "#") else { throw fail("no whitespace after the magic number") }
        let width = try number("width")
        let height = try number("height")
        let maxval = try number("maxval")
        guard width > 0, height > 0 else { throw fail("size \(width)×\(height)") }
        guard (1...65535).contains(maxval) else { throw fail("maxval \(maxval) is outside 1…65535") }
        try limits.check(width: width, height: height)
        let count = width * height
        // Nothing is allocated for samples that are not there: P5 needs count (or 2·count) bytes,
        // P2 at least a digit and a separator per sample.
        var reservation = DecodeReservation(budget)
        defer { reservation.releaseAll() }
        if !binary {
            guard bytes.count - i >= 2 * count - 1 else {
                throw fail("truncated: \(width)×\(height) samples need at least \(2 * count - 1) bytes of text, \(bytes.count - i) present")
            }
        }
        try reservation.cover(count, cap: count)
        if binary {
            guard i < bytes.count, isSpace(bytes[i]) else { throw fail("truncated header (no whitespace after maxval)") }
            i += 1
            let bps = maxval > 255 ? 2 : 1
            guard bytes.count - i >= count * bps else {
                throw fail("truncated: \(width)×\(height) samples need \(count * bps) bytes, \(bytes.count - i) present")
            }
            if maxval == 255 {   // the common case: already 0…255, nothing to rescale or check
                return GrayImage(width: width, height: height, pixels: Array(bytes[i..<i + count]))
            }
        }
        try reservation.cover(3 * count, cap: 3 * count)   // samples (UInt16) and pixels
        var samples = [UInt16](repeating: 0, count: count)
        if binary {
            let bps = maxval > 255 ? 2 : 1
            for k in 0..<count {
                samples[k] = bps == 1 ? UInt16(bytes[i + k]) : UInt16(bytes[i + 2 * k]) << 8 | UInt16(bytes[i + 2 * k + 1])
            }
        } else {
            for k in 0..<count {
                skipSpaceAndComments()
                guard i < bytes.count else { throw fail("truncated: \(k) of \(count) samples present") }
                let v = try number("sample \(k)")
                guard v <= maxval else { throw fail("sample \(k) is \(v), above maxval \(maxval)") }
                samples[k] = UInt16(v)
            }
        }
        var pixels = [UInt8](repeating: 0, count: count)
        for k in 0..<count {
            let v = Int(samples[k])
            guard v <= maxval else { throw fail("sample \(k) is \(v), above maxval \(maxval)") }
            pixels[k] = UInt8((v * 255 + maxval / 2) / maxval)
        }
        return GrayImage(width: width, height: height, pixels: pixels)
    }
}
