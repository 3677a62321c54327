import LoupeSystem
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
        let done = bytes.withUnsafeMutableBytes { readFully(fd, into: $0) }
        if done < 0 { throw LoupeDataError.io(path: path, operation: "read", errno: errno) }
        if done < size { bytes.removeLast(size - done) }   // file shrank while reading
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
    /// the temp file is removed (and a kill -9 leaves it for `removeStaleTemporaries`).
    public static func writeAtomically(_ bytes: [UInt8], to path: String, mode: mode_t = 0o644) throws {
        try writeAtomically([(bytes, path)], mode: mode)
    }

    /// Writes several files as one step, as far as a file system allows: every file is first
    /// written and fsynced to a temp file (a full disk fails here, and then nothing changed), and
    /// only then are they renamed into place, in order. So a model and its history.json appear
    /// together or not at all.
    public static func writeAtomically(_ files: [(bytes: [UInt8], path: String)], mode: mode_t = 0o644) throws {
        var temps: [String] = []
        var committed = 0
        defer { for t in temps.dropFirst(committed) { unlink(t) } }
        for (bytes, path) in files { temps.append(try writeTemporary(bytes, for: path, mode: mode)) }
        for (temp, (_, path)) in zip(temps, files) {
            if rename(temp, path) != 0 { throw LoupeDataError.io(path: path, operation: "rename", errno: errno) }
            committed += 1
        }
        for directory in Set(files.map { directoryName($0.path) }) {
            let dfd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            if dfd >= 0 {
                _ = fsync(dfd)
                close(dfd)
            }
        }
    }

    /// The temp-file name of this process for `path`: `<path>.<pid>.XXXXXX.tmp`.
    static func temporaryTemplate(for path: String) -> String { "\(path).\(getpid()).XXXXXX.tmp" }

    /// Writes and fsyncs a new temp file beside `path`; returns its path (removed on error).
    private static func writeTemporary(_ bytes: [UInt8], for path: String, mode: mode_t) throws -> String {
        var template = Array(temporaryTemplate(for: path).utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemps($0.baseAddress!, 4) }
        if fd < 0 { throw LoupeDataError.io(path: path, operation: "create temp file", errno: errno) }
        let tempPath = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        var written = false
        defer {
            if !written { unlink(tempPath) }
        }
        do {
            defer { close(fd) }
            guard bytes.withUnsafeBytes({ writeAll(fd, $0) }) else {
                throw LoupeDataError.io(path: tempPath, operation: "write", errno: errno)
            }
            if fchmod(fd, mode) != 0 { throw LoupeDataError.io(path: tempPath, operation: "fchmod", errno: errno) }
            if fsync(fd) != 0 { throw LoupeDataError.io(path: tempPath, operation: "fsync", errno: errno) }
        }
        written = true
        return tempPath
    }

    /// Removes what a killed loupe process left in `directory`: temp files `<name>.<pid>.XXXXXX.tmp`
    /// and temp directories `.tmp-<pid>-XXXXXX` (with their files) whose process `<pid>` no longer
    /// exists. Nothing else is touched, nor a temp of a process still running. Best effort (a
    /// read-only directory is left as it is). Returns the paths removed.
    @discardableResult
    public static func removeStaleTemporaries(in directory: String) -> [String] {
        guard let dir = opendir(directory) else { return [] }
        var names: [String] = []
        while let entry = readdir(dir) {
            names.append(withUnsafeBytes(of: entry.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) })
        }
        closedir(dir)
        var removed: [String] = []
        for name in names {
            guard let pid = temporaryOwner(name), !processExists(pid) else { continue }
            let path = directory + "/" + name
            if name.hasPrefix(".tmp-") {
                for inner in removeStaleTemporariesContents(path) { unlink(inner) }
                if rmdir(path) == 0 { removed.append(path) }
            } else if unlink(path) == 0 {
                removed.append(path)
            }
        }
        return removed
    }

    /// The pid in a temp name of ours (`x.<pid>.XXXXXX.tmp` or `.tmp-<pid>-XXXXXX`), else nil.
    static func temporaryOwner(_ name: String) -> pid_t? {
        if name.hasPrefix(".tmp-") {
            let parts = name.dropFirst(5).split(separator: "-", omittingEmptySubsequences: false)
            guard parts.count == 2, parts[1].count == 6, let pid = pid_t(parts[0]), pid > 0 else { return nil }
            return pid
        }
        guard name.hasSuffix(".tmp") else { return nil }
        let parts = name.dropLast(4).split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count >= 3, parts[parts.count - 1].count == 6, let pid = pid_t(parts[parts.count - 2]), pid > 0 else { return nil }
        return pid
    }

    private static func processExists(_ pid: pid_t) -> Bool { kill(pid, 0) == 0 || errno == EPERM }

    private static func removeStaleTemporariesContents(_ directory: String) -> [String] {
        guard let dir = opendir(directory) else { return [] }
        defer { closedir(dir) }
        var out: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
            if name != "." && name != ".." { out.append(directory + "/" + name) }
        }
        return out
    }

    private static func retryingOpen(_ path: String, _ flags: Int32, _ mode: mode_t) -> Int32 {
        while true {
            let fd = open(path, flags, mode)
            if fd >= 0 || errno != EINTR { return fd }
        }
    }
}
