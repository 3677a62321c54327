// Writing bytes through a pointer into memory sized beforehand: for outputs assembled from many
// small pieces on every request (a response head, an access log line), where `Array.append` costs
// a capacity check, a uniqueness check and a count update per piece (≈ 60 instructions a call;
// callgrind, GET /health, issue 16).
import LoupeSystem

/// The decimal digits of `m` written at `out` (room for 20 needed), most significant first;
/// returns how many. The one digit writer of the hand-sized outputs (JSONWriter.int, the /predict
/// response cursor, Server-Timing, the response writer's Content-Length).
@inlinable @inline(__always)
public func writeDecimalDigits(_ m: UInt, to out: UnsafeMutablePointer<UInt8>) -> Int {
    var digits = 1, rest = m
    while rest >= 10 { rest /= 10; digits += 1 }
    rest = m
    for d in stride(from: digits - 1, through: 0, by: -1) { out[d] = UInt8(truncatingIfNeeded: rest % 10) &+ 0x30; rest /= 10 }
    return digits
}

/// Appends to memory the caller has sized for everything it will write (a write past `end` stops
/// the process: the sizing is the caller's bug, never the input's).
public struct ByteCursor {
    public let start: UnsafeMutablePointer<UInt8>
    @usableFromInline var position: UnsafeMutablePointer<UInt8>
    @usableFromInline let end: UnsafeMutablePointer<UInt8>

    @inlinable
    public init(_ buffer: UnsafeMutableBufferPointer<UInt8>) {
        start = buffer.baseAddress!; position = start; end = start + buffer.count
    }

    /// Bytes written so far.
    @inlinable public var count: Int { position - start }
    /// What is written so far.
    @inlinable public var written: UnsafeBufferPointer<UInt8> { UnsafeBufferPointer(start: start, count: count) }

    @inlinable @inline(__always)
    public mutating func put(_ bytes: UnsafeBufferPointer<UInt8>) {
        guard let base = bytes.baseAddress else { return }
        precondition(end - position >= bytes.count, "ByteCursor: written past the size reserved")
        position.update(from: base, count: bytes.count)
        position += bytes.count
    }

    @inlinable @inline(__always)
    public mutating func put(_ s: StaticString) {
        put(UnsafeBufferPointer(start: s.utf8Start, count: s.utf8CodeUnitCount))
    }

    @inlinable @inline(__always)
    public mutating func put(_ byte: UInt8) {
        precondition(position < end, "ByteCursor: written past the size reserved")
        position.pointee = byte
        position += 1
    }

    /// Decimal digits of a non-negative `value` (20 bytes at most).
    @inlinable @inline(__always)
    public mutating func putDecimal(_ value: UInt) {
        precondition(end - position >= 20, "ByteCursor: written past the size reserved")
        position += writeDecimalDigits(value, to: position)
    }

    /// The low `digits` lower-case hex digits of `value` (16 at most; LoupeSystem's writeHexDigits).
    @inlinable @inline(__always)
    public mutating func putHex(_ value: UInt64, digits: Int) {
        precondition(end - position >= digits, "ByteCursor: written past the size reserved")
        writeHexDigits(value, digits: digits, to: position)
        position += digits
    }
}
