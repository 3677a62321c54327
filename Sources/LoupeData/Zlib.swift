import CZlib

/// Incremental zlib/gzip inflater with a hard cap on the total output.
///
/// `Inflater(bytes, format:, maxOutput:)` then `read(count)` pulls decompressed bytes on demand,
/// so a caller that knows how much it expects (an IDX header, a PNG's declared size) never
/// holds more than that; a stream that inflates past `maxOutput` throws instead of growing.
public final class Inflater {
    public enum Format: Sendable {
        /// zlib wrapper (RFC 1950), as in PNG IDAT.
        case zlib
        /// gzip wrapper (RFC 1952); concatenated members are read in sequence.
        case gzip
        /// Either, detected from the header.
        case automatic
    }

    private var stream = z_stream()
    private var input: ArraySlice<UInt8>
    private var inputOffset = 0
    private var finished = false
    private let format: Format
    public private(set) var maxOutput: Int
    /// Total bytes produced so far.
    public private(set) var totalOut = 0

    public convenience init(_ input: [UInt8], format: Format, maxOutput: Int) throws {
        try self.init(input[...], format: format, maxOutput: maxOutput)
    }

    /// Inflates a slice of a larger buffer (a PNG's one IDAT chunk) without copying it out.
    public init(_ input: ArraySlice<UInt8>, format: Format, maxOutput: Int) throws {
        self.input = input
        self.format = format
        self.maxOutput = maxOutput
        let windowBits: Int32
        switch format {
        case .zlib: windowBits = 15
        case .gzip: windowBits = 15 + 16
        case .automatic: windowBits = 15 + 32
        }
        let rc = inflateInit2_(&stream, windowBits, zlibVersion(), Int32(MemoryLayout<z_stream>.size))
        if rc != Z_OK { throw LoupeDataError.compression("zlib could not initialise (code \(rc))") }
    }

    deinit { inflateEnd(&stream) }

    /// Starts over on another zlib stream, as a new `Inflater(input, format: .zlib, maxOutput:)`
    /// would, but keeping zlib's state (and its window, if a stream needed one): `inflateReset`
    /// instead of `inflateInit2`'s allocation per stream (PNG decoding reuses one per decode).
    func restart(_ input: ArraySlice<UInt8>, maxOutput: Int) throws {
        precondition(format == .zlib, "restart is for zlib streams")
        let rc = inflateReset(&stream)
        if rc != Z_OK { throw LoupeDataError.compression("zlib could not reset (code \(rc))") }
        self.input = input
        self.maxOutput = maxOutput
        inputOffset = 0
        finished = false
        totalOut = 0
    }

    /// Lets go of the input (kept for a later `restart`, this inflater should not hold a request's
    /// body alive); reading afterwards finds the stream at its end.
    func dropInput() {
        input = []
        inputOffset = 0
        finished = true
    }

    /// True once the compressed stream has ended (all members, for gzip).
    public var isAtEnd: Bool { finished }

    /// Reads up to `count` bytes; fewer only when the stream ends. Throws on corrupt data,
    /// on a truncated stream, or when the total output would exceed `maxOutput`.
    public func read(_ count: Int) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        let produced = try read(into: &out, count: count)
        if produced < count { out.removeLast(count - produced) }
        return out
    }

    /// Inflates into `buffer[offset..<offset + count]`, returning how many bytes were produced.
    public func read(into buffer: inout [UInt8], at offset: Int = 0, count: Int) throws -> Int {
        precondition(offset >= 0 && offset + count <= buffer.count)
        var produced = 0
        while produced < count && !finished {
            let want = count - produced
            // Room for everything the stream may still produce (a small PNG's whole image): finish
            // in this call, so zlib keeps no sliding window (no 32 KiB allocation and copy). If
            // the stream does not end here, zlib goes on as with Z_NO_FLUSH, answering Z_BUF_ERROR
            // instead of Z_OK (handled alike below). Not for gzip: members may follow.
            let flush = format == .zlib && want >= maxOutput - totalOut ? Z_FINISH : Z_NO_FLUSH
            let (rc, got) = input.withUnsafeBufferPointer { inBuf -> (Int32, Int) in
                buffer.withUnsafeMutableBufferPointer { outBuf -> (Int32, Int) in
                    stream.next_in = UnsafeMutablePointer(mutating: inBuf.baseAddress! + inputOffset)
                    stream.avail_in = UInt32(clamping: input.count - inputOffset)
                    stream.next_out = outBuf.baseAddress! + offset + produced
                    stream.avail_out = UInt32(clamping: want)
                    let beforeIn = stream.avail_in
                    let beforeOut = stream.avail_out
                    let rc = inflate(&stream, flush)
                    inputOffset += Int(beforeIn - stream.avail_in)
                    return (rc, Int(beforeOut - stream.avail_out))
                }
            }
            produced += got
            totalOut += got
            if totalOut > maxOutput {
                throw LoupeDataError.compression("the data inflates to more than the allowed \(maxOutput) bytes")
            }
            switch rc {
            case Z_OK:
                continue
            case Z_STREAM_END:
                // gzip files may hold several members back to back.
                if format != .zlib, inputOffset < input.count, input[input.startIndex + inputOffset] == 0x1f {
                    inflateReset(&stream)
                } else {
                    finished = true
                }
            case Z_BUF_ERROR:
                if stream.avail_in == 0 && stream.avail_out > 0 {
                    throw LoupeDataError.compression("the compressed stream is truncated (ends after \(totalOut) bytes of output)")
                }
                if got == 0 { throw LoupeDataError.compression("zlib made no progress") }
            case Z_NEED_DICT:
                throw LoupeDataError.compression("the stream needs a preset dictionary, which is not supported")
            case Z_MEM_ERROR:
                throw LoupeDataError.compression("zlib ran out of memory")
            default:
                let message = stream.msg.map { String(cString: $0) } ?? "code \(rc)"
                throw LoupeDataError.compression("corrupt compressed data (\(message))")
            }
        }
        return produced
    }

    /// Number of compressed input bytes not consumed (after the end of the stream).
    public var unconsumedInput: Int { input.count - inputOffset }

    /// Inflates a whole stream, failing if it is larger than `maxOutput`.
    public static func inflateAll(_ input: [UInt8], format: Format, maxOutput: Int) throws -> [UInt8] {
        let inflater = try Inflater(input, format: format, maxOutput: maxOutput)
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while !inflater.isAtEnd {
            let room = min(chunk.count, maxOutput + 1 - out.count)
            let n = try inflater.read(into: &chunk, count: max(room, 1))
            out.append(contentsOf: chunk[0..<n])
            if out.count > maxOutput {
                throw LoupeDataError.compression("the data inflates to more than the allowed \(maxOutput) bytes")
            }
        }
        return out
    }
}

/// zlib helpers for writers (PNG encoding in tests, gzip in tools).
public enum Deflate {
    /// Compresses `bytes` into a zlib stream (RFC 1950).
    public static func zlib(_ bytes: [UInt8], level: Int32 = 6) -> [UInt8] {
        var destLen = compressBound(uLong(bytes.count))
        var out = [UInt8](repeating: 0, count: Int(destLen))
        let rc = out.withUnsafeMutableBufferPointer { o in
            bytes.withUnsafeBufferPointer { i in
                compress2(o.baseAddress!, &destLen, i.baseAddress ?? UnsafePointer(bitPattern: 1)!, uLong(bytes.count), level)
            }
        }
        precondition(rc == Z_OK, "compress2 failed with \(rc)")
        out.removeLast(out.count - Int(destLen))
        return out
    }

    /// Compresses `bytes` into a single-member gzip file (RFC 1952).
    public static func gzip(_ bytes: [UInt8]) -> [UInt8] {
        var stream = z_stream()
        deflateInit2_(&stream, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY, zlibVersion(), Int32(MemoryLayout<z_stream>.size))
        defer { deflateEnd(&stream) }
        var out = [UInt8](repeating: 0, count: Int(deflateBound(&stream, uLong(bytes.count))) + 64)
        var input = bytes
        let produced = input.withUnsafeMutableBufferPointer { i in
            out.withUnsafeMutableBufferPointer { o -> Int in
                stream.next_in = i.baseAddress
                stream.avail_in = UInt32(i.count)
                stream.next_out = o.baseAddress
                stream.avail_out = UInt32(o.count)
                let rc = deflate(&stream, Z_FINISH)
                precondition(rc == Z_STREAM_END, "deflate failed with \(rc)")
                return o.count - Int(stream.avail_out)
            }
        }
        out.removeLast(out.count - produced)
        return out
    }
}

/// CRC-32 (ISO-HDLC, as in PNG and gzip) via zlib.
public func crc32Checksum(_ bytes: ArraySlice<UInt8>) -> UInt32 {
    bytes.withUnsafeBufferPointer { b in
        UInt32(crc32(0, b.baseAddress, UInt32(b.count)))
    }
}
