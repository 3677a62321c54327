// Triton's statistics extension, counted per model version (GET /v2/models/{m}[/versions/{v}]/stats).
// The batcher owns one store: its workers count forward passes, and `Batcher.submit` (RouteSupport)
// counts each request's outcome with its queue, decode, forward-pass and response-writing times.
// Lock-light: one short lock to find a version's counters, then relaxed atomic adds.
import Synchronization

/// A count and the total nanoseconds spent, as Triton's `{"count": …, "ns": …}`.
public struct StatisticDuration: Sendable, Equatable {
    public var count: UInt64
    public var ns: UInt64
}

/// A model version's counters at one moment (Triton's `model_stats[]` entry).
public struct ModelVersionStatisticsSnapshot: Sendable, Equatable {
    public var name: String
    public var version: Int
    /// Milliseconds since the Unix epoch of the last successful inference; 0 = none yet.
    public var lastInferenceMilliseconds: UInt64
    /// Images inferred by successful requests.
    public var inferenceCount: UInt64
    /// Forward passes run (a dynamic batch of several requests is one).
    public var executionCount: UInt64
    /// Requests answered with a result: count and total time from decoding to the response.
    public var success: StatisticDuration
    /// Requests for this version that failed after it was chosen (bad input, queue full, draining).
    public var fail: StatisticDuration
    /// Successful requests: time waiting in the batcher's queue.
    public var queue: StatisticDuration
    /// Successful requests: time decoding the body into the model's input.
    public var computeInput: StatisticDuration
    /// Successful requests: the forward pass their batch ran in.
    public var computeInfer: StatisticDuration
    /// Successful requests: time writing the response body.
    public var computeOutput: StatisticDuration
}

/// The counters of one model version.
final class ModelVersionStatistics: Sendable {
    private struct Pair: ~Copyable {
        let count = Atomic<UInt64>(0)
        let ns = Atomic<UInt64>(0)
        func add(_ nanoseconds: UInt64) {
            count.add(1, ordering: .relaxed)
            ns.add(nanoseconds, ordering: .relaxed)
        }
        var value: StatisticDuration { StatisticDuration(count: count.load(ordering: .relaxed), ns: ns.load(ordering: .relaxed)) }
    }

    private let success = Pair(), fail = Pair(), queue = Pair(), input = Pair(), infer = Pair(), output = Pair()
    private let inferences = Atomic<UInt64>(0)
    private let executions = Atomic<UInt64>(0)
    private let lastInference = Atomic<UInt64>(0)
    private let perImage = Atomic<UInt64>(0)

    func executed() { executions.add(1, ordering: .relaxed) }

    /// A prediction pass of `images` took `nanoseconds`: folds it into the cost per image
    /// (a moving average, ¾ old + ¼ new) that decides what an event loop may run itself.
    func recordPass(images: Int, nanoseconds: UInt64) {
        guard images > 0 else { return }
        let new = max(1, nanoseconds / UInt64(images))
        let old = perImage.load(ordering: .relaxed)
        perImage.store(old == 0 ? new : (3 * old + new) / 4, ordering: .relaxed)   // a lost update only skips a sample
    }

    /// Nanoseconds per image of this version's recent prediction passes; 0 before the first.
    var nanosecondsPerImage: UInt64 { perImage.load(ordering: .relaxed) }

    func succeeded(images: Int, queue q: UInt64, input i: UInt64, infer f: UInt64, output o: UInt64, total: UInt64,
                   wallClockMilliseconds: UInt64) {
        success.add(total); queue.add(q); input.add(i); infer.add(f); output.add(o)
        inferences.add(UInt64(images), ordering: .relaxed)
        lastInference.max(wallClockMilliseconds, ordering: .relaxed)
    }

    func failed(nanoseconds: UInt64) { fail.add(nanoseconds) }

    func snapshot(name: String, version: Int) -> ModelVersionStatisticsSnapshot {
        ModelVersionStatisticsSnapshot(name: name, version: version, lastInferenceMilliseconds: lastInference.load(ordering: .relaxed),
                                       inferenceCount: inferences.load(ordering: .relaxed),
                                       executionCount: executions.load(ordering: .relaxed),
                                       success: success.value, fail: fail.value, queue: queue.value,
                                       computeInput: input.value, computeInfer: infer.value, computeOutput: output.value)
    }
}

/// Every model version's counters, kept across reloads of the same name and version.
public final class InferenceStatistics: Sendable {
    private struct Key: Hashable { var name: String; var version: Int }
    private let table = Mutex<[Key: ModelVersionStatistics]>([:])

    public init() {}

    func counters(_ model: any InferenceModel) -> ModelVersionStatistics {
        let key = Key(name: model.name, version: model.version)
        return table.withLock { table in
            if let existing = table[key] { return existing }
            let created = ModelVersionStatistics()
            table[key] = created
            return created
        }
    }

    /// The counters of `name` version `version` now (zeros when it has not been used yet).
    public func snapshot(name: String, version: Int) -> ModelVersionStatisticsSnapshot {
        let counters = table.withLock { $0[Key(name: name, version: version)] } ?? ModelVersionStatistics()
        return counters.snapshot(name: name, version: version)
    }

    /// Milliseconds since the Unix epoch, for `last_inference`.
    static func nowMilliseconds() -> UInt64 { UInt64(max(0, wallClockSeconds() * 1000)) }
}
