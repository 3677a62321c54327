// What every test target shares: temporary directories, running a program, the package root.
// Each test target re-exports this module (its Imports.swift), so tests use it without imports.
@_exported import LoupeSystem
#if canImport(Glibc)
import Glibc
#endif

/// A test-support failure (mkdtemp, a write) with a sentence.
public struct TestSupportError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// A fresh temporary directory, removed with everything in it when released.
public final class TempDir: @unchecked Sendable {
    public let path: String

    public init() throws {
        var template = Array("/tmp/loupe-test-XXXXXX".utf8CString)
        guard let p = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw TestSupportError("mkdtemp failed: \(String(cString: strerror(errno)))")
        }
        path = String(cString: p)
    }

    deinit { _ = runProcess(["rm", "-rf", path]) }

    /// Creates `relative` (and its parents) inside the directory.
    public func mkdir(_ relative: String) throws {
        guard runProcess(["mkdir", "-p", path + "/" + relative]).status == 0 else { throw TestSupportError("mkdir \(relative)") }
    }

    /// Writes a file (created or truncated) inside the directory.
    public func write(_ relative: String, _ bytes: [UInt8]) throws {
        let fd = open(path + "/" + relative, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw TestSupportError("open \(relative): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        guard bytes.withUnsafeBytes({ writeAll(fd, $0) }) else {
            throw TestSupportError("write \(relative): \(String(cString: strerror(errno)))")
        }
    }

    public func write(_ relative: String, _ text: String) throws { try write(relative, Array(text.utf8)) }

    /// A file's text ("" when it cannot be read).
    public func read(_ relative: String) -> String {
        (try? readTextFile(path + "/" + relative)) ?? ""
    }

    /// Names in the directory (or in `sub`, e.g. "/fashion"), sorted, without . and ..
    public func files(_ sub: String = "") -> [String] {
        guard let dir = opendir(path + sub) else { return [] }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }
}

/// Runs a program (looked up in PATH) to completion; its exit status (-1 when it did not exit
/// normally or could not start) and stdout+stderr.
@discardableResult
public func runProcess(_ arguments: [String]) -> (status: Int32, output: String) {
    var fds: [Int32] = [0, 0]
    guard pipe(&fds) == 0 else { return (-1, "pipe failed") }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    posix_spawn_file_actions_adddup2(&actions, fds[1], 1)
    posix_spawn_file_actions_adddup2(&actions, fds[1], 2)
    posix_spawn_file_actions_addclose(&actions, fds[0])
    var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
    defer { for p in argv { free(p) } }
    var pid: pid_t = 0
    let rc = posix_spawnp(&pid, arguments[0], &actions, nil, &argv, environ)
    posix_spawn_file_actions_destroy(&actions)
    close(fds[1])
    let output = readToEnd(fds[0]) ?? []
    close(fds[0])
    guard rc == 0 else { return (-1, "spawn failed: \(rc)") }
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    let exitCode = (status & 0x7f) == 0 ? (status >> 8) & 0xff : -1
    return (exitCode, String(decoding: output, as: UTF8.self))
}

/// The package root (found from this file's path: Tests/LoupeTestSupport/TestSupport.swift).
public func repositoryRoot() -> String {
    var parts = (#filePath as String).split(separator: "/", omittingEmptySubsequences: false)
    parts.removeLast(3)
    return parts.joined(separator: "/")
}
