// The one lower-case hex digit writer (LoupeSystem: the lowest module that LoupeHTTP, LoupeData and
// LoupeService all build on): the JSON escaper's `\u00XX` (LoupeHTTP's ByteCursor.putHex), trace
// and request ids (LoupeService's TraceContext) and SHA-256 digests (LoupeData's SHA256.hexString).

/// The low `digits` hex digits of `v` (lower case, 16 at most) at `out`, last digit first: a
/// masking shift and a table load a digit.
@inlinable @inline(__always)
public func writeHexDigits(_ v: UInt64, digits: Int, to out: UnsafeMutablePointer<UInt8>) {
    let table: StaticString = "0123456789abcdef"
    var v = v, i = digits
    while i > 0 {
        i -= 1
        out[i] = table.utf8Start[Int(truncatingIfNeeded: v & 0xF)]
        v &>>= 4
    }
}
