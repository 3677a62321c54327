// Named pthreads for the fixed sets of long-lived threads (event loops, handler and inference
// workers, the log writer): the name shows in `top -H`, perf and core dumps.
import CLoupeSystem
#if canImport(Glibc)
import Glibc
#endif

private final class ThreadBody {
    let name: String
    let body: () -> Void
    init(name: String, body: @escaping () -> Void) { self.name = name; self.body = body }
}

/// Starts a pthread named `name` (at most 15 bytes are kept) running `body`; joinable unless
/// `detached`. Returns the thread.
@discardableResult
public func startThread(name: String, detached: Bool = true, _ body: @escaping () -> Void) -> pthread_t {
    let box = Unmanaged.passRetained(ThreadBody(name: name, body: body)).toOpaque()
    var thread = pthread_t()
    var attributes = pthread_attr_t()
    pthread_attr_init(&attributes)
    if detached { pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED)) }
    let rc = pthread_create(&thread, &attributes, { raw in
        let b = Unmanaged<ThreadBody>.fromOpaque(raw!).takeRetainedValue()
        _ = cloupe_set_thread_name(String(decoding: b.name.utf8.prefix(15), as: UTF8.self))
        b.body()
        return nil
    }, box)
    pthread_attr_destroy(&attributes)
    precondition(rc == 0, "pthread_create failed: \(rc)")
    return thread
}

/// Lowers the calling thread to the idle scheduling class (SCHED_IDLE: it runs only when a CPU
/// has nothing else to do), or failing that to nice 19. For background work that must never take
/// CPU from request handling (shadow inference). Returns which one took effect.
@discardableResult
public func lowerCurrentThreadPriority() -> String {
    switch cloupe_lower_thread_priority() {
    case 2: "SCHED_IDLE"
    case 1: "nice 19"
    default: "unchanged"
    }
}
