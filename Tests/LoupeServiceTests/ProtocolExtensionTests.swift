// TF Serving / KServe v1 REST and Triton's statistics and model-configuration extensions, through
// the service's real router (Harness). FakeModel: 2×2 pixels in, [s, s+1, s+2] out, where s is the
// sum of the normalized pixels (so one pixel of 255 gives [1, 2, 3]).
import LoupeHTTP
import Testing
@testable import LoupeService

@Suite struct V1ProtocolTests {
    static func body(_ text: String) -> [UInt8] { Array(text.utf8) }

    static func base64(_ bytes: [UInt8]) -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
        var out = ""
        var i = 0
        while i < bytes.count {
            let n = min(3, bytes.count - i)
            let b = (0..<3).map { i + $0 < bytes.count ? UInt32(bytes[i + $0]) : 0 }
            let v = b[0] << 16 | b[1] << 8 | b[2]
            for j in 0..<4 { out.append(j <= n ? alphabet[Int(v >> UInt32(18 - 6 * j) & 63)] : "=") }
            i += 3
        }
        return out
    }

    @Test func rowFormatPredictions() {
        let h = Harness()
        let pgm: [UInt8] = Array("P5\n2 2\n255\n".utf8) + [0, 0, 255, 0]
        let r = h.send(.POST, "/v1/models/fake:predict", headers: [("Content-Type", "application/json")],
                       body: Self.body(#"{"instances": [[0, 0, 0, 255], [[0, 0], [255, 0]], [[[0], [255]], [[0], [0]]], {"b64": ""# + Self.base64(pgm) + #""}, {"image": [0, 0, 0, 0]}]}"#))
        #expect(r.status == 200, "\(String(decoding: r.body, as: UTF8.self))")
        let rows = json(r)["predictions"]?.arrayValue ?? []
        #expect(rows.count == 5)
        for row in rows.prefix(4) { #expect(row == .array([.number(1), .number(2), .number(3)])) }
        #expect(rows.last == .array([.number(0), .number(1), .number(2)]))
        #expect(json(r)["outputs"] == nil)
    }

    @Test func columnarFormatAndVersionPath() {
        let h = Harness()
        let r = h.send(.POST, "/v1/models/fake/versions/1:predict", body: Self.body(#"{"inputs": [[255, 0, 0, 0], [255, 255, 0, 0]]}"#))
        #expect(r.status == 200)
        #expect(json(r)["outputs"] == .array([.array([.number(1), .number(2), .number(3)]), .array([.number(2), .number(3), .number(4)])]))
        let named = h.send(.POST, "/v1/models/fake:predict", body: Self.body(#"{"signature_name": "serving_default", "inputs": {"input": [[0, 0, 0, 255]]}}"#))
        #expect(named.status == 200)
        #expect(json(named)["outputs"] == .array([.array([.number(1), .number(2), .number(3)])]))
    }

    @Test func predictErrorsAreTFServingErrorBodies() {
        let h = Harness()
        let cases: [(path: String, body: String, status: Int, says: String)] = [
            ("/v1/models/fake:predict", #"{"instances": []}"#, 400, "empty"),
            ("/v1/models/fake:predict", #"{"instances": [[1, 2]]}"#, 400, "expected 4 numbers"),
            ("/v1/models/fake:predict", #"{"instances": [[[[0], [1, 2]], [[0], [0]]]]}"#, 400, "one channel"),
            ("/v1/models/fake:predict", #"{"instances": [[0, 0, 0, 0]], "inputs": [[0, 0, 0, 0]]}"#, 400, "not both"),
            ("/v1/models/fake:predict", #"{"instances": [{"b64": "AAAA", "x": 1}]}"#, 400, "keys 'b64', 'x'"),
            ("/v1/models/fake:predict", #"{"instances": [{"image": {"b64": 1}}]}"#, 400, "'b64' as a number"),
            ("/v1/models/fake:predict", #"{"other": 1}"#, 400, "'instances'"),
            ("/v1/models/fake:predict", #"[1]"#, 400, "JSON object"),
            ("/v1/models/fake:predict", #"{"instances": "#, 400, "not valid JSON"),
            ("/v1/models/fake:predict", "", 400, "empty"),
            ("/v1/models/fake:predict", #"{"signature_name": "classify", "instances": [[0, 0, 0, 0]]}"#, 404, "serving_default"),
            ("/v1/models/fake:predict", #"{"inputs": {"a": [[0, 0, 0, 0]], "b": [[0, 0, 0, 0]]}}"#, 400, "one input"),
            ("/v1/models/nope:predict", #"{"instances": [[0, 0, 0, 0]]}"#, 404, "nope"),
            ("/v1/models/fake/versions/2:predict", #"{"instances": [[0, 0, 0, 0]]}"#, 404, "version 2"),
            ("/v1/models/fake/versions/0:predict", #"{"instances": [[0, 0, 0, 0]]}"#, 400, "positive integer"),
            ("/v1/models/fake/versions/99999999999999999999:predict", #"{"instances": [[0, 0, 0, 0]]}"#, 400, "positive integer"),
            ("/v1/models/fake:classify", #"{"instances": [[0, 0, 0, 0]]}"#, 405, "allowed: GET"),
            ("/v1/models/fake", #"{"instances": [[0, 0, 0, 0]]}"#, 405, "allowed: GET"),
        ]
        for c in cases {
            let r = h.send(.POST, c.path, headers: [("Content-Type", "application/json")], body: Self.body(c.body))
            #expect(r.status == c.status, "\(c.path) \(c.body)")
            let message = json(r)["error"]?.stringValue ?? ""
            #expect(message.contains(c.says), "\(c.path) \(c.body): \(message)")
        }
    }

    @Test func modelStatusInTFServingShape() {
        let h = Harness(models: [FakeModel(version: 1), FakeModel(version: 3)])
        let all = json(h.send(.GET, "/v1/models/fake"))
        let ok: JSONValue = .object([("error_code", .string("OK")), ("error_message", .string(""))])
        #expect(all["model_version_status"] == .array([
            .object([("version", .string("3")), ("state", .string("AVAILABLE")), ("status", ok)]),
            .object([("version", .string("1")), ("state", .string("AVAILABLE")), ("status", ok)]),
        ]))
        #expect(all["name"]?.stringValue == "fake" && all["ready"]?.boolValue == true)
        let one = json(h.send(.GET, "/v1/models/fake/versions/1"))
        #expect(one["model_version_status"]?.arrayValue?.count == 1)
        #expect(one["model_version_status"]?.arrayValue?.first?["version"]?.stringValue == "1")
        #expect(h.send(.GET, "/v1/models/nope").status == 404)
        #expect(h.send(.GET, "/v1/models/fake/versions/2").status == 404)
        let wrongMethod = h.send(.GET, "/v1/models/fake:predict")
        #expect(wrongMethod.status == 405 && wrongMethod.headers["Allow"] == "POST, OPTIONS")
        #expect(h.send(.GET, "/v1/models/fake/versions/1:predict").status == 405)
        #expect(h.send(.GET, "/v1/models/fake:classify").status == 404)
        #expect(json(h.send(.GET, "/"))["status"]?.stringValue == "alive")
    }
}

@Suite struct TritonExtensionTests {
    @Test func statisticsCountRequestsImagesAndFailures() {
        let h = Harness(models: [FakeModel(version: 1), FakeModel(name: "other", version: 2)])
        let before = json(h.send(.GET, "/v2/models/fake/stats"))["model_stats"]?.arrayValue ?? []
        #expect(before.count == 1)
        #expect(before.first?["inference_count"]?.numberValue == 0)
        #expect(before.first?["last_inference"]?.numberValue == 0)
        // Sequential requests: each is its own forward pass.
        #expect(h.send(.POST, "/predict", query: [("model", "fake")], headers: [("Content-Type", "application/octet-stream")], body: [1, 2, 3, 4, 5, 6, 7, 8]).status == 200)
        #expect(h.send(.POST, "/v2/models/fake/infer", body: Array(#"{"inputs": [{"name": "input", "datatype": "UINT8", "shape": [1, 4], "data": [1, 2, 3, 4]}]}"#.utf8)).status == 200)
        #expect(h.send(.POST, "/v1/models/fake:predict", body: Array(#"{"instances": [[0, 0, 0, 0]]}"#.utf8)).status == 200)
        #expect(h.send(.POST, "/v1/models/fake:predict", body: Array(#"{"instances": [[0]]}"#.utf8)).status == 400)
        let stats = json(h.send(.GET, "/v2/models/fake/versions/1/stats"))["model_stats"]?.arrayValue ?? []
        #expect(stats.count == 1)
        let s = stats.first ?? .null
        #expect(s["name"]?.stringValue == "fake" && s["version"]?.stringValue == "1")
        #expect(s["inference_count"]?.numberValue == 4)
        #expect(s["execution_count"]?.numberValue == 3)
        #expect((s["last_inference"]?.numberValue ?? 0) > 1_600_000_000_000)
        let i = s["inference_stats"] ?? .null
        for key in ["success", "queue", "compute_input", "compute_infer", "compute_output"] {
            #expect(i[key]?["count"]?.numberValue == 3, "\(key)")
        }
        #expect(i["fail"]?["count"]?.numberValue == 1)
        #expect((i["success"]?["ns"]?.numberValue ?? 0) >= (i["compute_infer"]?["ns"]?.numberValue ?? .infinity))
        // All models, sorted by name; the other model has no inferences.
        let every = json(h.send(.GET, "/v2/models/stats"))["model_stats"]?.arrayValue ?? []
        #expect(every.map { $0["name"]?.stringValue ?? "" } == ["fake", "other"])
        #expect(every.last?["inference_count"]?.numberValue == 0)
        #expect(h.send(.GET, "/v2/models/nope/stats").status == 404)
        #expect(h.send(.GET, "/v2/models/fake/versions/9/stats").status == 404)
        #expect(h.send(.GET, "/v2/models/fake/versions/x/stats").status == 400)
    }

    @Test func binaryDataFlagsMustBeBooleans() {
        let h = Harness()
        let input = #"{"name": "input", "datatype": "UINT8", "shape": [1, 4], "data": [1, 2, 3, 4]}"#
        for body in [#"{"inputs": [\#(input)], "outputs": [{"name": "probabilities", "parameters": {"binary_data": 1}}]}"#,
                     #"{"inputs": [\#(input)], "parameters": {"binary_data_output": "yes"}}"#,
                     #"{"inputs": [\#(input)], "outputs": [{"name": "probabilities", "parameters": 3}]}"#,
                     #"{"inputs": [\#(input)], "parameters": []}"#] {
            let r = h.send(.POST, "/v2/models/fake/infer", body: Array(body.utf8))
            #expect(r.status == 400 && json(r)["error"]?.stringValue?.contains(body.contains("binary_data") ? "must be true or false" : "must be a JSON object") == true, "\(body)")
        }
    }

    @Test func modelConfigurationInTritonShape() {
        let h = Harness { $0.maxImagesPerRequest = 64; $0.maxBatchSize = 16 }
        let r = h.send(.GET, "/v2/models/fake/config")
        #expect(r.status == 200)
        let c = json(r)
        #expect(c["name"]?.stringValue == "fake" && c["platform"]?.stringValue == "loupe")
        #expect(c["max_batch_size"]?.numberValue == 64)
        let input = c["input"]?.arrayValue?.first ?? .null
        #expect(input["name"]?.stringValue == "input" && input["data_type"]?.stringValue == "TYPE_FP32")
        #expect(input["dims"] == .array([.number(2), .number(2), .number(1)]))
        let output = c["output"]?.arrayValue?.first ?? .null
        #expect(output["name"]?.stringValue == "probabilities" && output["dims"] == .array([.number(3)]))
        #expect(c["dynamic_batching"]?["preferred_batch_size"] == .array([.number(16)]))
        #expect(h.send(.GET, "/v2/models/fake/versions/1/config").status == 200)
        #expect(h.send(.GET, "/v2/models/nope/config").status == 404)
        let extensions = json(h.send(.GET, "/v2"))["extensions"]?.arrayValue ?? []
        #expect(extensions.contains(.string("statistics")) && extensions.contains(.string("model_configuration")))
    }
}

@Suite struct ServedOpenAPITests {
    static func paths(_ r: HTTPResponse) -> [String] { json(r)["paths"]?.objectValue?.map(\.0) ?? [] }

    @Test func onlyEnabledEndpointsAreListed() {
        let h = Harness()
        let served = Self.paths(h.send(.GET, "/openapi.json"))
        for path in ["/predict", "/metrics", "/openapi.json", "/v1/models/{m}:predict", "/v1/models/{m}", "/v2/models/stats", "/"] {
            #expect(served.contains(path), "\(path)")
        }
        #expect(!served.contains { $0.hasPrefix("/v2/repository") }, "repository API listed while disabled")
        // Every documented operation that is served is kept whole; the rest of the document is unchanged.
        #expect(json(h.send(.GET, "/openapi.json"))["components"] == OpenAPI.document["components"])
        #expect(json(h.send(.GET, "/openapi.json"))["paths"]?["/predict"] == OpenAPI.document["paths"]?["/predict"])

        let separateMetrics = Harness { $0.metricsPort = 9100 }
        #expect(!Self.paths(separateMetrics.send(.GET, "/openapi.json")).contains("/metrics"))

        let withRepository = Harness { $0.repositoryAPIEnabled = true }
        withRepository.service.addRoute(.POST, "/v2/repository/index") { _, sink in sink.respond(HTTPResponse(status: 200)) }
        let listed = Self.paths(HarnessHandler(withRepository.service).send(.GET, "/openapi.json"))
        #expect(listed.contains("/v2/repository/index") && !listed.contains("/v2/repository/models/{m}/load"))
    }
}

/// A handler built after routes were added (Harness builds its handler at init).
struct HarnessHandler {
    let handler: HTTPHandler
    init(_ service: InferenceService) { handler = service.httpHandler(service.routes) }
    func send(_ method: HTTPMethod, _ path: String) -> HTTPResponse {
        let sink = ResponseCapture()
        handler(HTTPRequest(method: method, target: path, path: path), sink)
        return sink.wait()
    }
}
