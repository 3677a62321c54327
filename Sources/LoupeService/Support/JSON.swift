// A small, fast JSON reader for request bodies (the writer is JSONWriter.swift). Requests carry up to
// hundreds of thousands of numbers (OIP tensors, `instances`), which a generic Codable decoder
// turns into a slow boxed tree; this reader parses numbers on a fast exact path and keeps
// objects as ordered pairs. Errors carry the byte offset and what was expected.

import LoupeHTTP

public enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([(String, JSONValue)])

    public static func == (a: JSONValue, b: JSONValue) -> Bool {
        switch (a, b) {
        case (.null, .null): return true
        case let (.bool(x), .bool(y)): return x == y
        case let (.number(x), .number(y)): return x == y
        case let (.string(x), .string(y)): return x == y
        case let (.array(x), .array(y)): return x == y
        case let (.object(x), .object(y)):
            return x.count == y.count && zip(x, y).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        default: return false
        }
    }

    public subscript(_ key: String) -> JSONValue? {
        if case .object(let pairs) = self { return pairs.first { $0.0 == key }?.1 }
        return nil
    }
    public var stringValue: String? { if case .string(let s) = self { return s }; return nil }
    public var numberValue: Double? { if case .number(let n) = self { return n }; return nil }
    public var arrayValue: [JSONValue]? { if case .array(let a) = self { return a }; return nil }
    public var objectValue: [(String, JSONValue)]? { if case .object(let o) = self { return o }; return nil }
    public var boolValue: Bool? { if case .bool(let b) = self { return b }; return nil }

    /// A short name of the kind of value, for error messages.
    public var kindName: String {
        switch self {
        case .null: "null"
        case .bool: "a boolean"
        case .number: "a number"
        case .string: "a string"
        case .array: "an array"
        case .object: "an object"
        }
    }
}

public struct JSONParseError: Error, CustomStringConvertible, Equatable {
    public var offset: Int
    public var message: String
    public var description: String { "invalid JSON at byte \(offset): \(message)" }
}

public enum JSONReader {
    /// Parses one JSON document; nesting deeper than `maxDepth` is refused.
    public static func parse(_ bytes: [UInt8], maxDepth: Int = 64) throws(JSONParseError) -> JSONValue {
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

        /// Exact for up to 15 significant digits and decimal exponents within ±22 (Clinger's fast
        /// path); anything else goes through the standard library's correctly rounded parser.
        mutating func number() throws(JSONParseError) -> Double {
            let start = position
            var negative = false
            if bytes[position] == UInt8(ascii: "-") { negative = true; position += 1 }
            var mantissa: UInt64 = 0
            var digits = 0
            var exponent = 0
            var sawDigit = false
            while position < bytes.count, bytes[position] >= 0x30, bytes[position] <= 0x39 {
                if digits < 19 { mantissa = mantissa * 10 + UInt64(bytes[position] - 0x30) } else { exponent += 1 }
                if mantissa > 0 { digits += 1 }
                position += 1; sawDigit = true
            }
            guard sawDigit else { throw error("expected a digit") }
            if position < bytes.count, bytes[position] == UInt8(ascii: ".") {
                position += 1
                var fractionDigit = false
                while position < bytes.count, bytes[position] >= 0x30, bytes[position] <= 0x39 {
                    if digits < 19 {
                        mantissa = mantissa * 10 + UInt64(bytes[position] - 0x30)
                        exponent -= 1
                        if mantissa > 0 { digits += 1 }
                    }
                    position += 1; fractionDigit = true
                }
                guard fractionDigit else { throw error("expected a digit after '.'") }
            }
            if position < bytes.count, bytes[position] == UInt8(ascii: "e") || bytes[position] == UInt8(ascii: "E") {
                position += 1
                var expNegative = false
                if position < bytes.count, bytes[position] == UInt8(ascii: "+") || bytes[position] == UInt8(ascii: "-") {
                    expNegative = bytes[position] == UInt8(ascii: "-"); position += 1
                }
                var e = 0
                var expDigit = false
                while position < bytes.count, bytes[position] >= 0x30, bytes[position] <= 0x39 {
                    if e < 100_000 { e = e * 10 + Int(bytes[position] - 0x30) }
                    position += 1; expDigit = true
                }
                guard expDigit else { throw error("expected a digit in the exponent") }
                exponent += expNegative ? -e : e
            }
            if digits <= 15 && exponent >= -22 && exponent <= 22 {
                var v = Double(mantissa)
                if exponent < 0 { v /= powersOfTen[-exponent] } else if exponent > 0 { v *= powersOfTen[exponent] }
                return negative ? -v : v
            }
            let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<position]), as: UTF8.self)
            guard let v = Double(text) else { throw error("invalid number '\(text)'") }
            return v
        }
    }
}

private let powersOfTen: [Double] = (0...22).map { e in
    var v = 1.0
    for _ in 0..<e { v *= 10 }
    return v
}
