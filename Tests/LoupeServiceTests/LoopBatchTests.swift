// Batching on the event loop (`batching.on_event_loop`, LoopBatch.swift): a real LoupeHTTP server
// whose handler submits jobs to a Batcher, so the jobs are submitted on an event loop's thread.
// Which thread ran a forward pass is read in the completion (CurrentEventLoop.current).
import LoupeEngine
import LoupeHTTP
import Synchronization
import Testing
@testable import LoupeService

@Suite struct LoopBatchTests {
    struct Outcome: Sendable, Equatable {
        var submitted: Batcher.SubmitOutcome
        var probabilities: [Float] = []
        var batchSize = 0
        var onLoop = false
        var failed = false
    }

    /// A one-loop server whose handler submits the jobs `make` returns for each request, answers
    /// once they all completed (or were refused), and reports their outcomes to `report`.
    func serve(_ batcher: Batcher, inline: Bool = true, jobs make: @escaping @Sendable (HTTPRequest) -> [(model: FakeModel, input: [Float], explain: Bool)],
               report: @escaping @Sendable ([Outcome]) -> Void) throws -> HTTPServer {
        var c = HTTPServerConfiguration(host: "127.0.0.1", port: 0)
        c.eventLoopThreads = 1; c.handlerThreads = 1; c.runHandlersOnEventLoop = inline
        let server = try HTTPServer(configuration: c) { request, sink in
            let specs = make(request)
            let state = Mutex((outcomes: [Outcome](repeating: Outcome(submitted: .accepted), count: specs.count), left: specs.count))
            @Sendable func done(_ i: Int, _ outcome: Outcome) {
                let finished: [Outcome]? = state.withLock { s in
                    s.outcomes[i] = outcome; s.left -= 1
                    return s.left == 0 ? s.outcomes : nil
                }
                if let finished { report(finished); sink.respond(HTTPResponse(status: 200)) }
            }
            for (i, spec) in specs.enumerated() {
                let completion: @Sendable (InferenceResult) -> Void = { r in
                    var failed = false
                    if case .failure? = r.explanation { failed = true }
                    done(i, Outcome(submitted: .accepted, probabilities: r.probabilities, batchSize: r.batchSize,
                                    onLoop: CurrentEventLoop.current != nil, failed: failed))
                }
                let count = spec.input.count / 4
                let job = spec.explain
                    ? InferenceJob(model: spec.model, input: spec.input, count: count,
                                   explanation: ExplanationRequest(options: AttributionOptions(method: .saliency), target: nil), completion: completion)
                    : InferenceJob(model: spec.model, input: spec.input, count: count, completion: completion)
                let outcome = batcher.submit(job)
                if outcome != .accepted { done(i, Outcome(submitted: outcome)) }
            }
        }
        try server.start()
        return server
    }

    func call(_ server: HTTPServer) throws {
        let client = try TestClient(port: server.port)
        client.send("GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        #expect(try client.readResponse().status == 200)
    }

    static func configuration(maxBatch: Int = 8, capacity: Int = 100, delay: Int = 0, fault: Int = 0, onEventLoop: Bool = true) -> BatcherConfiguration {
        BatcherConfiguration(workers: 1, threadsPerWorker: 1, maxBatchSize: maxBatch, maxQueueDelayMicroseconds: delay,
                             queueCapacity: capacity, faultDelayMilliseconds: fault, onEventLoop: onEventLoop)
    }

    /// Jobs submitted in one iteration run as one forward pass on the loop, each with its own rows.
    @Test func oneIterationsJobsAreOnePassOnTheLoop() throws {
        let batcher = Batcher(configuration: Self.configuration())
        batcher.start()
        defer { batcher.stop() }
        let model = FakeModel()
        let seen = Mutex<[Outcome]>([])
        let server = try serve(batcher, jobs: { _ in [(model, [1, 0, 0, 0], false), (model, [2, 0, 0, 0, 3, 0, 0, 0], false)] },
                               report: { o in seen.withLock { $0 = o } })
        defer { server.shutdown(deadline: .seconds(1)) }
        try call(server)
        let o = seen.withLock { $0 }
        #expect(o.map(\.onLoop) == [true, true])
        #expect(o[0].probabilities == [1, 2, 3])
        #expect(o[1].probabilities == [2, 3, 4, 3, 4, 5])
        #expect(o.map(\.batchSize) == [3, 3])
        #expect(model.batches.withLock { $0 } == [3])
        #expect(batcher.statistics.snapshot(name: "fake", version: 1).executionCount == 1)
    }

    /// A pass holds at most max_batch_size images of one model; jobs keep their order per model.
    @Test func passesSplitByModelAndSize() throws {
        let batcher = Batcher(configuration: Self.configuration(maxBatch: 2))
        batcher.start()
        defer { batcher.stop() }
        let a = FakeModel(name: "a"), b = FakeModel(name: "b")
        let seen = Mutex<[Outcome]>([])
        let server = try serve(batcher, jobs: { _ in [(a, [1, 0, 0, 0], false), (b, [5, 0, 0, 0], false), (a, [2, 0, 0, 0], false),
                                                    (a, [3, 0, 0, 0], false), (b, [6, 0, 0, 0], false)] },
                               report: { o in seen.withLock { $0 = o } })
        defer { server.shutdown(deadline: .seconds(1)) }
        try call(server)
        let o = seen.withLock { $0 }
        #expect(o.map { $0.probabilities.first } == [1, 5, 2, 3, 6])
        #expect(o.allSatisfy { $0.onLoop })
        #expect(a.batches.withLock { $0 } == [2, 1])
        #expect(b.batches.withLock { $0 } == [2])
    }

    /// The per-loop batch takes queue_size images at most; beyond it `.queueFull` (503 at the routes).
    @Test func aFullLoopBatchIsRefused() throws {
        let batcher = Batcher(configuration: Self.configuration(capacity: 2))
        batcher.start()
        defer { batcher.stop() }
        let model = FakeModel()
        let seen = Mutex<[Outcome]>([])
        let server = try serve(batcher, jobs: { _ in [(model, [1, 0, 0, 0], false), (model, [2, 0, 0, 0], false), (model, [3, 0, 0, 0], false)] },
                               report: { o in seen.withLock { $0 = o } })
        defer { server.shutdown(deadline: .seconds(1)) }
        try call(server)
        #expect(seen.withLock { $0 }.map(\.submitted) == [.accepted, .accepted, .queueFull])
        #expect(model.batches.withLock { $0 } == [2])
    }

    /// Explanations, jobs over max_batch_size, handlers off the loop, a queue delay, a fault delay
    /// and the setting off: all on the workers.
    @Test func whatGoesToTheWorkers() throws {
        let model = FakeModel()
        for (configuration, inline, explain, images) in [
            (Self.configuration(), true, true, 1), (Self.configuration(maxBatch: 2), true, false, 3),
            (Self.configuration(), false, false, 1), (Self.configuration(delay: 100), true, false, 1),
            (Self.configuration(fault: 1), true, false, 1), (Self.configuration(onEventLoop: false), true, false, 1),
        ] {
            let batcher = Batcher(configuration: configuration)
            batcher.start()
            let seen = Mutex<[Outcome]>([])
            let input = [Float](repeating: 1, count: 4 * images)
            let server = try serve(batcher, inline: inline, jobs: { _ in [(model, input, explain)] }, report: { o in seen.withLock { $0 = o } })
            try call(server)
            let o = seen.withLock { $0 }
            #expect(o.count == 1 && o[0].submitted == .accepted && !o[0].onLoop, "\(configuration) inline \(inline) explain \(explain)")
            #expect(o.first?.failed == explain)   // the fake model cannot be explained: the job still completes
            server.shutdown(deadline: .seconds(1))
            batcher.stop()
        }
    }

    /// With `batching.event_loop_max_pass_us`, a loop runs a job itself only while the model's
    /// measured cost per image × the pass's images stays within it: an unmeasured model and the
    /// jobs past the budget go to the workers (whose passes measure the model too).
    @Test func aLoopRunsOnlyWhatFitsItsTimeBudget() throws {
        let batcher = Batcher(configuration: BatcherConfiguration(workers: 1, threadsPerWorker: 1, maxBatchSize: 8, maxQueueDelayMicroseconds: 0,
                                                                  queueCapacity: 100, onEventLoop: true, eventLoopMaxPassMicroseconds: 1000))
        batcher.start()
        defer { batcher.stop() }
        let model = FakeModel()
        let counters = batcher.statistics.counters(model)
        /// Sets the model's measured cost (the moving average converges on a repeated sample).
        func cost(_ nanoseconds: UInt64) { for _ in 0..<80 { counters.recordPass(images: 1, nanoseconds: nanoseconds) } }
        let seen = Mutex<[Outcome]>([])
        let server = try serve(batcher, jobs: { _ in [(model, [1, 0, 0, 0], false), (model, [2, 0, 0, 0], false)] },
                               report: { o in seen.withLock { $0 = o } })
        defer { server.shutdown(deadline: .seconds(1)) }
        #expect(counters.nanosecondsPerImage == 0)
        try call(server)
        // Not measured yet: the first job goes to the workers. (The second may find the model
        // measured already, if a worker finished the first pass before it was submitted.)
        #expect(seen.withLock { $0 }.first?.onLoop == false)
        #expect(counters.nanosecondsPerImage > 0)                        // the workers' passes measured it
        cost(10_000)
        try call(server)
        #expect(seen.withLock { $0 }.map(\.onLoop) == [true, true])     // 2 × 10 µs
        cost(600_000)
        try call(server)
        #expect(seen.withLock { $0 }.map(\.onLoop) == [true, false])    // 600 µs fits, 1.2 ms does not
        cost(2_000_000)
        try call(server)
        #expect(seen.withLock { $0 }.map(\.onLoop) == [false, false])
        #expect(seen.withLock { $0 }.allSatisfy { $0.submitted == .accepted && !$0.probabilities.isEmpty })
    }

    @Test func stoppedBatcherRefusesOnTheLoop() throws {
        let batcher = Batcher(configuration: Self.configuration())
        batcher.start()
        batcher.stop()
        let seen = Mutex<[Outcome]>([])
        let server = try serve(batcher, jobs: { _ in [(FakeModel(), [1, 0, 0, 0], false)] }, report: { o in seen.withLock { $0 = o } })
        defer { server.shutdown(deadline: .seconds(1)) }
        try call(server)
        #expect(seen.withLock { $0 }.map(\.submitted) == [.stopped])
    }
}
