// A mutex with a condition variable (timed waits on the monotonic clock) and dedicated worker
// threads. Inference workers block while they wait for work, so they get their own threads
// rather than Dispatch's shared pool, which the HTTP layer uses for I/O.
#if canImport(Glibc)
import Glibc
#endif

/// pthread mutex + condition variable; `wait` releases the lock while sleeping.
final class ConditionLock: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let condition: UnsafeMutablePointer<pthread_cond_t>

    init() {
        mutex = .allocate(capacity: 1)
        condition = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(condition, &attributes)
        pthread_condattr_destroy(&attributes)
    }

    deinit {
        pthread_cond_destroy(condition); pthread_mutex_destroy(mutex)
        condition.deallocate(); mutex.deallocate()
    }

    func lock() { pthread_mutex_lock(mutex) }
    /// Takes the lock if it is free; false (not taken) otherwise.
    func tryLock() -> Bool { pthread_mutex_trylock(mutex) == 0 }
    func unlock() { pthread_mutex_unlock(mutex) }

    @inline(__always) func withLock<T>(_ body: () throws -> T) rethrows -> T {
        lock(); defer { unlock() }
        return try body()
    }

    /// Waits until signalled (spurious wake-ups possible: callers loop on their condition).
    func wait() { pthread_cond_wait(condition, mutex) }

    /// Waits until signalled or the monotonic clock reaches `deadline` (ns); false on timeout.
    @discardableResult
    func wait(untilMonotonic deadline: UInt64) -> Bool {
        var ts = timespec(tv_sec: Int(deadline / 1_000_000_000), tv_nsec: Int(deadline % 1_000_000_000))
        return pthread_cond_timedwait(condition, mutex, &ts) == 0
    }

    func signal() { pthread_cond_signal(condition) }
    func broadcast() { pthread_cond_broadcast(condition) }
}
