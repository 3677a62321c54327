// LoupeSystem's per-thread state (StripedCells, PerThread, BlockCounter) and the metrics built on
// it, exercised from several real threads at once.
import Glibc
import Synchronization
import Testing
@testable import LoupeService

@Suite struct PerThreadTests {
    /// Runs `body(thread)` on `count` threads started together; returns when all have finished.
    private func onThreads(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) {
        let done = Atomic<Int>(0)
        let go = Atomic<Bool>(false)
        var threads: [pthread_t] = []
        for t in 0..<count {
            threads.append(startThread(name: "test-\(t)", detached: false) {
                while !go.load(ordering: .acquiring) {}
                body(t)
                done.add(1, ordering: .releasing)
            })
        }
        go.store(true, ordering: .releasing)
        for t in threads { pthread_join(t, nil) }
        #expect(done.load(ordering: .acquiring) == count)
    }

    @Test func stripedCountsAddUpOverThreads() {
        // More threads than stripes, so some share one.
        let threads = StripedCells.stripeCount + 3
        let cells = StripedCells(width: 3)
        onThreads(threads) { t in
            for _ in 0..<5000 {
                cells.add(1, to: 0)
                cells.add(UInt64(t), to: 2)
                cells.add(double: 0.5, to: 1)
            }
        }
        #expect(cells.sum(0) == UInt64(threads * 5000))
        #expect(cells.sum(2) == UInt64((0..<threads).reduce(0, +) * 5000))
        #expect(cells.sumDouble(1) == Double(threads * 5000) * 0.5)
        cells.set(double: 2.25, cell: 1)
        #expect(cells.sumDouble(1) == 2.25)
        #expect(cells.sum(0) == UInt64(threads * 5000))   // other cells untouched
    }

    @Test func metricValuesFromManyThreads() {
        let r = MetricsRegistry()
        let counter = r.counter("c_total", help: "c").unlabelled
        let gauge = r.gauge("g", help: "g").unlabelled
        let histogram = r.histogram("h", help: "h", buckets: [1, 2]).unlabelled
        onThreads(6) { t in
            for i in 0..<2000 {
                counter.increment()
                gauge.increment(); gauge.decrement()
                histogram.observe(Double(i % 3) + 0.5)   // 0.5, 1.5, 2.5: one per bucket and above
            }
        }
        #expect(counter.value == 12000)
        #expect(gauge.value == 0)
        let (cumulative, sum, count) = histogram.snapshot()
        #expect(count == 12000)
        #expect(cumulative == [4002, 8004])
        #expect(sum == 6 * (667 * 0.5 + 667 * 1.5 + 666 * 2.5))
        gauge.set(7)
        #expect(gauge.value == 7)
        #expect(r.render().contains("h_bucket{le=\"+Inf\"} 12000\n"))
    }

    @Test func perThreadValuesAreTheThreadsOwnAndReleasedAtExit() {
        let local = PerThread { Counted() }
        let sameObject = Atomic<Int>(0)
        onThreads(4) { _ in
            let first = local.value
            for _ in 0..<100 { local.value.uses += 1 }
            if local.value === first && first.uses == 100 { sameObject.add(1, ordering: .relaxed) }
        }
        #expect(sameObject.load(ordering: .relaxed) == 4)
        #expect(Counted.made.load(ordering: .relaxed) == 4)
        #expect(Counted.freed.load(ordering: .relaxed) == 4)   // each thread's value went with it
    }

    @Test func blockCounterNumbersAreUniqueAndIncreasingPerThread() {
        let counter = BlockCounter(blockSize: 16)
        let seen = Mutex<[[UInt64]]>(Array(repeating: [], count: 5))
        onThreads(5) { t in
            var mine: [UInt64] = []
            for _ in 0..<1000 { mine.append(counter.next()) }
            seen.withLock { $0[t] = mine }
        }
        let all = seen.withLock { $0 }
        for mine in all { #expect(zip(mine, mine.dropFirst()).allSatisfy { $0 < $1 }) }
        let flat = all.flatMap { $0 }
        #expect(Set(flat).count == 5000)
        #expect(flat.min() ?? 0 >= 1)
        // At most one partly used block per thread.
        #expect(flat.max() ?? 0 <= 5000 + 5 * 16)
    }
}

/// Counts its instances, for the PerThread test.
private final class Counted {
    static let made = Atomic<Int>(0)
    static let freed = Atomic<Int>(0)
    var uses = 0
    init() { Self.made.add(1, ordering: .relaxed) }
    deinit { Self.freed.add(1, ordering: .relaxed) }
}

/// GET /health's per-thread body cache: the kept body only for inputs equal in every field.
@Suite struct HealthBodyCacheTests {
    @Test func keptOnlyWhileEveryInputIsTheSame() {
        let cache = HealthBody()
        let state: UInt64 = 7
        let base = HealthBody.Inputs(ready: true, draining: false, uptimeMilliseconds: 1000, startToReadySeconds: 0.5,
                                     queueDepth: 0, models: state, promotion: 0)
        var writes = 0
        func body(_ inputs: HealthBody.Inputs) -> [UInt8] {
            cache.body(inputs) { writes += 1; return Array("\(writes)".utf8) }
        }
        #expect(body(base) == Array("1".utf8))
        #expect(body(base) == Array("1".utf8))
        #expect(writes == 1)
        var changes: [HealthBody.Inputs] = []
        var c = base; c.ready = false; changes.append(c)
        c = base; c.draining = true; changes.append(c)
        c = base; c.uptimeMilliseconds = 1001; changes.append(c)
        c = base; c.startToReadySeconds = nil; changes.append(c)
        c = base; c.queueDepth = 3; changes.append(c)
        c = base; c.models = 8; changes.append(c)
        c = base; c.promotion = 1; changes.append(c)
        for (i, changed) in changes.enumerated() {
            _ = body(base)
            let before = writes
            #expect(body(changed) == Array("\(before + 1)".utf8), "input \(i)")
        }
        // A provider without a published state: written every time.
        c = base; c.models = nil
        let before = writes
        _ = body(c); _ = body(c)
        #expect(writes == before + 2)
    }
}
