import Glibc
import Testing
@testable import LoupeService

@Suite struct LogSinkTests {
    /// Reads what is in the pipe now.
    private func readAvailable(_ fd: Int32) -> String {
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            out += buffer[0..<n]
        }
        return String(decoding: out, as: UTF8.self)
    }

    @Test func buffersDropsWhenFullAndKeepsOrderWithUrgentLines() throws {
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        defer { close(fds[0]); close(fds[1]) }
        _ = fcntl(fds[0], F_SETFL, O_NONBLOCK)
        // Unbuffered until startBuffering: written at once.
        let sink = LogSink(fd: fds[1], capacity: 100, flushIntervalMilliseconds: 60_000)
        sink.write(Array("a\n".utf8), urgent: false)
        #expect(readAvailable(fds[0]) == "a\n")
        sink.startBuffering()
        // Buffered lines wait (the flusher's interval here is a minute); beyond 100 bytes they are dropped.
        for i in 0..<20 { sink.write(Array("line \(i)\n".utf8), urgent: false) }   // 7–8 bytes each
        #expect(readAvailable(fds[0]) == "")
        let kept = (0..<20).map { "line \($0)\n" }.reduce(into: [String]()) { acc, l in
            if acc.joined().utf8.count + l.utf8.count <= 100 { acc.append(l) }
        }
        #expect(sink.droppedLines == 20 - kept.count)
        // An urgent line goes out at once, after everything buffered.
        sink.write(Array("ERROR\n".utf8), urgent: true)
        #expect(readAvailable(fds[0]) == kept.joined() + "ERROR\n")
        sink.write(Array("b\n".utf8), urgent: false)
        sink.flush()
        #expect(readAvailable(fds[0]) == "b\n")
    }

    @Test func theFlusherWritesBufferedLinesWithinItsInterval() throws {
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        defer { close(fds[0]); close(fds[1]) }
        _ = fcntl(fds[0], F_SETFL, O_NONBLOCK)
        let sink = LogSink(fd: fds[1], capacity: 1 << 20, flushIntervalMilliseconds: 10)
        sink.startBuffering()
        sink.write(Array("x\n".utf8), urgent: false)
        var seen = ""
        for _ in 0..<500 where seen.isEmpty { usleep(2_000); seen = readAvailable(fds[0]) }
        #expect(seen == "x\n")
    }
}
