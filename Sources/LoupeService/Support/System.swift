// Small OS helpers used by the service: terminal check, process start, the environment. Clocks,
// sleeping, threads, descriptor loops and whole-file reads are LoupeSystem's (re-exported to the
// service's users).
@_exported import LoupeSystem
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

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
