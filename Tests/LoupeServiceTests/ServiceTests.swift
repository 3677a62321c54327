import Logging
import LoupeHTTP
import Synchronization
import Testing
@testable import LoupeService

/// Captures the one response a handler gives.
final class ResponseCapture: HTTPResponseSink, @unchecked Sendable {
    private let lock = ConditionLock()
    private var response: HTTPResponse?
    func respond(_ response: consuming HTTPResponse) { let r = response; lock.withLock { self.response = r; lock.broadcast() } }
    func wait() -> HTTPResponse {
        lock.withLock {
            while response == nil { lock.wait(untilMonotonic: monotonicNanoseconds() + 5_000_000_000) }
            return response!
        }
    }
}

final class FakeProvider: ModelProvider, @unchecked Sendable {
    var models: [FakeModel]
    init(_ models: [FakeModel]) { self.models = models }
    func model(named name: String?, version: Int?) -> (any InferenceModel)? {
        models.last { ($0.name == (name ?? "fake")) && (version == nil || $0.version == version) }
    }
    func servedModels() -> [any InferenceModel] { models }
    var modelNames: [String] { models.map(\.name) }
    var isReady: Bool { !models.isEmpty }
    func requestReload(reason: String) {}
}

struct Harness {
    let service: InferenceService
    let handler: HTTPHandler
    init(models: [FakeModel] = [FakeModel()], configure: (inout ServiceConfiguration) -> Void = { _ in }) {
        var c = ServiceConfiguration()
        c.inferenceWorkers = 1
        c.accessLog = false
        configure(&c)
        service = InferenceService(configuration: c, provider: FakeProvider(models), logger: Logger(label: "test"))
        service.start()
        handler = service.httpHandler(service.routes)
    }

    /// Runs one request through the service's real handler: the frozen router, instrumentation,
    /// body decoding and the route.
    func send(_ method: HTTPMethod, _ path: String, query: [(String, String)] = [], headers: [(String, String)] = [], body: [UInt8] = []) -> HTTPResponse {
        var target = path
        if !query.isEmpty { target += "?" + query.map { "\($0.0)=\($0.1)" }.joined(separator: "&") }
        let request = HTTPRequest(method: method, target: target, path: path, query: query.map { (name: $0.0, value: $0.1) },
                                  headers: HTTPHeaders(headers), body: body)
        let sink = ResponseCapture()
        handler(request, sink)
        return sink.wait()
    }
}

func json(_ r: HTTPResponse) -> JSONValue { (try? JSONReader.parse(r.body)) ?? .null }

@Suite struct ServiceTests {
    @Test func predictRawBytesBatch() {
        let h = Harness()
        let r = h.send(.POST, "/predict", query: [("top_k", "2")], headers: [("Content-Type", "application/octet-stream")], body: [255, 0, 0, 0, 0, 0, 0, 0])
        #expect(r.status == 200)
        let v = json(r)
        #expect(v["model"]?.stringValue == "fake")
        #expect(v["model_version"]?.numberValue == 1)
        let p = v["predictions"]?.arrayValue ?? []
        #expect(p.count == 2)
        #expect(p.first?["class"]?.numberValue == 2)            // fake output: [s, s+1, s+2]
        #expect(p.first?["label"]?.stringValue == "c")
        #expect(p.first?["top_k"]?.arrayValue?.count == 2)
        #expect(p.first?["probabilities"]?.arrayValue == [.number(1), .number(2), .number(3)])
        #expect(r.headers["Server-Timing"]?.hasPrefix("queue;dur=") == true)
        #expect(r.headers["X-Request-ID"]?.isEmpty == false)
    }

    @Test func predictJSONFlatAndNested() {
        let h = Harness()
        let body = Array(#"{"instances": [[0, 0, 0, 255], [[0, 0], [255, 0]]]}"#.utf8)
        let r = h.send(.POST, "/predict", headers: [("Content-Type", "application/json; charset=utf-8")], body: body)
        #expect(r.status == 200)
        #expect(json(r)["predictions"]?.arrayValue?.count == 2)
    }

    /// The media type of a Content-Type, with its shortcut for a header that needs no cutting,
    /// trimming or lower-casing, against the plain cut-trim-lower.
    @Test func mediaTypeIsThePartBeforeParameters() {
        for header in ["image/png", "IMAGE/PNG", " image/png ", "image/png; q=1", "image/png;", "\timage/png", "Image/Png",
                       "multipart/form-data; boundary=X", "", ";", "application/json", "image/pÑg", "image/ÉPNG", "a b"] {
            let plain = String(header.prefix { $0 != ";" }).trimmingSpaces().lowercased()
            #expect(InputDecoding.mediaType(header) == plain, "\(header)")
        }
    }

    @Test func requestIDIsEchoed() {
        let h = Harness()
        let r = h.send(.GET, "/health/live", headers: [("X-Request-ID", "abc-123")])
        #expect(r.headers["X-Request-ID"] == "abc-123")
    }

    @Test(arguments: [
        ("application/octet-stream", [UInt8](repeating: 1, count: 5), 400, "wrong_input_size", "multiple of 4 bytes"),
        ("application/octet-stream", [UInt8](), 400, "empty_body", "empty"),
        ("text/plain", [UInt8](repeating: 1, count: 4), 415, "unsupported_media_type", "text/plain"),
        // The 415 names every image type /predict decodes (a GIF's sender is told JPEG and WebP work too).
        ("image/gif", Array("GIF89a".utf8), 415, "unsupported_media_type", "expected Content-Type image/png, image/jpeg, image/webp, image/x-portable-graymap,"),
        ("application/json", Array("{".utf8), 400, "invalid_json", "byte"),
        ("application/json", Array(#"{"instances": [[1, 2, 3]]}"#.utf8), 400, "wrong_input_size", "expected 4 numbers"),
        ("application/json", Array(#"{"instances": [[1, 2, 3, 300]]}"#.utf8), 400, "invalid_input", "0 to 255"),
        ("application/json", Array(#"{"images": []}"#.utf8), 400, "invalid_input", "instances"),
        ("image/png", Array("not a png".utf8), 400, "invalid_image", "PNG"),
        ("image/png", [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13], 400, "invalid_image", "could not be decoded"),
    ] as [(String, [UInt8], Int, String, String)])
    func badInputsGetSentences(contentType: String, body: [UInt8], status: Int, code: String, phrase: String) {
        let h = Harness()
        let r = h.send(.POST, "/predict", headers: [("Content-Type", contentType)], body: body)
        #expect(r.status == status)
        let v = json(r)
        #expect(v["code"]?.stringValue == code)
        #expect(v["error"]?.stringValue?.contains(phrase) == true, "\(v["error"]?.stringValue ?? "")")
    }

    @Test func invalidParameters() {
        let h = Harness()
        for (name, value) in [("top_k", "11"), ("top_k", "x"), ("version", "abc"), ("resize", "maybe")] {
            let r = h.send(.POST, "/predict", query: [(name, value)], headers: [("Content-Type", "application/octet-stream")], body: [0, 0, 0, 0])
            #expect(r.status == 400, "\(name)=\(value)")
            #expect(json(r)["code"]?.stringValue == "invalid_parameter")
        }
        let r = h.send(.POST, "/predict", query: [("model", "nope")], headers: [("Content-Type", "application/octet-stream")], body: [0, 0, 0, 0])
        #expect(r.status == 404)
        #expect(json(r)["code"]?.stringValue == "model_not_found")
    }

    @Test func multipartUpload() {
        let h = Harness()
        let body = Array("--XyZ\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhello\r\n--XyZ\r\nContent-Disposition: form-data; name=\"image\"; filename=\"x.bin\"\r\nContent-Type: image/png\r\n\r\nnot-png\r\n--XyZ--\r\n".utf8)
        let r = h.send(.POST, "/predict", headers: [("Content-Type", "multipart/form-data; boundary=XyZ")], body: body)
        // The file part was found (and refused as not an image): the parser located it.
        #expect(r.status == 400)
        #expect(json(r)["code"]?.stringValue == "invalid_image")
        let none = h.send(.POST, "/predict", headers: [("Content-Type", "multipart/form-data; boundary=XyZ")],
                          body: Array("--XyZ\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhello\r\n--XyZ--\r\n".utf8))
        #expect(json(none)["code"]?.stringValue == "no_images")
    }

    /// RFC 2046 §5.1.1: a boundary is 1…70 characters. A longer one (the header allows 16 KiB) made
    /// the delimiter search cost body × boundary comparisons — a request of 8 MiB of 'a' under a
    /// 16 KiB boundary of 'a's held a thread for minutes; now it is refused at once.
    @Test func multipartBoundaryLongerThan70IsRefused() {
        let h = Harness()
        func send(_ boundary: String) -> (Int, String?, String?) {
            let body = Array("--\(boundary)\r\nContent-Disposition: form-data; name=\"image\"; filename=\"x.png\"\r\n\r\nnot-png\r\n--\(boundary)--\r\n".utf8)
            let r = h.send(.POST, "/predict", headers: [("Content-Type", "multipart/form-data; boundary=\(boundary)")], body: body)
            return (r.status, json(r)["code"]?.stringValue, json(r)["error"]?.stringValue)
        }
        let seventy = String(repeating: "b", count: 70)
        #expect(send(seventy).1 == "invalid_image", "a 70-character boundary is allowed and the part found")
        let (status, code, error) = send(seventy + "b")
        #expect(status == 400 && code == "invalid_multipart")
        #expect(error?.contains("71 characters") == true && error?.contains("1 to 70") == true, "\(error ?? "")")
    }

    @Test func oipInferAndClassification() {
        let h = Harness()
        let body = Array(#"{"id": "r1", "inputs": [{"name": "input", "datatype": "UINT8", "shape": [2, 2, 2], "data": [0, 0, 0, 255, 0, 0, 0, 0]}]}"#.utf8)
        let r = h.send(.POST, "/v2/models/fake/infer", body: body)
        #expect(r.status == 200)
        let v = json(r)
        #expect(v["model_name"]?.stringValue == "fake")
        #expect(v["model_version"]?.stringValue == "1")
        #expect(v["id"]?.stringValue == "r1")
        let out = v["outputs"]?.arrayValue?.first
        #expect(out?["datatype"]?.stringValue == "FP32")
        #expect(out?["shape"] == .array([.number(2), .number(3)]))
        #expect(out?["data"]?.arrayValue?.count == 6)

        let cls = Array(#"{"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 4], "data": [0.5, 0, 0, 0]}], "outputs": [{"name": "probabilities", "parameters": {"classification": 2}}]}"#.utf8)
        let c = h.send(.POST, "/v2/models/fake/versions/1/infer", body: cls)
        #expect(c.status == 200)
        let o = json(c)["outputs"]?.arrayValue?.first
        #expect(o?["datatype"]?.stringValue == "BYTES")
        #expect(o?["data"] == .array([.string("2.5:2:c"), .string("1.5:1:b")]))
    }

    @Test(arguments: [
        (#"{"inputs": [{"name": "input", "datatype": "INT64", "shape": [1, 4], "data": [0, 0, 0, 0]}]}"#, "invalid_datatype"),
        (#"{"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 5], "data": [0, 0, 0, 0, 0]}]}"#, "invalid_shape"),
        (#"{"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 4], "data": [0, 0, 0]}]}"#, "wrong_input_size"),
        (#"{"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 4], "data": [0, 0, 0, 0]}]}"#, "invalid_input"),
        (#"{"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 4], "parameters": {"binary_data_size": 16}}]}"#, "wrong_input_size"),
        (#"{"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 4], "parameters": {"binary_data_size": 12}}]}"#, "wrong_input_size"),
        (#"{"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 4], "data": [0, 0, 0, 1e999]}]}"#, "invalid_input"),
        (#"{"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 4], "data": [0, 0, 0, 0]}], "outputs": [{"name": "logits"}]}"#, "invalid_output"),
    ])
    func oipErrors(body: String, code: String) {
        let h = Harness()
        let r = h.send(.POST, "/v2/models/fake/infer", body: Array(body.utf8))
        #expect(r.status == 400)
        #expect(json(r)["code"]?.stringValue == code)
    }

    /// The binary tensor data extension is held to what JSON data is: NaN and ±infinity in FP32 or FP16
    /// bytes are a 400 naming the value, not fed to the model (whose scores would then be NaN).
    @Test(arguments: [
        ("FP32", [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x00, 0xC0, 0x7F] as [UInt8], "nan"),   // quiet NaN
        ("FP32", [0, 0, 0x80, 0x7F, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], "inf"),                    // +∞
        ("FP16", [0, 0, 0, 0, 0x00, 0xFC, 0, 0], "-inf"),                                            // −∞
        ("FP16", [0x00, 0x7E, 0, 0, 0, 0, 0, 0], "nan"),
    ])
    func oipBinaryTensorsMustBeFinite(datatype: String, data: [UInt8], says: String) {
        let h = Harness()
        let header = Array(#"{"inputs": [{"name": "input", "datatype": "\#(datatype)", "shape": [1, 4], "parameters": {"binary_data_size": \#(data.count)}}]}"#.utf8)
        let r = h.send(.POST, "/v2/models/fake/infer", headers: [("Inference-Header-Content-Length", String(header.count))], body: header + data)
        #expect(r.status == 400, "\(String(decoding: r.body, as: UTF8.self))")
        #expect(json(r)["code"]?.stringValue == "invalid_input")
        #expect(json(r)["error"]?.stringValue == "\(datatype) data must be finite numbers, received \(says)")
    }

    @Test func oipMetadataAndReadiness() {
        let h = Harness()
        let m = json(h.send(.GET, "/v2/models/fake"))
        #expect(m["name"]?.stringValue == "fake")
        #expect(m["versions"] == .array([.string("1")]))
        #expect(m["inputs"]?.arrayValue?.first?["shape"] == .array([.number(-1), .number(2), .number(2), .number(1)]))
        #expect(h.send(.GET, "/v2/models/fake/ready").status == 200)
        #expect(h.send(.GET, "/v2/models/fake/versions/2/ready").status == 404)
        #expect(h.send(.GET, "/v2/models/other").status == 404)
        #expect(json(h.send(.GET, "/v2"))["extensions"]?.arrayValue?.contains(.string("classification")) == true)
    }

    @Test func readinessAndDrain() {
        let empty = Harness(models: [])
        let notReady = empty.send(.GET, "/health/ready")
        #expect(notReady.status == 503)
        #expect(notReady.headers["Retry-After"] == "1")
        #expect(json(notReady)["code"]?.stringValue == "not_ready")
        #expect(empty.send(.POST, "/predict", headers: [("Content-Type", "application/octet-stream")], body: [0, 0, 0, 0]).status == 503)

        let h = Harness()
        #expect(h.send(.GET, "/health/ready").status == 200)
        #expect(json(h.send(.GET, "/health"))["status"]?.stringValue == "ready")
        #expect(h.service.startToReadySeconds != nil)
        h.service.beginDrain()
        let draining = h.send(.GET, "/v2/health/ready")
        #expect(draining.status == 503)
        #expect(json(draining)["code"]?.stringValue == "draining")
        #expect(json(draining)["ready"] == .bool(false))
        #expect(json(h.send(.GET, "/health"))["status"]?.stringValue == "draining")
        // Still serving while draining.
        #expect(h.send(.POST, "/predict", headers: [("Content-Type", "application/octet-stream")], body: [0, 0, 0, 0]).status == 200)
        #expect(h.send(.GET, "/health/live").status == 200)
    }

    @Test func metricsCountRequestsByTemplate() {
        let h = Harness()
        _ = h.send(.POST, "/predict", headers: [("Content-Type", "application/octet-stream")], body: [0, 0, 0, 0])
        _ = h.send(.GET, "/v2/models/fake")
        _ = h.send(.GET, "/no/such/path")
        _ = h.send(.POST, "/predict", headers: [("Content-Type", "text/plain")], body: [1])
        let text = String(decoding: h.send(.GET, "/metrics").body, as: UTF8.self)
        #expect(text.contains(#"loupe_http_requests_total{route="/predict",method="POST",code="200"} 1"#))
        #expect(text.contains(#"loupe_http_requests_total{route="/v2/models/{m}",method="GET",code="200"} 1"#))
        #expect(text.contains(#"loupe_http_requests_total{route="unmatched",method="GET",code="404"} 1"#))
        #expect(text.contains(#"loupe_rejected_requests_total{reason="unsupported_media_type"} 1"#))
        #expect(text.contains(#"loupe_predictions_total{model="fake",label="c"} 1"#))
        #expect(text.contains("loupe_batch_size_bucket"))
        #expect(text.contains("loupe_start_to_ready_seconds"))
        #expect(text.contains("process_resident_memory_bytes"))
        #expect(!text.contains("/no/such/path"))
    }

    @Test func queueFullAnswers503WithRetryAfter() {
        var c = ServiceConfiguration()
        c.inferenceWorkers = 1; c.queueCapacity = 1; c.maxBatchSize = 1; c.accessLog = false
        let slow = FakeModel(delayMicroseconds: 200_000)
        let service = InferenceService(configuration: c, provider: FakeProvider([slow]), logger: Logger(label: "t"))
        service.start()
        let predict = service.routes.first { $0.template == "/predict" }!
        let request = HTTPRequest(method: .POST, target: "/predict", path: "/predict",
                                  headers: HTTPHeaders([("Content-Type", "application/octet-stream")]), body: [0, 0, 0, 0])
        let sinks = (0..<4).map { _ in ResponseCapture() }
        for s in sinks { predict.handler(request, s) }
        let statuses = sinks.map { $0.wait().status }
        #expect(statuses.contains(503))
        #expect(statuses.contains(200))
        let rejected = sinks.map { $0.wait() }.first { $0.status == 503 }
        #expect(rejected?.headers["Retry-After"] == "1")
        #expect(json(rejected!)["code"]?.stringValue == "queue_full")
    }
}

@Suite struct OpenAPITests {
    @Test func servedDocumentEqualsDocsFile() throws {
        let file = try readTextFile(repositoryRoot() + "/docs/openapi.yaml")
        let json = file.split(separator: "\n", omittingEmptySubsequences: false).filter { !$0.hasPrefix("#") }.joined(separator: "\n")
        #expect(try JSONReader.parse(Array(json.utf8)) == OpenAPI.document)
        // Text-exact too: OpenAPI.swift is generated from the YAML (bash scripts/gen-openapi.sh).
        #expect(OpenAPI.text + "\n" == json, "Sources/LoupeService/Generated/OpenAPI.swift is out of date: run bash scripts/gen-openapi.sh")
    }

    @Test func everyRouteIsDocumented() throws {
        let h = Harness()
        guard case .object(let paths)? = OpenAPI.document["paths"] else { Issue.record("no paths"); return }
        let documented = Set(paths.map(\.0))
        for route in h.service.routes {
            #expect(documented.contains(route.template), "\(route.template) is not in the OpenAPI document")
        }
        #expect(h.send(.GET, "/openapi.json").status == 200)
    }
}
