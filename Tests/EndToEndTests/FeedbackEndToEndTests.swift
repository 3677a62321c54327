// Ground truth end to end: the real `loupe serve` classifies Fashion-MNIST test images, the test
// sends their true labels to POST /feedback by X-Request-ID, and /metrics reports the live
// accuracy those labels imply.
import FoundationEssentials
import Glibc
import Testing

@Suite(.serialized) struct FeedbackEndToEndTests {
    struct Predicted: Decodable { var predictions: [Prediction]; struct Prediction: Decodable { var `class`: Int } }

    static func metric(_ text: String, _ prefix: String) -> Double? {
        text.split(separator: "\n").first { $0.hasPrefix(prefix + " ") }.flatMap { Double($0.split(separator: " ").last ?? "") }
    }

    /// Finite FP32 inputs can overflow inside the network (−3.4e38 everywhere makes every probability NaN).
    /// That used to be a 200 with `null` probabilities, recorded like any prediction (and feedback for it
    /// once killed the server: the calibration bins turned the NaN confidence into an Int). Now JSON and
    /// binary infer answer 422 `non_finite_output` with the range the model expects, nothing is recorded
    /// (feedback for the id is an unknown id), and the server stays up.
    @Test func inputsThatOverflowTheNetworkAre422AndNotRecorded() throws {
        let server = try ServeProcess(models: E2E.root + "/models")   // the shipped, trained model
        try server.waitReady()
        let data = [String](repeating: "-3.4e38", count: 784).joined(separator: ",")
        let infer = try HTTP.request(port: server.port, "POST", "/v2/models/fashion/infer",
                                     headers: [("Content-Type", "application/json"), ("X-Request-ID", "overflow-1")],
                                     body: Array(#"{"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 28, 28, 1], "data": [\#(data)]}]}"#.utf8))
        #expect(infer.status == 422 && infer.text.contains(#""code":"non_finite_output""#), "\(infer.text.prefix(400))")
        #expect(infer.text.contains("drove the model's outputs to NaN or infinity") && infer.text.contains("from 0.0 to 1.0"), "\(infer.text)")
        var floats = [UInt8]()
        for _ in 0..<784 { withUnsafeBytes(of: Float(-3.4e38).bitPattern.littleEndian) { floats += $0 } }
        let header = Array(#"{"inputs":[{"name":"input","datatype":"FP32","shape":[1,784],"parameters":{"binary_data_size":3136}}]}"#.utf8)
        let binary = try HTTP.request(port: server.port, "POST", "/v2/models/fashion/infer",
                                      headers: [("Content-Type", "application/octet-stream"), ("Inference-Header-Content-Length", String(header.count)),
                                                ("X-Request-ID", "overflow-2")], body: header + floats)
        #expect(binary.status == 422 && binary.text.contains(#""code":"non_finite_output""#), "\(binary.text.prefix(400))")
        for id in ["overflow-1", "overflow-2"] {
            let feedback = try HTTP.request(port: server.port, "POST", "/feedback", headers: [("Content-Type", "application/json")],
                                            body: Array(#"{"request_id": "\#(id)", "label": 3}"#.utf8))
            #expect(feedback.status == 404, "\(feedback.text)")
        }
        let metrics = try HTTP.request(port: server.port, "GET", "/metrics")
        #expect(metrics.status == 200 && !metrics.text.contains(#"loupe_predictions_total{model="fashion""#), "\(metrics.text.prefix(300))")
        #expect(server.process.wait(seconds: 0.1) == nil, "the server is still running; log:\n\(server.log.suffix(2000))")
    }

    @Test func labelsForTestImagesMoveLiveAccuracyToTheExpectedValue() throws {
        let repo = try E2E.makeRepository()
        let server = try ServeProcess(models: repo.path, settings: ["feedback.accuracy_window=10"])
        try server.waitReady()
        let n = 30
        let (pixels, labels) = try E2E.testImages(n)
        var predicted: [Int] = []
        for i in 0..<n {
            let r = try HTTP.request(port: server.port, "POST", "/predict",
                                     headers: [("Content-Type", "application/octet-stream"), ("X-Request-ID", "img-\(i)")],
                                     body: Array(pixels[(i * 784)..<((i + 1) * 784)]))
            #expect(r.status == 200)
            #expect(r.header("X-Request-ID") == "img-\(i)")
            predicted.append(try decode(Predicted.self, r).predictions[0].class)
        }
        // Labels for the first 20 by request id (every other one by class name), through both routes.
        let names = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
        for i in 0..<20 {
            let label = i % 2 == 0 ? "\(labels[i])" : "\"\(names[Int(labels[i])])\""
            let path = i < 10 ? "/feedback" : "/v2/models/fashion/feedback"
            let r = try HTTP.request(port: server.port, "POST", path, headers: [("Content-Type", "application/json")],
                                     body: Array(#"{"request_id": "img-\#(i)", "label": \#(label)}"#.utf8))
            #expect(r.status == 200, "\(r.text)")
        }
        // The last 10 as images with labels, classified again by the server.
        let instances = (20..<n).map { i in "[" + pixels[(i * 784)..<((i + 1) * 784)].map(String.init).joined(separator: ",") + "]" }
        let body = #"{"instances": [\#(instances.joined(separator: ","))], "labels": [\#((20..<n).map { String(labels[$0]) }.joined(separator: ","))]}"#
        let batch = try HTTP.request(port: server.port, "POST", "/feedback", headers: [("Content-Type", "application/json")], body: Array(body.utf8))
        #expect(batch.status == 200, "\(batch.text.prefix(300))")

        let right = (0..<n).filter { predicted[$0] == Int(labels[$0]) }.count
        let recentRight = (20..<n).filter { predicted[$0] == Int(labels[$0]) }.count
        let metrics = try HTTP.request(port: server.port, "GET", "/metrics").text
        let all = Self.metric(metrics, #"loupe_live_accuracy{model="fashion",version="1",window="all"}"#)
        let recent = Self.metric(metrics, #"loupe_live_accuracy{model="fashion",version="1",window="recent"}"#)
        #expect(all.map { abs($0 - Double(right) / Double(n)) < 1e-9 } == true, "all \(String(describing: all)) vs \(right)/\(n)")
        #expect(recent.map { abs($0 - Double(recentRight) / 10) < 1e-9 } == true, "recent \(String(describing: recent)) vs \(recentRight)/10")
        #expect(Self.metric(metrics, #"loupe_feedback_total{model="fashion",version="1"}"#) == Double(n))
        #expect(Self.metric(metrics, #"loupe_feedback_correct_total{model="fashion",version="1"}"#) == Double(right))
        #expect(metrics.contains(#"loupe_live_calibration_error{model="fashion",version="1"}"#))

        // Refusals, each with a sentence: a duplicate, an unknown id, a label out of range.
        let duplicate = try HTTP.request(port: server.port, "POST", "/feedback", headers: [("Content-Type", "application/json")],
                                         body: Array(#"{"request_id": "img-0", "label": 1}"#.utf8))
        #expect(duplicate.status == 409 && duplicate.text.contains("already received"))
        let unknown = try HTTP.request(port: server.port, "POST", "/feedback", headers: [("Content-Type", "application/json")],
                                       body: Array(#"{"request_id": "never", "label": 1}"#.utf8))
        #expect(unknown.status == 404 && unknown.text.contains("feedback.window"))
        let range = try HTTP.request(port: server.port, "POST", "/feedback", headers: [("Content-Type", "application/json")],
                                     body: Array(#"{"request_id": "img-25", "label": 10}"#.utf8))
        #expect(range.status == 400 && range.text.contains("from 0 to 9"), "\(range.text)")
    }
}
