// What a handler running on an event loop's thread (`runHandlersOnEventLoop`) may ask of that
// loop: work deferred to the end of the loop's current iteration, and a place for its own
// per-loop state. The service's batcher uses both to run the predictions a loop decoded in one
// iteration as one forward pass on that loop, with no thread hand-off (docs/http-runtime.md).

/// The event loop whose thread is calling.
public struct CurrentEventLoop {
    let loop: EventLoop

    /// The event loop running on the calling thread; nil on every other thread (the handler
    /// pool, Dispatch queues, inference workers, tests calling a handler directly).
    public static var current: CurrentEventLoop? {
        EventLoop.current.map(CurrentEventLoop.init(loop:))
    }

    /// Runs `body` on this thread once the loop has handled every socket that was ready in this
    /// iteration and the responses handed back to it, before it waits for more. A response given
    /// in `body` is written at once. `body` may call this again: that body runs in the next
    /// iteration, which then does not sleep. A stopping loop runs every such body before it exits.
    public func atEndOfIteration(_ body: @escaping () -> Void) {
        loop.atEndOfIteration(body)
    }

    /// The object `owner` keeps on this loop, made by `make` on first use. Touched only on the
    /// loop's thread, so it needs no lock; it lives as long as the loop (one per loop and owner).
    /// The value should hold `owner` strongly, so the owner's identity cannot be reused while
    /// the loop keeps it.
    public func local<Value: AnyObject>(for owner: AnyObject, make: () -> Value) -> Value {
        let key = ObjectIdentifier(owner)
        for entry in loop.locals where entry.owner == key {
            if let value = entry.value as? Value { return value }
        }
        let value = make()
        loop.locals.removeAll { $0.owner == key }
        loop.locals.append((owner: key, value: value))
        return value
    }
}
