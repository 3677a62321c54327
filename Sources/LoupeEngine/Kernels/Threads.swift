import Dispatch

private struct UncheckedSendableBox<T>: @unchecked Sendable { let value: T }

enum DispatchQueueShim {
    /// DispatchQueue.concurrentPerform for shard bodies that capture raw buffers. Each shard writes only
    /// its own disjoint region, which is why sending the closure is safe.
    static func concurrentPerform(iterations: Int, execute work: (Int) -> Void) {
        withoutActuallyEscaping(work) { escaping in
            let box = UncheckedSendableBox(value: escaping)
            DispatchQueue.concurrentPerform(iterations: iterations) { box.value($0) }
        }
    }
}
