// The per-request writers of the service layer against plain references: trace context ids,
// decimal numbers written from integers, and the access log's in-place JSON line.
import Glibc
import Logging
import LoupeHTTP
import Testing
@testable import LoupeService

@Suite struct RequestWritersTests {
    private func isLowerHex(_ s: String) -> Bool { s.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) } }

    @Test func idsAreWrittenAsTheirLowHexDigits() {
        #expect(TraceContext.hex(0x0123_4567_89AB_CDEF, 16) == "0123456789abcdef")
        #expect(TraceContext.hex(0xFEDC_BA98_7654_3210, 16) == "fedcba9876543210")
        #expect(TraceContext.hex(0x1_2345_6789_ABCD, 8) == "6789abcd")
        #expect(TraceContext.hex(0x2A, 4) == "002a")
    }

    @Test func aNewTraceHasTheW3CShapeAndFreshIDs() {
        var seen = Set<String>()
        for _ in 0..<1000 {
            let t = TraceContext.forRequest(nil)
            #expect(t.header.utf8.count == 55)
            #expect(t.header == "00-\(t.traceID)-\(t.spanID)-01")
            #expect(t.traceID.utf8.count == 32 && isLowerHex(t.traceID) && t.traceID.contains { $0 != "0" })
            #expect(t.spanID.utf8.count == 16 && isLowerHex(t.spanID) && t.spanID.contains { $0 != "0" })
            #expect(t.flags == "01")
            #expect(TraceContext.parse(t.header)?.traceID == t.traceID)   // what we send, a peer accepts
            seen.insert(t.traceID)
        }
        #expect(seen.count == 1000)
    }

    @Test func theCallersTraceIsKeptWithANewSpan() {
        let parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"
        let t = TraceContext.forRequest(parent)
        #expect(t.traceID == "4bf92f3577b34da6a3ce929d0e0e4736")
        #expect(t.flags == "00")
        #expect(t.spanID != "00f067aa0ba902b7" && t.spanID.utf8.count == 16)
        let written = withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 34) { memory in
            var c = ByteCursor(memory)
            t.putTraceID(&c)
            return String(decoding: c.written, as: UTF8.self)
        }
        #expect(written == "\"4bf92f3577b34da6a3ce929d0e0e4736\"")
        // Malformed parents start a new trace, as the spec says.
        for bad in ["", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7", "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
                    "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"] {
            #expect(TraceContext.forRequest(bad).traceID != "4bf92f3577b34da6a3ce929d0e0e4736", "\(bad)")
        }
    }

    /// `decimal` prints what a Double of the same value prints, wherever Double's text is not
    /// in exponent form (and the same number where it is).
    @Test func decimalsFromIntegersReadBackAsTheirValue() {
        var values = [0, 1, 5, 9, 10, 55, 100, 999, 1000, 1001, 1500, 12_345, 1_000_000, 123_456_789, -1, -1500, Int(Int32.max)]
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<2000 { values.append(Int.random(in: -10_000_000...10_000_000, using: &rng)) }
        for scale in 1...9 {
            var unit = 1.0
            for _ in 0..<scale { unit *= 10 }
            for v in values {
                var w = JSONWriter(capacity: 0)
                w.decimal(v, scale: scale)
                let text = String(decoding: w.bytes, as: UTF8.self)
                let reference = Double(v) / unit
                #expect(Double(text) == reference, "\(v) at scale \(scale): \(text)")
                if !reference.description.contains("e") { #expect(text == reference.description, "\(v) at scale \(scale)") }
            }
        }
    }

    @Test func theAccessLogLineIsOneJSONObjectInKeyOrder() throws {
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        defer { close(fds[0]); close(fds[1]) }
        _ = fcntl(fds[0], F_SETFL, O_NONBLOCK)
        let sink = LogSink(fd: fds[1], capacity: 1 << 20, flushIntervalMilliseconds: 60_000)
        let handler = LoupeLogHandler(label: "loupe", format: .json, level: .info, sink: sink)
        let written = handler.logJSONLine(level: .info, message: "request", fieldBytes: 15 + 2 * ByteCursor.decimalBytes + jsonStringBound(3)) { c in
            c.put(",\"a\":"); c.putDecimal(55, scale: 3); c.put(",\"b\":"); c.putJSONString("x\"y"); c.put(",\"c\":"); c.putInt(-12)
        }
        #expect(written)
        var buffer = [UInt8](repeating: 0, count: 4096)
        let n = read(fds[0], &buffer, buffer.count)
        let line = String(decoding: buffer[0..<max(0, n)], as: UTF8.self)
        #expect(line.hasPrefix("{\"ts\":\"20") && line.hasSuffix("\",\"level\":\"info\",\"msg\":\"request\",\"logger\":\"loupe\",\"a\":0.055,\"b\":\"x\\\"y\",\"c\":-12}\n"), "\(line)")
        // Below the level: nothing written, but handled. Text format or handler metadata: not handled.
        #expect(handler.logJSONLine(level: .debug, message: "request", fieldBytes: 0) { _ in Issue.record("formatted a dropped line") })
        #expect(!LoupeLogHandler(label: "loupe", format: .text, sink: sink).logJSONLine(level: .info, message: "request", fieldBytes: 0) { _ in })
        var tagged = handler
        tagged.metadata["k"] = "v"
        #expect(!tagged.logJSONLine(level: .info, message: "request", fieldBytes: 0) { _ in })
    }

    @Test func levelNamesWrittenFromLiteralsAreTheLevelsRawValues() {
        for level in Logger.Level.allCases {
            let quoted = LoupeLogHandler.quoted(level)
            let text = String(decoding: UnsafeBufferPointer(start: quoted.utf8Start, count: quoted.utf8CodeUnitCount), as: UTF8.self)
            #expect(text == "\"\(level.rawValue)\"")
        }
    }

    @Test func bufferedLinesAreFormattedInPlaceAndDroppedWhole() {
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        defer { close(fds[0]); close(fds[1]) }
        _ = fcntl(fds[0], F_SETFL, O_NONBLOCK)
        let sink = LogSink(fd: fds[1], capacity: 20, flushIntervalMilliseconds: 60_000)
        sink.startBuffering()
        for i in 0..<5 { sink.appendLine(maxBytes: 8) { c in for b in "line \(i)\n".utf8 { c.put(b) } } }   // 7 bytes each: 2 fit
        #expect(sink.droppedLines == 3)
        sink.flush()
        var buffer = [UInt8](repeating: 0, count: 256)
        let n = read(fds[0], &buffer, buffer.count)
        #expect(String(decoding: buffer[0..<max(0, n)], as: UTF8.self) == "line 0\nline 1\n")
        // The emptied buffer is used again after the flush.
        sink.appendLine(maxBytes: 6) { c in c.put("again\n") }
        sink.flush()
        let m = read(fds[0], &buffer, buffer.count)
        #expect(String(decoding: buffer[0..<max(0, m)], as: UTF8.self) == "again\n")
    }
}
