// Base64 for JSON {"b64": …} images.
/// Standard and URL-safe base64, padding optional, whitespace ignored. Refused (nil): a byte outside
/// both alphabets, `=` anywhere but at the end, more than two `=`, and a length that leaves one
/// character over (6 bits, not a byte) — text that no encoder writes, so not silently half-decoded.
enum Base64 {
    static func decode(_ text: String) -> [UInt8]? {
        var out = [UInt8](); out.reserveCapacity(text.utf8.count * 3 / 4)
        var buffer: UInt32 = 0, bits = 0
        var characters = 0, padding = 0
        for c in text.utf8 {
            let v: UInt32
            switch c {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): v = UInt32(c - UInt8(ascii: "A"))
            case UInt8(ascii: "a")...UInt8(ascii: "z"): v = UInt32(c - UInt8(ascii: "a") + 26)
            case UInt8(ascii: "0")...UInt8(ascii: "9"): v = UInt32(c - UInt8(ascii: "0") + 52)
            case UInt8(ascii: "+"), UInt8(ascii: "-"): v = 62
            case UInt8(ascii: "/"), UInt8(ascii: "_"): v = 63
            case UInt8(ascii: "="):
                padding += 1
                if padding > 2 { return nil }
                continue
            case 0x20, 0x0A, 0x0D, 0x09: continue
            default: return nil
            }
            if padding > 0 { return nil }   // data after padding
            characters += 1
            buffer = (buffer << 6) | v
            bits += 6
            if bits >= 8 {
                bits -= 8
                out.append(UInt8((buffer >> UInt32(bits)) & 0xFF))
            }
        }
        if characters % 4 == 1 { return nil }
        return out
    }
}
