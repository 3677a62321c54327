// swift-log handlers for the CLI to bootstrap: one JSON object per line (for log collectors),
// or readable text (on a terminal). Libraries only take a `Logger`; `loupe` bootstraps these.
import Logging
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

public struct LoupeLogHandler: LogHandler {
    public enum Format: Sendable { case json, text }

    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level
    let label: String
    let format: Format
    let sink: LogSink
    /// `,"logger":"<label>"`, escaped once (`logJSONLine` writes it on every access log line).
    private let loggerField: [UInt8]

    public init(label: String, format: Format, level: Logger.Level = .info, sink: LogSink = .standardOutput) {
        self.label = label; self.format = format; self.logLevel = level; self.sink = sink
        var w = JSONWriter(capacity: 16 + label.utf8.count)
        w.raw(",\"logger\":"); w.string(label)
        loggerField = w.bytes
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        let level = event.level, message = event.message
        var merged: Logger.Metadata
        if metadata.isEmpty, let explicit = event.metadata {
            merged = explicit  // the usual case (access log): no second dictionary to build
        } else {
            merged = metadata
            if let explicit = event.metadata { merged.merge(explicit) { _, new in new } }
        }
        if let error = event.error { merged["error"] = .string("\(error)") }
        emit(level: level, message: message.description, fields: merged.sorted(by: { $0.key < $1.key }))
    }

    /// A JSON line whose fields the caller writes itself, for one logged with the same fields on
    /// every request (the access log): `fields` puts `,"key":value` pairs in key order after `ts`,
    /// `level`, `msg` and `logger`, at most `fieldBytes` of them, through a cursor straight into
    /// the calling thread's scratch memory — no metadata values, no dictionary, no array per line.
    /// Returns false, writing nothing, when this handler writes text or carries metadata of its
    /// own (then the caller logs through `Logger` as usual); a level below the handler's is
    /// dropped and counts as written.
    public func logJSONLine(level: Logger.Level, message: StaticString, fieldBytes: Int,
                            fields: (inout ByteCursor) -> Void) -> Bool {
        guard metadata.isEmpty, format == .json else { return false }
        guard level >= logLevel else { return true }
        let loggerField = self.loggerField   // captured alone: not a copy of the whole handler per line
        // `{"ts":` 6, the time 26, `,"level":` 9, the longest level 10, `,"msg":` 7, `}` and LF 2.
        let maxBytes = 60 + jsonStringBound(message.utf8CodeUnitCount) + loggerField.count + fieldBytes
        func line(_ c: inout ByteCursor) {
            c.put("{\"ts\":"); putTimestamp(&c)
            c.put(",\"level\":"); c.put(Self.quoted(level))
            c.put(",\"msg\":"); c.putJSONString(UnsafeBufferPointer(start: message.utf8Start, count: message.utf8CodeUnitCount))
            loggerField.withUnsafeBufferPointer { c.put($0) }
            fields(&c)
            c.put("}\n")
        }
        if level >= .warning {
            withUnsafeTemporaryAllocation(of: UInt8.self, capacity: maxBytes) { memory in
                var c = ByteCursor(memory)
                line(&c)
                sink.write(UnsafeRawBufferPointer(c.written), urgent: true)
            }
        } else {
            sink.appendLine(maxBytes: maxBytes, line)
        }
        return true
    }

    /// The level's name as a JSON string (its `rawValue`, quoted; nothing to escape).
    static func quoted(_ level: Logger.Level) -> StaticString {
        switch level {
        case .trace: "\"trace\""
        case .debug: "\"debug\""
        case .info: "\"info\""
        case .notice: "\"notice\""
        case .warning: "\"warning\""
        case .error: "\"error\""
        case .critical: "\"critical\""
        }
    }

    private func emit(level: Logger.Level, message: String, fields: [(key: String, value: Logger.Metadata.Value)]) {
        switch format {
        case .json:
            var w = JSONWriter(capacity: 256)
            w.raw("{"); w.key("ts"); w.string(timestamp())
            w.raw(","); w.key("level"); w.string(level.rawValue)
            w.raw(","); w.key("msg"); w.string(message)
            w.raw(","); w.key("logger"); w.string(label)
            for (k, v) in fields {
                w.raw(","); w.key(k); Self.write(v, to: &w)
            }
            w.raw("}\n")
            sink.write(w.bytes, urgent: level >= .warning)
        case .text:
            var text = "\(timestamp()) \(level.rawValue.uppercased().padding(8)) \(label): \(message)"
            for (k, v) in fields { text += " \(k)=\(v)" }
            text += "\n"
            sink.write(Array(text.utf8), urgent: level >= .warning)
        }
    }

    static func write(_ value: Logger.Metadata.Value, to w: inout JSONWriter) {
        switch value {
        case .string(let s): w.string(s)
        case .stringConvertible(let c):
            if let i = c as? Int { w.int(i) } else if let d = c as? Double { w.double(d) } else if let b = c as? Bool { w.bool(b) } else { w.string(c.description) }
        case .array(let items):
            w.raw("[")
            for (i, item) in items.enumerated() { if i > 0 { w.raw(",") }; write(item, to: &w) }
            w.raw("]")
        case .dictionary(let dict):
            w.raw("{")
            for (i, (k, v)) in dict.sorted(by: { $0.key < $1.key }).enumerated() {
                if i > 0 { w.raw(",") }
                w.key(k); write(v, to: &w)
            }
            w.raw("}")
        }
    }
}

/// UTC time as RFC 3339 with milliseconds: 2026-11-29T08:31:06.123Z. The text up to the seconds
/// is cached per second (the access log writes one line per request).
func timestamp() -> String {
    let now = wallClockNanoseconds()
    let ms = Int(now % 1_000_000_000 / 1_000_000)
    return withTimestampPrefix(now) { String(decoding: $0, as: UTF8.self) } + (ms < 10 ? "00" : (ms < 100 ? "0" : "")) + String(ms) + "Z"
}

/// `timestamp()` as a JSON string (26 bytes), put without a temporary String.
func putTimestamp(_ c: inout ByteCursor) {
    let now = wallClockNanoseconds()
    let ms = Int(now % 1_000_000_000 / 1_000_000)
    c.put("\"")
    withTimestampPrefix(now) { c.put($0) }
    c.put(UInt8(truncatingIfNeeded: ms / 100) &+ 0x30)
    c.put(UInt8(truncatingIfNeeded: ms / 10 % 10) &+ 0x30)
    c.put(UInt8(truncatingIfNeeded: ms % 10) &+ 0x30)
    c.put("Z\"")
}

/// Calls `body` with "2026-11-29T08:31:06." for the wall-clock time `now` (ns), formatted once per
/// second and thread (each thread keeps its own: no lock shared by the event loops at every access
/// log line).
private func withTimestampPrefix<R>(_ now: Int64, _ body: (UnsafeBufferPointer<UInt8>) -> R) -> R {
    let second = Int(now / 1_000_000_000)
    return timestampCache.withValue { cache in
        if cache.second != second {
            var t = time_t(second)
            var parts = tm()
            gmtime_r(&t, &parts)
            func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
            cache.second = second
            cache.text = Array("\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)).".utf8)
        }
        return cache.text.withUnsafeBufferPointer(body)
    }
}

/// One thread's, never touched re-entrantly: no dynamic exclusivity check (≈ 75 instructions an
/// access; see LoupeHTTP's Connection).
private final class TimestampCache {
    @exclusivity(unchecked) var second = -1
    @exclusivity(unchecked) var text: [UInt8] = []
}

private let timestampCache = PerThread { TimestampCache() }

extension String {
    func padding(_ width: Int) -> String { count >= width ? self : self + String(repeating: " ", count: width - count) }
}
