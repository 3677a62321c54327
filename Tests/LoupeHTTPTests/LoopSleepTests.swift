// The event loop's way to sleep (HTTPServerConfiguration.yieldBeforeSleep, off by default): a loop that has
// just handled events yields its core once and polls before it sleeps in epoll_wait. These tests check what must
// hold either way — every request answered, on the inline path and through the handler pool, with
// several connections per loop — and that an idle loop still sleeps (the yield is once per sleep,
// never a spin). No assertion depends on how fast anything is.

#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import LoupeHTTP

@Suite struct LoopSleepTests {
    @Test(arguments: [(false, false), (false, true), (true, false), (true, true)])
    func everyRequestIsAnsweredWithOrWithoutTheYield(yield: Bool, inline: Bool) throws {
        let server = try makeServer { $0.yieldBeforeSleep = yield; $0.runHandlersOnEventLoop = inline }
        defer { server.shutdown(deadline: .seconds(1)) }
        #expect(HTTPServerConfiguration().yieldBeforeSleep == false)
        #expect(server.loops.allSatisfy { $0.yieldBeforeSleep == yield })
        let clients = try (0..<6).map { _ in try TestClient(port: server.port) }
        for round in 0..<40 {
            // A burst on every connection (both loops get work), then every answer, in order.
            for (i, client) in clients.enumerated() { client.send(get("/c\(i)/r\(round)") + get("/c\(i)/s\(round)")) }
            for (i, client) in clients.enumerated() {
                #expect(try client.readResponse().text == "GET /c\(i)/r\(round) 0")
                #expect(try client.readResponse().text == "GET /c\(i)/s\(round) 0")
            }
        }
        #expect(server.stats.requestsTotal == 6 * 40 * 2)
    }

    /// After a burst, the loops go back to sleep: over half a second of no traffic their threads use
    /// (almost) no CPU. A loop that yielded in a loop instead of sleeping would use the whole half second.
    @Test func idleLoopsDoNotSpin() throws {
        let server = try makeServer { $0.yieldBeforeSleep = true; $0.runHandlersOnEventLoop = true }
        defer { server.shutdown(deadline: .seconds(1)) }
        let clients = try (0..<4).map { _ in try TestClient(port: server.port) }
        for round in 0..<50 {
            for client in clients { client.send(get("/r\(round)")) }
            for client in clients { _ = try client.readResponse() }
        }
        sleepSeconds(0.1)
        let before = server.loops.map(threadCPUSeconds)
        sleepSeconds(0.5)
        let after = server.loops.map(threadCPUSeconds)
        for (b, a) in zip(before, after) {
            #expect(b >= 0 && a >= 0)
            #expect(a - b < 0.05, "an idle loop used \(a - b) s of CPU in 0.5 s")
        }
    }
}

/// CPU time of a loop's thread (-1 when it cannot be read).
private func threadCPUSeconds(_ loop: EventLoop) -> Double {
    guard let thread = loop.thread else { return -1 }
    var clock = clockid_t()
    guard pthread_getcpuclockid(thread, &clock) == 0 else { return -1 }
    var ts = timespec()
    guard clock_gettime(clock, &ts) == 0 else { return -1 }
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}
