import LoupeHTTP
@testable import LoupeService
import Testing

// Outputs that overflowed to NaN/infinity are no prediction: every route that answers predictions
// says 422 `non_finite_output` with a sentence, and nothing records the prediction (the metrics, the
// feedback window). The real network's case (FP32 −3.4e38 on the shipped model) is end to end in
// EndToEndTests/FeedbackEndToEndTests.
@Suite struct NonFiniteOutputTests {
    let h = Harness(models: [FakeModel(overflowsOnWhite: true)])
    static let white: [UInt8] = [255, 255, 255, 255]
    static let dark: [UInt8] = [0, 0, 0, 10]

    func expectRefused(_ r: HTTPResponse, image: String, sourceLocation: SourceLocation = #_sourceLocation) {
        let text = String(decoding: r.body, as: UTF8.self)
        #expect(r.status == 422, "\(text)", sourceLocation: sourceLocation)
        #expect(json(r)["code"]?.stringValue == "non_finite_output", sourceLocation: sourceLocation)
        #expect(text.contains("\(image) drove the model's outputs to NaN or infinity"), "\(text)", sourceLocation: sourceLocation)
        #expect(text.contains("model-ready values from 0.0 to 1.0"), "\(text)", sourceLocation: sourceLocation)
    }

    @Test func everyPredictionRouteRefusesAndNothingIsRecorded() {
        let octet = [("Content-Type", "application/octet-stream")]
        expectRefused(h.send(.POST, "/predict", headers: octet + [("X-Request-ID", "nan-1")], body: Self.dark + Self.white),
                      image: "image 1 of 2")
        expectRefused(h.send(.POST, "/v1/models/fake:predict", headers: [("Content-Type", "application/json")],
                             body: Array(#"{"instances": [[255, 255, 255, 255]]}"#.utf8)), image: "the input")
        expectRefused(h.send(.POST, "/v2/models/fake/infer", headers: [("X-Request-ID", "nan-2")],
                             body: Array(#"{"inputs":[{"name":"input","datatype":"FP32","shape":[1,4],"data":[1,1,1,1]}]}"#.utf8)),
                      image: "the input")
        let header = Array(#"{"inputs":[{"name":"input","datatype":"UINT8","shape":[1,4],"parameters":{"binary_data_size":4}}]}"#.utf8)
        expectRefused(h.send(.POST, "/v2/models/fake/infer", headers: [("Inference-Header-Content-Length", String(header.count))],
                             body: header + Self.white), image: "the input")
        expectRefused(h.send(.POST, "/feedback", headers: [("Content-Type", "application/json")],
                             body: Array(#"{"instances": [[255, 255, 255, 255]], "labels": [2]}"#.utf8)), image: "the input")
        // Nothing recorded: no prediction counted, no feedback window entry, no live accuracy.
        let metrics = String(decoding: h.send(.GET, "/metrics").body, as: UTF8.self)
        #expect(!metrics.contains("loupe_predictions_total{model=\"fake\""), "\(metrics)")
        for id in ["nan-1", "nan-2"] {
            let late = h.send(.POST, "/feedback", headers: [("Content-Type", "application/json")],
                              body: Array(#"{"request_id": "\#(id)", "label": 2}"#.utf8))
            #expect(late.status == 404, "\(String(decoding: late.body, as: UTF8.self))")
        }
        #expect(h.service.liveAccuracy.tally(ModelVersion(model: "fake", version: 1)) == nil)
        // A finite answer from the same model still goes through and is counted.
        #expect(h.send(.POST, "/predict", headers: octet, body: Self.dark).status == 200)
        let after = String(decoding: h.send(.GET, "/metrics").body, as: UTF8.self)
        #expect(after.contains("loupe_predictions_total{model=\"fake\",label=\"c\"} 1"), "\(after)")
    }

    @Test func theCheckFindsNaNAndInfinityAnywhere() {
        #expect(NonFiniteOutputs.allFinite([0, -1, 3e38, -3e38, .leastNonzeroMagnitude][...]))
        for bad: Float in [.nan, .infinity, -.infinity] {
            for at in 0..<3 {
                var v: [Float] = [1, 2, 3]; v[at] = bad
                #expect(!NonFiniteOutputs.allFinite(v[...]))
            }
        }
    }
}
