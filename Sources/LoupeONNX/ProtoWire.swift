// The protobuf wire format (proto3/proto2 encoding), read and written directly: the subset of
// ONNX's messages that a model file of small CNNs uses is decoded in ONNXModel.swift on top of
// this. Why not swift-protobuf: see docs/onnx.md ("Parsing") — measured build cost against a
// 200-line reader that the tests check against files the `onnx` package writes.

/// Why a protobuf byte stream was refused.
public struct ProtoError: Error, Equatable, CustomStringConvertible {
    public var offset: Int
    public var message: String
    public var description: String { "malformed protobuf at byte \(offset): \(message)" }
}

/// Reads fields one at a time from a message's bytes.
struct ProtoReader {
    let bytes: ArraySlice<UInt8>
    private(set) var position: Int

    init(_ bytes: ArraySlice<UInt8>) { self.bytes = bytes; position = bytes.startIndex }

    var isAtEnd: Bool { position >= bytes.endIndex }

    func error(_ message: String) -> ProtoError { ProtoError(offset: position - bytes.startIndex, message: message) }

    /// The next field's number and wire type, or nil at the end.
    mutating func nextField() throws(ProtoError) -> (number: Int, wire: Int)? {
        guard !isAtEnd else { return nil }
        let key = try varint()
        let number = Int(key >> 3), wire = Int(key & 7)
        guard number > 0 else { throw error("field number 0") }
        return (number, wire)
    }

    mutating func varint() throws(ProtoError) -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard position < bytes.endIndex else { throw error("truncated varint") }
            let b = bytes[position]
            position += 1
            if shift == 63 && b > 1 { throw error("varint overflows 64 bits") }
            result |= UInt64(b & 0x7F) << shift
            if b & 0x80 == 0 { return result }
            shift += 7
            guard shift <= 63 else { throw error("varint longer than 10 bytes") }
        }
    }

    mutating func fixed32() throws(ProtoError) -> UInt32 {
        guard bytes.endIndex - position >= 4 else { throw error("truncated fixed32") }
        var v: UInt32 = 0
        for i in 0..<4 { v |= UInt32(bytes[position + i]) << (8 * UInt32(i)) }
        position += 4
        return v
    }

    mutating func fixed64() throws(ProtoError) -> UInt64 {
        guard bytes.endIndex - position >= 8 else { throw error("truncated fixed64") }
        var v: UInt64 = 0
        for i in 0..<8 { v |= UInt64(bytes[position + i]) << (8 * UInt64(i)) }
        position += 8
        return v
    }

    mutating func lengthDelimited() throws(ProtoError) -> ArraySlice<UInt8> {
        let n = try varint()
        guard n <= UInt64(bytes.endIndex - position) else { throw error("a field of \(n) bytes runs past the end of its message") }
        let slice = bytes[position..<position + Int(n)]
        position += Int(n)
        return slice
    }

    mutating func string() throws(ProtoError) -> String {
        let raw = try lengthDelimited()
        guard let s = String(validating: raw, as: UTF8.self) else { throw error("a string field is not UTF-8") }
        return s
    }

    /// Skips a field of `wire` type.
    mutating func skip(_ wire: Int) throws(ProtoError) {
        switch wire {
        case 0: _ = try varint()
        case 1: _ = try fixed64()
        case 2: _ = try lengthDelimited()
        case 5: _ = try fixed32()
        default: throw error("wire type \(wire) is not supported (groups are not used by ONNX)")
        }
    }

    /// A repeated int64 field: packed (wire 2) or one element (wire 0).
    mutating func int64s(_ wire: Int, into out: inout [Int64]) throws(ProtoError) {
        if wire == 0 { out.append(Int64(bitPattern: try varint())); return }
        guard wire == 2 else { throw error("int64 field with wire type \(wire)") }
        var inner = ProtoReader(try lengthDelimited())
        while !inner.isAtEnd { out.append(Int64(bitPattern: try inner.varint())) }
    }

    /// A repeated float field: packed (wire 2) or one element (wire 5).
    mutating func floats(_ wire: Int, into out: inout [Float]) throws(ProtoError) {
        if wire == 5 { out.append(Float(bitPattern: try fixed32())); return }
        guard wire == 2 else { throw error("float field with wire type \(wire)") }
        let raw = try lengthDelimited()
        guard raw.count % 4 == 0 else { throw error("packed floats of \(raw.count) bytes") }
        var inner = ProtoReader(raw)
        while !inner.isAtEnd { out.append(Float(bitPattern: try inner.fixed32())) }
    }
}

/// Builds a message's bytes field by field.
struct ProtoWriter {
    private(set) var bytes: [UInt8] = []

    mutating func varint(_ v: UInt64) {
        var v = v
        while v >= 0x80 { bytes.append(UInt8(v & 0x7F) | 0x80); v >>= 7 }
        bytes.append(UInt8(v))
    }

    mutating func key(_ number: Int, _ wire: Int) { varint(UInt64(number << 3 | wire)) }

    mutating func int(_ number: Int, _ v: Int64) { key(number, 0); varint(UInt64(bitPattern: v)) }

    mutating func float(_ number: Int, _ v: Float) {
        key(number, 5)
        let b = v.bitPattern
        for i in 0..<4 { bytes.append(UInt8(truncatingIfNeeded: b >> (8 * UInt32(i)))) }
    }

    mutating func bytes(_ number: Int, _ data: [UInt8]) {
        key(number, 2); varint(UInt64(data.count)); bytes.append(contentsOf: data)
    }

    mutating func string(_ number: Int, _ s: String) { bytes(number, Array(s.utf8)) }

    mutating func message(_ number: Int, _ build: (inout ProtoWriter) -> Void) {
        var inner = ProtoWriter()
        build(&inner)
        bytes(number, inner.bytes)
    }

    /// Packed repeated int64.
    mutating func int64s(_ number: Int, _ values: [Int64]) {
        var inner = ProtoWriter()
        for v in values { inner.varint(UInt64(bitPattern: v)) }
        bytes(number, inner.bytes)
    }
}
