// Decimal → binary floating point, correctly rounded (round to nearest, ties to even) for both
// binary64 and binary32, without going through text and the C library in the common case.
//
// A scanned decimal is w × 10^q with w the first 19 significant digits. Three steps, each exact
// when it answers:
//  1. Clinger's fast path: w ≤ 2^53 and |q| ≤ 22 — one correctly rounded multiply or divide.
//  2. Eisel–Lemire (Lemire, "Number Parsing at a Gigabyte per Second", 2021; as in fast_float and
//     Rust's core::num::dec2flt): w × 5^q from a 128-bit table (Generated/PowersOfFive.swift);
//     it reports the rare products it cannot round with certainty. With more than 19 digits the
//     value lies between w and w + 1 (× 10^q): when both round alike, that is the answer.
//  3. Otherwise the C library's correctly rounded strtod / strtof on the text.
// A binary32 result is Float(double) except when the double lands exactly on a binary32 rounding
// boundary (a tie between two floats), where double rounding could differ: there the value is
// converted again straight to binary32.
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A decimal number as scanned: ±mantissa × 10^exponent, where `mantissa` holds the first 19
/// significant digits; `truncated` says nonzero digits followed them (the magnitude then lies
/// strictly between mantissa and mantissa + 1, × 10^exponent).
struct ScannedDecimal {
    var negative = false
    var mantissa: UInt64 = 0
    var exponent = 0
    var truncated = false
}

enum DecimalParsing {
    /// The parameters of one IEEE binary format for Eisel–Lemire.
    struct Format {
        let explicitBits: Int
        let minimumExponent: Int
        let infinitePower: Int
        let smallestPowerOfTen: Int
        let largestPowerOfTen: Int
        let minExponentRoundToEven: Int
        let maxExponentRoundToEven: Int
        static let binary64 = Format(explicitBits: 52, minimumExponent: -1023, infinitePower: 0x7FF,
                                     smallestPowerOfTen: -342, largestPowerOfTen: 308,
                                     minExponentRoundToEven: -4, maxExponentRoundToEven: 23)
        static let binary32 = Format(explicitBits: 23, minimumExponent: -127, infinitePower: 0xFF,
                                     smallestPowerOfTen: -65, largestPowerOfTen: 38,
                                     minExponentRoundToEven: -17, maxExponentRoundToEven: 10)
    }

    /// The correctly rounded Double of `d`, or nil when only the exact fallback can tell.
    static func double(_ d: ScannedDecimal) -> Double? {
        if !d.truncated && d.mantissa <= 1 << 53 && d.exponent >= -22 && d.exponent <= 22 {
            var v = Double(d.mantissa)
            if d.exponent < 0 { v /= exactPowersOfTen[-d.exponent] } else if d.exponent > 0 { v *= exactPowersOfTen[d.exponent] }
            return d.negative ? -v : v
        }
        guard let bits = lemire(d, .binary64) else { return nil }
        return Double(bitPattern: bits | (d.negative ? 1 << 63 : 0))
    }

    /// The correctly rounded Float of `d`, or nil when only the exact fallback can tell.
    static func float(_ d: ScannedDecimal) -> Float? {
        guard let bits = lemire(d, .binary32) else { return nil }
        return Float(bitPattern: UInt32(truncatingIfNeeded: bits) | (d.negative ? 1 << 31 : 0))
    }

    /// Both roundings of the number whose text is `text` and whose scan is `d`: exact always.
    static func convert(_ d: ScannedDecimal, text: UnsafeBufferPointer<UInt8>) -> (double: Double, float: Float) {
        let double = Self.double(d) ?? strtodExact(text)
        let float = Float(double)
        guard isBinary32Tie(double) else { return (double, float) }
        return (double, Self.float(d) ?? strtofExact(text))
    }

    /// True when `d` lies exactly halfway between two adjacent Floats.
    /// Only then can rounding decimal → Double → Float differ from decimal → Float: every other
    /// Double rounds to the Float its decimal rounds to (the halfway points are Doubles themselves,
    /// and rounding is monotonic). From the bits: in binary32's normal range (2^-126 ≤ |d| < 2^128,
    /// including the tie between the largest Float and 2^128) a halfway point keeps exactly one bit
    /// below the Float's 24, so the Double's low 29 mantissa bits read 1 followed by zeros; below it
    /// the Floats are the multiples of 2^-149 and the halfway points the odd multiples of 2^-150.
    @inline(__always) static func isBinary32Tie(_ d: Double) -> Bool {
        let bits = d.bitPattern
        let exponent = Int(bits >> 52) & 0x7FF
        if exponent >= 1023 - 126 {
            return exponent <= 1023 + 127 && bits & 0x1FFF_FFFF == 0x1000_0000
        }
        let scaled = abs(d) * 0x1p150   // exact: a power-of-two scaling of a value below 2^-126
        return scaled == scaled.rounded(.towardZero) && UInt64(scaled) & 1 == 1
    }

    // MARK: Eisel–Lemire

    /// The IEEE bits (without sign) of the correctly rounded value of `d` in `format`, or nil when
    /// the 128-bit product cannot decide (then the caller falls back to the exact C conversion).
    static func lemire(_ d: ScannedDecimal, _ format: Format) -> UInt64? {
        guard let r = computeFloat(q: d.exponent, w: d.mantissa, format) else { return nil }
        if d.truncated {
            // The true value lies in (w, w + 1) × 10^q: both ends must round alike.
            guard d.mantissa < UInt64.max, let s = computeFloat(q: d.exponent, w: d.mantissa + 1, format), s == r else { return nil }
        }
        return UInt64(r.power2) << UInt64(format.explicitBits) | r.mantissa
    }

    struct Rounded: Equatable {
        var mantissa: UInt64
        var power2: Int
    }

    /// w × 10^q rounded to `format` (mantissa without the hidden bit, biased exponent), or nil.
    static func computeFloat(q: Int, w: UInt64, _ format: Format) -> Rounded? {
        if w == 0 || q < format.smallestPowerOfTen { return Rounded(mantissa: 0, power2: 0) }
        if q > format.largestPowerOfTen { return Rounded(mantissa: 0, power2: format.infinitePower) }
        let lz = w.leadingZeroBitCount
        let wn = w << UInt64(lz)
        let (lo, hi) = productApproximation(q: q, w: wn, precision: format.explicitBits + 3)
        if lo == UInt64.max {
            // The approximation may be one unit short in the last place and a carry could cross
            // the rounding point; only for q in [-27, 55] is the product known to be exact enough.
            guard q >= -27 && q <= 55 else { return nil }
        }
        let upperBit = Int(hi >> 63)
        let shift = upperBit + 64 - format.explicitBits - 3
        var mantissa = hi >> UInt64(shift)
        var power2 = power(q) + upperBit - lz - format.minimumExponent
        if power2 <= 0 {
            // Subnormal (or zero).
            if -power2 + 1 >= 64 { return Rounded(mantissa: 0, power2: 0) }
            mantissa >>= UInt64(-power2 + 1)
            mantissa += mantissa & 1
            mantissa >>= 1
            power2 = mantissa >= (1 << UInt64(format.explicitBits)) ? 1 : 0
            return Rounded(mantissa: mantissa & ~(1 << UInt64(format.explicitBits)), power2: power2)
        }
        // Exactly halfway (possible only when 5^q fits the product exactly): ties go to even.
        if lo <= 1 && q >= format.minExponentRoundToEven && q <= format.maxExponentRoundToEven
            && mantissa & 3 == 1 && mantissa << UInt64(shift) == hi {
            mantissa &= ~1
        }
        mantissa += mantissa & 1
        mantissa >>= 1
        if mantissa >= (2 << UInt64(format.explicitBits)) {
            mantissa = 1 << UInt64(format.explicitBits)
            power2 += 1
        }
        mantissa &= ~(1 << UInt64(format.explicitBits))
        if power2 >= format.infinitePower { return Rounded(mantissa: 0, power2: format.infinitePower) }
        return Rounded(mantissa: mantissa, power2: power2)
    }

    /// ⌊log2(10^q)⌋ + 63, exact over the table's range.
    @inline(__always) static func power(_ q: Int) -> Int { ((q &* (152_170 + 65_536)) >> 16) + 63 }

    /// The high 128 bits of w × 5^q (w normalised), computing the low word only when the high
    /// word's bits below `precision` are all ones and a carry could still change the answer.
    @inline(__always) static func productApproximation(q: Int, w: UInt64, precision: Int) -> (lo: UInt64, hi: UInt64) {
        let mask: UInt64 = precision < 64 ? UInt64.max >> UInt64(precision) : UInt64.max
        let index = 2 * (q - PowersOfFive.smallestExponent)
        let (hi5, lo5) = PowersOfFive.table.withUnsafeBufferPointer { ($0[index], $0[index + 1]) }
        var (firstHi, firstLo) = w.multipliedFullWidth(by: hi5)
        if firstHi & mask == mask {
            let secondHi = w.multipliedFullWidth(by: lo5).high
            firstLo = firstLo &+ secondHi
            if secondHi > firstLo { firstHi &+= 1 }
        }
        return (firstLo, firstHi)
    }

    // MARK: exact fallback

    static func strtodExact(_ text: UnsafeBufferPointer<UInt8>) -> Double {
        withCString(text) { strtod($0, nil) }
    }

    static func strtofExact(_ text: UnsafeBufferPointer<UInt8>) -> Float {
        withCString(text) { strtof($0, nil) }
    }

    /// The C library reads in the "C" locale unless a program calls setlocale; Loupe never does.
    private static func withCString<T>(_ text: UnsafeBufferPointer<UInt8>, _ body: (UnsafePointer<CChar>) -> T) -> T {
        var copy = [CChar](repeating: 0, count: text.count + 1)
        for i in 0..<text.count { copy[i] = CChar(bitPattern: text[i]) }
        return copy.withUnsafeBufferPointer { body($0.baseAddress!) }
    }
}

/// 10^0 … 10^22, every one exact in a Double.
private let exactPowersOfTen: [Double] = (0...22).map { e in
    var v = 1.0
    for _ in 0..<e { v *= 10 }
    return v
}
