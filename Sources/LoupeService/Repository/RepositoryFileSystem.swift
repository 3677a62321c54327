// The only place in the repository code that touches the file system. Names that come from
// requests never get here: the repository only opens paths it found by listing its own root,
// and every one of them is resolved to its real path and refused unless it stays inside the
// root (so a symlink that leads out of the repository is never followed).

import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// What identifies one state of a file's content: if any of these changed, the file changed.
struct FileIdentity: Sendable, Hashable, CustomStringConvertible {
    var device: UInt64
    var inode: UInt64
    var size: Int64
    /// Modification time, nanoseconds since the Unix epoch.
    var mtimeNanoseconds: Int64
    /// Status-change time, nanoseconds since the Unix epoch (moves on rename, chmod, write).
    var ctimeNanoseconds: Int64

    var description: String { "inode \(inode), \(size) bytes, mtime \(mtimeNanoseconds / 1_000_000_000)" }
}

/// An error of the file-system layer; a human sentence naming the path and the reason.
struct RepositoryFileError: Error, CustomStringConvertible {
    var description: String
    /// The file was modified while it was being read (retry later; not a bad file).
    var changedDuringRead = false
    init(_ description: String, changedDuringRead: Bool = false) {
        self.description = description
        self.changedDuringRead = changedDuringRead
    }
    static func errno(_ call: String, _ path: String, _ code: Int32 = Glibc.errno) -> RepositoryFileError {
        RepositoryFileError("\(call)(\(path)) failed: \(String(cString: strerror(code)))")
    }
}

enum RepositoryFileSystem {
    /// The canonical absolute path of `path` (symlinks resolved), or nil when it does not exist.
    static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    /// True when `path` (already canonical) is `root` itself or lies below it.
    static func isInside(_ path: String, root: String) -> Bool {
        if path == root { return true }
        let prefix = root.hasSuffix("/") ? root : root + "/"
        return path.hasPrefix(prefix)
    }

    enum EntryKind { case directory, regularFile, other }

    /// Kind of the file `path` leads to (following symlinks), or nil when it does not exist.
    static func kind(_ path: String) -> EntryKind? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        switch st.st_mode & S_IFMT {
        case S_IFDIR: return .directory
        case S_IFREG: return .regularFile
        default: return .other
        }
    }

    /// Names in the directory, without "." and "..", sorted; throws when it cannot be listed.
    /// Fault seam for tests: directories whose listing fails with the given errno (EIO, or EACCES,
    /// which tests run as root cannot get from permissions). Empty outside tests.
    static let listFailures = Mutex<[String: Int32]>([:])

    static func list(_ directory: String) throws -> [String] {
        if let code = listFailures.withLock({ $0.isEmpty ? nil : $0[directory] }) { throw RepositoryFileError.errno("opendir", directory, code) }
        guard let dir = opendir(directory) else { throw RepositoryFileError.errno("opendir", directory) }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafePointer(to: entry.pointee.d_name) { pointer in
                pointer.withMemoryRebound(to: CChar.self, capacity: Int(NAME_MAX) + 1) { String(cString: $0) }
            }
            if name == "." || name == ".." { continue }
            names.append(name)
        }
        return names.sorted()
    }

    static func identity(of st: stat) -> FileIdentity {
        FileIdentity(
            device: UInt64(st.st_dev), inode: UInt64(st.st_ino), size: Int64(st.st_size),
            mtimeNanoseconds: Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec),
            ctimeNanoseconds: Int64(st.st_ctim.tv_sec) * 1_000_000_000 + Int64(st.st_ctim.tv_nsec))
    }

    /// Identity of the file `path` leads to, or nil when it does not exist.
    static func identity(_ path: String) -> FileIdentity? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return identity(of: st)
    }

    /// Reads a whole regular file. `path` must be canonical (the last component is opened with
    /// O_NOFOLLOW, so a symlink swapped in after resolution is refused). Returns the bytes and the
    /// file's identity, and throws if the file changed while it was read.
    static func readStable(_ path: String, maxBytes: Int) throws -> (bytes: [UInt8], identity: FileIdentity) {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else { throw RepositoryFileError.errno("open", path) }
        defer { close(fd) }
        var before = stat()
        guard fstat(fd, &before) == 0 else { throw RepositoryFileError.errno("fstat", path) }
        guard before.st_mode & S_IFMT == S_IFREG else { throw RepositoryFileError("\(path) is not a regular file") }
        let size = Int(before.st_size)
        guard size <= maxBytes else {
            throw RepositoryFileError("\(path) is \(size) bytes, over the limit of \(maxBytes) bytes")
        }
        var bytes = [UInt8](repeating: 0, count: size)
        let done = bytes.withUnsafeMutableBytes { readFully(fd, into: $0) }
        if done < 0 { throw RepositoryFileError.errno("read", path) }
        var after = stat()
        guard fstat(fd, &after) == 0 else { throw RepositoryFileError.errno("fstat", path) }
        let first = identity(of: before), second = identity(of: after)
        guard done == size, first == second else {
            throw RepositoryFileError("\(path) changed while it was being read", changedDuringRead: true)
        }
        return (bytes, first)
    }

    /// Wall-clock time now, nanoseconds since the Unix epoch (comparable with file mtimes).
    static func nowNanoseconds() -> Int64 { wallClockNanoseconds() }
}
