import Glibc
@testable import LoupeService

/// A temporary directory removed when the value is released.
final class TempDirectory {
    let path: String
    init() throws {
        var template = Array("/tmp/loupe-service-test-XXXXXX".utf8CString)
        guard let p = mkdtemp(&template) else { throw SystemError(call: "mkdtemp", path: "/tmp", errnoValue: errno) }
        path = String(cString: p)
    }
    deinit { _ = system("rm -rf '\(path)'") }
    func write(_ name: String, _ text: String) throws { try write(name, Array(text.utf8)) }
    func write(_ name: String, _ bytes: [UInt8]) throws {
        let full = path + "/" + name
        let fd = open(full, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw SystemError(call: "open", path: full, errnoValue: errno) }
        bytes.withUnsafeBytes { writeAll(fd, $0) }
        close(fd)
    }
}

/// The package root, found from this file's path.
func repositoryRoot(file: String = #filePath) -> String {
    var parts = file.split(separator: "/", omittingEmptySubsequences: false)
    parts.removeLast(3)  // Tests/LoupeServiceTests/TestSupport.swift
    return parts.joined(separator: "/")
}
