// A small, fast JSON reader for request bodies (the writer is JSONWriter.swift). Requests carry up to
// hundreds of thousands of numbers (OIP tensors, `instances`), which a generic Codable decoder
// turns into a slow boxed tree; this reader converts each number once to both its correctly
// rounded Double and Float (Support/DecimalParsing.swift) and keeps objects as ordered pairs
// (JSONValue, in JSONValue.swift).
// Errors carry the byte offset and what was expected.

import LoupeHTTP

public enum JSONReader {
    /// Parses one JSON document; nesting deeper than `maxDepth` is refused.
    public static func parse(_ bytes: [UInt8], maxDepth: Int = 64) throws(JSONParseError) -> JSONValue {
        try parse(bytes[...], maxDepth: maxDepth)
    }

    /// Parses one JSON document from part of a buffer (a request body's JSON header), without copying it.
    public static func parse(_ bytes: ArraySlice<UInt8>, maxDepth: Int = 64) throws(JSONParseError) -> JSONValue {
        try bytes.withUnsafeBufferPointer { (buffer) throws(JSONParseError) -> JSONValue in
            var parser = Parser(bytes: buffer, maxDepth: maxDepth)
            parser.skipSpace()
            let value = try parser.value(depth: 0)
            parser.skipSpace()
            if parser.position != buffer.count { throw parser.error("unexpected data after the JSON value") }
            return value
        }
    }

    struct Parser {
        let bytes: UnsafeBufferPointer<UInt8>
        let maxDepth: Int
        var position = 0

        init(bytes: UnsafeBufferPointer<UInt8>, maxDepth: Int) { self.bytes = bytes; self.maxDepth = maxDepth }

        func error(_ message: String) -> JSONParseError { JSONParseError(offset: position, message: message) }

        @inline(__always) mutating func skipSpace() {
            while position < bytes.count {
                let c = bytes[position]
                if c == 0x20 || c == 0x0A || c == 0x0D || c == 0x09 { position += 1 } else { break }
            }
        }

        mutating func value(depth: Int) throws(JSONParseError) -> JSONValue {
            guard position < bytes.count else { throw error("unexpected end of input") }
            switch bytes[position] {
            case UInt8(ascii: "{"): return try object(depth: depth + 1)
            case UInt8(ascii: "["): return try array(depth: depth + 1)
            case UInt8(ascii: "\""): return .string(try string())
            case UInt8(ascii: "t"): try literal("true"); return .bool(true)
            case UInt8(ascii: "f"): try literal("false"); return .bool(false)
            case UInt8(ascii: "n"): try literal("null"); return .null
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try number())
            default: throw error("unexpected character '\(Character(Unicode.Scalar(bytes[position])))'")
            }
        }

        mutating func literal(_ word: StaticString) throws(JSONParseError) {
            let n = word.utf8CodeUnitCount
            guard position + n <= bytes.count else { throw error("unexpected end of input") }
            for i in 0..<n where bytes[position + i] != word.utf8Start[i] {
                throw error("expected '\(word)'")
            }
            position += n
        }

        mutating func object(depth: Int) throws(JSONParseError) -> JSONValue {
            guard depth <= maxDepth else { throw error("nesting deeper than \(maxDepth)") }
            position += 1
            var pairs: [(String, JSONValue)] = []
            // Keys seen, once the object is too large for a linear look-up to stay cheap.
            var seen: Set<String>? = nil
            skipSpace()
            if position < bytes.count, bytes[position] == UInt8(ascii: "}") { position += 1; return .object(pairs) }
            while true {
                skipSpace()
                guard position < bytes.count, bytes[position] == UInt8(ascii: "\"") else { throw error("expected a string key") }
                let keyStart = position
                let key = try string()
                // A repeated key is refused (RFC 8259 leaves it undefined; first-wins or last-wins
                // would let two readers of one body disagree about what it says).
                let repeated: Bool
                if var s = seen {
                    repeated = !s.insert(key).inserted
                    seen = s
                } else {
                    repeated = pairs.contains { $0.0 == key }
                    if pairs.count == 16 { seen = Set(pairs.map { $0.0 } + [key]) }
                }
                if repeated {
                    position = keyStart
                    throw error("the key \"\(echoed(key))\" appears more than once in an object")
                }
                skipSpace()
                guard position < bytes.count, bytes[position] == UInt8(ascii: ":") else { throw error("expected ':'") }
                position += 1
                skipSpace()
                pairs.append((key, try value(depth: depth)))
                skipSpace()
                guard position < bytes.count else { throw error("unexpected end of input in an object") }
                if bytes[position] == UInt8(ascii: ",") { position += 1; continue }
                if bytes[position] == UInt8(ascii: "}") { position += 1; return .object(pairs) }
                throw error("expected ',' or '}'")
            }
        }

        mutating func array(depth: Int) throws(JSONParseError) -> JSONValue {
            guard depth <= maxDepth else { throw error("nesting deeper than \(maxDepth)") }
            position += 1
            var items: [JSONValue] = []
            skipSpace()
            if position < bytes.count, bytes[position] == UInt8(ascii: "]") { position += 1; return .array(items) }
            while true {
                skipSpace()
                items.append(try value(depth: depth))
                skipSpace()
                guard position < bytes.count else { throw error("unexpected end of input in an array") }
                if bytes[position] == UInt8(ascii: ",") { position += 1; continue }
                if bytes[position] == UInt8(ascii: "]") { position += 1; return .array(items) }
                throw error("expected ',' or ']'")
            }
        }

        /// A JSON string's bytes must be UTF-8 (RFC 8259 §8.1), also in fields the server ignores.
        func invalidUTF8(from start: Int) -> JSONParseError {
            JSONParseError(offset: start, message: "a string is not valid UTF-8")
        }

        mutating func string() throws(JSONParseError) -> String {
            position += 1  // opening quote
            let start = position
            var ascii = true
            // Fast path: no escapes.
            while position < bytes.count {
                let c = bytes[position]
                if c == UInt8(ascii: "\"") {
                    let raw = UnsafeBufferPointer(rebasing: bytes[start..<position])
                    let s: String
                    if ascii {
                        s = String(decoding: raw, as: UTF8.self)
                    } else {
                        guard let valid = String(validating: raw, as: UTF8.self) else { throw invalidUTF8(from: start) }
                        s = valid
                    }
                    position += 1
                    return s
                }
                if c == UInt8(ascii: "\\") { break }
                if c < 0x20 { throw error("control character in a string") }
                if c >= 0x80 { ascii = false }
                position += 1
            }
            var out = [UInt8](bytes[start..<position])
            while position < bytes.count {
                let c = bytes[position]
                if c == UInt8(ascii: "\"") {
                    position += 1
                    guard let valid = String(validating: out, as: UTF8.self) else { throw invalidUTF8(from: start) }
                    return valid
                }
                if c < 0x20 { throw error("control character in a string") }
                if c != UInt8(ascii: "\\") { out.append(c); position += 1; continue }
                position += 1
                guard position < bytes.count else { break }
                let e = bytes[position]
                position += 1
                switch e {
                case UInt8(ascii: "\""): out.append(0x22)
                case UInt8(ascii: "\\"): out.append(0x5C)
                case UInt8(ascii: "/"): out.append(0x2F)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "u"):
                    var scalar = try hex4()
                    if scalar >= 0xD800 && scalar < 0xDC00 {
                        // Surrogate pair.
                        guard position + 6 <= bytes.count, bytes[position] == UInt8(ascii: "\\"),
                              bytes[position + 1] == UInt8(ascii: "u") else { throw error("unpaired surrogate") }
                        position += 2
                        let low = try hex4()
                        guard low >= 0xDC00 && low < 0xE000 else { throw error("unpaired surrogate") }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    }
                    guard let u = Unicode.Scalar(scalar) else { throw error("invalid unicode escape") }
                    out.append(contentsOf: Array(String(Character(u)).utf8))
                default: throw error("invalid escape")
                }
            }
            throw error("unterminated string")
        }

        mutating func hex4() throws(JSONParseError) -> UInt32 {
            guard position + 4 <= bytes.count else { throw error("short unicode escape") }
            var v: UInt32 = 0
            for _ in 0..<4 {
                let c = bytes[position]
                let d: UInt32
                switch c {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): d = UInt32(c - UInt8(ascii: "0"))
                case UInt8(ascii: "a")...UInt8(ascii: "f"): d = UInt32(c - UInt8(ascii: "a") + 10)
                case UInt8(ascii: "A")...UInt8(ascii: "F"): d = UInt32(c - UInt8(ascii: "A") + 10)
                default: throw error("invalid hex digit in a unicode escape")
                }
                v = v * 16 + d
                position += 1
            }
            return v
        }

        /// A number by RFC 8259's grammar (no leading zeros, digits after '.' and in an exponent),
        /// converted exactly (DecimalParsing): the first 19 significant digits are kept, and whether
        /// any nonzero digit followed them.
        mutating func number() throws(JSONParseError) -> JSONNumber {
            let start = position
            var d = ScannedDecimal()
            if bytes[position] == UInt8(ascii: "-") { d.negative = true; position += 1 }
            var digits = 0
            let integerStart = position
            while position < bytes.count, bytes[position] &- 0x30 < 10 {
                let digit = bytes[position] &- 0x30
                if digits < 19 {
                    d.mantissa = d.mantissa &* 10 &+ UInt64(digit)
                    if d.mantissa > 0 { digits += 1 }
                } else {
                    d.exponent += 1
                    if digit != 0 { d.truncated = true }
                }
                position += 1
            }
            guard position > integerStart else { throw error("expected a digit") }
            if bytes[integerStart] == UInt8(ascii: "0") && position - integerStart > 1 {
                position = integerStart
                throw error("a number may not start with 0 followed by more digits")
            }
            if position < bytes.count, bytes[position] == UInt8(ascii: ".") {
                position += 1
                let fractionStart = position
                while position < bytes.count, bytes[position] &- 0x30 < 10 {
                    let digit = bytes[position] &- 0x30
                    if digits < 19 {
                        d.mantissa = d.mantissa &* 10 &+ UInt64(digit)
                        d.exponent -= 1
                        if d.mantissa > 0 { digits += 1 }
                    } else if digit != 0 {
                        d.truncated = true
                    }
                    position += 1
                }
                guard position > fractionStart else { throw error("expected a digit after '.'") }
            }
            if position < bytes.count, bytes[position] | 0x20 == UInt8(ascii: "e") {
                position += 1
                var expNegative = false
                if position < bytes.count, bytes[position] == UInt8(ascii: "+") || bytes[position] == UInt8(ascii: "-") {
                    expNegative = bytes[position] == UInt8(ascii: "-"); position += 1
                }
                var e = 0
                let exponentStart = position
                while position < bytes.count, bytes[position] &- 0x30 < 10 {
                    if e < 100_000 { e = e * 10 + Int(bytes[position] &- 0x30) }
                    position += 1
                }
                guard position > exponentStart else { throw error("expected a digit in the exponent") }
                d.exponent += expNegative ? -e : e
            }
            let (double, float) = DecimalParsing.convert(d, text: UnsafeBufferPointer(rebasing: bytes[start..<position]))
            return JSONNumber(double: double, float: float)
        }
    }
}
