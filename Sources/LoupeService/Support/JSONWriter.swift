// JSON output for response bodies: the caller writes the structure, JSONWriter escapes (through
// LoupeHTTP's one escaper) and formats numbers straight into the byte buffer.
import LoupeHTTP

/// Appends JSON text; the caller writes structure, this escapes and formats.
public struct JSONWriter {
    public var bytes: [UInt8] = []

    /// `capacity` 0 reserves nothing (reserving 0 on an empty array still allocates a buffer).
    public init(capacity: Int = 512) { if capacity > 0 { bytes.reserveCapacity(capacity) } }

    @inline(__always) public mutating func raw(_ s: StaticString) {
        bytes.append(contentsOf: UnsafeBufferPointer(start: s.utf8Start, count: s.utf8CodeUnitCount))
    }
    /// Disfavoured, so that a literal (`w.raw(",")`) takes the StaticString overload: one copy of
    /// its bytes, where a String's UTF-8 view is appended through the generic sequence path
    /// (≈ 170 instructions a call; callgrind, GET /health).
    @_disfavoredOverload
    @inline(__always) public mutating func raw(_ s: String) {
        if s.utf8.withContiguousStorageIfAvailable({ bytes.append(contentsOf: $0) }) == nil { bytes.append(contentsOf: s.utf8) }
    }

    /// A JSON string literal (LoupeHTTP's escaper: HTML-safe, runs copied in bulk).
    @inline(__always) public mutating func string(_ s: String) { appendJSONString(s, to: &bytes) }

    /// Decimal digits, written straight into the buffer (no intermediate String).
    public mutating func int(_ v: Int) {
        if v < 0 { bytes.append(UInt8(ascii: "-")) }
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { digits in
            let n = writeDecimalDigits(v.magnitude, to: digits.baseAddress!)
            bytes.append(contentsOf: UnsafeBufferPointer(start: digits.baseAddress, count: n))
        }
    }

    /// Shortest text that reads back as the same Float (the text of `description`); non-finite
    /// values become null. Through `TextOutputStreamable`, so the digits go straight from the
    /// standard library's formatter into the buffer, with no temporary String.
    public mutating func float(_ v: Float) {
        if v.isFinite { v.write(to: &self) } else { raw("null") }
    }

    public mutating func double(_ v: Double) {
        if v.isFinite { raw(v.description) } else { raw("null") }
    }

    /// `value` ÷ 10^`scale` as a decimal number (`ByteCursor.putDecimal(_:scale:)`).
    public mutating func decimal(_ value: Int, scale: Int) {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: ByteCursor.decimalBytes) { digits in
            var c = ByteCursor(digits)
            c.putDecimal(value, scale: scale)
            bytes.append(contentsOf: c.written)
        }
    }

    public mutating func bool(_ v: Bool) { if v { raw("true") } else { raw("false") } }

    /// `"key":` including the colon.
    public mutating func key(_ k: String) { string(k); bytes.append(UInt8(ascii: ":")) }

    public mutating func value(_ v: JSONValue) {
        switch v {
        case .null: raw("null")
        case .bool(let b): bool(b)
        case .number(let number):
            let n = number.double
            if n == n.rounded(), abs(n) < 1e15 { int(Int(n)) } else { double(n) }
        case .string(let s): string(s)
        case .array(let items):
            bytes.append(UInt8(ascii: "["))
            for (i, item) in items.enumerated() {
                if i > 0 { bytes.append(UInt8(ascii: ",")) }
                value(item)
            }
            bytes.append(UInt8(ascii: "]"))
        case .object(let pairs):
            bytes.append(UInt8(ascii: "{"))
            for (i, (k, item)) in pairs.enumerated() {
                if i > 0 { bytes.append(UInt8(ascii: ",")) }
                key(k); value(item)
            }
            bytes.append(UInt8(ascii: "}"))
        }
    }
}

extension JSONWriter: TextOutputStream {
    public mutating func write(_ string: String) { raw(string) }
    public mutating func _writeASCII(_ buffer: UnsafeBufferPointer<UInt8>) { bytes.append(contentsOf: buffer) }
}


extension ByteCursor {
    /// The most bytes `putInt` or `putDecimal(_:scale:)` writes (sign, 19 digits, point, 9 digits).
    public static let decimalBytes = 32

    /// `v` in decimal; needs `decimalBytes` of room.
    public mutating func putInt(_ v: Int) {
        if v < 0 { put(UInt8(ascii: "-")) }
        putDecimal(v.magnitude)
    }

    /// `value` ÷ 10^`scale` as a decimal number with the trailing zeros dropped but one digit
    /// kept after the point ("1.25", "0.055", "3.0"): the number a Double of that value prints,
    /// written from integers (no Double formatting, no temporary String). `scale` is 1…9; needs
    /// `decimalBytes` of room.
    public mutating func putDecimal(_ value: Int, scale: Int) {
        precondition(scale >= 1 && scale <= 9, "decimal scale is 1…9")
        var unit = 1
        for _ in 0..<scale { unit *= 10 }
        if value < 0 { put(UInt8(ascii: "-")) }
        let m = value.magnitude
        putDecimal(m / UInt(unit))
        put(UInt8(ascii: "."))
        var fraction = Int(m % UInt(unit)), digits = scale
        while digits > 1 && fraction % 10 == 0 { fraction /= 10; digits -= 1 }
        var place = 1
        for _ in 1..<digits { place *= 10 }
        for _ in 0..<digits {
            put(UInt8(truncatingIfNeeded: fraction / place) &+ 0x30)
            fraction %= place; place /= 10
        }
    }
}
