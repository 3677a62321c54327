import Synchronization

/// A process-wide allowance of bytes for image decoding in flight. A decoder reserves memory
/// as its output actually grows (never what a header claims) and gives it back when done; a
/// reservation past the allowance fails, and the caller answers "busy, retry" instead of growing.
public final class DecodeBudget: Sendable {
    /// The allowance in bytes.
    public let limit: Int
    private let used = Mutex<Int>(0)

    public init(limit: Int) { self.limit = limit }

    /// An allowance too large to run out (tools that decode one file at a time).
    public static let unlimited = DecodeBudget(limit: .max)

    /// Bytes reserved now.
    public var inUse: Int { used.withLock { $0 } }

    /// Takes `bytes` from the allowance, or returns false (taking nothing) when that would pass it.
    public func reserve(_ bytes: Int) -> Bool {
        used.withLock { u in
            guard bytes <= limit - u else { return false }
            u += bytes
            return true
        }
    }

    public func release(_ bytes: Int) {
        used.withLock { $0 -= bytes }
    }
}

/// What one decode holds of a budget; grows in steps (doubling, from 64 KiB) as the output
/// grows, and gives everything back in `releaseAll`.
struct DecodeReservation {
    let budget: DecodeBudget
    private(set) var held = 0

    init(_ budget: DecodeBudget) { self.budget = budget }

    /// Makes sure `total` bytes are covered; at most `cap` are ever reserved.
    mutating func cover(_ total: Int, cap: Int) throws {
        guard total > held else { return }
        let target = min(cap, max(total, max(64 << 10, 2 * held)))
        guard budget.reserve(target - held) else {
            throw LoupeDataError.decodeBudgetExhausted(limit: budget.limit)
        }
        held = target
    }

    mutating func releaseAll() {
        budget.release(held)
        held = 0
    }
}
