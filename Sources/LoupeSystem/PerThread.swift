// Per-thread state for what every request touches: a value shared by all threads costs a cache
// line moving between cores on each update when two event loops run (measured on GET /health:
// docs/performance.md, issue 16). Two shapes: `StripedCells`, counters each thread adds to in its
// own stripe and a reader sums; `PerThread`, an object of each thread's own (a cache, a block of ids).
import CLoupeSystem
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The calling thread's number (0, 1, 2, … in the order threads first ask). Event loops claim
/// theirs when they start, so they get consecutive numbers and so different stripes.
@inlinable @inline(__always)
public func currentThreadIndex() -> Int { Int(cloupe_thread_index()) }

/// `width` 64-bit atomic cells repeated in `stripeCount` stripes, each stripe on cache lines of
/// its own. A thread updates the cells of its stripe (thread index modulo `stripeCount`); a
/// reader adds a cell over every stripe. Threads that share a stripe stay correct (the cells are
/// atomic), they only share its cache line.
public final class StripedCells: @unchecked Sendable {
    public static let stripeCount = 8
    public let width: Int
    /// Cells per stripe, rounded up to whole 64-byte lines.
    @usableFromInline let stride: Int
    @usableFromInline let cells: UnsafeMutablePointer<Atomic<UInt64>>
    private let raw: UnsafeMutableRawPointer

    public init(width: Int) {
        precondition(width > 0)
        self.width = width
        stride = (width + 7) / 8 * 8
        let count = stride * Self.stripeCount
        raw = .allocate(byteCount: count * 8, alignment: 64)
        cells = raw.bindMemory(to: Atomic<UInt64>.self, capacity: count)
        for i in 0..<count { (cells + i).initialize(to: Atomic(0)) }
    }

    deinit {
        cells.deinitialize(count: stride * Self.stripeCount)
        raw.deallocate()
    }

    @inlinable @inline(__always)
    var ownStripe: UnsafeMutablePointer<Atomic<UInt64>> {
        cells + (currentThreadIndex() & (Self.stripeCount - 1)) * stride
    }

    /// Adds `n` to `cell` of the calling thread's stripe.
    @inlinable @inline(__always)
    public func add(_ n: UInt64, to cell: Int) {
        ownStripe[cell].wrappingAdd(n, ordering: .relaxed)
    }

    /// Adds `delta` to `cell` of the calling thread's stripe, the cell holding a Double's bits.
    @inlinable @inline(__always)
    public func add(double delta: Double, to cell: Int) {
        let p = ownStripe + cell
        var old = p.pointee.load(ordering: .relaxed)
        while true {
            let new = (Double(bitPattern: old) + delta).bitPattern
            let (exchanged, original) = p.pointee.compareExchange(expected: old, desired: new, ordering: .relaxed)
            if exchanged { return }
            old = original
        }
    }

    /// `cell` added over every stripe.
    public func sum(_ cell: Int) -> UInt64 {
        var total: UInt64 = 0
        for s in 0..<Self.stripeCount { total &+= cells[s * stride + cell].load(ordering: .relaxed) }
        return total
    }

    /// `cell` (Double bits) added over every stripe, in stripe order.
    public func sumDouble(_ cell: Int) -> Double {
        var total = 0.0
        for s in 0..<Self.stripeCount { total += Double(bitPattern: cells[s * stride + cell].load(ordering: .relaxed)) }
        return total
    }

    /// Makes `cell` read `value` (Double bits): stored in the first stripe, the others zeroed. An
    /// add racing with it on another thread may be lost, as with any set racing an add.
    public func set(double value: Double, cell: Int) {
        cells[cell].store(value.bitPattern, ordering: .relaxed)
        for s in 1..<Self.stripeCount { cells[s * stride + cell].store(0, ordering: .relaxed) }
    }
}

/// An object of each thread's own, made on the thread's first use and released when the thread
/// exits. The value is touched by its thread only, so it needs no lock. One pthread key each (a
/// process has 1024): keep these in long-lived objects. When a `PerThread` goes away its key is
/// deleted; the values other threads still hold are then kept until those threads exit (glibc
/// gives a recreated key's users nothing of the old values).
public final class PerThread<Value: AnyObject>: @unchecked Sendable {
    /// A `let` (made in a local first): reading a class's `var` is a dynamic exclusivity check
    /// (swift_beginAccess, ≈ 75 instructions) on every `withValue`.
    @usableFromInline let key: pthread_key_t
    @usableFromInline let make: () -> Value

    public init(_ make: @escaping () -> Value) {
        self.make = make
        var key = pthread_key_t()
        let rc = pthread_key_create(&key) { raw in
            if let raw { Unmanaged<AnyObject>.fromOpaque(raw).release() }
        }
        precondition(rc == 0, "pthread_key_create failed: \(rc)")
        self.key = key
    }

    deinit {
        if let raw = pthread_getspecific(key) { Unmanaged<AnyObject>.fromOpaque(raw).release() }
        pthread_key_delete(key)
    }

    /// Runs `body` with the calling thread's value, without retaining it (it lives as long as the
    /// thread); `body` must not keep it or hand it to another thread.
    @inlinable @inline(__always)
    public func withValue<R>(_ body: (Value) -> R) -> R {
        if let raw = pthread_getspecific(key) {
            return Unmanaged<Value>.fromOpaque(raw)._withUnsafeGuaranteedRef(body)
        }
        return body(value)
    }

    /// The calling thread's value. Don't keep it past the calling function or hand it to another
    /// thread.
    @inlinable
    public var value: Value {
        if let raw = pthread_getspecific(key) {
            return Unmanaged<Value>.fromOpaque(raw).takeUnretainedValue()
        }
        let fresh = make()
        pthread_setspecific(key, Unmanaged.passRetained(fresh).toOpaque())
        return fresh
    }
}

/// Unique numbers 1, 2, 3, … from one shared counter, taken by each thread in blocks of
/// `blockSize`: one update of the shared counter per block instead of one per number. Numbers
/// are unique, not in order across threads (each thread's are increasing). Each counter keeps
/// its per-thread block in two of the thread's 32 pairs of words (`cloupe_thread_words`), so
/// there can be 32 counters in a process: make them `static`.
public final class BlockCounter: Sendable {
    private static let claimed = Atomic<Int>(0)
    @usableFromInline let taken = Atomic<UInt64>(0)
    @usableFromInline let blockSize: UInt64
    /// The first of this counter's two words (next, end) in every thread's words.
    @usableFromInline let word: Int

    public init(blockSize: UInt64 = 256) {
        precondition(blockSize > 0)
        self.blockSize = blockSize
        let pair = Self.claimed.wrappingAdd(1, ordering: .relaxed).oldValue
        precondition(pair < 32, "more than 32 BlockCounters in one process")
        word = 2 * pair
    }

    @inlinable @inline(__always)
    public func next() -> UInt64 {
        let words = cloupe_thread_words()! + word
        // (next, end) = (0, 0) on a thread's first call: an empty block.
        if words[0] == words[1] {
            let end = taken.wrappingAdd(blockSize, ordering: .relaxed).newValue
            words[0] = UInt64(end &- blockSize &+ 1)
            words[1] = UInt64(end &+ 1)
        }
        let n = words[0]
        words[0] = n &+ 1
        return UInt64(n)
    }
}
