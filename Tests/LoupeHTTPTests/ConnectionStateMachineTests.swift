// The connection state machine alone: bytes and instants in, actions and output bytes out.
// No sockets, no real clock.

import Testing
@testable import LoupeHTTP

private let second: UInt64 = 1_000_000_000

private func machine(_ tweak: (inout HTTPServerConfiguration) -> Void = { _ in }) -> ConnectionStateMachine {
    var c = HTTPServerConfiguration()
    c.headerReadTimeout = 10
    c.bodyReadTimeout = 30
    c.keepAliveIdleTimeout = 75
    c.writeTimeout = 30
    c.minimumBodyBytesPerSecond = 100
    c.minimumBodyRateGracePeriod = 5
    tweak(&c)
    return ConnectionStateMachine(timeouts: ConnectionTimeouts(c), limits: c.parserLimits,
                                  maxRequests: c.maxRequestsPerConnection, writer: ResponseWriter(), now: 0)
}

extension ConnectionStateMachine {
    mutating func receive(_ text: String, at now: UInt64) -> Action {
        Array(text.utf8).withUnsafeBytes { received($0, now: now) }
    }
    var outputText: String { withPendingOutput { String(decoding: $0, as: UTF8.self) } }
    mutating func drainOutput(at now: UInt64) -> Action {
        let n = withPendingOutput { $0.count }
        wrote(n, now: now)
        return outputDrained(now: now)
    }
}

private func dispatched(_ action: ConnectionStateMachine.Action) -> (HTTPRequest, UInt64, Bool)? {
    if case .dispatch(let r, let s, let k) = action { return (r, s, k) }
    return nil
}

@Suite struct ConnectionStateMachineTests {
    @Test func oneRequestAtATimeInOrder() throws {
        var m = machine()
        let first = try #require(dispatched(m.receive("GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n", at: 1)))
        #expect(first.0.path == "/a")
        #expect(first.2 == true)
        // While /a is being handled, nothing else is parsed or read.
        #expect(!m.wantsInput)
        #expect(dispatched(m.process(now: 2)) == nil)
        _ = m.responseReady(Array("R1".utf8), keepAlive: true, now: 3)
        #expect(m.outputText == "R1")
        let second = try #require(dispatched(m.drainOutput(at: 4)))
        #expect(second.0.path == "/b")
        #expect(second.1 == first.1 + 1)
    }

    /// A response serialized in place lands behind what is still unwritten, reuses the drained
    /// buffer's storage, honours the writer's close, and is not written when none is awaited.
    @Test func responseWrittenInPlace() throws {
        var m = machine()
        var calls = 0
        _ = m.responseReady(now: 1) { _ in calls += 1; return false }
        #expect(calls == 0)   // no request in hand
        _ = try #require(dispatched(m.receive("GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n", at: 1)))
        _ = m.responseReady(now: 2) { $0.append(contentsOf: "R1".utf8); return false }
        #expect(m.outputText == "R1")
        let storage = m.withPendingOutput { $0.baseAddress }
        _ = try #require(dispatched(m.drainOutput(at: 3)))
        _ = m.responseReady(now: 4) { out in
            #expect(out.isEmpty)
            out.append(contentsOf: "R2".utf8)
            return true
        }
        #expect(m.outputText == "R2")
        #expect(m.withPendingOutput { $0.baseAddress } == storage)
        guard case .shutdownWrite = m.drainOutput(at: 5) else { Issue.record("the writer said close"); return }
    }

    @Test func expectContinueQueuesInterimResponseThenWaitsForBody() throws {
        var m = machine()
        let a = m.receive("POST /u HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n", at: 1)
        #expect(dispatched(a) == nil)
        #expect(m.outputText == "HTTP/1.1 100 Continue\r\n\r\n")
        #expect(m.phase == .readingBody)
        _ = m.drainOutput(at: 2)
        let r = try #require(dispatched(m.receive("abc", at: 3)))
        #expect(r.0.body == Array("abc".utf8))
    }

    @Test func headerTimeoutOnPartialHeadAnswers408AndCloses() {
        var m = machine()
        _ = m.receive("GET / HTTP/1.1\r\nHo", at: 1 * second)
        #expect(m.deadline == 11 * second)
        guard case .none = m.timeout(now: 10 * second) else { Issue.record("fired early"); return }
        _ = m.timeout(now: 11 * second)
        #expect(m.outputText.hasPrefix("HTTP/1.1 408"))
        #expect(m.outputText.contains("Connection: close"))
        guard case .shutdownWrite = m.drainOutput(at: 12 * second) else { Issue.record("expected shutdownWrite"); return }
        #expect(m.closeReason == .headerTimeout)
    }

    @Test func silentNewConnectionClosesAtHeaderTimeoutWithoutResponse() {
        var m = machine()
        #expect(m.deadline == 10 * second)
        guard case .close = m.timeout(now: 10 * second) else { Issue.record("expected close"); return }
        #expect(!m.hasOutput)
    }

    @Test func idleKeepAliveUsesIdleTimeoutAfterFirstResponse() throws {
        var m = machine()
        _ = try #require(dispatched(m.receive("GET / HTTP/1.1\r\nHost: x\r\n\r\n", at: 0)))
        _ = m.responseReady(Array("R".utf8), keepAlive: true, now: 1 * second)
        _ = m.drainOutput(at: 2 * second)
        #expect(m.isIdle)
        #expect(m.deadline == 77 * second)
        guard case .close = m.timeout(now: 77 * second) else { Issue.record("expected close"); return }
        #expect(m.closeReason == .keepAliveIdle)
    }

    @Test func bodyRateBelowMinimumIsCutAfterGrace() {
        var m = machine()   // 100 bytes/s after 5 s
        _ = m.receive("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n", at: 0)
        #expect(m.phase == .readingBody)
        _ = m.receive(String(repeating: "x", count: 200), at: 1 * second)
        // 200 bytes allow 2 s at 100 B/s, but the grace period is 5 s.
        #expect(m.deadline == 5 * second)
        _ = m.receive(String(repeating: "x", count: 600), at: 4 * second)
        #expect(m.deadline == 8 * second)   // 800 bytes → 8 s of credit
        _ = m.timeout(now: 8 * second)
        #expect(m.outputText.hasPrefix("HTTP/1.1 408"))
        #expect(m.closeReason == .bodyTimeout)
    }

    @Test func writeTimeoutWithoutProgress() throws {
        var m = machine()
        _ = try #require(dispatched(m.receive("GET / HTTP/1.1\r\nHost: x\r\n\r\n", at: 0)))
        _ = m.responseReady([UInt8](repeating: 1, count: 1000), keepAlive: true, now: 1 * second)
        m.wrote(10, now: 2 * second)
        #expect(m.deadline == 32 * second)
        guard case .close = m.timeout(now: 32 * second) else { Issue.record("expected close"); return }
        #expect(m.closeReason == .writeTimeout)
    }

    @Test func requestLimitTurnsOffKeepAliveOnTheLast() throws {
        var m = machine { $0.maxRequestsPerConnection = 2 }
        #expect(try #require(dispatched(m.receive("GET / HTTP/1.1\r\nHost: x\r\n\r\n", at: 0))).2 == true)
        _ = m.responseReady(Array("R".utf8), keepAlive: true, now: 0)
        _ = m.drainOutput(at: 0)
        #expect(try #require(dispatched(m.receive("GET / HTTP/1.1\r\nHost: x\r\n\r\n", at: 0))).2 == false)
    }

    @Test func drainClosesAKeepAliveConnectionIdleForTheGrace() throws {
        func idleSince(_ t: UInt64) throws -> ConnectionStateMachine {
            var m = machine()
            _ = try #require(dispatched(m.receive("GET / HTTP/1.1\r\nHost: x\r\n\r\n", at: 0)))
            _ = m.responseReady(Array("R".utf8), keepAlive: true, now: t)
            _ = m.drainOutput(at: t)
            return m
        }
        let grace = machine().timeouts.drainIdleGrace
        // Idle for the grace already: closed at once.
        var long = try idleSince(1)
        guard case .close = long.beginDrain(now: 1 + grace) else { Issue.record("a long-idle keep-alive connection should close"); return }
        #expect(long.closeReason == .shutdown)
        // Idle for less: its client may be sending the next request; it closes when the grace ends…
        var recent = try idleSince(second)
        guard case .none = recent.beginDrain(now: second + 1) else { Issue.record("a just-answered connection should wait"); return }
        #expect(recent.deadline == second + grace)
        guard case .close = recent.timeout(now: second + grace) else { Issue.record("expected close at the grace's end"); return }
        #expect(recent.closeReason == .shutdown)
        // …unless the request comes first: then it is answered, with keep-alive off.
        var turning = try idleSince(second)
        _ = turning.beginDrain(now: second + 1)
        let (_, _, keepAlive) = try #require(dispatched(turning.receive("GET / HTTP/1.1\r\nHost: x\r\n\r\n", at: second + 2)))
        #expect(keepAlive == false)
    }

    @Test func drainWaitsForTheFirstRequestOfAFreshConnection() throws {
        // Accepted just before the listener closed: its request may be on the wire. It is
        // answered (keep-alive off), not closed under the client.
        var m = machine()
        guard case .none = m.beginDrain(now: 0) else { Issue.record("a fresh connection should wait"); return }
        let (_, _, keepAlive) = try #require(dispatched(m.receive("GET / HTTP/1.1\r\nHost: x\r\n\r\n", at: 1)))
        #expect(keepAlive == false)
        _ = m.responseReady(Array("R".utf8), keepAlive: false, now: 2)
        guard case .shutdownWrite = m.drainOutput(at: 3) else { Issue.record("expected a graceful close after the answer"); return }
        // Its header timeout still applies while it waits.
        var silent = machine()
        _ = silent.beginDrain(now: 0)
        guard case .close = silent.timeout(now: 10 * second) else { Issue.record("expected the header timeout"); return }
    }

    @Test func drainLetsABusyConnectionFinishAndClosesAfterAConnectionCloseResponse() throws {
        for phaseAtDrain in ["handling", "writing"] {
            var m = machine()
            _ = try #require(dispatched(m.receive("GET / HTTP/1.1\r\nHost: x\r\n\r\n", at: 0)))
            if phaseAtDrain == "writing" { _ = m.responseReady(Array("R".utf8), keepAlive: false, now: 1) }
            guard case .none = m.beginDrain(now: 1) else { Issue.record("busy (\(phaseAtDrain)) should wait"); continue }
            if phaseAtDrain == "handling" { _ = m.responseReady(Array("R".utf8), keepAlive: false, now: 2) }
            guard case .shutdownWrite = m.drainOutput(at: 3) else { Issue.record("expected shutdownWrite (\(phaseAtDrain))"); continue }
        }
    }

    @Test func drainNeverClosesUnderAClientThatWasToldKeepAlive() throws {
        // The response in flight when the drain began was serialized with keep-alive, so its
        // client may send the next request at once: that request is read and answered (with
        // keep-alive off) instead of the connection closing after the first response.
        var m = machine()
        _ = try #require(dispatched(m.receive("POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", at: 0)))
        _ = m.responseReady(Array("R1".utf8), keepAlive: true, now: 1)
        guard case .none = m.beginDrain(now: 2) else { Issue.record("busy should wait"); return }
        guard case .none = m.drainOutput(at: 3) else { Issue.record("should wait for the next request, not close"); return }
        #expect(!m.isClosed)
        let (_, _, keepAlive) = try #require(dispatched(m.receive("POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", at: 4)))
        #expect(keepAlive == false)
        _ = m.responseReady(Array("R2".utf8), keepAlive: false, now: 5)
        guard case .shutdownWrite = m.drainOutput(at: 6) else { Issue.record("expected a graceful close after R2"); return }
    }

    @Test func drainClosesALingeringConnection() throws {
        var m = machine()
        _ = try #require(dispatched(m.receive("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", at: 0)))
        _ = m.responseReady(Array("R".utf8), keepAlive: false, now: 1)
        guard case .shutdownWrite = m.drainOutput(at: 2) else { Issue.record("expected shutdownWrite"); return }
        guard case .close = m.beginDrain(now: 3) else { Issue.record("a lingering connection should close"); return }
    }

    @Test func parseErrorAnswersWithItsStatusAndCloses() {
        var m = machine()
        _ = m.receive("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", at: 0)
        #expect(m.outputText.hasPrefix("HTTP/1.1 400"))
        #expect(m.errorCode == "content_length_with_transfer_encoding")
        guard case .shutdownWrite = m.drainOutput(at: 1) else { Issue.record("expected shutdownWrite"); return }
    }

    @Test func peerHalfCloseAfterRequestStillGetsTheResponse() throws {
        var m = machine()
        _ = try #require(dispatched(m.receive("GET / HTTP/1.1\r\nHost: x\r\n\r\n", at: 0)))
        guard case .none = m.peerClosed(now: 1) else { Issue.record("should wait for response"); return }
        _ = m.responseReady(Array("R".utf8), keepAlive: true, now: 2)
        guard case .shutdownWrite = m.drainOutput(at: 3) else { Issue.record("expected shutdownWrite"); return }
    }
}
