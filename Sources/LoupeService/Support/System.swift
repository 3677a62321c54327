// Small OS helpers used by the service: clocks, whole-file reads, CPU count. The only place in
// LoupeService (with ConditionLock and WorkerThread) that talks to libc directly.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Monotonic clock in nanoseconds (for durations).
@inline(__always)
public func monotonicNanoseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
}

/// Wall-clock time in seconds since the Unix epoch (for timestamps).
public func wallClockSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

public func onlineProcessorCount() -> Int {
    Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
}

struct SystemError: Error, CustomStringConvertible {
    var call: String
    var path: String
    var errnoValue: Int32
    var description: String { "\(call)(\(path)): \(String(cString: strerror(errnoValue)))" }
}

/// Reads a whole file as bytes (small files: config, /proc entries, models).
func readFileBytes(_ path: String, limit: Int = 1 << 30) throws -> [UInt8] {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { throw SystemError(call: "open", path: path, errnoValue: errno) }
    defer { close(fd) }
    var out: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while out.count < limit {
        let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n < 0 {
            if errno == EINTR { continue }
            throw SystemError(call: "read", path: path, errnoValue: errno)
        }
        if n == 0 { break }
        out.append(contentsOf: chunk[0..<n])
    }
    return out
}

func readTextFile(_ path: String) throws -> String {
    String(decoding: try readFileBytes(path), as: UTF8.self)
}

/// True when file descriptor `fd` is a terminal (logs are text there, JSON elsewhere).
public func isTerminal(_ fd: Int32) -> Bool { isatty(fd) != 0 }

/// Writes all bytes to a file descriptor, retrying on EINTR and short writes.
func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) {
    var offset = 0
    while offset < bytes.count {
        let n = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
        if n < 0 {
            if errno == EINTR { continue }
            return
        }
        offset += n
    }
}

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

/// Sleeps the calling thread for `seconds`, resuming after signal interruptions.
func sleepSeconds(_ seconds: Double) {
    let ns = Int(max(0, seconds) * 1e9)
    var ts = timespec(tv_sec: ns / 1_000_000_000, tv_nsec: ns % 1_000_000_000)
    var remaining = timespec()
    while nanosleep(&ts, &remaining) != 0 && errno == EINTR { ts = remaining }
}
