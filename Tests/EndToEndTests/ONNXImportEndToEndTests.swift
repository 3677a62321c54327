// `loupe import` with real ONNX files written by the `onnx` package in the patterns the exporters
// emit, served by the real binary and compared with ONNX Runtime through tritonclient (issue 11).
import FoundationEssentials
import Glibc
import LoupeData
import Testing

@Suite(.serialized) struct ONNXImportEndToEndTests {
    static let script = E2E.root + "/Tests/EndToEndTests/python/onnx_import_check.py"
    /// The Keras-trained seed network as ONNX, beside the repository in CI (../shared).
    static let anchor = E2E.root + "/../shared/anchors/ml/model.onnx"

    @Test func exporterPatternsImportServeAndMatchONNXRuntime() throws {
        let python = try ServeToolsTests.require("python3")
        let dir = try TempDir()
        let build = try CLIProcess.run(python, [Self.script, "build", dir.path + "/onnx"])
        #expect(build.status == 0, "\(build.output)")
        let repo = dir.path + "/models"
        // Every import is served and compared through v2 with the graph's tensor names and layout: 28×28×1,
        // 32×32×3, 24×40×3 and 20×20×3, ending in Softmax or in logits, with non-square kernels, windows and
        // strides, asymmetric pads, depthwise and grouped convs (BatchNorm folded into one, a depth multiplier of 2 in
        // another), an MLP that starts with Flatten; the golden samples are checked against ONNX Runtime too.
        let served = ["pytorch", "tf2onnx", "batchnorm", "strided", "cifar_bn", "logits", "cifar_logits", "nonsquare", "tf_depthwise",
                      "grouped", "grouped_bn", "mlp"]
        let goldenOnly: [String] = []
        for name in served + goldenOnly {
            let r = try CLIProcess.loupe(["import", dir.path + "/onnx/\(name).onnx", "--repository", repo])
            #expect(r.status == 0, "\(name): \(r.output)")
            #expect(r.stdout.contains("wrote \(repo)/\(name)/1/model.loupe"), "\(r.stdout)")
        }
        struct Row: Decodable { var max_abs_diff: Double; var same_top1: Bool; var names_match: Bool? }
        struct GoldenRow: Decodable { var max_abs_diff: Double; var same_top1: Bool; var sums_to_one: Bool; var samples: Int }
        // The golden samples each import recorded (the engine's own outputs) equal ONNX Runtime's on the same
        // pixels — for the logits graph too, whose outputs stay logits (they do not sum to 1).
        let goldenRun = try CLIProcess.run(python, [Self.script, "goldens", dir.path + "/onnx"]
                                               + (served + goldenOnly).map { "\($0)=\(repo)/\($0)/1/model.loupe" })
        #expect(goldenRun.status == 0, "\(goldenRun.output)")
        let goldenLine = goldenRun.stdout.split(separator: "\n").last { $0.hasPrefix("{") }.map(String.init) ?? "{}"
        let goldens = try JSONDecoder().decode([String: GoldenRow].self, from: Data(goldenLine.utf8))
        #expect(Set(goldens.keys) == Set(served + goldenOnly))
        for (name, row) in goldens {
            #expect(row.max_abs_diff <= 1e-4 && row.same_top1 && row.samples > 0, "\(name) golden samples vs ONNX Runtime: \(row)")
            #expect(row.sums_to_one == !(name.hasSuffix("logits") || name == "nonsquare" || name == "grouped_bn"), "\(name): \(row)")
        }
        // The reader written from docs/model-format.md alone reproduces the engine's goldens on the non-square,
        // depthwise and grouped models too (it exits 1 past 1e-4).
        for name in ["nonsquare", "tf_depthwise", "strided", "grouped_bn"] {
            let r = try CLIProcess.run(python, [E2E.root + "/scripts/read_loupe.py", "\(repo)/\(name)/1/model.loupe", "--check-golden"])
            #expect(r.status == 0 && r.stdout.contains("goldenMaxAbsDiff"), "\(name): \(r.output)")
        }
        // The imported files self-test on load (golden samples) and serve; v2 infer equals ORT.
        let server = try ServeProcess(models: repo)
        try server.waitReady()
        let run = try ChildProcess([python, Self.script, "compare", "127.0.0.1:\(server.port)", dir.path + "/onnx"], logPath: dir.path + "/out.json")
        let code = run.wait(seconds: 120)
        #expect(code == 0, "\(run.log)")
        let line = run.log.split(separator: "\n").last { $0.hasPrefix("{") }.map(String.init) ?? "{}"
        let rows = try JSONDecoder().decode([String: Row].self, from: Data(line.utf8))
        #expect(Set(rows.keys) == Set(served))
        for (name, row) in rows {
            #expect(row.max_abs_diff <= 1e-4, "\(name): max abs diff \(row.max_abs_diff)")
            #expect(row.same_top1, "\(name)")
            #expect(row.names_match == true, "\(name): v2 metadata does not show the graph's tensor names and shape: \(line)")
        }
        // /predict with a 32×32 RGB PNG on a model ending in logits answers softmax probabilities (summing to 1)
        // equal to ONNX Runtime's logits softmaxed.
        struct PNGRow: Decodable { var sum: Double; var max_abs_diff: Double; var `class`: Int; var expected_class: Int }
        let png = try CLIProcess.run(python, [Self.script, "predict_png", "127.0.0.1:\(server.port)", dir.path + "/onnx", "cifar_logits"])
        #expect(png.status == 0, "\(png.output)")
        let pngLine = png.stdout.split(separator: "\n").last { $0.hasPrefix("{") }.map(String.init) ?? "{}"
        let pngRow = try JSONDecoder().decode(PNGRow.self, from: Data(pngLine.utf8))
        #expect(abs(pngRow.sum - 1) <= 1e-5 && pngRow.max_abs_diff <= 1e-4 && pngRow.class == pngRow.expected_class, "\(pngLine)")
        // Drift statistics follow the 3-channel images: the 16 NCHW FP32 images of v2 infer (turned back into
        // pixels) and the PNG are in the window.
        let metrics = try HTTP.request(port: server.port, "GET", "/metrics").text
        #expect(metrics.contains("loupe_drift_window_images{model=\"cifar_logits\"} 17\n"), "\(metrics)")
        // The CLI: predict on the same RGB PNG gives /predict's class; evaluate on a 32×32×3 IDX set (rank 4)
        // labelled with ORT's top-1 but 8 of 64 shifted reports 0.8750; inspect shows the graph's names.
        #expect(try CLIProcess.run(python, [Self.script, "write_png", dir.path + "/onnx", "cifar_logits", dir.path + "/rgb.png"]).status == 0)
        let cliPredict = try CLIProcess.loupe(["predict", "--model", repo + "/cifar_logits", dir.path + "/rgb.png"])
        #expect(cliPredict.status == 0 && cliPredict.stdout.contains("  \(pngRow.class) (\(pngRow.class))  "), "\(cliPredict.output)")
        #expect(try CLIProcess.run(python, [Self.script, "write_idx", dir.path + "/onnx", "cifar_logits", dir.path + "/idx"]).status == 0)
        let evaluate = try CLIProcess.loupe(["evaluate", "--model", repo + "/cifar_logits", "--data", dir.path + "/idx"])
        #expect(evaluate.status == 0 && evaluate.stdout.contains("accuracy  0.8750"), "\(evaluate.output)")
        let inspect = try CLIProcess.loupe(["inspect", repo + "/cifar_logits/1/model.loupe"])
        #expect(inspect.status == 0 && inspect.stdout.contains("input 'x' NCHW, output 'logits'"), "\(inspect.output)")
        // Back out: `loupe export` of an imported model and of the shipped trained one; ONNX
        // Runtime on the exported files equals what Loupe serves.
        let shipped = E2E.root + "/models/fashion/1/model.loupe"
        for (name, model) in [("pytorch", repo + "/pytorch"), ("cifar_bn", repo + "/cifar_bn"), ("strided", repo + "/strided"),
                              ("nonsquare", repo + "/nonsquare"), ("tf_depthwise", repo + "/tf_depthwise"), ("grouped_bn", repo + "/grouped_bn"),
                              ("fashion", shipped)] {
            let r = try CLIProcess.loupe(["export", "--model", model, "--format", "onnx", "--output", dir.path + "/out/\(name).onnx"])
            #expect(r.status == 0, "\(name): \(r.output)")
        }
        let both = dir.path + "/both"
        let reexported = ["pytorch", "strided", "nonsquare", "tf_depthwise", "grouped_bn"]
        for (name, source) in [("fashion", shipped)] + reexported.map({ ($0, repo + "/\($0)/1/model.loupe") }) {
            try FileIO.createDirectories(both + "/\(name)/1")
            try FileIO.writeAtomically(try FileIO.readFile(source), to: both + "/\(name)/1/model.loupe")
        }
        let second = try ServeProcess(models: both)
        try second.waitReady()
        let check = try ChildProcess([python, Self.script, "exported", "127.0.0.1:\(second.port)", "fashion=\(dir.path)/out/fashion.onnx"]
                                     + reexported.map { "\($0)=\(dir.path)/out/\($0).onnx" }, logPath: dir.path + "/exported.json")
        #expect(check.wait(seconds: 120) == 0, "\(check.log)")
        let exportedLine = check.log.split(separator: "\n").last { $0.hasPrefix("{") }.map(String.init) ?? "{}"
        let exported = try JSONDecoder().decode([String: Row].self, from: Data(exportedLine.utf8))
        #expect(Set(exported.keys) == Set(reexported + ["fashion"]))
        for (name, row) in exported {
            #expect(row.max_abs_diff <= 1e-5, "\(name): exported model differs from Loupe by \(row.max_abs_diff)")
            #expect(row.same_top1, "\(name)")
        }
        // The exported 32×32×3 model in ONNX Runtime reproduces the golden samples Loupe recorded for it.
        let exportedGoldens = try CLIProcess.run(python, [Self.script, "goldens", dir.path + "/out", "cifar_bn=\(repo)/cifar_bn/1/model.loupe"])
        #expect(exportedGoldens.status == 0, "\(exportedGoldens.output)")
        let egLine = exportedGoldens.stdout.split(separator: "\n").last { $0.hasPrefix("{") }.map(String.init) ?? "{}"
        let eg = try JSONDecoder().decode([String: GoldenRow].self, from: Data(egLine.utf8))
        #expect(eg["cifar_bn"].map { $0.max_abs_diff <= 1e-5 && $0.same_top1 } == true, "\(egLine)")
    }

    @Test func whatCannotBeImportedIsRefusedWithASentence() throws {
        let python = try ServeToolsTests.require("python3")
        let dir = try TempDir()
        #expect(try CLIProcess.run(python, [Self.script, "build", dir.path]).status == 0)
        let cases: [(String, String)] = [
            ("selu.onnx", "node 'odd' (Selu): operator Selu is not supported; Loupe imports Conv,"),
            ("dilated.onnx", "node 'conv2' (Conv): dilations [2, 2] are not supported; Loupe imports Conv with dilation 1 only"),
            ("ext/external.onnx", "keeps its data in an external file"),
        ]
        for (file, message) in cases {
            let r = try CLIProcess.loupe(["import", dir.path + "/" + file, "--output", dir.path + "/out.loupe"])
            #expect(r.status == 1, "\(file): \(r.output)")
            #expect(r.stderr.contains(message), "\(file): \(r.stderr)")
            #expect(!r.stderr.contains("Usage:"), "a refusal is not a usage error")
        }
        // A truncated file, and one that is not ONNX at all.
        let whole = try FileIO.readFile(dir.path + "/pytorch.onnx")
        try dir.write("truncated.onnx", Array(whole.prefix(whole.count / 2)))
        try dir.write("text.onnx", Array("not a model".utf8))
        for file in ["truncated.onnx", "text.onnx"] {
            let r = try CLIProcess.loupe(["import", dir.path + "/" + file, "--output", dir.path + "/out.loupe"])
            #expect(r.status == 1 && r.stderr.contains("is not a readable ONNX model: malformed protobuf: "), "\(file): \(r.output)")
        }
        #expect(access(dir.path + "/out.loupe", F_OK) != 0, "nothing was written")
    }

    /// `models.max_input_side` bounds both ends: import refuses a larger input (the key from a config file, from
    /// LOUPE_MODELS_MAX_INPUT_SIDE, or --max-input-side) and serve does not load such a model, saying why.
    @Test func theMaxInputSideKeyBoundsImportAndServe() throws {
        let python = try ServeToolsTests.require("python3")
        let dir = try TempDir()
        #expect(try CLIProcess.run(python, [Self.script, "build", dir.path]).status == 0)
        try dir.write("small.yaml", Array("models:\n  max_input_side: 32\n".utf8))
        let refused = try CLIProcess.loupe(["import", dir.path + "/nonsquare.onnx", "--config", dir.path + "/small.yaml",
                                            "--output", dir.path + "/out.loupe"])
        #expect(refused.status == 1 && refused.stderr.contains("input 'x' is 24×40; Loupe imports images up to 32×32 (models.max_input_side"),
                "\(refused.output)")
        let fromEnvironment = try CLIProcess.run("/usr/bin/env", ["LOUPE_MODELS_MAX_INPUT_SIDE=39", CLIProcess.loupePath, "import",
                                                                  dir.path + "/nonsquare.onnx", "--output", dir.path + "/out.loupe"])
        #expect(fromEnvironment.status == 1 && fromEnvironment.stderr.contains("up to 39×39"), "\(fromEnvironment.output)")
        #expect(access(dir.path + "/out.loupe", F_OK) != 0, "nothing was written")
        let repo = dir.path + "/models"
        let flag = try CLIProcess.loupe(["import", dir.path + "/nonsquare.onnx", "--config", dir.path + "/small.yaml",
                                         "--max-input-side", "40", "--repository", repo])
        #expect(flag.status == 0, "\(flag.output)")
        try FileIO.createDirectories(repo + "/fashion/1")
        try FileIO.writeAtomically(try FileIO.readFile(E2E.root + "/models/fashion/1/model.loupe"), to: repo + "/fashion/1/model.loupe")
        let server = try ServeProcess(models: repo, settings: ["models.max_input_side=32"])
        try server.waitReady()
        let health = try HTTP.request(port: server.port, "GET", "/health").text
        #expect(health.contains(#""load_failures":[{"model":"nonsquare","version":1,"state":"UNAVAILABLE","reason":"#), "\(health)")
        #expect(health.contains("input shape [24, 40, 3] cannot be fed: the server takes images [height, width, channels] with 1 or 3 channels and sides up to 32"),
                "\(health)")
        #expect(try HTTP.request(port: server.port, "GET", "/v2/models/fashion/ready").status == 200)
    }

    /// Files that break the ONNX spec in one place each (onnx_import_check.py malformed): each a
    /// sentence naming the tensor or node, exit status 1, nothing written.
    @Test func malformedFilesAreRefusedWithASentence() throws {
        let python = try ServeToolsTests.require("python3")
        let dir = try TempDir()
        let build = try CLIProcess.run(python, [Self.script, "malformed", dir.path])
        #expect(build.status == 0, "\(build.output)")
        let cases: [(String, String)] = [
            ("missing_init", "cannot be imported: node Gemm → logits: input 'f2w' must be a constant initializer"),
            ("wrong_shape", "cannot be imported: node Gemm → g1: weights for 100 inputs, the tensor has 576"),
            ("channels", "cannot be imported: node 'conv1' (Conv): weights for 3 input channels, the tensor has 1"),
            ("raw_short", "is not a readable ONNX model: tensor 'c1b': 28 bytes of raw data for 8 floats"),
            ("count_mismatch", "is not a readable ONNX model: tensor 'c1b' declares 8 values and holds 7"),
            ("group_weights", "cannot be imported: node 'conv2' (Conv): group 2 with weights [16, 8, 3, 3] on 8 channels is not supported; a grouped Conv needs a group that divides the input channels and the filters, and weights [F, C / group, kH, kW] (here [16, 4, kH, kW])"),
        ]
        for (name, message) in cases {
            let r = try CLIProcess.loupe(["import", dir.path + "/\(name).onnx", "--output", dir.path + "/out.loupe"])
            #expect(r.status == 1, "\(name): \(r.output)")
            #expect(r.stderr.contains(message), "\(name): \(r.stderr)")
        }
        let good = try CLIProcess.loupe(["import", dir.path + "/good.onnx", "--output", dir.path + "/good.loupe"])
        #expect(good.status == 0, "the unbroken file imports: \(good.output)")
        #expect(access(dir.path + "/out.loupe", F_OK) != 0, "nothing was written")
    }

    @Test(.enabled(if: access(anchor, R_OK) == 0, "needs ../shared/anchors/ml/model.onnx beside the repository"))
    func theKerasSeedNetworkKeepsItsTestAccuracy() throws {
        let dir = try TempDir()
        let imported = try CLIProcess.loupe(["import", Self.anchor, "--output", dir.path + "/anchor.loupe",
                                             "--labels", "T-shirt/top,Trouser,Pullover,Dress,Coat,Sandal,Shirt,Sneaker,Bag,Ankle boot"])
        #expect(imported.status == 0, "\(imported.output)")
        let evaluation = try CLIProcess.loupe(["evaluate", "--model", dir.path + "/anchor.loupe"])
        #expect(evaluation.status == 0, "\(evaluation.output)")
        // ONNX Runtime's (and Keras's) test accuracy on the full 10,000 images: 0.8930.
        let line = evaluation.stdout.split(separator: "\n").first { $0.hasPrefix("accuracy") } ?? ""
        let accuracy = Double(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") ?? 0
        #expect(abs(accuracy - 0.8930) <= 0.0005, "\(evaluation.stdout)")
    }
}
