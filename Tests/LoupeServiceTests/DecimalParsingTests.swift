import Testing
@testable import LoupeService
#if canImport(Glibc)
import Glibc
#endif

/// The JSON reader's numbers against the C library's correctly rounded strtod / strtof, bit for bit:
/// random decimals of 1–25 digits over both formats' exponent ranges (subnormals, overflow), the
/// shortest texts of random Doubles and Floats (what Python's json and tritonclient send), and the
/// hard cases — decimals exactly at, just below and just above the halfway points between two
/// Floats and between two Doubles, written out in full (up to hundreds of digits).
@Suite struct DecimalParsingTests {
    /// Parses `text` as a JSON document and compares both roundings with the C library's.
    func check(_ text: String, _ failures: inout [String]) {
        let value: JSONValue
        do { value = try JSONReader.parse(Array(text.utf8)) } catch {
            failures.append("\(text): \(error)"); return
        }
        guard case .number(let n) = value else { failures.append("\(text): not a number"); return }
        let d = strtod(text, nil), f = strtof(text, nil)
        if n.double.bitPattern != d.bitPattern { failures.append("\(text): double \(n.double) != strtod \(d)") }
        if n.float.bitPattern != f.bitPattern { failures.append("\(text): float \(n.float) != strtof \(f)") }
    }

    func checkAll(_ texts: [String]) {
        var failures: [String] = []
        for t in texts { check(t, &failures) }
        #expect(failures.isEmpty, "\(failures.count) of \(texts.count) differ, e.g. \(failures.prefix(5))")
    }

    /// The exact decimal value of an 80-bit float (enough for the halfway point between two Doubles),
    /// in scientific notation with every digit (glibc's printf is exact).
    static func exactText(_ x: Float80) -> String {
        var buffer = [CChar](repeating: 0, count: 1200)
        _ = withVaList([x]) { vsnprintf(&buffer, buffer.count, "%.1100Le", $0) }
        let full = String(cString: buffer)
        // Trim trailing zeros of the mantissa.
        let parts = full.split(separator: "e")
        var mantissa = String(parts[0])
        while mantissa.hasSuffix("0") { mantissa.removeLast() }
        if mantissa.hasSuffix(".") { mantissa.removeLast() }
        return mantissa + "e" + parts[1]
    }

    /// A decimal just below / just above `text` (an exact value in scientific notation): one more digit.
    static func nudged(_ text: String, up: Bool) -> [String] {
        let parts = text.split(separator: "e")
        var mantissa = String(parts[0])
        if !mantissa.contains(".") { mantissa += "." }
        let e = String(parts[1])
        if up { return [mantissa + "0000000001e" + e, mantissa + "1e" + e] }
        // Below: decrement the last digit and append 9s (the exact value ends in a nonzero digit).
        var digits = Array(mantissa)
        guard let last = digits.last, let v = last.wholeNumberValue, v > 0 else { return [] }
        digits[digits.count - 1] = Character(String(v - 1))
        return [String(digits) + "9999999999e" + e]
    }

    @Test func edgeCases() {
        checkAll([
            "0", "-0", "0.0", "-0.0e10", "1", "-1", "255", "0.5", "1e-400", "-1e-400", "1e400", "-1e400", "1e99999", "1e-99999",
            "4.9406564584124654e-324", "2.4703282292062327e-324", "2.4703282292062328e-324", "2.2250738585072011e-308",
            "2.2250738585072014e-308", "1.7976931348623157e308", "1.7976931348623158e308", "1.7976931348623159e308",
            "1.401298464324817e-45", "7.006492321624085e-46", "7.006492321624086e-46", "1.1754943508222875e-38",
            "1.1754942e-38", "3.4028235e38", "3.4028236e38", "3.4028235677973366e38", "3.4028235677973367e38",
            "0.1", "0.2", "0.3", "0.10000000149011612", "0.0039215686274509803", "0.00392156862745098",
            "9007199254740993", "9007199254740992.5", "18446744073709551615", "18446744073709551616",
            "12345678901234567890123", "0.000000000000000000000000000000000000000000001", "1.00000005960464477539062500",
            "1.0000000596046447753906250000000001", "1.0000000596046447753906249999999999", "16777217", "16777217.000000001",
            "33554434.9999999999999999", "123456789012345678e-5", "9999999999999999999", "99999999999999999999",
            "0.99999999999999999999", "100000000000000000000000e-23", "7.038531e-26", "1e23", "8.589973e9", "1e-45", "1e-46",
        ])
    }

    @Test func randomDecimals() {
        var g = SystemRandomNumberGenerator()
        var texts: [String] = []
        for i in 0..<60_000 {
            let digits = Int.random(in: 1...25, using: &g)
            var s = Int.random(in: 0..<4, using: &g) == 0 ? "-" : ""
            var mantissa = String(Int.random(in: 1...9, using: &g))
            for _ in 1..<digits { mantissa += String(Int.random(in: 0...9, using: &g)) }
            // Half the values around the Float range (subnormal to overflow), half over the Double range.
            let e = i % 2 == 0 ? Int.random(in: -70...40, using: &g) : Int.random(in: -345...310, using: &g)
            switch Int.random(in: 0..<3, using: &g) {
            case 0: s += mantissa + "e" + String(e - digits + 1)
            case 1:
                let point = Int.random(in: 1...digits, using: &g)
                s += String(mantissa.prefix(point)) + (point < digits ? "." + mantissa.dropFirst(point) : "") + "E" + String(e - point + 1)
            default:
                s += "0." + String(repeating: "0", count: Int.random(in: 0...8, using: &g)) + mantissa
            }
            texts.append(s)
        }
        checkAll(texts)
    }

    @Test func shortestTextsOfRandomDoublesAndFloats() {
        var g = SystemRandomNumberGenerator()
        var texts: [String] = []
        for _ in 0..<30_000 {
            let d = Double(bitPattern: g.next())
            if d.isFinite { texts.append(d.description) }
            let f = Float(bitPattern: UInt32(truncatingIfNeeded: g.next()))
            if f.isFinite { texts.append(Double(f).description); texts.append(f.description) }
            // Pixel values / 255 as Python writes them, and random probabilities.
            texts.append((Double(Int.random(in: 0...255, using: &g)) / 255).description)
            texts.append(Double.random(in: 0..<1, using: &g).description)
        }
        checkAll(texts)
    }

    @Test func halfwayPointsBetweenFloatsAndDoubles() {
        var g = SystemRandomNumberGenerator()
        var texts: [String] = []
        var floats: [Float] = [.leastNonzeroMagnitude, .leastNormalMagnitude, .leastNormalMagnitude.nextDown, 1, 1.5, 16_777_216,
                               .greatestFiniteMagnitude.nextDown, 0.1, 3.4e-40]
        for _ in 0..<600 {
            let f = Float(bitPattern: UInt32.random(in: 0..<0x7F7F_FFFF, using: &g))
            floats.append(f)
        }
        for f in floats {
            let mid = (Float80(f) + Float80(f.nextUp)) / 2
            let exact = Self.exactText(mid)
            texts += [exact] + Self.nudged(exact, up: true) + Self.nudged(exact, up: false)
        }
        var doubles: [Double] = [.leastNonzeroMagnitude, .leastNormalMagnitude, .leastNormalMagnitude.nextDown, 1, 9_007_199_254_740_992,
                                 .greatestFiniteMagnitude.nextDown, 0.1]
        for _ in 0..<600 {
            doubles.append(Double(bitPattern: UInt64.random(in: 0..<0x7FEF_FFFF_FFFF_FFFF, using: &g)))
        }
        for d in doubles {
            let mid = (Float80(d) + Float80(d.nextUp)) / 2
            let exact = Self.exactText(mid)
            texts += [exact] + Self.nudged(exact, up: true) + Self.nudged(exact, up: false)
        }
        checkAll(texts)
    }

    /// Exact ties where round-half-even decides, at the formats' edges and on Eisel–Lemire's own tie
    /// branch: halfway between the largest finite value and the first power of two past it (ties to
    /// even → infinity), between 0 and the smallest subnormal (→ 0), between adjacent subnormals,
    /// between integers above 2^53 (Doubles) and 2^24 (Floats) written with 17–20 significant digits
    /// and with the decimal point moved (w exact, q ≠ 0), each followed by zeros (still a tie) or by a
    /// nonzero digit past the 19th (no longer one).
    @Test func exactTiesAtTheEdges() {
        var texts: [String] = []
        func tie(_ mid: Float80) {
            let exact = Self.exactText(mid)
            texts += [exact] + Self.nudged(exact, up: true) + Self.nudged(exact, up: false)
        }
        tie((Float80(Double.greatestFiniteMagnitude) + 0x1p1024) / 2)
        tie((Float80(Float.greatestFiniteMagnitude) + 0x1p128) / 2)
        tie(Float80(Double.leastNonzeroMagnitude) / 2)
        tie(Float80(Float.leastNonzeroMagnitude) / 2)
        for k in [1, 2, 3, 0xF_FFFF_FFFF_FFFE] as [UInt64] {   // k and k + 1 subnormal ulps
            tie(Float80(Double.leastNonzeroMagnitude) * (Float80(k) + 0.5))
        }
        for k in [1, 2, 3, 0x7F_FFFE] as [UInt32] {
            tie(Float80(Float.leastNonzeroMagnitude) * (Float80(k) + 0.5))
        }
        var g = SystemRandomNumberGenerator()
        // Integer ties: d + ulp/2 for Doubles in [2^53, 2^63) and Floats in [2^24, 2^63): 17–19 digits, q = 0.
        var integers: [UInt64] = [(1 << 53) + 1, (1 << 53) + 3, (1 << 54) + 2, (1 << 54) + 6, (1 << 24) + 1, (1 << 24) + 3, (1 << 63) - 1]
        for _ in 0..<300 {
            let d = Double(UInt64.random(in: (1 << 53)..<(1 << 63), using: &g))
            integers.append(UInt64(d) + UInt64(d.ulp / 2))
            let f = Float(UInt64.random(in: (1 << 24)..<(1 << 62), using: &g))
            integers.append(UInt64(f) + UInt64(f.ulp / 2))
        }
        for n in integers {
            let s = String(n)
            texts += [s, s + ".0", s + ".000000000000000000001", s + "0e-1", s + "00000e-5"]
            // The decimal point moved into the digits: the same tie as w × 10^q with q < 0 and a scaled exponent.
            let cut = s.index(s.startIndex, offsetBy: 1)
            texts.append(String(s[..<cut]) + "." + String(s[cut...]) + "e\(s.count - 1)")
        }
        // Fractional ties below 2^53 (q < 0): m + 0.5 at the edge of the integers Doubles hold exactly.
        for m in [(1 << 52) as UInt64, (1 << 52) + 1, (1 << 53) - 1] { texts += ["\(m).5", "\(m).50000000000000000000", "\(m).5000000000000000000001"] }
        checkAll(texts)
    }

    /// The halfway test from the bits against its definition (d = (f + next float) / 2), on every kind of Double.
    @Test func binary32TiesFromTheBits() {
        func reference(_ d: Double) -> Bool {
            guard d.isFinite else { return false }
            let f = Float(d)
            let back = f.isInfinite ? (f > 0 ? 0x1p128 : -0x1p128) : Double(f)
            if back == d { return false }
            let other = d > back ? f.nextUp : f.nextDown
            guard other.isFinite else { return false }
            return (back + Double(other)) * 0.5 == d
        }
        var g = SystemRandomNumberGenerator()
        var values: [Double] = [0, -0.0, 0x1p-150, 0x1p-151, 3 * 0x1p-150, 0x1p-149, 0x1p128 - 0x1p103, -(0x1p128 - 0x1p103), 0x1p128, 0x1p-126,
                                0x1p-126 - 0x1p-150, 0x1p-126 + 0x1p-150, .greatestFiniteMagnitude, .infinity, .leastNonzeroMagnitude]
        for _ in 0..<200_000 {
            values.append(Double(bitPattern: g.next()))
            let f = Float(bitPattern: UInt32(truncatingIfNeeded: g.next()))
            if f.isFinite {
                let mid = (Double(f) + Double(f.nextUp)) / 2
                values += [mid, mid.nextUp, mid.nextDown, Double(f)]
            }
        }
        var wrong = 0
        for d in values where !d.isNaN && DecimalParsing.isBinary32Tie(d) != reference(d) { wrong += 1 }
        #expect(wrong == 0)
    }

    @Test func theGeneratedTableIsUpToDate() {
        let r = runProcess(["python3", repositoryRoot() + "/scripts/gen-powers-of-five.py", "--check"])
        #expect(r.status == 0, "\(r.output)")
    }

    @Test func numbersFollowTheJSONGrammar() {
        for bad in ["01", "-01", "00.5", "-", "1.", ".5", "1e", "1e+", "+1", "0x10", "1.e5", "-.5", "Infinity", "NaN"] {
            #expect(throws: JSONParseError.self, "\(bad)") { try JSONReader.parse(Array(bad.utf8)) }
        }
        for good in ["0", "-0", "0.5", "0e0", "-0E+2", "10", "1.25e-3"] {
            #expect(throws: Never.self, "\(good)") { try JSONReader.parse(Array(good.utf8)) }
        }
    }
}
