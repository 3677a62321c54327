// Whole-file reads of small files (a configuration file, /proc and cgroup entries), bounded: the
// one open + read-to-end the service, its metrics and the CPU count use.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A failed system call on a path, with its errno: "open(/etc/x): No such file or directory".
public struct SystemError: Error, CustomStringConvertible {
    public var call: String
    public var path: String
    public var errnoValue: Int32
    public init(call: String, path: String, errnoValue: Int32) {
        self.call = call; self.path = path; self.errnoValue = errnoValue
    }
    public var description: String { "\(call)(\(path)): \(String(cString: strerror(errnoValue)))" }
}

/// Reads a whole file as bytes, at most `limit` of them (a larger file comes back cut at `limit`:
/// callers that must refuse one ask for `limit + 1` and check the count).
public func readFileBytes(_ path: String, limit: Int = 1 << 30) throws -> [UInt8] {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { throw SystemError(call: "open", path: path, errnoValue: errno) }
    defer { close(fd) }
    guard let bytes = readToEnd(fd, limit: limit) else { throw SystemError(call: "read", path: path, errnoValue: errno) }
    return bytes
}

/// Reads a whole file as UTF-8 text (invalid bytes repaired), at most `limit` bytes of it.
public func readTextFile(_ path: String, limit: Int = 1 << 30) throws -> String {
    String(decoding: try readFileBytes(path, limit: limit), as: UTF8.self)
}
