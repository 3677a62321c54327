import LoupeData
import LoupeEngine
import Testing
@testable import LoupeService

// Serving a model like an imported graph (issue 11): 3 channels, NCHW layout, graph tensor names, logits out.
// The fake model's outputs are the first pixel's three channels, taken as logits.
@Suite struct ImportedModelRouteTests {
    let h = Harness(models: [FakeModel(rgbLogits: true)])

    @Test func metadataShowsTheGraphNamesAndLayout() {
        let v = json(h.send(.GET, "/v2/models/fake"))
        #expect(v["inputs"]?.arrayValue?.first?["name"]?.stringValue == "x")
        #expect(v["inputs"]?.arrayValue?.first?["shape"] == .array([.number(-1), .number(3), .number(2), .number(2)]))
        #expect(v["outputs"]?.arrayValue?.first?["name"]?.stringValue == "y")
        #expect(v["parameters"]?["accepted_input_shapes"]?.stringValue == "[N,12], [N,3,2,2] or [N,2,2,3]")
        let config = json(h.send(.GET, "/v2/models/fake/config"))
        #expect(config["input"]?.arrayValue?.first?["format"]?.stringValue == "FORMAT_NCHW")
        #expect(config["input"]?.arrayValue?.first?["dims"] == .array([.number(3), .number(2), .number(2)]))
    }

    /// The metadata's accepted datatypes are the ones infer takes: each listed one is served, one not listed is refused.
    @Test func metadataListsTheDatatypesInferAccepts() {
        let accepted = json(h.send(.GET, "/v2/models/fake"))["parameters"]?["accepted_input_datatypes"]?.stringValue ?? ""
        let data = (1...12).map(String.init).joined(separator: ",")
        for datatype in ["FP32", "FP16", "INT8", "UINT8", "FP64", "INT32"] {
            let r = h.send(.POST, "/v2/models/fake/infer",
                           body: Array(#"{"inputs":[{"name":"x","datatype":"\#(datatype)","shape":[1,3,2,2],"data":[\#(data)]}]}"#.utf8))
            let listed = accepted.split(whereSeparator: { $0 == "," || $0 == " " }).contains(Substring(datatype))
            #expect(listed == (r.status == 200), "\(datatype): listed \(listed) in '\(accepted)', infer answered \(r.status)")
        }
    }

    /// NCHW data under the graph's name is reordered to NHWC; the output is the logits as they are.
    @Test func inferTakesTheGraphNameAndLayoutAndReturnsLogits() {
        // Channel planes R = 1…4, G = 5…8, B = 9…12: the first pixel is (1, 5, 9).
        let nchw = (1...12).map { String(Double($0) / 10) }.joined(separator: ",")
        let r = h.send(.POST, "/v2/models/fake/infer", body: Array(#"{"inputs":[{"name":"x","datatype":"FP32","shape":[1,3,2,2],"data":[\#(nchw)]}]}"#.utf8))
        #expect(r.status == 200, "\(String(decoding: r.body, as: UTF8.self))")
        let out = json(r)["outputs"]?.arrayValue?.first
        #expect(out?["name"]?.stringValue == "y")
        #expect(out?["data"]?.arrayValue?.compactMap { $0.numberValue }.map { Float($0) } == [0.1, 0.5, 0.9])
        // NHWC under the Loupe name "input": the first pixel is the first three values.
        let nhwc = h.send(.POST, "/v2/models/fake/infer", body: Array(#"{"inputs":[{"name":"input","datatype":"FP32","shape":[1,2,2,3],"data":[\#(nchw)]}]}"#.utf8))
        #expect(json(nhwc)["outputs"]?.arrayValue?.first?["data"]?.arrayValue?.compactMap { $0.numberValue }.map { Float($0) } == [0.1, 0.2, 0.3])
        let wrong = h.send(.POST, "/v2/models/fake/infer", body: Array(#"{"inputs":[{"name":"z","datatype":"FP32","shape":[1,12],"data":[\#(nchw)]}]}"#.utf8))
        #expect(wrong.status == 400 && String(decoding: wrong.body, as: UTF8.self).contains("expected an input named 'x'"))
        let shape = h.send(.POST, "/v2/models/fake/infer", body: Array(#"{"inputs":[{"name":"x","datatype":"FP32","shape":[1,2,2],"data":[1,2,3,4]}]}"#.utf8))
        #expect(shape.status == 400 && String(decoding: shape.body, as: UTF8.self).contains("[N,12], [N,3,2,2] or [N,2,2,3]"))
    }

    /// UINT8 pixels as binary tensor data in the graph's NCHW layout: reordered, then normalized (pixel / 255).
    @Test func binaryUInt8ChannelFirstPixels() {
        let header = Array(#"{"inputs":[{"name":"x","datatype":"UINT8","shape":[1,3,2,2],"parameters":{"binary_data_size":12}}]}"#.utf8)
        let pixels: [UInt8] = [255, 1, 2, 3, 204, 5, 6, 7, 51, 9, 10, 11]   // R, G, B planes; first pixel (255, 204, 51)
        let r = h.send(.POST, "/v2/models/fake/infer", headers: [("Inference-Header-Content-Length", String(header.count))], body: header + pixels)
        #expect(r.status == 200, "\(String(decoding: r.body, as: UTF8.self))")
        #expect(json(r)["outputs"]?.arrayValue?.first?["data"]?.arrayValue?.compactMap { $0.numberValue }.map { Float($0) }
                == [Float(255) * Normalization.standard.scale, Float(204) * Normalization.standard.scale, Float(51) * Normalization.standard.scale])
    }

    /// /predict and the classification extension rank and report softmax probabilities of the logits.
    @Test func predictAndClassificationUseProbabilities() {
        let body = Array(#"{"instances": [[[[0, 0, 255], [0, 0, 0]], [[0, 0, 0], [0, 0, 0]]]]}"#.utf8)
        let r = h.send(.POST, "/predict", headers: [("Content-Type", "application/json")], body: body)
        #expect(r.status == 200, "\(String(decoding: r.body, as: UTF8.self))")
        let p = json(r)["predictions"]?.arrayValue?.first?["probabilities"]?.arrayValue?.compactMap { $0.numberValue } ?? []
        let expected = Sequential.softmax([0, 0, 1], classes: 3).map(Double.init)
        #expect(p.count == 3 && zip(p, expected).allSatisfy { abs($0 - $1) < 1e-6 })
        #expect(json(r)["predictions"]?.arrayValue?.first?["class"]?.numberValue == 2)
        let cls = h.send(.POST, "/v2/models/fake/infer", body: Array(#"{"inputs":[{"name":"x","datatype":"UINT8","shape":[1,12],"data":[0,0,255,0,0,0,0,0,0,0,0,0]}],"outputs":[{"name":"y","parameters":{"classification":1}}]}"#.utf8))
        #expect(json(cls)["outputs"]?.arrayValue?.first?["data"]?.arrayValue?.first?.stringValue?.hasSuffix(":2:c") == true)
        #expect(json(cls)["outputs"]?.arrayValue?.first?["data"]?.arrayValue?.first?.stringValue?.hasPrefix("\(Sequential.softmax([0, 0, 1], classes: 3)[2])") == true)
        // A pixel of the wrong channel count is a sentence.
        let bad = h.send(.POST, "/predict", headers: [("Content-Type", "application/json")],
                         body: Array(#"{"instances": [[[[0], [0]], [[0], [0]]]]}"#.utf8))
        #expect(bad.status == 400 && String(decoding: bad.body, as: UTF8.self).contains("expected 2 pixels of 3 channels"))
    }
}
