// gzip content-coding (RFC 9110 §8.4.1.3) through zlib: deflate with the gzip wrapper.
import CZlib

public enum Gzip {
    /// gzip-compresses `input` in one shot. Returns nil if zlib fails (it does not for valid
    /// arguments; the caller then sends the body uncompressed). `level` 1 (fast) … 9 (small).
    public static func compress(_ input: [UInt8], level: Int32 = 5) -> [UInt8]? {
        var stream = z_stream()
        // A window larger than the input buys nothing; a smaller one (and a smaller hash table
        // for small inputs) keeps zlib's state under malloc's mmap threshold, which makes a
        // one-shot compression of a few KB several times cheaper (no mmap/munmap, fewer page faults).
        var bits: Int32 = 9
        while bits < 15 && (1 << bits) < input.count { bits += 1 }
        let memLevel: Int32 = input.count <= 16 * 1024 ? 7 : 8
        let windowBits: Int32 = bits + 16  // + gzip wrapper
        guard deflateInit2_(&stream, max(1, min(9, level)), Z_DEFLATED, windowBits, memLevel, Z_DEFAULT_STRATEGY,
                            zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK else { return nil }
        defer { deflateEnd(&stream) }
        let bound = Int(deflateBound(&stream, uLong(input.count)))
        var output = [UInt8](repeating: 0, count: bound)
        let rc: Int32 = input.withUnsafeBufferPointer { inBuf in
            output.withUnsafeMutableBufferPointer { outBuf in
                stream.next_in = UnsafeMutablePointer(mutating: inBuf.baseAddress)
                stream.avail_in = uInt(inBuf.count)
                stream.next_out = outBuf.baseAddress
                stream.avail_out = uInt(outBuf.count)
                return deflate(&stream, Z_FINISH)
            }
        }
        guard rc == Z_STREAM_END else { return nil }
        output.removeLast(Int(stream.avail_out))
        return output
    }

    /// Inflates a gzip (or zlib) stream, refusing to produce more than `maxOutput` bytes.
    /// Returns nil for corrupt or truncated input or when the limit is exceeded.
    public static func decompress(_ input: [UInt8], maxOutput: Int = 64 * 1024 * 1024) -> [UInt8]? {
        var stream = z_stream()
        guard inflateInit2_(&stream, 15 + 32, zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK else { return nil }
        defer { inflateEnd(&stream) }
        var output: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16 * 1024)
        return input.withUnsafeBufferPointer { inBuf -> [UInt8]? in
            stream.next_in = UnsafeMutablePointer(mutating: inBuf.baseAddress)
            stream.avail_in = uInt(inBuf.count)
            while true {
                let (rc, produced) = chunk.withUnsafeMutableBufferPointer { c -> (Int32, Int) in
                    stream.next_out = c.baseAddress
                    stream.avail_out = uInt(c.count)
                    let rc = inflate(&stream, Z_NO_FLUSH)
                    return (rc, c.count - Int(stream.avail_out))
                }
                output.append(contentsOf: chunk[0..<produced])
                if output.count > maxOutput { return nil }
                if rc == Z_STREAM_END { return output }
                if rc != Z_OK || (produced == 0 && stream.avail_in == 0) { return nil }
            }
        }
    }
}
