// The web console (issue 13) in a real browser: headless Chromium driven by selenium
// (Tests/EndToEndTests/python/console_browser_check.py) against the real binary serving the shipped
// model. Screenshots go to the test's temp directory, or $LOUPE_TEST_ARTIFACTS/console-screenshots (never committed).
import FoundationEssentials
import Glibc
import LoupeData
import Testing

@Suite(.serialized) struct ConsoleBrowserTests {
    static let script = E2E.root + "/Tests/EndToEndTests/python/console_browser_check.py"

    @Test func consoleWorksInABrowser() throws {
        let python = try ServeToolsTests.require("python3")
        _ = try ServeToolsTests.require("chromium")
        _ = try ServeToolsTests.require("chromedriver")
        // The shipped model with per-class test figures added (files trained since loupe train records them
        // carry training.testClasses; the shipped one predates that), and its history.json.
        let dir = try TempDir()
        var file = try ModelFile.read(path: E2E.root + "/models/fashion/1/model.loupe")
        let test = try IDXDataset.load(directory: E2E.datasetDirectory, split: .test)
        let model = try file.makeModel()
        var workspace = model.makeWorkspace(maxBatch: 256)
        let probabilities = model.predict(file.header.normalization.apply(test.images), count: test.count, workspace: &workspace, threads: 2)
        file.header.training.testClasses = EvaluationReport(probabilities: probabilities, labels: test.labels, count: test.count,
                                                            classNames: file.header.labels).classes
        try dir.mkdir("models/fashion/1")
        try file.write(to: dir.path + "/models/fashion/1/model.loupe")
        try dir.write("models/fashion/1/history.json", try FileIO.readFile(E2E.root + "/models/fashion/1/history.json"))
        let server = try ServeProcess(models: dir.path + "/models")
        try server.waitReady()
        let (pixels, _) = try E2E.testImages(2)
        try dir.write("pullover.png", PNGWriter.gray(width: 28, height: 28, pixels: Array(pixels[784..<1568])))
        // Screenshots go under the test's temp dir, or to $LOUPE_TEST_ARTIFACTS/console-screenshots when CI
        // sets it (the temp dir is removed when the test ends).
        let shots = getenv("LOUPE_TEST_ARTIFACTS").map { String(cString: $0) + "/console-screenshots" } ?? dir.path + "/screenshots"
        _ = system("mkdir -p '\(shots)'")
        let run = try ChildProcess([python, Self.script, "127.0.0.1:\(server.port)", dir.path + "/pullover.png", shots],
                                   logPath: dir.path + "/browser.log")
        let code = run.wait(seconds: 180)
        #expect(code == 0, "\(run.log)\nscreenshots: \(shots)")
        struct Seen: Decodable {
            var upload_label: String; var heatmap_width: Int; var console_errors: [String]
            var loss_curve_train_points: Int
            enum CodingKeys: String, CodingKey { case upload_label, heatmap_width, console_errors, loss_curve_train_points = "loss-curve_train_points" }
        }
        let line = run.log.split(separator: "\n").last { $0.hasPrefix("{") }.map(String.init) ?? "{}"
        let seen = try JSONDecoder().decode(Seen.self, from: Data(line.utf8))
        #expect(seen.upload_label == "Pullover")
        #expect(seen.heatmap_width == 224)
        #expect(seen.loss_curve_train_points == 10)
        #expect(seen.console_errors.isEmpty)
        for shot in ["upload.png", "draw.png", "operations.png", "full.png", "phone.png"] {
            #expect(access(shots + "/" + shot, R_OK) == 0, "missing screenshot \(shot)")
        }
    }

    /// RGB models of two shapes (the imported 32×32×3 BatchNorm CNN and the 24×40×3 non-square one): the console
    /// uploads a 64×48 RGB PNG (resized to the model), shapes its canvas like the selected model's input and sends
    /// drawings as H×W×3 bytes; heatmaps at the model's size (console_browser_check.py rgb).
    @Test func consoleServesRGBModelsOfAnyShape() throws {
        let python = try ServeToolsTests.require("python3")
        _ = try ServeToolsTests.require("chromium")
        _ = try ServeToolsTests.require("chromedriver")
        let dir = try TempDir()
        #expect(try CLIProcess.run(python, [ONNXImportEndToEndTests.script, "build", dir.path + "/onnx"]).status == 0)
        for (name, file) in [("cifar", "cifar_bn"), ("wide", "nonsquare")] {
            let r = try CLIProcess.loupe(["import", dir.path + "/onnx/\(file).onnx", "--name", name, "--repository", dir.path + "/models"])
            #expect(r.status == 0, "\(r.output)")
        }
        var state: UInt32 = 5
        let pixels = (0..<(48 * 64 * 3)).map { _ -> UInt8 in state = state &* 1_664_525 &+ 1_013_904_223; return UInt8(state >> 24) }
        try dir.write("photo.png", PNGEncoder.encode(width: 64, height: 48, channels: 3, pixels: pixels))
        let server = try ServeProcess(models: dir.path + "/models")
        try server.waitReady()
        let shots = getenv("LOUPE_TEST_ARTIFACTS").map { String(cString: $0) + "/console-screenshots" } ?? dir.path + "/screenshots"
        _ = system("mkdir -p '\(shots)'")
        let run = try ChildProcess([python, Self.script, "rgb", "127.0.0.1:\(server.port)", dir.path + "/photo.png", shots],
                                   logPath: dir.path + "/browser.log")
        #expect(run.wait(seconds: 180) == 0, "\(run.log)\nscreenshots: \(shots)")
        struct Seen: Decodable { var upload_heatmap_width: Int; var drawing_bytes: Int; var wide_canvas: [Int]; var console_errors: [String] }
        let line = run.log.split(separator: "\n").last { $0.hasPrefix("{") }.map(String.init) ?? "{}"
        let seen = try JSONDecoder().decode(Seen.self, from: Data(line.utf8))
        #expect(seen.upload_heatmap_width == 224 && seen.drawing_bytes == 24 * 40 * 3 && seen.wide_canvas == [280, 168])
        #expect(seen.console_errors.isEmpty)
        for shot in ["rgb-upload.png", "rgb-draw.png"] { #expect(access(shots + "/" + shot, R_OK) == 0, "missing screenshot \(shot)") }
    }

    /// GET / answers HTML to browsers and the KServe v1 liveness JSON to everyone else; the console's
    /// JSON endpoints answer with the shipped model's card and the status window.
    @Test func rootNegotiatesAndTheConsoleEndpointsAnswer() throws {
        let server = try ServeProcess(models: E2E.root + "/models")
        try server.waitReady()
        let html = try HTTP.request(port: server.port, "GET", "/", headers: [("Accept", "text/html,application/xhtml+xml,*/*;q=0.8")])
        #expect(html.status == 200)
        #expect(html.header("Content-Type") == "text/html; charset=utf-8")
        #expect(html.text.contains("<title>Loupe console</title>"))
        // Nothing is loaded from elsewhere (the SVG namespace name is an identifier, not a fetch).
        let text = html.text.replacing("http://www.w3.org/2000/svg", with: "")
        #expect(!text.contains("http://") && !text.contains("https://") && !text.contains("//cdn"), "the page must not load anything from elsewhere")
        #expect(html.body.count < 150_000)
        // Static page: a strong ETag revalidates to a bodyless 304; gzip is the page, compressed.
        let etag = try #require(html.header("ETag"))
        #expect(etag.hasPrefix("\"") && etag.hasSuffix("\"") && etag.count > 2 && html.header("Cache-Control") == "no-cache")
        let again = try HTTP.request(port: server.port, "GET", "/", headers: [("Accept", "text/html"), ("If-None-Match", "\"other\", \(etag)")])
        #expect(again.status == 304 && again.body.isEmpty && again.header("ETag") == etag)
        let other = try HTTP.request(port: server.port, "GET", "/", headers: [("Accept", "text/html"), ("If-None-Match", "\"other\"")])
        #expect(other.status == 200 && other.body == html.body)
        let gzipped = try HTTP.request(port: server.port, "GET", "/", headers: [("Accept", "text/html"), ("Accept-Encoding", "gzip")])
        #expect(gzipped.status == 200 && gzipped.header("Content-Encoding") == "gzip" && gzipped.body.count < html.body.count / 2)
        #expect(try Inflater.inflateAll(gzipped.body, format: .gzip, maxOutput: 1 << 20) == html.body)
        let plain = try HTTP.request(port: server.port, "GET", "/")
        #expect(plain.text == #"{"status":"alive"}"#)
        struct Models: Decodable {
            struct Model: Decodable {
                struct Card: Decodable {
                    struct Training: Decodable { var testAccuracy: Double? }
                    struct Epoch: Decodable { var epoch: Int; var loss: Double; var val_accuracy: Double? }
                    var parameterCount: Int; var labels: [String]; var training: Training; var history: [Epoch]?
                }
                var name: String; var version: Int; var card: Card?
            }
            var models: [Model]
        }
        let models = try JSONDecoder().decode(Models.self, from: Data(try HTTP.request(port: server.port, "GET", "/api/models").body))
        let card = try #require(models.models.first?.card)
        #expect(models.models.first?.name == "fashion")
        #expect(card.parameterCount == 693_962)
        #expect(card.training.testAccuracy == 0.9031)
        #expect(card.history?.map(\.epoch) == Array(1...10))
        for _ in 0..<3 {
            _ = try HTTP.request(port: server.port, "POST", "/predict", headers: [("Content-Type", "application/octet-stream")],
                                 body: Array(try E2E.testImages(1).pixels))
        }
        struct Status: Decodable {
            struct Latency: Decodable { var p50: Double?; var p99: Double? }
            struct Model: Decodable { struct Drift: Decodable { var images: Int; var class_psi: Double? }; var drift: Drift? }
            var requests: Int; var requests_per_second: Double; var latency_ms: Latency; var queue_depth: Int; var models: [Model]
        }
        let status = try JSONDecoder().decode(Status.self, from: Data(try HTTP.request(port: server.port, "GET", "/api/status").body))
        #expect(status.requests == 3)
        #expect(status.requests_per_second > 0)
        #expect((status.latency_ms.p50 ?? 0) > 0 && (status.latency_ms.p99 ?? 0) >= (status.latency_ms.p50 ?? 0))
        #expect(status.models.first?.drift?.images == 3)
        #expect(status.models.first?.drift?.class_psi != nil)
    }
}
