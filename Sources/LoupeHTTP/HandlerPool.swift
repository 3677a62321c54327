// A fixed number of threads that run request handlers. Not Dispatch's global queues: those add
// worker threads whenever work blocks, so a handler that sleeps under load would grow the
// process to dozens of threads. Here a blocked handler blocks one of `count` threads and
// requests queue behind it; the event loops keep doing I/O.
//
// Wake-ups are the cost that matters (a futex wake + context switch is several µs, more than
// the rest of a tiny request): loops submit the requests of one epoll iteration as a batch,
// only idle workers are woken and at most one per job, and a worker keeps taking jobs until the
// queue is empty before it parks again.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Dispatch
import Synchronization

final class HandlerPool: @unchecked Sendable {
    typealias Job = @Sendable () -> Void

    private final class Worker: @unchecked Sendable {
        let wake = DispatchSemaphore(value: 0)
    }

    private struct State {
        var jobs: [Job] = []
        var head = 0
        var idle: [Worker] = []
        var stopping = false
    }

    private let state = Mutex(State())
    private let exited = DispatchSemaphore(value: 0)
    private var threads: [pthread_t] = []
    private var workers: [Worker] = []
    let count: Int

    init(threads count: Int) {
        self.count = max(1, count)
    }

    func start() {
        for i in 0..<count {
            let worker = Worker()
            workers.append(worker)
            threads.append(spawnThread(name: "loupe-handler-\(i)") { [self] in work(worker) })
        }
    }

    func submit(_ job: @escaping Job) {
        submit(CollectionOfOne(job))
    }

    /// Queues jobs and wakes at most one idle worker per job.
    func submit<C: Collection>(_ batch: C) where C.Element == Job {
        if batch.isEmpty { return }
        var toWake: [Worker] = []
        state.withLock { s in
            if s.stopping { return }
            s.jobs.append(contentsOf: batch)
            let n = min(s.idle.count, batch.count)
            if n > 0 {
                toWake.append(contentsOf: s.idle.suffix(n))
                s.idle.removeLast(n)
            }
        }
        for w in toWake { w.wake.signal() }
    }

    /// Lets the threads finish the queue and exit; waits up to `timeout` seconds for them.
    /// Threads still stuck in a handler after that are detached.
    func stop(timeout: Double) {
        let idle = state.withLock { s -> [Worker] in
            s.stopping = true
            let idle = s.idle
            s.idle = []
            return idle
        }
        for w in idle { w.wake.signal() }
        let deadline = DispatchTime.now() + .nanoseconds(Int(max(0, timeout) * 1e9))
        var joined = 0
        for _ in 0..<threads.count {
            if exited.wait(timeout: deadline) == .timedOut { break }
            joined += 1
        }
        if joined == threads.count {
            for t in threads { pthread_join(t, nil) }
        } else {
            for t in threads { pthread_detach(t) }
        }
        threads = []
        workers = []
    }

    private enum Next { case job(Job), park, exit }

    private func work(_ worker: Worker) {
        while true {
            let next = state.withLock { s -> Next in
                if s.head < s.jobs.count {
                    let job = s.jobs[s.head]
                    s.head += 1
                    if s.head == s.jobs.count {
                        s.jobs.removeAll(keepingCapacity: s.jobs.capacity <= 4096)
                        s.head = 0
                    } else if s.head >= 1024 && s.head * 2 >= s.jobs.count {
                        s.jobs.removeFirst(s.head)
                        s.head = 0
                    }
                    return .job(job)
                }
                if s.stopping { return .exit }
                s.idle.append(worker)
                return .park
            }
            switch next {
            case .job(let job): job()
            case .park: worker.wake.wait()
            case .exit:
                exited.signal()
                return
            }
        }
    }
}
