// swift-log handlers for the CLI to bootstrap: one JSON object per line (for log collectors),
// or readable text (on a terminal). Libraries only take a `Logger`; `loupe` bootstraps these.
// The lines go to a LogSink (LogSink.swift).
import Logging
import LoupeHTTP
import LoupeSystem
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

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
