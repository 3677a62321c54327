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

    @Test func pathSplitsAtTheLastColonOfTheLastSegment() {
        #expect(V1Path(model: "fashion:predict", version: nil) == V1Path(model: "fashion", version: nil, verb: "predict"))
        #expect(V1Path(model: "fashion", version: "3:predict") == V1Path(model: "fashion", version: "3", verb: "predict"))
        #expect(V1Path(model: "fashion", version: nil).verb == nil)
        #expect(V1Path(model: "fashion", version: "3").verb == nil)
        #expect(V1Path(model: "a:b:classify", version: nil) == V1Path(model: "a:b", version: nil, verb: "classify"))
        #expect(V1Path(model: ":predict", version: nil) == V1Path(model: "", version: nil, verb: "predict"))
        #expect(V1Path(model: "fashion:", version: nil) == V1Path(model: "fashion", version: nil, verb: ""))
        // Every split of "fashion:predict" into model and verb: only the last ':' separates.
        let whole = "fashion:predict"
        for cut in 0...whole.count {
            let text = String(whole.prefix(cut)) + ":" + String(whole.dropFirst(cut))
            let p = V1Path(model: text, version: nil)
            #expect(p.model + ":" + (p.verb ?? "") == text)
            #expect(p.verb?.contains(":") == false)
        }
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
            ("/v1/models/fake:classify", #"{"instances": [[0, 0, 0, 0]]}"#, 404, ":predict"),
            ("/v1/models/fake", #"{"instances": [[0, 0, 0, 0]]}"#, 404, ":predict"),
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
        #expect(wrongMethod.status == 405 && wrongMethod.headers["Allow"] == "POST")
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
