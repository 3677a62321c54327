// Reading and writing a whole descriptor, retrying EINTR and short transfers.
#if canImport(Glibc)
import Glibc
#endif

/// Reads into `buffer` until it is full or end of file; returns the bytes read, or -1 with
/// `errno` set on an error other than EINTR.
public func readFully(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer) -> Int {
    var done = 0
    while done < buffer.count {
        let n = read(fd, buffer.baseAddress! + done, buffer.count - done)
        if n < 0 {
            if errno == EINTR { continue }
            return -1
        }
        if n == 0 { break }
        done += n
    }
    return done
}

/// Reads until end of file, at most `limit` bytes; nil with `errno` set on an error.
public func readToEnd(_ fd: Int32, limit: Int = 1 << 30) -> [UInt8]? {
    var out: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while out.count < limit {
        let want = min(chunk.count, limit - out.count)
        let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, want) }
        if n < 0 {
            if errno == EINTR { continue }
            return nil
        }
        if n == 0 { break }
        out.append(contentsOf: chunk[0..<n])
    }
    return out
}

/// Writes all of `bytes`, retrying EINTR and short writes; false (with `errno`) on an error.
@discardableResult
public func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) -> Bool {
    var offset = 0
    while offset < bytes.count {
        let n = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
        if n < 0 {
            if errno == EINTR { continue }
            return false
        }
        offset += n
    }
    return true
}
