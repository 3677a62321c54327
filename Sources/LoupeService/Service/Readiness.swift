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
    private let state = Mutex<State>(State())

    private struct State {
        var draining = false
        var readySince: UInt64 = 0
    }

    init(provider: any ModelProvider, metrics: ServiceMetrics, logger: Logger, startedAt: UInt64) {
        self.provider = provider; self.metrics = metrics; self.logger = logger; self.startedAt = startedAt
    }

    /// Ready now? The first time this is true, start-to-ready is recorded and logged.
    func check() -> Bool {
        let modelReady = provider.isReady
        let (ready, first) = state.withLock { s -> (Bool, Bool) in
            let ready = modelReady && !s.draining
            if ready && s.readySince == 0 { s.readySince = monotonicNanoseconds(); return (true, true) }
            return (ready, false)
        }
        metrics.ready.set(ready ? 1 : 0)
        if first, let seconds = startToReadySeconds {
            metrics.startToReady.set(seconds)
            logger.info("ready", metadata: ["start_to_ready_ms": .stringConvertible(Int((seconds * 1000).rounded())),
                                            "models": "\(provider.servedModels().map { "\($0.name)/\($0.version)" }.joined(separator: ","))"])
        }
        return ready
    }

    /// Seconds from start to the first ready state, nil before.
    var startToReadySeconds: Double? {
        let since = state.withLock { $0.readySince }
        return since == 0 ? nil : Double(since - startedAt) / 1e9
    }

    var isDraining: Bool { state.withLock { $0.draining } }

    /// SIGTERM, step 1: readiness turns 503; requests are still served.
    func beginDrain() {
        state.withLock { $0.draining = true }
        metrics.draining.set(1)
        metrics.ready.set(0)
    }

    /// Whole milliseconds since start, rounded (for /health).
    var uptimeMilliseconds: Int { Int((Double(monotonicNanoseconds() - startedAt) / 1e6).rounded()) }
}
