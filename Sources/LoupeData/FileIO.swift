#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Small POSIX file helpers: whole-file reads with a size cap, and atomic replacement
/// (temp file in the same directory, fsync, rename, fsync of the directory).
public enum FileIO {
    /// Reads a whole regular file. Files larger than `maxBytes` are rejected before reading.
    public static func readFile(_ path: String, maxBytes: Int = 1 << 31) throws -> [UInt8] {
        let fd = retryingOpen(path, O_RDONLY | O_CLOEXEC, 0)
        if fd < 0 { throw LoupeDataError.io(path: path, operation: "open", errno: errno) }
        defer { close(fd) }
        var st = stat()
        if fstat(fd, &st) != 0 { throw LoupeDataError.io(path: path, operation: "fstat", errno: errno) }
        if (st.st_mode & S_IFMT) == S_IFDIR { throw LoupeDataError.io(path: path, operation: "read", errno: EISDIR) }
        let size = Int(st.st_size)
        if size > maxBytes { throw LoupeDataError.io(path: path, operation: "read (file exceeds \(maxBytes) bytes)", errno: EFBIG) }
        var bytes = [UInt8](repeating: 0, count: size)
        var done = 0
        while done < size {
            let n = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress! + done, size - done) }
            if n < 0 {
                if errno == EINTR { continue }
                throw LoupeDataError.io(path: path, operation: "read", errno: errno)
            }
            if n == 0 { bytes.removeLast(size - done); break }   // file shrank while reading
            done += n
        }
        return bytes
    }

    /// Whether a path exists and is a regular file.
    public static func isRegularFile(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG
    }

    /// Whether a path exists and is a directory.
    public static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    /// Creates a directory and its parents (like `mkdir -p`).
    public static func createDirectories(_ path: String) throws {
        if path.isEmpty || isDirectory(path) { return }
        let parent = directoryName(path)
        if parent != path { try createDirectories(parent) }
        if mkdir(path, 0o755) != 0 && errno != EEXIST {
            throw LoupeDataError.io(path: path, operation: "mkdir", errno: errno)
        }
    }

    /// The directory part of a path ("." for a bare file name).
    public static func directoryName(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        if slash == path.startIndex { return "/" }
        return String(path[..<slash])
    }

    /// Writes `bytes` to `path` atomically: a uniquely named temp file in the same directory
    /// is written and fsynced, renamed over `path`, then the directory is fsynced. A crash or
    /// a signal leaves either the old file or the new one, never a partial file; on error
    /// the temp file is removed.
    public static func writeAtomically(_ bytes: [UInt8], to path: String, mode: mode_t = 0o644) throws {
        let directory = directoryName(path)
        var template = Array("\(path).XXXXXX.tmp".utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemps($0.baseAddress!, 4) }
        if fd < 0 { throw LoupeDataError.io(path: path, operation: "create temp file", errno: errno) }
        let tempPath = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        var committed = false
        defer {
            if !committed { unlink(tempPath) }
        }
        do {
            defer { close(fd) }
            var done = 0
            while done < bytes.count {
                let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + done, bytes.count - done) }
                if n < 0 {
                    if errno == EINTR { continue }
                    throw LoupeDataError.io(path: tempPath, operation: "write", errno: errno)
                }
                done += n
            }
            if fchmod(fd, mode) != 0 { throw LoupeDataError.io(path: tempPath, operation: "fchmod", errno: errno) }
            if fsync(fd) != 0 { throw LoupeDataError.io(path: tempPath, operation: "fsync", errno: errno) }
        }
        if rename(tempPath, path) != 0 { throw LoupeDataError.io(path: path, operation: "rename", errno: errno) }
        committed = true
        let dfd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 {
            _ = fsync(dfd)
            close(dfd)
        }
    }

    private static func retryingOpen(_ path: String, _ flags: Int32, _ mode: mode_t) -> Int32 {
        while true {
            let fd = open(path, flags, mode)
            if fd >= 0 || errno != EINTR { return fd }
        }
    }
}
