// The deployment artefacts (Dockerfile, Deploy/**) checked offline, and the container's runtime
// contract emulated without a container engine. Both are shell scripts so that they can also be
// run alone; these tests run them inside `swift test` so that a change elsewhere that breaks the
// deployment (a renamed metric, a new config key not in the ConfigMap, a server that no longer
// runs as non-root on a read-only root) fails here, with the script's report attached.
import Foundation
import Testing

@Suite struct DeploymentTests {
    /// The package root, from this file's path: <root>/Tests/EndToEndTests/DeploymentTests.swift.
    static let root: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()

    /// Runs a command in the package root; returns the exit status and the merged output.
    static func run(_ arguments: [String], environment extra: [String: String] = [:]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        process.currentDirectoryURL = URL(fileURLWithPath: root)
        process.environment = ProcessInfo.processInfo.environment.merging(extra) { _, new in new }
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    /// The `loupe` binary `swift build --product loupe` made beside this test bundle.
    static var loupeBinary: String? {
        let bundleDirectory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for candidate in [bundleDirectory.appendingPathComponent("loupe").path,
                          root + "/.build/debug/loupe"] where FileManager.default.isExecutableFile(atPath: candidate) {
            return candidate
        }
        return nil
    }

    /// hadolint, kubernetes-validate, custom-resource fields, cross-references, ConfigMap and
    /// dashboard in sync, compose structure, promtool config/rules/tests/dashboard queries,
    /// metric names against the sources.
    @Test func deploymentArtefactsValidateOffline() throws {
        let (status, output) = try Self.run(["bash", "scripts/validate-deploy.sh"])
        #expect(status == 0, "scripts/validate-deploy.sh failed:\n\(output)")
    }

    /// The binary as the image runs it: non-root, read-only root, PID 1, env-only configuration;
    /// ready, HEALTHCHECK, /predict, /metrics scraped by a real Prometheus, drain on SIGTERM.
    @Test func runtimeContractHoldsInAnEmulatedContainer() throws {
        guard let binary = Self.loupeBinary else {
            Issue.record("no loupe binary beside the tests: run `swift build --product loupe` first (scripts/test.sh does)")
            return
        }
        let (status, output) = try Self.run(["bash", "scripts/runtime-contract.sh"], environment: ["LOUPE_BIN": binary])
        #expect(status == 0, "scripts/runtime-contract.sh failed:\n\(output)")
    }
}
