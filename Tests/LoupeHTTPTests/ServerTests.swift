// Loopback integration tests of HTTPServer: real sockets on 127.0.0.1 port 0, small configured
// limits so timeouts are quick. No assertion depends on how fast anything is.

#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import Synchronization
import Testing
@testable import LoupeHTTP

@Suite struct ServerTests {
    @Test func keepAliveServesSeveralRequestsOnOneConnection() throws {
        let server = try makeServer()
        defer { server.shutdown(deadline: .seconds(1)) }
        let client = try TestClient(port: server.port)
        for i in 0..<5 {
            client.send(get("/r\(i)"))
            let r = try client.readResponse()
            #expect(r.status == 200)
            #expect(r.text == "GET /r\(i) 0")
            #expect(r.header("connection") == nil)
            #expect(r.header("date") != nil)
            #expect(r.header("server") == "Loupe")
        }
        #expect(server.stats.acceptedTotal == 1)
        #expect(server.stats.requestsTotal == 5)
    }

    /// A short read is taken to mean "drained" (no read that would only say EAGAIN): what arrives
    /// later must still be seen (edge-triggered readiness brings a new event), on the inline path
    /// and through the handler pool, and a request followed at once by the client's FIN is still
    /// answered before the close.
    @Test(arguments: [false, true]) func bytesAfterAShortReadAndAFinAreStillSeen(inline: Bool) throws {
        var c = HTTPServerConfiguration(host: "127.0.0.1", port: 0)
        c.eventLoopThreads = 1; c.handlerThreads = 1; c.runHandlersOnEventLoop = inline
        let server = try HTTPServer(configuration: c) { request, sink in
            sink.respond(HTTPResponse(status: 200, body: Array("\(request.method) \(request.path) \(request.body.count)".utf8)))
        }
        try server.start()
        defer { server.shutdown(deadline: .seconds(1)) }
        let client = try TestClient(port: server.port)
        for i in 0..<3 {
            // Head and body in separate segments, the second after the server has read the first.
            client.send("POST /p\(i) HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\n")
            usleep(20_000)
            client.send("hello")
            #expect(try client.readResponse().text == "POST /p\(i) 5")
        }
        client.send(get("/last"))
        client.shutdownWrite()
        #expect(try client.readResponse().text == "GET /last 0")
        #expect(try client.isClosedByPeer())
    }

    @Test func postBodyIsCollected() throws {
        let server = try makeServer()
        defer { server.shutdown(deadline: .seconds(1)) }
        let client = try TestClient(port: server.port)
        let body = String(repeating: "x", count: 100_000)
        client.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: \(body.utf8.count)\r\n\r\n" + body)
        let r = try client.readResponse()
        #expect(r.text == "POST /echo 100000")
    }

    @Test func pipelinedResponsesComeInRequestOrder() throws {
        // The first request is answered last in time (after a delay on another thread); the
        // responses must still come back in request order.
        let server = try serve { request, sink in
            let delay = request.path == "/slow" ? 0.2 : 0
            DispatchQueue.global().asyncAfter(deadline: .now() + delay) {
                sink.respond(HTTPResponse(status: 200, body: Array(request.path.utf8)))
            }
        }
        defer { server.shutdown(deadline: .seconds(1)) }
        let client = try TestClient(port: server.port)
        client.send(get("/slow") + get("/a") + get("/b") + "HEAD /c HTTP/1.1\r\nHost: t\r\n\r\n" + get("/d"))
        #expect(try client.readResponse().text == "/slow")
        #expect(try client.readResponse().text == "/a")
        #expect(try client.readResponse().text == "/b")
        let head = try client.readResponse(head: true)
        #expect(head.header("content-length") == "2")
        #expect(try client.readResponse().text == "/d")
    }

    @Test func expectContinueGetsInterimResponseBeforeBody() throws {
        let server = try makeServer()
        defer { server.shutdown(deadline: .seconds(1)) }
        let client = try TestClient(port: server.port)
        client.send("POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        let interim = try client.readHead()
        #expect(interim.status == 100)
        client.send("hello")
        let r = try client.readResponse()
        #expect(r.status == 200)
        #expect(r.text == "POST /up 5")
    }

    @Test func expectContinueWithTooLargeBodyGets413WithoutReadingIt() throws {
        let server = try makeServer { $0.maxBodyBytes = 10 }
        defer { server.shutdown(deadline: .seconds(1)) }
        let client = try TestClient(port: server.port)
        client.send("POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\nExpect: 100-continue\r\n\r\n")
        let r = try client.readResponse()
        #expect(r.status == 413)
        #expect(r.header("connection") == "close")
        #expect(r.text.contains("\"code\""))
        #expect(try client.isClosedByPeer())
    }

    @Test func headResponseHasLengthButNoBody() throws {
        let server = try makeServer()
        defer { server.shutdown(deadline: .seconds(1)) }
        let client = try TestClient(port: server.port)
        client.send("HEAD /x HTTP/1.1\r\nHost: t\r\n\r\n")
        let r = try client.readResponse(head: true)
        #expect(r.status == 200)
        #expect(r.header("content-length") == "9")   // "HEAD /x 0"
        // The next response starts right away: no body bytes were sent for HEAD.
        client.send(get("/y"))
        #expect(try client.readResponse().text == "GET /y 0")
    }

    @Test func http10ClosesUnlessKeepAliveAsked() throws {
        let server = try makeServer()
        defer { server.shutdown(deadline: .seconds(1)) }
        let a = try TestClient(port: server.port)
        a.send("GET /a HTTP/1.0\r\n\r\n")
        #expect(try a.readResponse().header("connection") == "close")
        #expect(try a.isClosedByPeer())
        let b = try TestClient(port: server.port)
        b.send("GET /a HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        #expect(try b.readResponse().header("connection") == "close")
        #expect(try b.isClosedByPeer())
    }

    @Test func malformedRequestGets400JSONAndClose() throws {
        let server = try makeServer()
        defer { server.shutdown(deadline: .seconds(1)) }
        let client = try TestClient(port: server.port)
        client.send("GARBAGE\r\n\r\n")
        let r = try client.readResponse()
        #expect(r.status == 400)
        #expect(r.header("connection") == "close")
        #expect(r.header("content-type") == "application/json")
        #expect(r.text.hasPrefix("{\"error\":"))
        #expect(try client.isClosedByPeer())
        #expect(eventually { server.stats.rejections["parse_error"] == 1 })
    }

    // MARK: limits

    @Test func bodyLimitAnswers413() throws {
        let server = try makeServer { $0.maxBodyBytes = 100 }
        defer { server.shutdown(deadline: .seconds(1)) }
        let client = try TestClient(port: server.port)
        client.send("POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 101\r\n\r\n")
        let r = try client.readResponse()
        #expect(r.status == 413)
        #expect(r.text.contains("100"))
    }

    @Test func headerLimitAnswers431() throws {
        let server = try makeServer { $0.maxHeaderBytes = 512 }
        defer { server.shutdown(deadline: .seconds(1)) }
        let client = try TestClient(port: server.port)
        client.send("GET / HTTP/1.1\r\nHost: t\r\nX-Big: \(String(repeating: "a", count: 2000))\r\n\r\n")
        #expect(try client.readResponse().status == 431)
    }

    @Test func requestsPerConnectionLimitClosesAfterTheLast() throws {
        let server = try makeServer { $0.maxRequestsPerConnection = 3 }
        defer { server.shutdown(deadline: .seconds(1)) }
        let client = try TestClient(port: server.port)
        for i in 1...3 {
            client.send(get("/\(i)"))
            let r = try client.readResponse()
            #expect(r.status == 200)
            #expect(r.header("connection") == (i == 3 ? "close" : nil))
        }
        #expect(try client.isClosedByPeer())
    }

    @Test func connectionLimitAnswers503() throws {
        let server = try makeServer { $0.maxConnections = 2 }
        defer { server.shutdown(deadline: .seconds(1)) }
        let a = try TestClient(port: server.port)
        let b = try TestClient(port: server.port)
        a.send(get("/a")); _ = try a.readResponse()
        b.send(get("/b")); _ = try b.readResponse()
        let c = try TestClient(port: server.port)
        let r = try c.readResponse()
        #expect(r.status == 503)
        #expect(r.header("retry-after") != nil)
        #expect(server.stats.rejections["max_connections"] == 1)
        // Existing connections still work, and a slot frees up when one closes.
        a.send(get("/again"))
        #expect(try a.readResponse().status == 200)
        _ = consume b
        #expect(eventually { server.stats.openConnections == 1 })
        let d = try TestClient(port: server.port)
        d.send(get("/d"))
        #expect(try d.readResponse().status == 200)
    }

    // MARK: timeouts

    @Test func partialHeadTimesOutWith408() throws {
        let server = try makeServer { $0.headerReadTimeout = 0.2 }
        defer { server.shutdown(deadline: .seconds(1)) }
        let client = try TestClient(port: server.port)
        client.send("GET / HTTP/1.1\r\nHost: t\r\n")   // slowloris: never finishes the head
        let r = try client.readResponse()
        #expect(r.status == 408)
        #expect(try client.isClosedByPeer())
        #expect(server.stats.rejections["header_timeout"] == 1)
    }

    @Test func silentNewConnectionIsClosedAfterHeaderTimeout() throws {
        let server = try makeServer { $0.headerReadTimeout = 0.2 }
        defer { server.shutdown(deadline: .seconds(1)) }
        let client = try TestClient(port: server.port)
        #expect(try client.isClosedByPeer())
    }

    @Test func idleKeepAliveConnectionIsClosed() throws {
        let server = try makeServer { $0.keepAliveIdleTimeout = 0.2 }
        defer { server.shutdown(deadline: .seconds(1)) }
        let client = try TestClient(port: server.port)
        client.send(get("/"))
        #expect(try client.readResponse().status == 200)
        #expect(try client.isClosedByPeer())
        #expect(eventually { server.stats.idleClosed == 1 })
    }

    @Test func stalledBodyTimesOutWith408() throws {
        let server = try makeServer { $0.bodyReadTimeout = 0.2 }
        defer { server.shutdown(deadline: .seconds(1)) }
        let client = try TestClient(port: server.port)
        client.send("POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc")
        let r = try client.readResponse()
        #expect(r.status == 408)
        #expect(server.stats.rejections["body_timeout"] == 1)
    }

    @Test func tricklingBodyBelowMinimumRateIsCut() throws {
        let server = try makeServer {
            $0.bodyReadTimeout = 10
            $0.minimumBodyBytesPerSecond = 1000
            $0.minimumBodyRateGracePeriod = 0.2
        }
        defer { server.shutdown(deadline: .seconds(1)) }
        let client = try TestClient(port: server.port)
        client.send("POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n")
        // One byte every 50 ms: far below 1000 bytes/s, but never idle for bodyReadTimeout.
        var cut = false
        for _ in 0..<100 {
            client.send("x")
            sleepSeconds(0.05)
            if server.stats.rejections["body_timeout"] == 1 { cut = true; break }
        }
        #expect(cut)
    }

    @Test func clientThatStopsReadingIsCutByWriteTimeout() throws {
        let big = [UInt8](repeating: 65, count: 32 << 20)
        let server = try makeServer({ $0.writeTimeout = 0.3 }) { _, sink in
            sink.respond(HTTPResponse(status: 200, body: big))
        }
        defer { server.shutdown(deadline: .seconds(1)) }
        let client = try TestClient(port: server.port)
        client.send(get("/big"))
        // Never read: the server's send buffer fills, no progress, timeout.
        #expect(eventually(10) { server.stats.rejections["write_timeout"] == 1 })
        #expect(eventually { server.stats.openConnections == 0 })
    }

    // MARK: robustness

    @Test func manyConcurrentClients() throws {
        let server = try makeServer()
        defer { server.shutdown(deadline: .seconds(1)) }
        let port = server.port
        let failures = Atomic<Int>(0)
        DispatchQueue.concurrentPerform(iterations: 40) { i in
            do {
                let client = try TestClient(port: port)
                for j in 0..<25 {
                    client.send(get("/c\(i)/\(j)"))
                    let r = try client.readResponse()
                    if r.text != "GET /c\(i)/\(j) 0" { failures.add(1, ordering: .relaxed) }
                }
            } catch {
                failures.add(1, ordering: .relaxed)
            }
        }
        #expect(failures.load(ordering: .relaxed) == 0)
        #expect(server.stats.requestsTotal == 1000)
        #expect(eventually { server.stats.openConnections == 0 })
    }

    @Test func clientResetMidRequestAndMidResponseIsSurvived() throws {
        let big = [UInt8](repeating: 66, count: 8 << 20)
        let server = try serve { request, sink in
            sink.respond(HTTPResponse(status: 200, body: request.path == "/big" ? big : Array("ok".utf8)))
        }
        defer { server.shutdown(deadline: .seconds(1)) }
        for _ in 0..<5 {
            let a = try TestClient(port: server.port)
            a.send("POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\nabc")
            a.reset()
            let b = try TestClient(port: server.port)
            b.send(get("/big"))
            _ = try b.readHead()
            b.reset()
        }
        #expect(eventually { server.stats.openConnections == 0 })
        let c = try TestClient(port: server.port)
        c.send(get("/small"))
        #expect(try c.readResponse().text == "ok")
    }

    @Test func handlerThatNeverRespondsGets500WhenSinkIsDropped() throws {
        let server = try serve { _, _ in }
        defer { server.shutdown(deadline: .seconds(1)) }
        let client = try TestClient(port: server.port)
        client.send(get("/"))
        let r = try client.readResponse()
        #expect(r.status == 500)
        #expect(r.header("connection") == "close")
    }

    @Test func slowHandlerDoesNotBlockOtherConnections() throws {
        let release = DispatchSemaphore(value: 0)
        let server = try makeServer({ $0.handlerThreads = 1; $0.eventLoopThreads = 1 }) { request, sink in
            if request.path == "/block" {
                // Blocks the only handler thread; the event loop keeps serving I/O, so other
                // clients' bytes are still read (and their requests queue).
                release.wait()
            }
            sink.respond(HTTPResponse(status: 200, body: Array(request.path.utf8)))
        }
        defer { server.shutdown(deadline: .seconds(1)) }
        let a = try TestClient(port: server.port)
        a.send(get("/block"))
        sleepSeconds(0.05)
        // A malformed request needs no handler: it is answered by the loop while /block waits.
        let b = try TestClient(port: server.port)
        b.send("BAD\r\n\r\n")
        #expect(try b.readResponse().status == 400)
        release.signal()
        #expect(try a.readResponse().text == "/block")
    }

    @Test func acceptBacksOffOnEMFILEWithoutSpinning() throws {
        var configuration = HTTPServerConfiguration(host: "127.0.0.1", port: 0)
        configuration.eventLoopThreads = 1
        configuration.acceptBackoff = 0.05
        let server = try HTTPServer(configuration: configuration, handler: echoHandler)
        let calls = Atomic<Int>(0)
        let failing = Atomic<Int>(3)
        server.acceptFunction = { fd throws(SyscallError) in
            calls.add(1, ordering: .relaxed)
            if failing.load(ordering: .relaxed) > 0 {
                failing.subtract(1, ordering: .relaxed)
                throw SyscallError(call: "accept4", errno: EMFILE)
            }
            return try Syscall.accept(fd)
        }
        try server.start()
        defer { server.shutdown(deadline: .seconds(1)) }
        let client = try TestClient(port: server.port)
        client.send(get("/after-emfile"))
        #expect(try client.readResponse().text == "GET /after-emfile 0")
        #expect(server.stats.rejections["accept_backoff"] == 3)
        // Three failures, each followed by a pause, then success: a handful of calls, not a spin.
        #expect(calls.load(ordering: .relaxed) < 20)
    }

    // MARK: shutdown

    @Test func gracefulShutdownFinishesInFlightRequestsAndClosesIdleOnes() throws {
        let started = DispatchSemaphore(value: 0)
        let server = try serve { request, sink in
            if request.path == "/slow" {
                started.signal()
                DispatchQueue.global().asyncAfter(deadline: .now() + 0.3) {
                    sink.respond(HTTPResponse(status: 200, body: Array("done".utf8)))
                }
            } else {
                sink.respond(HTTPResponse(status: 200, body: Array("fast".utf8)))
            }
        }
        let port = server.port
        let idle = try TestClient(port: port)
        idle.send(get("/fast"))
        #expect(try idle.readResponse().text == "fast")
        let busy = try TestClient(port: port)
        busy.send(get("/slow"))
        started.wait()
        server.beginShutdown(deadline: .seconds(5))
        // The idle keep-alive connection is closed; the in-flight request completes with close.
        #expect(try idle.isClosedByPeer())
        let r = try busy.readResponse()
        #expect(r.text == "done")
        #expect(r.header("connection") == "close")
        #expect(try busy.isClosedByPeer())
        server.waitUntilStopped()
        // No longer accepting.
        #expect(throws: TestClientError.self) { _ = try TestClient(port: port) }
        #expect(server.stats.openConnections == 0)
    }

    @Test func shutdownDeadlineClosesConnectionsWhoseHandlerNeverAnswers() throws {
        let parked = Mutex<[any HTTPResponseSink]>([])
        let server = try serve { _, sink in parked.withLock { $0.append(sink) } }
        let client = try TestClient(port: server.port)
        client.send(get("/never"))
        #expect(eventually { parked.withLock { $0.count } == 1 })
        server.shutdown(deadline: .milliseconds(200))
        #expect(try client.isClosedByPeer())
        #expect(server.stats.openConnections == 0)
        // A response after the end is ignored.
        parked.withLock { $0.first?.respond(HTTPResponse(status: 200)) }
    }

    @Test func inlineHandlersWork() throws {
        let server = try makeServer { $0.runHandlersOnEventLoop = true }
        defer { server.shutdown(deadline: .seconds(1)) }
        let client = try TestClient(port: server.port)
        var pipelined = ""
        for i in 0..<200 { pipelined += get("/p\(i)") }
        client.send(pipelined)
        for i in 0..<200 { #expect(try client.readResponse().text == "GET /p\(i) 0") }
    }
}
