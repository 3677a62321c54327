// HTTPServer: binds, runs `eventLoopThreads` epoll loops and a fixed handler pool, accepts on
// loop 0 and deals connections round-robin to the loops, drains on shutdown.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CLoupeSystem
import Dispatch
import LoupeSystem
import Synchronization

/// Counters for metrics. A snapshot; read it as often as you like.
public struct HTTPServerStats: Sendable {
    public var openConnections: Int
    public var acceptedTotal: Int
    public var requestsTotal: Int
    /// Connections refused or cut by the server, by reason: "max_connections" (503 at accept),
    /// "accept_backoff" (EMFILE/ENFILE/ENOBUFS/ENOMEM at accept; accepting paused),
    /// "header_timeout", "body_timeout", "write_timeout", "parse_error".
    public var rejections: [String: Int]
    /// Parse errors by machine code (the "code" of the JSON error body).
    public var parseErrors: [String: Int]
    /// Keep-alive connections closed for idleness, and connections lost to I/O errors (resets).
    public var idleClosed: Int
    public var ioErrors: Int
}

final class ServerCounters: Sendable {
    let open = Atomic<Int>(0)
    let accepted = Atomic<Int>(0)
    /// Striped: counted by every loop at every request.
    let requests = StripedCells(width: 1)
    let maxConnections = Atomic<Int>(0)
    let acceptBackoff = Atomic<Int>(0)
    let headerTimeout = Atomic<Int>(0)
    let bodyTimeout = Atomic<Int>(0)
    let writeTimeout = Atomic<Int>(0)
    let idle = Atomic<Int>(0)
    let ioErrors = Atomic<Int>(0)
    let parseErrors = Mutex<[String: Int]>([:])
}

/// State shared by every connection of one server.
final class ServerCore: @unchecked Sendable {
    let configuration: HTTPServerConfiguration
    let handler: HTTPHandler
    let counters = ServerCounters()
    let timeouts: ConnectionTimeouts
    let parserLimits: HTTPParserLimits
    let writer: ResponseWriter
    let pool: HandlerPool
    let tls: TLSContext?
    private let draining = Atomic<Bool>(false)
    init(configuration: HTTPServerConfiguration, handler: @escaping HTTPHandler, tls: TLSContext?) {
        self.configuration = configuration
        self.handler = handler
        self.tls = tls
        timeouts = ConnectionTimeouts(configuration)
        parserLimits = configuration.parserLimits
        writer = ResponseWriter(configuration: ResponseWriterConfiguration(
            serverName: configuration.serverName, gzipEnabled: configuration.gzipMinimumBytes > 0,
            gzipMinimumBytes: max(1, configuration.gzipMinimumBytes)))
        pool = HandlerPool(threads: configuration.handlerThreads)
    }

    /// Set when the drain begins (`HTTPServer.announceDrain`): from then on every response says
    /// `Connection: close`, while the listener still accepts until `beginShutdown`.
    private let closing = Atomic<Bool>(false)

    /// The listener has stopped (`beginShutdown`).
    var isDraining: Bool { draining.load(ordering: .relaxed) }
    func beginDraining() -> Bool { !draining.exchange(true, ordering: .sequentiallyConsistent) }
    var isClosingConnections: Bool { closing.load(ordering: .relaxed) }
    func beginClosingConnections() { closing.store(true, ordering: .sequentiallyConsistent) }

    func requestStarted() { counters.requests.add(1, to: 0) }

    func connectionClosed() {
        counters.open.subtract(1, ordering: .relaxed)
    }

    func record(reason: CloseReason, errorCode: String?) {
        switch reason {
        case .headerTimeout: counters.headerTimeout.add(1, ordering: .relaxed)
        case .bodyTimeout: counters.bodyTimeout.add(1, ordering: .relaxed)
        case .writeTimeout: counters.writeTimeout.add(1, ordering: .relaxed)
        case .keepAliveIdle: counters.idle.add(1, ordering: .relaxed)
        case .ioError: counters.ioErrors.add(1, ordering: .relaxed)
        case .protocolError:
            counters.parseErrors.withLock { $0[errorCode ?? "unknown", default: 0] += 1 }
        default: break
        }
    }

}

/// The listening socket, registered on loop 0 only. Accepted sockets are dealt round-robin.
final class Listener: LoopChannel, @unchecked Sendable {
    unowned let server: HTTPServer
    unowned let loop: EventLoop
    private var paused = false
    private var resumeAt: UInt64 = .max
    private var next = 0
    private(set) var active = true

    init(fd: Int32, server: HTTPServer, loop: EventLoop) {
        self.server = server
        self.loop = loop
        super.init(fd: fd)
    }

    override func handle(events: UInt32) {
        guard active, !paused else { return }
        // While closing, other loops may already be stopping: keep new connections here.
        _ = acceptPending(dealing: closingSince == .max)
    }

    /// Accepts what the backlog holds (64 at most per call unless `dealing` is false: then all of
    /// it, onto this loop, which is still running — the listener's last accepts before it closes).
    /// Returns how many connections were taken.
    @discardableResult
    private func acceptPending(dealing: Bool) -> Int {
        let core = server.core
        var round = 0
        var taken = 0
        while !dealing || round < 64 {
            round += 1
            let accepted: (fd: Int32, peer: SocketAddress)?
            do {
                accepted = try server.acceptFunction(fd)
            } catch let error where error.isResourceExhaustion {
                // Out of descriptors: stop accepting for a while; keep serving.
                core.counters.acceptBackoff.add(1, ordering: .relaxed)
                pause(for: core.configuration.acceptBackoff)
                return taken
            } catch {
                return taken
            }
            guard let (cfd, peer) = accepted else { return taken }
            taken += 1
            core.counters.accepted.add(1, ordering: .relaxed)
            let open = core.counters.open.add(1, ordering: .relaxed).newValue
            if open > core.configuration.maxConnections {
                core.counters.open.subtract(1, ordering: .relaxed)
                core.counters.maxConnections.add(1, ordering: .relaxed)
                Self.overloaded.withUnsafeBytes { _ = try? Syscall.send(cfd, $0) }
                Syscall.close(cfd)
                continue
            }
            try? Syscall.setOption(cfd, Int32(IPPROTO_TCP), TCP_NODELAY, 1, call: "setsockopt(TCP_NODELAY)")
            // Accepted while closing: the socket inherited the listener's SYN filter (`stop()`),
            // which has nothing to do on a connection; shed it.
            if closingSince != .max { Syscall.detachFilter(cfd) }
            let loops = server.loops
            let target = dealing ? loops[next % loops.count] : loop
            next &+= 1
            let address = peer.description
            if target === loop {
                server.adopt(fd: cfd, remoteAddress: address, on: target)
                continue
            }
            // Counted before the shutdown check: a loop that begins stopping after it waits for
            // this adoption; once the shutdown has begun, keep the connection on this loop.
            target.pendingAdoptions.add(1, ordering: .sequentiallyConsistent)
            if core.isDraining {
                target.pendingAdoptions.subtract(1, ordering: .sequentiallyConsistent)
                server.adopt(fd: cfd, remoteAddress: address, on: loop)
            } else {
                let server = self.server
                target.execute {
                    server.adopt(fd: cfd, remoteAddress: address, on: target)
                    target.pendingAdoptions.subtract(1, ordering: .sequentiallyConsistent)
                }
            }
        }
        return taken
    }

    static let overloaded: [UInt8] = {
        var out: [UInt8] = []
        ResponseWriter(configuration: ResponseWriterConfiguration(serverName: nil)).write(
            HTTPResponse.jsonError(status: 503, message: "The server has too many open connections; retry later.",
                                   code: "too_many_connections", headers: HTTPHeaders([("Retry-After", "1")])),
            context: .parseFailure, into: &out)
        return out
    }()

    func pause(for seconds: Double) {
        paused = true
        loop.disarm(fd)
        resumeAt = loop.now + UInt64(max(0.001, seconds) * 1e9)
        loop.noteDeadline(resumeAt)
    }

    override func checkTimeouts(now: UInt64) -> UInt64 {
        if active && closeAt != .max {
            if now >= closeAt { settleOrClose(now: now) }
            return closeAt
        }
        guard active, paused else { return .max }
        if now >= resumeAt {
            paused = false
            resumeAt = .max
            loop.rearm(fd, events: EPOLLIN.rawValue)
            handle(events: EPOLLIN.rawValue)
            return paused ? resumeAt : .max
        }
        return resumeAt
    }

    /// Stop accepting for good (loop thread), without resetting a connection whose handshake the
    /// kernel has completed: closing a listener resets every connection still in its accept queue,
    /// though those clients may have sent their request already. So: drop new SYNs first (a
    /// client then retries its SYN about a second later and meets the closed port: "connection
    /// refused"); let handshakes already under way land in the queue (on a loaded machine the
    /// last ACKs can take tens of milliseconds to be processed) and accept and serve them on this
    /// loop — for `closeSettle` at least, then until a `closeQuiet` interval brings none, at most
    /// `closeSettleLimit` — and only then close.
    func stop() {
        guard active, closingSince == .max else { return }
        Syscall.dropNewConnections(fd)
        closingSince = loop.now
        closeAt = closingSince &+ Self.closeSettle
        loop.noteDeadline(closeAt)
    }

    static let closeSettle: UInt64 = 100_000_000
    static let closeQuiet: UInt64 = 20_000_000
    static let closeSettleLimit: UInt64 = 1_000_000_000

    private var closingSince: UInt64 = .max
    private var closeAt: UInt64 = .max

    /// Called at `closeAt`: accept what landed; close if nothing did (or the limit is reached).
    private func settleOrClose(now: UInt64) {
        if acceptPending(dealing: false) > 0 && now &- closingSince < Self.closeSettleLimit {
            closeAt = now &+ Self.closeQuiet
            return
        }
        active = false
        closeAt = .max
        loop.deregister(self)
        Syscall.close(fd)
    }
}

public final class HTTPServer: @unchecked Sendable {
    public let configuration: HTTPServerConfiguration
    let core: ServerCore
    private(set) var loops: [EventLoop] = []
    private var listener: Listener?
    private let boundPort = Atomic<Int>(0)
    private let state = Mutex<LifeState>(.idle)
    private let stopped = DispatchSemaphore(value: 0)

    private enum LifeState { case idle, running, draining, stopped }

    /// accept(2) as the listener calls it; tests replace it to inject EMFILE.
    var acceptFunction: (Int32) throws(SyscallError) -> (fd: Int32, peer: SocketAddress)? = { fd throws(SyscallError) in
        try Syscall.accept(fd)
    }

    /// Creates a server; nothing is bound until `start()`. Throws if TLS files cannot be loaded.
    public init(configuration: HTTPServerConfiguration, handler: @escaping HTTPHandler) throws {
        self.configuration = configuration
        var tls: TLSContext? = nil
        if let t = configuration.tls { tls = try TLSContext(t) }
        core = ServerCore(configuration: configuration, handler: handler, tls: tls)
    }

    /// The bound port (useful with port 0); 0 before `start()`.
    public var port: Int { boundPort.load(ordering: .acquiring) }

    public var stats: HTTPServerStats {
        let c = core.counters
        var rejections: [String: Int] = [
            "max_connections": c.maxConnections.load(ordering: .relaxed),
            "accept_backoff": c.acceptBackoff.load(ordering: .relaxed),
            "header_timeout": c.headerTimeout.load(ordering: .relaxed),
            "body_timeout": c.bodyTimeout.load(ordering: .relaxed),
            "write_timeout": c.writeTimeout.load(ordering: .relaxed),
        ]
        let parse = c.parseErrors.withLock { $0 }
        rejections["parse_error"] = parse.values.reduce(0, +)
        return HTTPServerStats(openConnections: c.open.load(ordering: .relaxed),
                               acceptedTotal: c.accepted.load(ordering: .relaxed),
                               requestsTotal: Int(c.requests.sum(0)),
                               rejections: rejections, parseErrors: parse,
                               idleClosed: c.idle.load(ordering: .relaxed),
                               ioErrors: c.ioErrors.load(ordering: .relaxed))
    }

    /// Binds, listens and starts the event loops and handler threads. Returns at once.
    public func start() throws {
        try state.withLock { s in
            guard case .idle = s else { throw HTTPServerError.alreadyStarted }
            s = .running
        }
        Syscall.ignoreSIGPIPE()
        guard let address = SocketAddress(host: configuration.host, port: configuration.port) else {
            throw HTTPServerError.badAddress(configuration.host)
        }
        let fd = try Syscall.socket(address.family, Int32(SOCK_STREAM.rawValue | SOCK_NONBLOCK.rawValue | SOCK_CLOEXEC.rawValue), 0)
        do {
            try Syscall.setOption(fd, SOL_SOCKET, SO_REUSEADDR, 1, call: "setsockopt(SO_REUSEADDR)")
            try Syscall.bind(fd, address)
            try Syscall.listen(fd, backlog: Int32(clamping: configuration.backlog))
            boundPort.store(try Syscall.localAddress(fd).port, ordering: .releasing)
            for i in 0..<max(1, configuration.eventLoopThreads) {
                let loop = try EventLoop(index: i)
                loop.yieldBeforeSleep = configuration.yieldBeforeSleep
                loops.append(loop)
            }
            if !configuration.runHandlersOnEventLoop {
                for loop in loops {
                    loop.pool = core.pool
                    loop.spinNanoseconds = UInt64(max(0, min(configuration.responseSpinWait, 0.01)) * 1e9)
                }
            }
        } catch {
            Syscall.close(fd)
            throw error
        }
        let listener = Listener(fd: fd, server: self, loop: loops[0])
        self.listener = listener
        try loops[0].register(listener, events: EPOLLIN.rawValue)
        if !configuration.runHandlersOnEventLoop { core.pool.start() }
        for (i, loop) in loops.enumerated() { loop.start(name: "loupe-loop-\(i)") }
    }

    /// Called on `loop`'s thread for a freshly accepted socket.
    func adopt(fd: Int32, remoteAddress: String, on loop: EventLoop) {
        // Adopted even while draining (the listener's last accepts): the connection is served its
        // request with `Connection: close`, within the drain deadline.
        var session: TLSSession? = nil
        if let tls = core.tls {
            guard let s = tls.makeSession(fd: fd) else {
                Syscall.close(fd)
                core.counters.open.subtract(1, ordering: .relaxed)
                return
            }
            session = s
        }
        let connection = Connection(fd: fd, remoteAddress: remoteAddress, core: core, loop: loop, tls: session)
        do {
            try loop.register(connection, events: Connection.interest)
        } catch {
            Syscall.close(fd)
            core.counters.open.subtract(1, ordering: .relaxed)
            return
        }
        loop.noteDeadline(connectionDeadline(loop))
    }

    private func connectionDeadline(_ loop: EventLoop) -> UInt64 {
        let t = core.timeouts.headerRead
        return t == .max ? .max : loop.now &+ t
    }

    /// The drain has begun: from now on every response carries `Connection: close` (so no client
    /// sends another request on a connection that is about to close), while the listener keeps
    /// accepting until `beginShutdown`. Safe to call more than once, and from any thread.
    public func announceDrain() {
        core.beginClosingConnections()
    }

    /// Graceful shutdown: stop accepting now (after accepting what the backlog holds); idle
    /// keep-alive connections close now; every other connection closes after the response to the
    /// last request it sent (`Connection: close`); at `deadline` (from now) every connection left
    /// is closed. Returns at once; use `waitUntilStopped()` to wait. Safe to call more than once.
    public func beginShutdown(deadline: Duration = .seconds(10)) {
        core.beginClosingConnections()
        let previous = state.withLock { s -> LifeState in
            let previous = s
            if case .running = s { s = .draining }
            if case .idle = s { s = .stopped }
            return previous
        }
        if case .idle = previous { stopped.signal(); return }   // never started: nothing to drain
        guard case .running = previous, core.beginDraining() else { return }
        let (sec, atto) = deadline.components
        let graceNs = UInt64(max(0, sec)) &* 1_000_000_000 &+ UInt64(max(0, atto) / 1_000_000_000)
        let listener = self.listener
        for loop in loops {
            loop.execute { [loop] in
                if loop.index == 0 { listener?.stop() }
                loop.beginStopping(forceCloseAt: loop.now &+ graceNs)
            }
        }
        let loops = self.loops
        let pool = core.pool
        let usesPool = !configuration.runHandlersOnEventLoop
        let waiter = spawnThread(name: "loupe-shutdown") { [self] in
            for loop in loops { loop.join() }
            if usesPool { pool.stop(timeout: 1) }
            state.withLock { $0 = .stopped }
            stopped.signal()
        }
        pthread_detach(waiter)
    }

    /// Blocks until a shutdown begun with `beginShutdown` has finished (every connection closed,
    /// loops and handler threads stopped).
    public func waitUntilStopped() {
        stopped.wait()
        stopped.signal()
    }

    /// `beginShutdown(deadline:)` then `waitUntilStopped()`.
    public func shutdown(deadline: Duration = .seconds(10)) {
        beginShutdown(deadline: deadline)
        waitUntilStopped()
    }
}

public enum HTTPServerError: Error, Sendable, CustomStringConvertible {
    case alreadyStarted
    case badAddress(String)
    public var description: String {
        switch self {
        case .alreadyStarted: "the server was already started"
        case .badAddress(let host): "'\(host)' is not a numeric IPv4 or IPv6 address"
        }
    }
}
