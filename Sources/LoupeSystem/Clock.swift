// The one home of the project's clocks, sleeping, threads and whole-descriptor I/O loops (every
// other target calls these instead of libc): LoupeHTTP, LoupeData, LoupeEngine's trainer,
// LoupeService and the CLI.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Monotonic clock in nanoseconds (for durations; vDSO, no syscall).
@inline(__always)
public func monotonicNanoseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
}

/// Monotonic clock in seconds (for durations).
@inline(__always)
public func monotonicSeconds() -> Double { Double(monotonicNanoseconds()) / 1e9 }

/// CPU time of the calling thread in nanoseconds: a duration measured with it is not inflated
/// while the thread waits for a CPU (for work on low-priority threads, e.g. shadow inference).
@inline(__always)
public func threadCPUNanoseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
    return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
}

/// Wall-clock time in nanoseconds since the Unix epoch (comparable with file mtimes).
public func wallClockNanoseconds() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
}

/// Wall-clock time in seconds since the Unix epoch (for timestamps).
public func wallClockSeconds() -> Double { Double(wallClockNanoseconds()) / 1e9 }

/// Sleeps the calling thread for `seconds`, resuming after signal interruptions.
public func sleepSeconds(_ seconds: Double) {
    let ns = Int(max(0, seconds) * 1e9)
    var ts = timespec(tv_sec: ns / 1_000_000_000, tv_nsec: ns % 1_000_000_000)
    var remaining = timespec()
    while nanosleep(&ts, &remaining) != 0 && errno == EINTR { ts = remaining }
}
