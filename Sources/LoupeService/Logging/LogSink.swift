// The sink every log line goes through: whole lines to a file descriptor, buffered by `loupe serve`
// and written out by one flusher thread. The handlers that format lines are LogHandlers.swift.
import LoupeHTTP
import LoupeSystem
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Serializes whole lines to a file descriptor (stdout by default).
///
/// Synchronous until `startBuffering()` (the CLI's one-shot commands stay that way). `loupe serve`
/// turns buffering on: then info-and-below lines (the access log is one per request) are appended
/// to a bounded buffer that a background thread writes out every `flushInterval`, so request
/// threads never make a write system call of their own and a slow or blocked stdout cannot stall
/// them. When the buffer is full (the reader of stdout has stopped reading) further buffered
/// lines are dropped and counted (`droppedLines`, exported as loupe_log_lines_dropped_total)
/// rather than blocking a request. Warnings and errors still go out at once, after whatever is
/// buffered, so nothing important waits for the flusher or is lost on a sudden exit; `flush()`
/// writes out the rest (serve calls it before exiting).
public final class LogSink: @unchecked Sendable {
    private let lock = ConditionLock()
    // Protected by `lock` (so one thread at a time, and no access inside another: no dynamic
    // exclusivity check, ≈ 75 instructions an access; see LoupeHTTP's Connection):
    @exclusivity(unchecked) private var buffer: [UInt8] = []
    @exclusivity(unchecked) private var buffering = false
    @exclusivity(unchecked) private var dropped = 0
    /// The flusher's other buffer (protected by `writeLock`): buffered lines and it trade places
    /// at each write, so neither grows from empty again every interval.
    @exclusivity(unchecked) private var spare: [UInt8] = []
    /// Serializes the actual writes (the flusher's and the synchronous ones), keeping line order.
    private let writeLock = Mutex<Void>(())
    let fd: Int32
    /// Buffered bytes at most; lines beyond are dropped.
    let capacity: Int
    let flushIntervalNanoseconds: UInt64

    public init(fd: Int32 = 1, capacity: Int = 4 << 20, flushIntervalMilliseconds: Int = 20) {
        self.fd = fd; self.capacity = capacity
        self.flushIntervalNanoseconds = UInt64(max(1, flushIntervalMilliseconds)) * 1_000_000
    }
    public static let standardOutput = LogSink(fd: 1)
    public static let standardError = LogSink(fd: 2)

    /// Lines dropped because the buffer was full.
    public var droppedLines: Int { lock.withLock { dropped } }

    /// Buffers info-and-below lines from now on and starts the flusher thread. Idempotent.
    public func startBuffering() {
        let start = lock.withLock { () -> Bool in
            defer { buffering = true }
            return !buffering
        }
        guard start else { return }
        startThread(name: "loupe-log") { [self] in
            while true {
                lock.lock()
                while buffer.isEmpty { lock.wait() }
                lock.unlock()
                // Let lines gather for one interval: at most one write per interval.
                sleepSeconds(Double(flushIntervalNanoseconds) / 1e9)
                flush()
            }
        }
    }

    /// Writes out everything buffered, on the calling thread.
    public func flush() {
        writeLock.withLock { _ in writePending() }
    }

    /// Call with `writeLock` held.
    private func writePending() {
        lock.withLock { swap(&spare, &buffer) }   // take the bytes; appenders continue in the emptied spare
        if !spare.isEmpty { spare.withUnsafeBytes { writeAll(fd, $0) } }
        // Keep the capacity for the next interval, unless a burst made it large.
        if spare.capacity > 1 << 20 { spare = [] } else { spare.removeAll(keepingCapacity: true) }
    }

    /// Appends one non-urgent line of at most `maxBytes` that `format` writes through a cursor into
    /// the calling thread's own scratch memory (outside the lock, no array per line), then copied
    /// into the buffer under the lock: the event loops share the lock for one copy a line, not for
    /// the formatting (GET /health, issue 16). Dropped and counted like `write`'s when it would pass
    /// `capacity`; before `startBuffering` the line is written at once.
    func appendLine(maxBytes: Int, _ format: (inout ByteCursor) -> Void) {
        Self.scratch.withValue { s in
            var c = ByteCursor(s.memory(maxBytes))
            format(&c)
            write(UnsafeRawBufferPointer(c.written), urgent: false)
        }
    }

    /// A thread's scratch memory for lines: kept, grown when a line needs more.
    private final class Scratch {
        @exclusivity(unchecked) private var buffer = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: 1024)
        func memory(_ bytes: Int) -> UnsafeMutableBufferPointer<UInt8> {
            if buffer.count < bytes {
                buffer.deallocate()
                buffer = .allocate(capacity: max(bytes, 2 * buffer.count))
            }
            return buffer
        }
        deinit { buffer.deallocate() }
    }
    private static let scratch = PerThread { Scratch() }

    /// Writes one or more whole lines. Non-`urgent` ones are buffered once buffering is on;
    /// `urgent` ones (warnings, errors) are written at once, after what is buffered.
    func write(_ bytes: [UInt8], urgent: Bool = true) {
        bytes.withUnsafeBytes { write($0, urgent: urgent) }
    }

    func write(_ bytes: UnsafeRawBufferPointer, urgent: Bool) {
        if !urgent {
            let buffered = lock.withLock { () -> Bool in
                guard buffering else { return false }
                if buffer.count + bytes.count > capacity {
                    dropped += 1
                } else {
                    if buffer.isEmpty { lock.signal() }
                    buffer.append(contentsOf: bytes)
                }
                return true
            }
            if buffered { return }
        }
        writeLock.withLock { _ in
            writePending()
            writeAll(fd, bytes)
        }
    }
}
