// Small OS helpers used by the service: whole-file reads, process start. Clocks,
// sleeping, threads and descriptor loops are LoupeSystem's (re-exported to the service's users).
@_exported import LoupeSystem
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

struct SystemError: Error, CustomStringConvertible {
    var call: String
    var path: String
    var errnoValue: Int32
    var description: String { "\(call)(\(path)): \(String(cString: strerror(errnoValue)))" }
}

/// Reads a whole file as bytes (small files: config, /proc entries).
func readFileBytes(_ path: String, limit: Int = 1 << 30) throws -> [UInt8] {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { throw SystemError(call: "open", path: path, errnoValue: errno) }
    defer { close(fd) }
    guard let bytes = readToEnd(fd, limit: limit) else { throw SystemError(call: "read", path: path, errnoValue: errno) }
    return bytes
}

func readTextFile(_ path: String) throws -> String {
    String(decoding: try readFileBytes(path), as: UTF8.self)
}

/// True when file descriptor `fd` is a terminal (logs are text there, JSON elsewhere).
public func isTerminal(_ fd: Int32) -> Bool { isatty(fd) != 0 }

/// When this process started, on the monotonic clock (ns), from /proc/self/stat (10 ms
/// resolution): start-to-ready then includes exec, dynamic loading and runtime start-up.
public func processStartMonotonicNanoseconds() -> UInt64 {
    let now = monotonicNanoseconds()
    guard let stat = ProcessMetrics.readSelfStat() else { return now }
    var boot = timespec()
    clock_gettime(CLOCK_BOOTTIME, &boot)
    let bootNow = Double(boot.tv_sec) + Double(boot.tv_nsec) / 1e9
    let startedSecondsAgo = bootNow - stat.starttime / Double(sysconf(Int32(_SC_CLK_TCK)))
    guard startedSecondsAgo >= 0, startedSecondsAgo < 3600 else { return now }
    return now - UInt64(startedSecondsAgo * 1e9)
}

/// The process environment as a dictionary.
public func environmentVariables() -> [String: String] {
    var result: [String: String] = [:]
    var pointer = environ
    while let entry = pointer.pointee {
        let text = String(cString: entry)
        if let eq = text.firstIndex(of: "=") {
            result[String(text[..<eq])] = String(text[text.index(after: eq)...])
        }
        pointer += 1
    }
    return result
}
