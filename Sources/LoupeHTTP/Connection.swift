// Carries out the state machine's actions on a socket. Lives on one event loop; every method
// runs on that loop's thread. The socket is registered once, edge-triggered, for both
// directions; `readable` / `writable` remember readiness until a transfer says EAGAIN.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CLoupeSystem
import Synchronization

final class Connection: LoopChannel, @unchecked Sendable {
    // Strong: a sink may outlive the server's own references (a late response is then dropped
    // by the stopped loop). The loop→connection reference ends when the connection closes.
    let core: ServerCore
    let loop: EventLoop
    // The mutable state below is touched only on the loop's thread, never re-entrantly (a handler
    // that answers inline goes through `inDispatch`), so it opts out of the dynamic exclusivity
    // check: each access to a class's stored property otherwise calls swift_beginAccess (≈ 75
    // instructions, seven accesses a request; callgrind, GET /health). The tests run with the
    // checks of every other property on.
    @exclusivity(unchecked) private var machine: ConnectionStateMachine
    @exclusivity(unchecked) private var tls: TLSSession?
    @exclusivity(unchecked) private var readable = false
    @exclusivity(unchecked) private var writable = true
    /// The peer has half-closed or the socket has an error/hang-up pending: read until EOF (0)
    /// rather than trusting a short read to mean "drained".
    @exclusivity(unchecked) private var hangupSeen = false
    @exclusivity(unchecked) private var closed = false
    /// Set while a handler is being called inline, so a synchronous `respond` does not recurse.
    @exclusivity(unchecked) private var inDispatch = false
    /// Whether the close reason has been counted in the stats.
    @exclusivity(unchecked) private var reasonRecorded = false
    let remoteAddress: String

    init(fd: Int32, remoteAddress: String, core: ServerCore, loop: EventLoop, tls: TLSSession?) {
        self.core = core
        self.loop = loop
        self.tls = tls
        self.remoteAddress = remoteAddress
        machine = ConnectionStateMachine(timeouts: core.timeouts, limits: core.parserLimits,
                                         maxRequests: core.configuration.maxRequestsPerConnection,
                                         writer: core.writer, now: loop.now)
        super.init(fd: fd)
    }

    static let interest: UInt32 = EPOLLIN.rawValue | EPOLLOUT.rawValue | EPOLLRDHUP.rawValue | EPOLLET.rawValue

    override func handle(events: UInt32) {
        if tls != nil {
            // SSL_read may need the socket writable and SSL_write may need it readable (handshake,
            // key updates); with edge triggering, retry both on any readiness.
            readable = true
            writable = true
        } else {
            if events & (EPOLLIN.rawValue | EPOLLRDHUP.rawValue | EPOLLHUP.rawValue | EPOLLERR.rawValue) != 0 { readable = true }
            if events & (EPOLLRDHUP.rawValue | EPOLLHUP.rawValue | EPOLLERR.rawValue) != 0 { hangupSeen = true }
            if events & (EPOLLOUT.rawValue | EPOLLHUP.rawValue | EPOLLERR.rawValue) != 0 { writable = true }
        }
        pump()
    }

    override func checkTimeouts(now: UInt64) -> UInt64 {
        if closed { return .max }
        if machine.deadline <= now {
            perform(machine.timeout(now: now))
            if !closed { pump() }
            if !reasonRecorded { recordReason() }
        }
        return closed ? .max : machine.deadline
    }

    /// Moves bytes until the socket would block or the state machine waits on a handler.
    func pump() {
        while !closed {
            if machine.hasOutput {
                if !writable { break }
                if !flush() { break }
                perform(machine.outputDrained(now: loop.now))
                continue
            }
            if machine.wantsInput {
                if !readable { break }
                let result: IOResult
                do {
                    result = try transportRead(into: loop.readBuffer)
                } catch {
                    abort()
                    return
                }
                switch result {
                case .wouldBlock:
                    readable = false
                case .processed(0):
                    readable = false
                    perform(machine.peerClosed(now: loop.now))
                case .processed(let n):
                    // A short read took everything the kernel held: with edge-triggered epoll the
                    // next bytes bring a new event, so skip the read that would only say EAGAIN
                    // (one system call per request fewer, as nginx does). Not for TLS (OpenSSL may
                    // hold decrypted bytes) nor once a hang-up is pending (read on to the EOF).
                    if n < loop.readBuffer.count && tls == nil && !hangupSeen { readable = false }
                    perform(machine.received(UnsafeRawBufferPointer(rebasing: loop.readBuffer[..<n]), now: loop.now))
                }
                continue
            }
            break
        }
        if !closed { loop.noteDeadline(machine.deadline) }
        if !reasonRecorded { recordReason() }
    }

    /// Counts why the connection is ending, as soon as that is known (a 408 is counted when it
    /// is sent, not when the socket finally closes).
    private func recordReason() {
        guard let reason = machine.closeReason else { return }
        reasonRecorded = true
        core.record(reason: reason, errorCode: machine.errorCode)
    }

    /// Writes pending output; true when all of it went out.
    private func flush() -> Bool {
        while machine.hasOutput {
            let result: IOResult
            do {
                // Not `machine.withPendingOutput { … }`: a closure capturing self forces a copy of
                // the whole state machine (retains of every buffer) on each write.
                let (bytes, offset) = machine.pendingOutput
                result = try bytes.withUnsafeBytes { try transportWrite(UnsafeRawBufferPointer(rebasing: $0[offset...])) }
            } catch {
                abort()
                return false
            }
            switch result {
            case .wouldBlock:
                writable = false
                return false
            case .processed(let n):
                machine.wrote(n, now: loop.now)
            }
        }
        return true
    }

    private func perform(_ action: consuming ConnectionStateMachine.Action) {
        if !reasonRecorded { recordReason() }
        switch consume action {
        case .none:
            break
        case .dispatch(let request, let serial, let keepAlive):
            dispatch(request, serial: serial, keepAlive: keepAlive)
        case .shutdownWrite:
            tls?.shutdown()
            Syscall.shutdown(fd, Int32(SHUT_WR))
        case .close:
            close()
        }
    }

    /// Hands a request to the handler, moved along (no copy of its strings and arrays).
    private func dispatch(_ request: consuming HTTPRequest, serial: UInt64, keepAlive: Bool) {
        request.remoteAddress = remoteAddress
        core.requestStarted()
        let sink = ResponseSink(connection: self, serial: serial,
                                context: HTTPResponseContext(request: request, keepAlive: keepAlive))
        if core.configuration.runHandlersOnEventLoop {
            inDispatch = true
            core.handler(consume request, sink)
            inDispatch = false
        } else {
            let handler = core.handler
            let request = request
            loop.submit { handler(request, sink) }
        }
    }

    /// A response arrived (on the loop thread).
    func responseReady(serial: UInt64, bytes: [UInt8], keepAlive: Bool) {
        guard !closed, serial == machine.serial else { return }
        perform(machine.responseReady(bytes, keepAlive: keepAlive, now: loop.now))
        if !inDispatch { pump() }
    }

    /// Graceful shutdown began.
    func beginDrain() {
        guard !closed else { return }
        // Take in what the kernel already holds first: with edge-triggered readiness, a request
        // may sit unread while the machine looks idle, and closing over unread bytes resets the
        // connection instead of answering it.
        readable = true
        pump()
        guard !closed else { return }
        perform(machine.beginDrain(now: loop.now))
        if !closed { pump() }
    }

    func forceClose() {
        guard !closed else { return }
        machine.failed()
        close()
    }

    private func abort() {
        machine.failed()
        close()
    }

    private func close() {
        guard !closed else { return }
        closed = true
        loop.deregister(self)
        tls = nil
        Syscall.close(fd)
        if !reasonRecorded { recordReason() }
        core.connectionClosed()
    }

    // MARK: transport

    private func transportRead(into buffer: UnsafeMutableRawBufferPointer) throws -> IOResult {
        if let tls { return try tls.read(into: buffer) }
        return try Syscall.read(fd, into: buffer)
    }

    private func transportWrite(_ buffer: UnsafeRawBufferPointer) throws -> IOResult {
        if let tls { return try tls.write(buffer) }
        return try Syscall.send(fd, buffer)
    }

    /// A response from any thread. On the loop's own thread it is serialized straight into the
    /// machine's output buffer; elsewhere it is serialized on the calling thread (gzip included,
    /// off the loop) and the bytes go through the loop's mailbox.
    fileprivate func deliver(serial: UInt64, response: HTTPResponse, context: HTTPResponseContext) {
        let writer = core.writer
        if loop.isCurrentThread {
            guard !closed, serial == machine.serial else { return }
            perform(machine.responseReady(now: loop.now) { writer.write(response, context: context, into: &$0) })
            if !inDispatch { pump() }
        } else {
            var bytes: [UInt8] = []   // the writer reserves the whole response at once
            let close = writer.write(response, context: context, into: &bytes)
            loop.execute(.response(self, serial: serial, bytes: bytes, keepAlive: !close))
        }
    }
}

/// Handed to the handler with each request. `respond` may be called from any thread, once;
/// later calls are ignored. A sink dropped without a response answers 500 so the connection
/// is never stuck.
final class ResponseSink: HTTPResponseSink, @unchecked Sendable {
    private let connection: Connection
    private let serial: UInt64
    private let context: HTTPResponseContext
    private let done = Atomic<Bool>(false)

    init(connection: Connection, serial: UInt64, context: HTTPResponseContext) {
        self.connection = connection
        self.serial = serial
        self.context = context
    }

    func respond(_ response: consuming HTTPResponse) {
        guard !done.exchange(true, ordering: .acquiringAndReleasing) else { return }
        deliver(response, keepAlive: context.keepAlive)
    }

    private func deliver(_ response: HTTPResponse, keepAlive: Bool) {
        var context = self.context
        context.keepAlive = keepAlive && !connection.core.isClosingConnections
        connection.deliver(serial: serial, response: response, context: context)
    }

    deinit {
        if !done.load(ordering: .acquiring) {
            deliver(HTTPResponse.jsonError(status: 500, message: "The server failed to produce a response.",
                                           code: "handler_did_not_respond"), keepAlive: false)
        }
    }
}
