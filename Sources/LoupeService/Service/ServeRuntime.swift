// A whole `loupe serve` process, wired: the model repository, the service with its routes and
// metrics, and the server on its sockets. The CLI (`Serve.run`) keeps only option parsing, the
// logging bootstrap and signal handling; tests reach everything here.
import Logging
import LoupeData

public final class ServeRuntime: Sendable {
    public let configuration: ServiceConfiguration
    public let repository: ModelRepository
    public let service: InferenceService
    public let server: ServiceServer
    let logger: Logger

    /// Builds every part; throws when a listener cannot be set up (the message names the address).
    public init(configuration: ServiceConfiguration, logger: Logger, startedAt: UInt64) throws {
        self.configuration = configuration
        self.logger = logger
        // What a killed `loupe train` (or import) left in the repository: its temp files and
        // directories, recognised by name and a pid that no longer runs. Best effort (read-only
        // volumes are left alone).
        let stale = ModelRepositoryLayout.removeStaleTemporaries(root: configuration.modelsDirectory)
        if !stale.isEmpty {
            logger.warning("removed temporary files a killed loupe process left in the model repository",
                           metadata: ["count": .stringConvertible(stale.count), "paths": "\(stale.joined(separator: ","))"])
        }
        repository = ModelRepository(configuration: configuration.repositoryConfiguration, logger: Logger(label: "loupe.repository"))
        let registry = MetricsRegistry()
        service = InferenceService(configuration: configuration, provider: repository, registry: registry,
                                   logger: logger, startedAt: startedAt)
        repository.registerMetrics(on: registry)
        service.addRepositoryRoutes(repository)
        if configuration.repositoryAPIEnabled && configuration.repositoryAPIToken.isEmpty {
            logger.warning("the repository API is enabled without a token: anyone who reaches the port can load and unload models; set repository_api.token (LOUPE_REPOSITORY_API_TOKEN)")
        }
        server = try ServiceServer(service: service, logger: logger)
    }

    /// Starts the workers and listeners (not ready until `loadModels`).
    public func start() throws { try server.start() }

    /// Loads what the repository holds and starts its poller; readiness follows the first
    /// servable model. Call after the signal handlers are in place.
    public func loadModels() {
        repository.start()
        if !service.checkReadiness() {
            let reasons = repository.statuses.map { "\($0.name): \($0.reason ?? $0.state.rawValue)" }
            logger.warning("no model is servable yet; /health/ready answers 503 until one is", metadata: [
                "models_dir": "\(configuration.modelsDirectory)", "models": "\(reasons.joined(separator: "; "))",
            ])
        }
    }

    /// SIGTERM/SIGINT: the drain sequence (DESIGN §6), then the repository's poller stops.
    /// Returns true when everything in flight finished.
    @discardableResult
    public func drain() -> Bool {
        let clean = server.drain()
        repository.stop()
        return clean
    }

    /// SIGHUP: rescan and reload the repository in the background.
    public func reload(reason: String) { repository.requestReload(reason: reason) }
}
