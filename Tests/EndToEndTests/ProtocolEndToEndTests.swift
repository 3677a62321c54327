// `loupe serve` against the clients of the other protocols it speaks: tritonclient.http's
// statistics and model-configuration calls (Triton's extensions), TF Serving REST clients
// (requests, TF Serving's JSON formats) and the KServe SDK's v1 REST client; and schemathesis
// fuzzing every operation the served OpenAPI document lists, with every check.
import FoundationEssentials
import Testing

@Suite(.serialized) struct ProtocolEndToEndTests {
    /// Runs `script` with `arguments`; returns its last JSON line.
    static func runCheck(_ script: String, _ arguments: [String], dir: TempDir) throws -> String {
        let python = try ServeToolsTests.require("python3")
        let run = try ChildProcess([python, E2E.root + "/Tests/EndToEndTests/python/" + script] + arguments,
                                   logPath: dir.path + "/\(script).log")
        #expect(run.wait(seconds: 120) == 0, "\(script) failed: \(run.log)")
        return run.log.split(separator: "\n").last { $0.hasPrefix("{") }.map(String.init) ?? ""
    }

    @Test func tritonClientStatisticsAndModelConfig() throws {
        let repo = try E2E.makeRepository()
        let server = try ServeProcess(models: repo.path, settings: ["limits.max_images_per_request=512", "batching.max_batch_size=32"])
        try server.waitReady()
        let n = 6
        let (pixels, _) = try E2E.testImages(n)
        let dir = try TempDir()
        try dir.write("pixels.bin", pixels)
        let line = try Self.runCheck("triton_stats_check.py", ["127.0.0.1:\(server.port)", "fashion", dir.path + "/pixels.bin", "512", "32"], dir: dir)
        struct Result: Decodable { var ok: Bool; var inference_count: Int; var requests: Int }
        let result = try JSONDecoder().decode(Result.self, from: Data(line.utf8))
        #expect(result.ok && result.inference_count == n && result.requests == 3)
    }

    @Test func tfServingRESTAndKServeV1Client() throws {
        let repo = try E2E.makeRepository()
        let server = try ServeProcess(models: repo.path)
        try server.waitReady()
        let n = 4
        let (pixels, _) = try E2E.testImages(n)
        let dir = try TempDir()
        try dir.write("pixels.bin", pixels)
        let line = try Self.runCheck("v1_rest_check.py", ["http://127.0.0.1:\(server.port)", "fashion", dir.path + "/pixels.bin"], dir: dir)
        struct Result: Decodable { var ok: Bool; var n: Int; var probabilities: [[Float]] }
        let result = try JSONDecoder().decode(Result.self, from: Data(line.utf8))
        #expect(result.ok && result.n == n)
        // The v1 answers equal /predict's probabilities for the same images.
        let r = try HTTP.request(port: server.port, "POST", "/predict", headers: [("Content-Type", "application/octet-stream")], body: pixels)
        let predicted = try decode(PredictBody.self, r).predictions.flatMap(\.probabilities)
        #expect(close(result.probabilities.flatMap { $0 }, predicted))
    }

    /// schemathesis (every check, every phase: examples, coverage, fuzzing, stateful) against the
    /// live server's /openapi.json: 0 failures. Deterministic generation with a bounded example
    /// count, so a run is reproducible and takes about a minute. python/schemathesis_hooks.py tells
    /// it how to make the images (PNG/PGM/raw/base64) that OpenAPI can only call binary.
    /// Every operation is covered, POST /explain, the v1 :explain and the three /feedback operations included (the
    /// hooks keep a positive case's query to the parameters of the method it drew, since OpenAPI cannot say that
    /// `window` goes only with method=occlusion, and make a feedback body one of its two forms with labels of the
    /// served model's classes; the feedback operations carry a body example, a request id the server has not seen,
    /// which is the documented 404).
    @Test func schemathesisFindsNothing() throws {
        let schemathesis = try ServeToolsTests.require("schemathesis")
        let repo = try E2E.makeRepository()
        let server = try ServeProcess(models: repo.path)
        try server.waitReady()
        let dir = try TempDir()
        // Run from a temp dir: schemathesis keeps a .schemathesis/ cache in its working directory.
        let command = ["cd '\(dir.path)' && exec '\(schemathesis)' run http://127.0.0.1:\(server.port)/openapi.json --checks all",
                       "--max-examples 20 --generation-deterministic --no-color"]
        let run = try ChildProcess(["/bin/sh", "-c", command.joined(separator: " ")],
                                   environment: ["PYTHONPATH": E2E.root + "/Tests/EndToEndTests/python",
                                                 "SCHEMATHESIS_HOOKS": "schemathesis_hooks"],
                                   logPath: dir.path + "/schemathesis.log")
        let code = run.wait(seconds: 600)
        #expect(code == 0, "schemathesis found failures (or did not finish):\n\(run.log)")
        #expect(run.log.contains("No issues found") || !run.log.contains("failures"), "\(run.log)")
        // It reached the operations: the server logged requests to the inference routes.
        #expect(server.log.contains("\"route\":\"/v1/models/{m}:predict\"") && server.log.contains("\"route\":\"/v2/models/stats\""))
        #expect(server.log.contains("\"route\":\"/feedback\"") && server.log.contains("\"route\":\"/v2/models/{m}/feedback\""))
    }
}
