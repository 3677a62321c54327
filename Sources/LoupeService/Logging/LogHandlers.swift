// swift-log handlers for the CLI to bootstrap: one JSON object per line (for log collectors),
// or readable text (on a terminal). Libraries only take a `Logger`; `loupe` bootstraps these.
import Logging
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Serializes whole lines to a file descriptor (stdout by default).
public final class LogSink: Sendable {
    private let lock = Mutex<Void>(())
    let fd: Int32
    public init(fd: Int32 = 1) { self.fd = fd }
    public static let standardOutput = LogSink(fd: 1)
    public static let standardError = LogSink(fd: 2)

    func write(_ bytes: [UInt8]) {
        lock.withLock { _ in bytes.withUnsafeBytes { writeAll(fd, $0) } }
    }
}

public struct LoupeLogHandler: LogHandler {
    public enum Format: Sendable { case json, text }

    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level
    let label: String
    let format: Format
    let sink: LogSink

    public init(label: String, format: Format, level: Logger.Level = .info, sink: LogSink = .standardOutput) {
        self.label = label; self.format = format; self.logLevel = level; self.sink = sink
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
        switch format {
        case .json:
            var w = JSONWriter(capacity: 256)
            w.raw("{"); w.key("ts"); w.string(timestamp())
            w.raw(","); w.key("level"); w.string(level.rawValue)
            w.raw(","); w.key("msg"); w.string(message.description)
            w.raw(","); w.key("logger"); w.string(label)
            for (k, v) in merged.sorted(by: { $0.key < $1.key }) {
                w.raw(","); w.key(k); Self.write(v, to: &w)
            }
            w.raw("}\n")
            sink.write(w.bytes)
        case .text:
            var text = "\(timestamp()) \(level.rawValue.uppercased().padding(8)) \(label): \(message)"
            for (k, v) in merged.sorted(by: { $0.key < $1.key }) { text += " \(k)=\(v)" }
            text += "\n"
            sink.write(Array(text.utf8))
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
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    let second = Int(ts.tv_sec)
    let prefix = timestampCache.withLock { cache -> String in
        if cache.second == second { return cache.text }
        var t = time_t(second)
        var parts = tm()
        gmtime_r(&t, &parts)
        func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
        cache = (second, "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)).")
        return cache.text
    }
    let ms = Int(ts.tv_nsec / 1_000_000)
    return prefix + (ms < 10 ? "00" : (ms < 100 ? "0" : "")) + String(ms) + "Z"
}

private let timestampCache = Mutex<(second: Int, text: String)>((-1, ""))

extension String {
    func padding(_ width: Int) -> String { count >= width ? self : self + String(repeating: " ", count: width - count) }
}
