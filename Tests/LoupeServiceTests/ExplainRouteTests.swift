import Logging
import LoupeHTTP
@testable import LoupeService
import Testing

// POST /explain through the real router and batcher (the attribution maths is tested in
// LoupeEngineTests/InputGradientTests and end to end in EndToEndTests/ExplainEndToEndTests).
@Suite struct ExplainRouteTests {
    @Test func aModelWithoutGradientsIsA501Sentence() {
        let h = Harness()
        let r = h.send(.POST, "/explain", query: [("method", "saliency")], headers: [("Content-Type", "application/octet-stream")],
                       body: [0, 0, 0, 0])
        #expect(r.status == 501)
        #expect(json(r)["code"]?.stringValue == "explanations_unsupported")
    }

    @Test func parametersAreCheckedBeforeTheQueue() {
        let h = Harness()
        let r = h.send(.POST, "/explain", query: [("method", "occlusion"), ("window", "3")],
                       headers: [("Content-Type", "application/octet-stream")], body: [0, 0, 0, 0])
        #expect(r.status == 400)
        #expect(json(r)["error"]?.stringValue == "window must be an integer from 1 to 2, received '3'")
    }

    /// `inference.max_explain_passes` bounds what one request may cost (images × passes per image), before
    /// the queue: 1024 images × 1024 integrated-gradient steps once held one worker for minutes.
    @Test func anExplanationOverTheWorkLimitIsA413NamingTheProductAndTheLimit() {
        let h = Harness { $0.maxExplainPasses = 100 }
        let octet = [("Content-Type", "application/octet-stream")]
        let three = [UInt8](repeating: 0, count: 12)
        let over = h.send(.POST, "/explain", headers: octet, body: three)   // 3 images × 43 passes (32 steps)
        #expect(over.status == 413, "\(String(decoding: over.body, as: UTF8.self))")
        #expect(json(over)["code"]?.stringValue == "explanation_too_large")
        #expect(json(over)["error"]?.stringValue?.hasPrefix(
            "this explanation would cost 3 images × 43 network passes = 129 passes, over inference.max_explain_passes (100)") == true,
                "\(String(decoding: over.body, as: UTF8.self))")
        let v1 = h.send(.POST, "/v1/models/fake:explain", query: [("steps", "100")], headers: [("Content-Type", "application/json")],
                        body: Array(#"{"instances": [[0, 0, 0, 0]]}"#.utf8))
        #expect(v1.status == 413 && json(v1)["error"]?.stringValue?.contains("1 image × 134 network passes = 134 passes") == true,
                "\(String(decoding: v1.body, as: UTF8.self))")
        // Within the limit the job reaches the worker (whose fake model cannot explain: 501).
        #expect(h.send(.POST, "/explain", headers: octet, body: Array(three[0..<8])).status == 501)
        #expect(h.send(.POST, "/explain", query: [("method", "occlusion"), ("window", "1"), ("stride", "1")], headers: octet, body: three).status == 501)
        #expect(ServiceConfiguration().maxExplainPasses >= 1024 * 43)   // the default allows a full request at the default steps
    }

    /// Explanations share the bounded queue: each holds images × passes (43 for 32 integrated-gradient
    /// steps), so behind a busy worker the next one is refused with 503 + Retry-After, and health still answers.
    @Test func aFloodOfExplanationsGets503WhileHealthAnswers() {
        var c = ServiceConfiguration()
        c.inferenceWorkers = 1; c.queueCapacity = 16; c.maxBatchSize = 1; c.accessLog = false
        let slow = FakeModel(delayMicroseconds: 300_000)
        let service = InferenceService(configuration: c, provider: FakeProvider([slow]), logger: Logger(label: "t"))
        service.start()
        let handler = service.httpHandler(service.routes)
        func request(_ path: String, _ query: [(String, String)] = []) -> HTTPRequest {
            HTTPRequest(method: path == "/health/live" ? .GET : .POST, target: path, path: path, query: query.map { (name: $0.0, value: $0.1) },
                        headers: HTTPHeaders([("Content-Type", "application/octet-stream")]), body: path == "/health/live" ? [] : [0, 0, 0, 0])
        }
        let busy = ResponseCapture()
        handler(request("/predict"), busy)
        let explains = (0..<3).map { _ in ResponseCapture() }
        for s in explains { handler(request("/explain"), s) }
        let health = ResponseCapture()
        handler(request("/health/live"), health)
        #expect(health.wait().status == 200)
        let statuses = explains.map { $0.wait().status }
        #expect(statuses.contains(503))
        let rejected = explains.map { $0.wait() }.first { $0.status == 503 }
        #expect(rejected?.headers["Retry-After"] == "1")
        #expect(json(rejected!)["code"]?.stringValue == "queue_full")
        #expect(busy.wait().status == 200)
    }
}
