// One epoll loop per thread. Each loop owns the connections it accepted: their state is touched
// only on the loop's thread. Other threads talk to a loop through its mailbox (a locked array
// plus an eventfd that is written only when the loop may be asleep).
//
// Why epoll rather than DispatchSource read/write sources: see docs/http-runtime.md. In short,
// a DispatchSource per connection costs a queue hop per readiness event plus a kevent/epoll_ctl
// re-arm, and Dispatch grows worker threads when work blocks; a fixed set of edge-triggered epoll
// loops (one per core) registers each socket once and keeps the thread count fixed.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CLoupeSystem
import LoupeSystem
import Synchronization

/// Something registered with a loop: the listening socket or a connection.
class LoopChannel: @unchecked Sendable {
    let fd: Int32
    init(fd: Int32) { self.fd = fd }
    /// Readiness from epoll, on the loop thread.
    func handle(events: UInt32) {}
    /// Timer scan on the loop thread; returns the channel's next deadline (or .max).
    func checkTimeouts(now: UInt64) -> UInt64 { .max }
}

enum LoopTask: @unchecked Sendable {
    /// A finished response for `connection`'s request number `serial`.
    case response(Connection, serial: UInt64, bytes: [UInt8], keepAlive: Bool)
    case run(@Sendable () -> Void)
}

final class EventLoop: @unchecked Sendable {
    let index: Int
    private let epfd: Int32
    private let wakeFD: Int32
    private var channels: [LoopChannel?] = []
    private let mailbox = Mutex<[LoopTask]>([])
    private let sleeping = Atomic<Bool>(false)
    private var running = true
    private let threadID = Atomic<UInt>(0)
    private(set) var thread: pthread_t? = nil

    /// Monotonic time of the current iteration, nanoseconds. Loop thread only.
    private(set) var now: UInt64 = Syscall.monotonicNanoseconds()
    /// Earliest instant at which some channel's deadline may have passed.
    private var nextTimerScan: UInt64 = .max
    /// Shared scratch buffer for reads (copied into connection state by the parser).
    let readBuffer: UnsafeMutableRawBufferPointer
    private var liveChannels = 0
    /// Connections dealt to this loop by the listener and not yet adopted: a stopping loop waits
    /// for them (else the adoption task would be dropped with the socket unanswered).
    let pendingAdoptions = Atomic<Int>(0)
    /// Called when the loop has no channels left while stopping.
    var stopWhenEmpty = false
    /// Handler jobs collected during one iteration, submitted together at its end.
    var pool: HandlerPool? = nil
    private var jobs: [HandlerPool.Job] = []

    /// Queues a handler job; it is handed to the pool at the end of this iteration.
    func submit(_ job: @escaping HandlerPool.Job) {
        jobs.append(job)
    }

    /// Work for the end of this iteration (`CurrentEventLoop.atEndOfIteration`); what is added
    /// while it runs waits for the next iteration, which then does not sleep in epoll_wait.
    private var endOfIteration: [() -> Void] = []
    private var endOfIterationRunning: [() -> Void] = []
    /// State kept on this loop by other layers (`CurrentEventLoop.local`), loop thread only.
    var locals: [(owner: ObjectIdentifier, value: AnyObject)] = []

    func atEndOfIteration(_ body: @escaping () -> Void) {
        endOfIteration.append(body)
    }

    private func runEndOfIteration() {
        swap(&endOfIteration, &endOfIterationRunning)
        for body in endOfIterationRunning { body() }
        endOfIterationRunning.removeAll(keepingCapacity: true)
    }

    /// The loop running on the calling thread (set by `run`), else nil.
    static let currentKey: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key, nil)
        return key
    }()

    static var current: EventLoop? {
        guard let p = pthread_getspecific(currentKey) else { return nil }
        return Unmanaged<EventLoop>.fromOpaque(p).takeUnretainedValue()
    }

    init(index: Int, readBufferSize: Int = 64 << 10) throws(SyscallError) {
        self.index = index
        epfd = try Syscall.epollCreate()
        do {
            wakeFD = try Syscall.eventFD()
        } catch {
            Syscall.close(epfd)
            throw error
        }
        readBuffer = .allocate(byteCount: readBufferSize, alignment: 16)
        try Syscall.epollControl(epfd, EPOLL_CTL_ADD, wakeFD, events: EPOLLIN.rawValue)
    }

    deinit {
        Syscall.close(wakeFD)
        Syscall.close(epfd)
        readBuffer.deallocate()
    }

    var isCurrentThread: Bool {
        threadID.load(ordering: .relaxed) == UInt(pthread_self())
    }

    // MARK: registration (loop thread)

    func register(_ channel: LoopChannel, events: UInt32) throws(SyscallError) {
        let fd = Int(channel.fd)
        if fd >= channels.count { channels.append(contentsOf: repeatElement(nil, count: fd + 1 - channels.count + 64)) }
        try Syscall.epollControl(epfd, EPOLL_CTL_ADD, channel.fd, events: events)
        channels[fd] = channel
        liveChannels += 1
    }

    /// Removes a channel before its fd is closed.
    func deregister(_ channel: LoopChannel) {
        let fd = Int(channel.fd)
        guard fd < channels.count, channels[fd] === channel else { return }
        try? Syscall.epollControl(epfd, EPOLL_CTL_DEL, channel.fd, events: 0)
        channels[fd] = nil
        liveChannels -= 1
    }

    func modify(_ channel: LoopChannel, events: UInt32) {
        try? Syscall.epollControl(epfd, EPOLL_CTL_MOD, channel.fd, events: events)
    }

    /// Takes an fd out of epoll without forgetting its channel (a paused listener).
    func disarm(_ fd: Int32) {
        try? Syscall.epollControl(epfd, EPOLL_CTL_DEL, fd, events: 0)
    }

    func rearm(_ fd: Int32, events: UInt32) {
        try? Syscall.epollControl(epfd, EPOLL_CTL_ADD, fd, events: events)
    }

    /// Graceful stop (loop thread): drain every connection, force-close what is left at
    /// `forceCloseAt`, and leave the run loop once no channel is left.
    func beginStopping(forceCloseAt: UInt64) {
        stopWhenEmpty = true
        self.forceCloseAt = forceCloseAt
        noteDeadline(forceCloseAt)
        for c in channels {
            if let connection = c as? Connection { connection.beginDrain() }
        }
    }

    private var forceCloseAt: UInt64 = .max

    /// Makes the loop scan timers at `deadline` at the latest.
    @inline(__always)
    func noteDeadline(_ deadline: UInt64) {
        if deadline < nextTimerScan { nextTimerScan = deadline }
    }

    var channelCount: Int { liveChannels }

    func forEachChannel(_ body: (LoopChannel) -> Void) {
        for c in channels { if let c { body(c) } }
    }

    // MARK: cross-thread

    /// Set when the loop has exited; later tasks are dropped (a response after shutdown).
    private let exited = Atomic<Bool>(false)

    /// Tasks in the mailbox (read without the lock by the spinning loop).
    private let mailboxCount = Atomic<Int>(0)
    /// Handler jobs submitted by this loop whose responses have not come back yet.
    private var outstanding = 0
    /// How long to poll for outstanding responses before sleeping (HTTPServerConfiguration.responseSpinWait).
    var spinNanoseconds: UInt64 = 0
    /// Yield the core once before sleeping after an iteration that had events
    /// (HTTPServerConfiguration.yieldBeforeSleep).
    var yieldBeforeSleep = false
    /// Whether the last epoll_wait returned events (this iteration did work).
    private var lastWaitHadEvents = false

    func execute(_ task: LoopTask) {
        if exited.load(ordering: .acquiring) { return }
        mailbox.withLock { $0.append(task) }
        mailboxCount.add(1, ordering: .releasing)
        if sleeping.exchange(false, ordering: .sequentiallyConsistent) {
            Syscall.eventFDSignal(wakeFD)
        }
    }

    func execute(_ body: @escaping @Sendable () -> Void) { execute(.run(body)) }

    // MARK: running

    func start(name: String) {
        thread = spawnThread(name: name) { [self] in run() }
    }

    func join() {
        if let t = thread { pthread_join(t, nil) }
    }

    private func run() {
        // Claimed first, so the loops (started together) get consecutive thread numbers and so
        // stripes of their own in striped counters.
        _ = currentThreadIndex()
        threadID.store(UInt(pthread_self()), ordering: .relaxed)
        pthread_setspecific(Self.currentKey, Unmanaged.passUnretained(self).toOpaque())
        defer { pthread_setspecific(Self.currentKey, nil) }
        let capacity = 256
        let events = UnsafeMutableBufferPointer<epoll_event>.allocate(capacity: capacity)
        defer { events.deallocate() }
        var pending: [LoopTask] = []
        pending.reserveCapacity(64)
        while running {
            now = Syscall.monotonicNanoseconds()
            var timeoutMs: Int32 = -1
            if nextTimerScan != .max {
                timeoutMs = nextTimerScan <= now ? 0 : Int32(min((nextTimerScan - now + 999_999) / 1_000_000, 60_000))
            }
            if !endOfIteration.isEmpty { timeoutMs = 0 }
            if outstanding > 0 && timeoutMs != 0 && spinNanoseconds > 0 {
                // A response is expected soon (handlers are short): wait for it briefly awake
                // rather than sleep and be woken through the eventfd.
                let until = now &+ spinNanoseconds
                var spins = 0
                while mailboxCount.load(ordering: .acquiring) == 0 {
                    spins += 1
                    if spins & 63 == 0 && Syscall.monotonicNanoseconds() >= until { break }
                }
            }
            var n = 0
            if timeoutMs != 0 && yieldBeforeSleep && lastWaitHadEvents && mailboxCount.load(ordering: .acquiring) == 0 {
                // About to sleep right after work: let whatever else wants this core run first and
                // look again, instead of sleeping now and being woken through the kernel for the next
                // event a moment later (HTTPServerConfiguration.yieldBeforeSleep: off by default, as
                // a CPU-bound thread then keeps the core for its whole time slice). This loop is not
                // `sleeping` meanwhile, so other threads do not signal its eventfd.
                sched_yield()
                n = (try? Syscall.epollWait(epfd, events, timeoutMs: 0)) ?? 0
            }
            if n == 0 {
                sleeping.store(true, ordering: .sequentiallyConsistent)
                if mailbox.withLock({ !$0.isEmpty }) { timeoutMs = 0 }
                do {
                    n = try Syscall.epollWait(epfd, events, timeoutMs: timeoutMs)
                } catch {
                    n = 0
                }
                sleeping.store(false, ordering: .sequentiallyConsistent)
            }
            lastWaitHadEvents = n > 0
            now = Syscall.monotonicNanoseconds()
            for i in 0..<n {
                let ev = events[i]
                let fd = ev.data.fd
                if fd == wakeFD {
                    Syscall.eventFDDrain(wakeFD)
                    continue
                }
                if Int(fd) < channels.count, let channel = channels[Int(fd)] {
                    channel.handle(events: ev.events)
                }
            }
            mailbox.withLock { swap(&$0, &pending) }
            if !pending.isEmpty {
                mailboxCount.subtract(pending.count, ordering: .relaxed)
                for task in pending {
                    switch task {
                    case .response(let connection, let serial, let bytes, let keepAlive):
                        if outstanding > 0 { outstanding -= 1 }
                        connection.responseReady(serial: serial, bytes: bytes, keepAlive: keepAlive)
                    case .run(let body):
                        body()
                    }
                }
                pending.removeAll(keepingCapacity: true)
            }
            if !endOfIteration.isEmpty { runEndOfIteration() }
            if now >= nextTimerScan { scanTimers() }
            if !jobs.isEmpty {
                outstanding += jobs.count
                pool?.submit(jobs)
                jobs.removeAll(keepingCapacity: true)
            }
            if stopWhenEmpty && liveChannels == 0 && pendingAdoptions.load(ordering: .acquiring) == 0 && endOfIteration.isEmpty {
                running = false
            }
        }
        exited.store(true, ordering: .releasing)
        mailbox.withLock { $0.removeAll() }
        jobs.removeAll()
        locals.removeAll()
    }

    private func scanTimers() {
        now = Syscall.monotonicNanoseconds()
        if now >= forceCloseAt {
            for c in channels {
                if let connection = c as? Connection { connection.forceClose() }
            }
        }
        var next: UInt64 = forceCloseAt
        for c in channels {
            guard let c else { continue }
            let d = c.checkTimeouts(now: now)
            if d < next { next = d }
        }
        nextTimerScan = next
    }
}

// MARK: threads

/// Starts a joinable named pthread (not a Dispatch worker: the count of these is fixed by the caller).
func spawnThread(name: String, _ body: @escaping () -> Void) -> pthread_t {
    startThread(name: name, detached: false, body)
}
