// W3C Trace Context (https://www.w3.org/TR/trace-context/): a request's `traceparent` is
// accepted, its trace id goes into the access log line, and the response carries a `traceparent`
// with the same trace id and this server's span id — or a new trace when the request had none
// (or a malformed one), so requests can be followed through a mesh. No exporter.
import LoupeHTTP
import LoupeSystem

struct TraceContext: Equatable {
    /// The response's `traceparent`, `00-<trace id>-<span id>-<flags>`: 55 bytes, built once per
    /// request straight into the string (the other fields are views of it).
    let header: String

    /// 32 lower-case hex digits, not all zero.
    var traceID: String { field(3, 32) }
    /// 16 lower-case hex digits: this server's span for the request.
    var spanID: String { field(36, 16) }
    /// 2 hex digits (01 = sampled).
    var flags: String { field(53, 2) }

    private func field(_ offset: Int, _ count: Int) -> String {
        String(decoding: header.utf8.dropFirst(offset).prefix(count), as: UTF8.self)
    }

    /// The trace id as a JSON string (34 bytes; hex digits: nothing to escape).
    func putTraceID(_ c: inout ByteCursor) {
        c.put(UInt8(ascii: "\""))
        if header.utf8.withContiguousStorageIfAvailable({ c.put(UnsafeBufferPointer(rebasing: $0[3..<35])) }) == nil {
            for b in header.utf8.dropFirst(3).prefix(32) { c.put(b) }
        }
        c.put(UInt8(ascii: "\""))
    }

    /// The trace of a request: the caller's trace id and flags from a valid `traceparent`,
    /// else a new trace (sampled; `nextID` is never zero, so neither is the id); always a new span id.
    static func forRequest(_ traceparent: String?) -> TraceContext {
        let span = nextID()
        if let parsed = traceparent.flatMap(parse) {
            return TraceContext(header: "00-\(parsed.traceID)-\(hex(span, 16))-\(parsed.flags)")
        }
        let high = nextID(), low = nextID()
        return TraceContext(header: String(unsafeUninitializedCapacity: 55) { b in
            let p = b.baseAddress!
            p[0] = 0x30; p[1] = 0x30; p[2] = 0x2D
            writeHexDigits(high, digits: 16, to: p + 3); writeHexDigits(low, digits: 16, to: p + 19)
            p[35] = 0x2D
            writeHexDigits(span, digits: 16, to: p + 36)
            p[52] = 0x2D; p[53] = 0x30; p[54] = 0x31
            return 55
        })
    }

    /// `version-traceid-parentid-flags` (version 00, or a later version's first four fields);
    /// nil when malformed, as the spec says to then start a new trace.
    static func parse(_ header: String) -> (traceID: String, flags: String)? {
        let parts = header.trimmingSpaces().split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count >= 4, parts[0].count == 2, parts[0] != "ff", isHex(parts[0]) else { return nil }
        if parts[0] == "00" && parts.count != 4 { return nil }
        let trace = parts[1], parent = parts[2], flags = parts[3]
        guard trace.count == 32, isHex(trace), trace.contains(where: { $0 != "0" }),
              parent.count == 16, isHex(parent), parent.contains(where: { $0 != "0" }),
              flags.count == 2, isHex(flags) else { return nil }
        return (String(trace), String(flags))
    }

    /// Unique, unpredictable-enough ids without a system call per request: SplitMix64 over a
    /// counter started at a random point (one getrandom at start); the counter's steps are taken
    /// in per-thread blocks (no shared cache line per id).
    private static let start = UInt64.random(in: .min ... .max)
    private static let steps = BlockCounter()

    static func nextID() -> UInt64 {
        var z = start &+ steps.next() &* 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        let id = z ^ (z >> 31)
        return id == 0 ? 1 : id
    }

    private static func isHex(_ s: Substring) -> Bool {
        s.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }
    }

    /// `digits` lower-case hex digits of `v` (16 at most), written straight into the string
    /// (also the request ids' writer).
    static func hex(_ v: UInt64, _ digits: Int) -> String {
        String(unsafeUninitializedCapacity: digits) { buffer in
            writeHexDigits(v, digits: digits, to: buffer.baseAddress!)
            return digits
        }
    }
}
