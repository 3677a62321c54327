// POST /explain and `loupe explain` with the real binary and the shipped trained model (issue 13):
// the explained class and probability are /predict's, occlusion equals /predict on the occluded
// images, the heatmap is a PNG, the numpy reference (Tests/EndToEndTests/python/explain_reference.py)
// agrees to 1e-4 for every method, bad parameters are sentences, and metrics count per method.
import FoundationEssentials
import Glibc
import LoupeData
import Testing

@Suite(.serialized) struct ExplainEndToEndTests {
    static let shipped = E2E.root + "/models"
    static let script = E2E.root + "/Tests/EndToEndTests/python/explain_reference.py"

    struct Explanation: Decodable {
        var `class`: Int; var label: String; var probability: Double; var score: Double
        var baseline_score: Double?; var attributions: [[Double]]
    }
    struct ExplainBody: Decodable { var method: String; var steps: Int?; var explanations: [Explanation] }
    struct Prediction: Decodable { var `class`: Int; var label: String; var confidence: Double; var probabilities: [Double] }
    struct PredictBody: Decodable { var predictions: [Prediction] }

    static func decode<T: Decodable>(_ type: T.Type, _ r: HTTPReply) throws -> T {
        do { return try JSONDecoder().decode(T.self, from: Data(r.body)) } catch { throw E2EError("\(r.status) \(r.text): \(error)") }
    }

    @Test func explanationsAgreeWithPredictAndTheNumpyReference() throws {
        let server = try ServeProcess(models: Self.shipped)
        try server.waitReady()
        let (pixels, _) = try E2E.testImages(6)
        let octet = [("Content-Type", "application/octet-stream")]
        for i in 0..<3 {
            let image = Array(pixels[(i * 784)..<((i + 1) * 784)])
            let png = PNGWriter.gray(width: 28, height: 28, pixels: image)
            let prediction = try #require(try Self.decode(PredictBody.self, HTTP.request(port: server.port, "POST", "/predict",
                                                                                          headers: [("Content-Type", "image/png")], body: png)).predictions.first)
            let r = try HTTP.request(port: server.port, "POST", "/explain", headers: [("Content-Type", "image/png")], body: png)
            #expect(r.status == 200, "\(r.text)")
            #expect(r.header("Server-Timing")?.contains("explain;dur=") == true)
            let body = try Self.decode(ExplainBody.self, r)
            #expect(body.method == "integrated_gradients")
            #expect(body.steps == 32)
            let e = try #require(body.explanations.first)
            #expect(e.class == prediction.class)
            #expect(e.label == prediction.label)
            let p = e.probability
            #expect(abs(p - prediction.confidence) <= 1e-6)
            let rows = e.attributions
            #expect(rows.count == 28 && rows.allSatisfy { $0.count == 28 })
            // Completeness, loosely at 32 steps (the tight checks are the engine's InputGradientTests).
            let sum = rows.joined().reduce(0, +)
            let delta = e.score - (try #require(e.baseline_score))
            #expect(abs(sum - delta) <= 0.1 * abs(delta) + 0.01, "Σ \(sum) vs Δ \(delta)")

            // Occlusion with 7×7 windows at stride 7: each pixel's value is p(x) − p(occluded) from /predict.
            let occ = try Self.decode(ExplainBody.self, HTTP.request(port: server.port, "POST", "/explain?method=occlusion&window=7&stride=7",
                                                                     headers: octet, body: image))
            let oe = try #require(occ.explanations.first)
            let map = oe.attributions
            let target = oe.class
            for (y0, x0) in [(0, 0), (14, 7), (21, 21)] {
                var occluded = image
                for y in y0..<(y0 + 7) { for x in x0..<(x0 + 7) { occluded[y * 28 + x] = 0 } }
                let q = try Self.decode(PredictBody.self, HTTP.request(port: server.port, "POST", "/predict", headers: octet, body: occluded))
                let probs = try #require(q.predictions.first).probabilities
                #expect(abs(map[y0 + 3][x0 + 3] - (p - probs[target])) <= 1e-6, "image \(i) window (\(y0), \(x0))")
            }
        }
        // The heatmap: a PNG of the image scaled 8× (224 × 224), with the class in a header.
        let heat = try HTTP.request(port: server.port, "POST", "/explain?format=png&method=saliency", headers: octet,
                                    body: Array(pixels[0..<784]))
        #expect(heat.status == 200)
        #expect(heat.header("Content-Type") == "image/png")
        #expect(heat.header("X-Loupe-Class") != nil)
        let decoded = try ImageDecoder.decode(heat.body)
        #expect(decoded.width == 224 && decoded.height == 224)
        // Two images in one JSON body: two explanations; format=png with two is a sentence.
        let two = try Self.decode(ExplainBody.self, HTTP.request(port: server.port, "POST", "/explain?method=gradient_x_input", headers: octet,
                                                                 body: Array(pixels[0..<1568])))
        #expect(two.explanations.count == 2)
        let twoPNG = try HTTP.request(port: server.port, "POST", "/explain?format=png", headers: octet, body: Array(pixels[0..<1568]))
        #expect(twoPNG.status == 400)
        #expect(twoPNG.text.contains("format=png draws one image's heatmap; the request holds 2 images"))
        // Bad parameters are 400 sentences.
        for (query, sentence) in [("method=lime", "method must be integrated_gradients, saliency, gradient_x_input or occlusion, received 'lime'"),
                                  ("steps=0", "steps must be an integer from 1 to 1024, received '0'"),
                                  ("method=saliency&steps=8", "steps applies to method=integrated_gradients only"),
                                  ("target=10", "target must be a class from 0 to 9, received '10'"),
                                  ("baseline=white", "baseline must be black or blur, received 'white'"),
                                  ("method=occlusion&window=29", "window must be an integer from 1 to 28, received '29'"),
                                  ("output=loss", "output must be probability or logit, received 'loss'")] {
            let r = try HTTP.request(port: server.port, "POST", "/explain?" + query, headers: octet, body: Array(pixels[0..<784]))
            #expect(r.status == 400, "\(query)")
            #expect(r.text.contains(sentence), "\(query): \(r.text)")
        }
        // KServe v1: POST /v1/models/{m}[/versions/{v}]:explain with a v1 body answers /explain's JSON.
        let b64 = base64(PNGWriter.gray(width: 28, height: 28, pixels: Array(pixels[0..<784])))
        for path in ["/v1/models/fashion:explain?method=saliency", "/v1/models/fashion/versions/1:explain?method=saliency"] {
            let v1 = try HTTP.request(port: server.port, "POST", path, headers: [("Content-Type", "application/json")],
                                      body: Array(#"{"instances": [{"b64": "\#(b64)"}]}"#.utf8))
            #expect(v1.status == 200, "\(path): \(v1.text)")
            let direct = try Self.decode(ExplainBody.self, HTTP.request(port: server.port, "POST", "/explain?method=saliency", headers: octet,
                                                                        body: Array(pixels[0..<784])))
            let viaV1 = try Self.decode(ExplainBody.self, v1)
            #expect(viaV1.explanations.first?.class == direct.explanations.first?.class)
            #expect(viaV1.explanations.first?.attributions == direct.explanations.first?.attributions)
        }
        // The numpy reference agrees to 1e-4 on every method (it exits 1 otherwise).
        let python = try ServeToolsTests.require("python3")
        let dir = try TempDir()
        try dir.write("images.u8", pixels)
        let check = try ChildProcess([python, Self.script, "compare", "127.0.0.1:\(server.port)", Self.shipped + "/fashion/1/model.loupe",
                                      dir.path + "/images.u8", "3"], logPath: dir.path + "/compare.log")
        #expect(check.wait(seconds: 300) == 0, "\(check.log)")
        // Metrics: explanations per method.
        let metrics = try HTTP.request(port: server.port, "GET", "/metrics").text
        #expect(metrics.contains(#"loupe_explanations_total{method="integrated_gradients"}"#))
        #expect(metrics.contains(#"loupe_explanations_total{method="occlusion"}"#))
        #expect(metrics.contains(#"loupe_explanation_duration_seconds_bucket{method="saliency""#))
    }

    struct RGBExplanation: Decodable {
        var `class`: Int; var probability: Double; var score: Double; var baseline_score: Double?; var attributions: [[[Double]]]
    }
    struct RGBBody: Decodable { var shape: [Int]; var explanations: [RGBExplanation] }

    /// A 32×32 RGB model (the imported BatchNorm CNN of onnx_import_check.py) and a 24×40 RGB one with non-square
    /// and depthwise convolutions: attributions per channel, completeness at 64 steps, occlusion equal to /predict
    /// on the occluded images (all three channels black), the heatmap PNG at any H×W, KServe v1 and the CLI.
    @Test func rgbModelsOfAnySizeAreExplainedPerChannel() throws {
        let python = try ServeToolsTests.require("python3")
        let dir = try TempDir()
        #expect(try CLIProcess.run(python, [ONNXImportEndToEndTests.script, "build", dir.path + "/onnx"]).status == 0)
        let repo = dir.path + "/models"
        for (name, file) in [("cifar", "cifar_bn"), ("wide", "nonsquare")] {
            let r = try CLIProcess.loupe(["import", dir.path + "/onnx/\(file).onnx", "--name", name, "--repository", repo])
            #expect(r.status == 0, "\(r.output)")
        }
        let server = try ServeProcess(models: repo)
        try server.waitReady()
        var state: UInt32 = 11
        func image(_ count: Int) -> [UInt8] { (0..<count).map { _ in state = state &* 1_664_525 &+ 1_013_904_223; return UInt8(state >> 24) } }
        let octet = [("Content-Type", "application/octet-stream")]
        for i in 0..<2 {
            let pixels = image(32 * 32 * 3)
            let png = PNGEncoder.encode(width: 32, height: 32, channels: 3, pixels: pixels)
            let prediction = try #require(try Self.decode(PredictBody.self, HTTP.request(port: server.port, "POST", "/predict?model=cifar",
                                                                                          headers: [("Content-Type", "image/png")], body: png)).predictions.first)
            let r = try HTTP.request(port: server.port, "POST", "/explain?model=cifar&steps=64", headers: [("Content-Type", "image/png")], body: png)
            #expect(r.status == 200, "\(r.text)")
            let body = try Self.decode(RGBBody.self, r)
            #expect(body.shape == [32, 32, 3])
            let e = try #require(body.explanations.first)
            #expect(e.class == prediction.class && abs(e.probability - prediction.confidence) <= 1e-6)
            #expect(e.attributions.count == 32 && e.attributions.allSatisfy { $0.count == 32 && $0.allSatisfy { $0.count == 3 } })
            // Completeness at 64 steps: Σ attributions (every channel) = p(x) − p(black) within 1%.
            let sum = e.attributions.joined().joined().reduce(0, +)
            let delta = e.score - (try #require(e.baseline_score))
            #expect(abs(sum - delta) <= 0.01 * abs(delta) + 1e-4, "image \(i): Σ \(sum) vs Δ \(delta)")
            // The channels get different attributions (the map is per channel, not one value repeated).
            #expect(e.attributions.joined().contains { $0[0] != $0[1] || $0[1] != $0[2] })
            // Occlusion, 8×8 windows at stride 8: p(x) − p(x with the window black in every channel), as /predict says.
            let occ = try Self.decode(RGBBody.self, HTTP.request(port: server.port, "POST", "/explain?model=cifar&method=occlusion&window=8&stride=8",
                                                                 headers: octet, body: pixels))
            let oe = try #require(occ.explanations.first)
            for (y0, x0) in [(0, 0), (8, 24), (24, 16)] {
                var occluded = pixels
                for y in y0..<(y0 + 8) { for x in x0..<(x0 + 8) { for k in 0..<3 { occluded[(y * 32 + x) * 3 + k] = 0 } } }
                let q = try Self.decode(PredictBody.self, HTTP.request(port: server.port, "POST", "/predict?model=cifar", headers: octet, body: occluded))
                let expected = oe.probability - (try #require(q.predictions.first)).probabilities[oe.class]
                for k in 0..<3 { #expect(abs(oe.attributions[y0 + 3][x0 + 3][k] - expected) <= 1e-6, "window (\(y0), \(x0)) channel \(k)") }
            }
        }
        // The heatmap of an RGB image: 224 × 224 (7×), in colour.
        let pixels = image(32 * 32 * 3)
        let heat = try HTTP.request(port: server.port, "POST", "/explain?model=cifar&format=png&method=saliency", headers: octet, body: pixels)
        #expect(heat.status == 200 && heat.header("Content-Type") == "image/png", "\(heat.text)")
        let decoded = try ImageDecoder.decode(heat.body, channels: 3)
        #expect(decoded.width == 224 && decoded.height == 224)
        #expect(stride(from: 0, to: decoded.pixels.count, by: 3).contains { decoded.pixels[$0] != decoded.pixels[$0 + 1] }, "the heatmap is in colour")
        // A 24×40 RGB model (non-square kernels, strides and depthwise): shape, and a 120 × 200 heatmap (5×).
        let wide = image(24 * 40 * 3)
        let wr = try Self.decode(RGBBody.self, HTTP.request(port: server.port, "POST", "/explain?model=wide&method=gradient_x_input", headers: octet, body: wide))
        #expect(wr.shape == [24, 40, 3])
        #expect(wr.explanations.first.map { $0.attributions.count == 24 && $0.attributions.allSatisfy { $0.count == 40 } } == true)
        let wideHeat = try HTTP.request(port: server.port, "POST", "/explain?model=wide&format=png", headers: octet, body: wide)
        let wideImage = try ImageDecoder.decode(wideHeat.body, channels: 3)
        #expect(wideImage.width == 200 && wideImage.height == 120, "\(wideImage.width)×\(wideImage.height)")
        // KServe v1 with an RGB PNG answers /explain's JSON.
        let png = PNGEncoder.encode(width: 32, height: 32, channels: 3, pixels: pixels)
        let v1 = try HTTP.request(port: server.port, "POST", "/v1/models/cifar:explain?method=saliency", headers: [("Content-Type", "application/json")],
                                  body: Array(#"{"instances": [{"b64": "\#(base64(png))"}]}"#.utf8))
        #expect(v1.status == 200, "\(v1.text)")
        let direct = try Self.decode(RGBBody.self, HTTP.request(port: server.port, "POST", "/explain?model=cifar&method=saliency", headers: octet, body: pixels))
        #expect(try Self.decode(RGBBody.self, v1).explanations.first?.attributions == direct.explanations.first?.attributions)
        // The CLI on the same image as a PNG: the same class and, byte for byte, the server's heatmap.
        try dir.write("rgb.png", png)
        let cli = try CLIProcess.loupe(["explain", "--model", repo + "/cifar", dir.path + "/rgb.png", "--method", "saliency", "--png", dir.path + "/out"])
        #expect(cli.status == 0, "\(cli.output)")
        #expect(cli.stdout.contains("(\(direct.explanations.first?.class ?? -1))"), "\(cli.stdout)")
        let cliHeat = try ImageDecoder.decode(try FileIO.readFile(dir.path + "/out/rgb.png.explain.png"), channels: 3)
        #expect(cliHeat.width == 224 && cliHeat.height == 224 && cliHeat.pixels == decoded.pixels, "the CLI draws the server's heatmap")
    }

    @Test func cliExplainWritesHeatmaps() throws {
        let dir = try TempDir()
        let (pixels, _) = try E2E.testImages(2)
        try dir.write("a.png", PNGWriter.gray(width: 28, height: 28, pixels: Array(pixels[0..<784])))
        try dir.write("b.png", PNGWriter.gray(width: 28, height: 28, pixels: Array(pixels[784..<1568])))
        let r = try CLIProcess.loupe(["explain", "--model", Self.shipped + "/fashion", dir.path + "/a.png", dir.path + "/b.png",
                                      "--method", "saliency", "--png", dir.path + "/out"])
        #expect(r.status == 0, "\(r.output)")
        for name in ["a.png", "b.png"] {
            let heat = try FileIO.readFile(dir.path + "/out/\(name).explain.png")
            let decoded = try ImageDecoder.decode(heat)
            #expect(decoded.width == 224 && decoded.height == 224)
        }
        #expect(r.stdout.contains("Ankle boot (9)"), "\(r.stdout)")
        let bad = try CLIProcess.loupe(["explain", "--model", Self.shipped + "/fashion", dir.path + "/a.png", "--method", "lime"])
        #expect(bad.status == 64)
        #expect(bad.output.contains("--method must be integrated_gradients, saliency, gradient_x_input or occlusion, received 'lime'."))
        // Two files of one name in different directories would write one heatmap file, the second over
        // the first (before: both lines said "→ out/a.png.explain.png", one heatmap was lost, exit 0).
        try FileIO.createDirectories(dir.path + "/other")
        try dir.write("other/a.png", try FileIO.readFile(dir.path + "/b.png"))
        let twins = try CLIProcess.loupe(["explain", "--model", Self.shipped + "/fashion", dir.path + "/a.png", dir.path + "/other/a.png",
                                          "--method", "saliency", "--png", dir.path + "/twins"])
        #expect(twins.status == 64, "\(twins.output)")
        #expect(twins.stderr.contains("both write a.png.explain.png"), "\(twins.stderr)")
        #expect(!FileIO.isDirectory(dir.path + "/twins"))
    }
}
