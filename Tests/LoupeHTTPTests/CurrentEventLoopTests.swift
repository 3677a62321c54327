// CurrentEventLoop: what a handler on an event loop's thread may ask of its loop (work at the end
// of the iteration, per-loop state). Real sockets on loopback; nothing depends on speed.

#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import Testing
@testable import LoupeHTTP

@Suite struct CurrentEventLoopTests {
    final class Owner: Sendable {}
    final class Box {}

    @Test(arguments: [true, false]) func currentIsSetOnlyOnTheLoopThread(inline: Bool) throws {
        let seen = Mutex<[Bool]>([])
        let server = try makeServer({ $0.eventLoopThreads = 1; $0.runHandlersOnEventLoop = inline }) { _, sink in
            seen.withLock { $0.append(CurrentEventLoop.current != nil) }
            sink.respond(HTTPResponse(status: 200))
        }
        defer { server.shutdown(deadline: .seconds(1)) }
        let client = try TestClient(port: server.port)
        client.send(get("/a"))
        #expect(try client.readResponse().status == 200)
        #expect(seen.withLock { $0 } == [inline])
        #expect(CurrentEventLoop.current == nil)
    }

    /// Responses given at the end of the iteration are written, in order, for pipelined requests;
    /// a body booked from such a body runs in a later iteration (the loop does not sleep first).
    @Test func endOfIterationWorkAnswersRequests() throws {
        let order = Mutex<[String]>([])
        let server = try makeServer({ $0.eventLoopThreads = 1; $0.runHandlersOnEventLoop = true }) { request, sink in
            guard let loop = CurrentEventLoop.current else { return sink.respond(HTTPResponse(status: 500)) }
            order.withLock { $0.append("handler \(request.path)") }
            loop.atEndOfIteration {
                order.withLock { $0.append("end \(request.path)") }
                guard request.path == "/nested" else {
                    return sink.respond(HTTPResponse(status: 200, body: Array(request.path.utf8)))
                }
                loop.atEndOfIteration {
                    order.withLock { $0.append("later \(request.path)") }
                    sink.respond(HTTPResponse(status: 200, body: Array("nested".utf8)))
                }
            }
        }
        defer { server.shutdown(deadline: .seconds(1)) }
        let client = try TestClient(port: server.port)
        client.send(get("/a") + get("/b") + get("/c"))
        for path in ["/a", "/b", "/c"] { #expect(try client.readResponse().text == path) }
        client.send(get("/nested"))
        #expect(try client.readResponse().text == "nested")
        #expect(order.withLock { $0 } == ["handler /a", "end /a", "handler /b", "end /b", "handler /c", "end /c",
                                          "handler /nested", "end /nested", "later /nested"])
    }

    @Test func localIsOnePerLoopAndOwner() throws {
        let a = Owner(), b = Owner()
        let identities = Mutex<[ObjectIdentifier]>([])
        let server = try makeServer({ $0.eventLoopThreads = 1; $0.runHandlersOnEventLoop = true }) { _, sink in
            let loop = CurrentEventLoop.current!
            let made = Mutex(0)
            let x = loop.local(for: a) { made.withLock { $0 += 1 }; return Box() }
            let y = loop.local(for: b) { Box() }
            identities.withLock { $0 += [ObjectIdentifier(x), ObjectIdentifier(y)] }
            sink.respond(HTTPResponse(status: 200, body: Array("\(made.withLock { $0 })".utf8)))
        }
        defer { server.shutdown(deadline: .seconds(1)) }
        let client = try TestClient(port: server.port)
        client.send(get("/1"))
        #expect(try client.readResponse().text == "1")
        client.send(get("/2"))
        #expect(try client.readResponse().text == "0")
        let ids = identities.withLock { $0 }
        #expect(ids[0] == ids[2] && ids[1] == ids[3] && ids[0] != ids[1])
    }

    /// A graceful stop runs what is booked for the end of an iteration before the loop exits:
    /// work that books itself again until the server is shutting down still answers its request.
    @Test func stoppingLoopRunsBookedWork() throws {
        let booked = Atomic(false), stopping = Atomic(false)
        let server = try makeServer({ $0.eventLoopThreads = 1; $0.runHandlersOnEventLoop = true }) { _, sink in
            let loop = CurrentEventLoop.current!
            booked.store(true, ordering: .releasing)
            func later() {
                loop.atEndOfIteration {
                    if stopping.load(ordering: .acquiring) {
                        sink.respond(HTTPResponse(status: 200, body: Array("done".utf8)))
                    } else {
                        later()
                    }
                }
            }
            later()
        }
        let client = try TestClient(port: server.port)
        client.send(get("/x"))
        #expect(eventually { booked.load(ordering: .acquiring) })
        server.beginShutdown(deadline: .seconds(5))
        stopping.store(true, ordering: .releasing)
        #expect(try client.readResponse().text == "done")
        server.waitUntilStopped()
    }
}
