import Logging
import LoupeData
import LoupeEngine
import LoupeHTTP
import Testing
@testable import LoupeService

/// A quantized (int8, format version 2) version is served like any other: read, verified, built,
/// golden self-test, and its precision shown by /health and loupe_model_info.
@Suite struct QuantizedServingTests {
    static func quantizedFile() throws -> (ModelFile, Sequential) {
        let fp32 = RepoFixture.model(seed: 3)
        let calibration = RepoFixture.images(count: 32, seed: 5).map { Float($0) / 255 }
        let int8 = try fp32.quantized(calibrationImages: calibration, count: 32, calibrator: .minmax)
        let golden = ModelFile.goldenSamples(model: int8, images: RepoFixture.images(count: 4, seed: 8), labels: [], count: 4)
        let file = try ModelFile(model: int8, labels: RepoFixture.labels, training: TrainingMetadata(dataset: "tiny", epochs: 1, seed: 3),
                                 goldenSamples: golden)
        return (file, int8)
    }

    @Test func anInt8VersionServesWithItsPrecisionShown() throws {
        let repo = TempRepository()
        defer { repo.remove() }
        repo.write(RepoFixture.file(seed: 1), name: "fashion", version: 1)
        let (file, int8) = try Self.quantizedFile()
        repo.write(file, name: "fashion", version: 2)
        var config = RepositoryConfiguration.testing(root: repo.root)
        config.versionPolicy = .all
        let models = ModelRepository(configuration: config, logger: .discarding)
        models.start()
        let m = try #require(models.model(named: "fashion", version: 2))
        #expect(m.precision == "int8" && m.sha256 == file.sha256Hex)
        #expect(try #require(models.model(named: "fashion", version: 1)).precision == "fp32")
        // The served runner computes what the engine's int8 network computes.
        var workspace = int8.makeWorkspace(maxBatch: 2)
        #expect(m.makeRunner(maxBatch: 2).predict(RepoFixture.probe, count: 2, threads: 1)
                == int8.predict(RepoFixture.probe, count: 2, workspace: &workspace))

        let registry = MetricsRegistry()
        models.registerMetrics(on: registry)
        let text = registry.render()
        #expect(text.contains("loupe_model_info{model=\"fashion\",version=\"2\",sha256=\"\(file.sha256Hex)\",precision=\"int8\"} 1\n"))
        #expect(text.contains("precision=\"fp32\"} 1\n"))

        var c = ServiceConfiguration()
        c.inferenceWorkers = 1
        c.accessLog = false
        let service = InferenceService(configuration: c, provider: models, logger: Logger(label: "test"))
        service.start()
        let handler = service.httpHandler(service.routes)
        let sink = ResponseCapture()
        handler(HTTPRequest(method: .GET, target: "/health", path: "/health", query: [], headers: HTTPHeaders([]), body: []), sink)
        let body = String(decoding: sink.wait().body, as: UTF8.self)
        #expect(body.contains("\"version\":2,\"sha256\":\"\(file.sha256Hex)\",\"precision\":\"int8\""), "\(body)")
    }

    @Test func anInt8FileWhoseGoldenSamplesDoNotReproduceIsRefused() throws {
        let repo = TempRepository()
        defer { repo.remove() }
        var (file, _) = try Self.quantizedFile()
        var header = file.header
        // Scale one layer's input step: the int8 outputs move, the recorded ones do not.
        header.quantization!.layers[0].inputScale *= 1.5
        file = try ModelFile(header: header, parameters: file.parameters)
        repo.write(file, name: "fashion", version: 1)
        let models = ModelRepository(configuration: .testing(root: repo.root), logger: .discarding)
        models.start()
        #expect(models.model(named: "fashion", version: nil) == nil)
    }
}
