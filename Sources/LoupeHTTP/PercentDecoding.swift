// Percent-decoding of request-target components (RFC 3986 §2.1), on UTF-8 bytes.

enum PercentDecoding {
    @inline(__always)
    static func hexValue(_ b: UInt8) -> UInt8? {
        switch b {
        case 0x30...0x39: b &- 0x30
        case 0x41...0x46: b &- 0x41 &+ 10
        case 0x61...0x66: b &- 0x61 &+ 10
        default: nil
        }
    }

    /// Decodes `bytes[start..<end]`. `plusAsSpace` turns '+' into ' ' (query components, as in
    /// application/x-www-form-urlencoded). Returns nil for a '%' not followed by two hex digits,
    /// for an encoded NUL, and for a result that is not valid UTF-8.
    static func decode(_ bytes: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int, plusAsSpace: Bool) -> String? {
        var needsWork = false
        var i = start
        while i < end {
            let b = bytes[i]
            if b == 0x25 || (plusAsSpace && b == 0x2B) || b >= 0x80 { needsWork = true; break }
            i += 1
        }
        if !needsWork {
            // Plain ASCII without escapes: one copy, no validation needed.
            return String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<end]), as: UTF8.self)
        }
        var out = [UInt8]()
        out.reserveCapacity(end - start)
        i = start
        while i < end {
            let b = bytes[i]
            if b == 0x25 {
                guard i + 2 < end, let hi = hexValue(bytes[i + 1]), let lo = hexValue(bytes[i + 2]) else { return nil }
                let v = hi << 4 | lo
                if v == 0 { return nil }
                out.append(v)
                i += 3
            } else {
                out.append(plusAsSpace && b == 0x2B ? 0x20 : b)
                i += 1
            }
        }
        return String(validating: out, as: UTF8.self)
    }

    static func decode(_ text: String, plusAsSpace: Bool = false) -> String? {
        var text = text
        return text.withUTF8 { decode($0, 0, $0.count, plusAsSpace: plusAsSpace) }
    }
}
