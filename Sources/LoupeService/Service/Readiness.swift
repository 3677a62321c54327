// Readiness and drain (DESIGN §6): ready means a model is servable (loaded, verified,
// self-tested; strict readiness is the provider's) and the server is not draining. The first
// ready moment is recorded as start-to-ready.
import Logging
import Synchronization

final class Readiness: Sendable {
    let provider: any ModelProvider
    let metrics: ServiceMetrics
    let logger: Logger
    /// Monotonic ns when the process (or the service, in tests) started.
    let startedAt: UInt64
    /// Atomics rather than a lock: /health reads them at every request, from every event loop.
    private let draining = Atomic<Bool>(false)
    /// Monotonic ns of the first ready moment; 0 before.
    private let readySince = Atomic<UInt64>(0)

    init(provider: any ModelProvider, metrics: ServiceMetrics, logger: Logger, startedAt: UInt64) {
        self.provider = provider; self.metrics = metrics; self.logger = logger; self.startedAt = startedAt
    }

    /// Ready now? The first time this is true, start-to-ready is recorded and logged.
    func check() -> Bool {
        let ready = provider.isReady && !draining.load(ordering: .acquiring)
        var first = false
        if ready && readySince.load(ordering: .relaxed) == 0 {
            first = readySince.compareExchange(expected: 0, desired: max(1, monotonicNanoseconds()), ordering: .relaxed).exchanged
        }
        // Written only when it changes: a store at every probe would move the gauge's cache line
        // between the loops.
        let gauge: Double = ready ? 1 : 0
        if metrics.ready.value != gauge { metrics.ready.set(gauge) }
        if first, let seconds = startToReadySeconds {
            metrics.startToReady.set(seconds)
            logger.info("ready", metadata: ["start_to_ready_ms": .stringConvertible(Int((seconds * 1000).rounded())),
                                            "models": "\(provider.servedModels().map { "\($0.name)/\($0.version)" }.joined(separator: ","))"])
        }
        return ready
    }

    /// Seconds from start to the first ready state, nil before.
    var startToReadySeconds: Double? {
        let since = readySince.load(ordering: .relaxed)
        return since == 0 ? nil : Double(since - startedAt) / 1e9
    }

    var isDraining: Bool { draining.load(ordering: .acquiring) }

    /// SIGTERM, step 1: readiness turns 503; requests are still served.
    func beginDrain() {
        draining.store(true, ordering: .releasing)
        metrics.draining.set(1)
        metrics.ready.set(0)
    }

    /// Whole milliseconds since start, rounded (for /health).
    var uptimeMilliseconds: Int { Int((Double(monotonicNanoseconds() - startedAt) / 1e6).rounded()) }
}
