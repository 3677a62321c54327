// Puts the service on a socket: registers its routes on LoupeHTTP's router, maps the
// configuration onto the HTTP server, exports the server's connection statistics, and runs
// the drain sequence of DESIGN §6.
import Dispatch
import Logging
import LoupeHTTP

/// A listener that could not start, with the address it tried.
public struct ServiceStartError: Error, CustomStringConvertible {
    public var address: String
    public var underlying: any Error
    public var description: String {
        let text = "\(underlying)"
        if text.contains("Address already in use") {
            return "cannot listen on \(address): the address is already in use (another process listens there; choose another port with --port or server.port)"
        }
        return "cannot listen on \(address): \(text)"
    }
}

public final class ServiceServer: Sendable {
    public let service: InferenceService
    public let http: HTTPServer
    /// The separate metrics listener (`metrics.port` > 0), else nil.
    public let metricsHTTP: HTTPServer?
    let logger: Logger

    public init(service: InferenceService, logger: Logger) throws {
        self.service = service
        self.logger = logger
        let http = try HTTPServer(configuration: Self.httpConfiguration(service.configuration),
                                  handler: service.httpHandler(service.routes))
        self.http = http
        let metricsRoutes = service.metricsListenerRoutes
        if metricsRoutes.isEmpty {
            metricsHTTP = nil
        } else {
            var m = HTTPServerConfiguration(host: service.configuration.metricsHost, port: service.configuration.metricsPort)
            m.eventLoopThreads = 1
            m.handlerThreads = 1
            m.runHandlersOnEventLoop = true
            m.maxConnections = 64
            m.gzipMinimumBytes = service.configuration.gzipMinimumBytes
            metricsHTTP = try HTTPServer(configuration: m, handler: service.httpHandler(metricsRoutes))
        }
        service.metrics.registry.addCollector { [http] w in
            let stats = http.stats
            w.family("loupe_http_open_connections", help: "Open client connections.", kind: .gauge)
            w.sample("loupe_http_open_connections", value: Double(stats.openConnections))
            w.family("loupe_http_connections_accepted_total", help: "Client connections accepted.", kind: .counter)
            w.sample("loupe_http_connections_accepted_total", value: Double(stats.acceptedTotal))
            w.family("loupe_http_connection_rejections_total",
                     help: "Connections refused or cut by the HTTP layer, by reason (max_connections, timeouts, parse_error, …).", kind: .counter)
            for (reason, n) in stats.rejections.sorted(by: { $0.key < $1.key }) {
                w.sample("loupe_http_connection_rejections_total", labels: [("reason", reason)], value: Double(n))
            }
            w.family("loupe_http_parse_errors_total", help: "Malformed requests answered by the HTTP layer, by error code.", kind: .counter)
            for (code, n) in stats.parseErrors.sorted(by: { $0.key < $1.key }) {
                w.sample("loupe_http_parse_errors_total", labels: [("code", code)], value: Double(n))
            }
        }
    }

    static func httpConfiguration(_ c: ServiceConfiguration) -> HTTPServerConfiguration {
        var h = HTTPServerConfiguration(host: c.host, port: c.port)
        if c.eventLoopThreads > 0 { h.eventLoopThreads = c.eventLoopThreads }
        if c.handlerThreads > 0 { h.handlerThreads = c.handlerThreads }
        h.runHandlersOnEventLoop = c.handlersOnEventLoop
        h.yieldBeforeSleep = c.yieldBeforeSleep
        h.maxConnections = c.maxConnections
        h.maxRequestsPerConnection = c.maxRequestsPerConnection
        h.maxHeaderBytes = c.maxHeaderBytes
        h.maxBodyBytes = c.maxBodyBytes
        h.headerReadTimeout = Double(c.headerTimeoutMilliseconds) / 1000
        h.bodyReadTimeout = Double(c.bodyTimeoutMilliseconds) / 1000
        h.keepAliveIdleTimeout = Double(c.idleTimeoutMilliseconds) / 1000
        h.writeTimeout = Double(c.writeTimeoutMilliseconds) / 1000
        h.gzipMinimumBytes = c.gzipMinimumBytes
        if !c.tlsCertificatePath.isEmpty {
            h.tls = TLSConfiguration(certificateChainPath: c.tlsCertificatePath, privateKeyPath: c.tlsKeyPath)
        }
        return h
    }

    /// The bound port (after `start`).
    public var port: Int { http.port }

    /// Starts the inference workers and the listener, then watches readiness until the first
    /// ready moment (recorded as start-to-ready).
    public func start() throws {
        service.start()
        do {
            try http.start()
        } catch {
            throw ServiceStartError(address: "\(service.configuration.host):\(service.configuration.port)", underlying: error)
        }
        if let metricsHTTP {
            do {
                try metricsHTTP.start()
            } catch {
                throw ServiceStartError(address: "\(service.configuration.metricsHost):\(service.configuration.metricsPort) (metrics.port)", underlying: error)
            }
            logger.info("metrics listening", metadata: ["address": .string("\(service.configuration.metricsHost):\(metricsHTTP.port)")])
        }
        logger.info("listening", metadata: [
            "address": .string("\(service.configuration.host):\(http.port)"),
            "tls": .stringConvertible(!service.configuration.tlsCertificatePath.isEmpty),
            "workers": .stringConvertible(service.configuration.effectiveInferenceWorkers),
            "max_batch_size": .stringConvertible(service.configuration.maxBatchSize),
            "max_queue_delay_us": .stringConvertible(service.configuration.maxQueueDelayMicroseconds),
        ])
        if !service.checkReadiness() {
            let service = self.service
            startThread(name: "loupe-ready-watch") {
                while !service.isDraining && !service.checkReadiness() { sleepSeconds(0.002) }
            }
        }
    }

    /// SIGTERM: readiness 503 now; keep serving for the drain delay; stop accepting; let
    /// requests in flight finish within the deadline; stop the workers. Blocks until done and
    /// returns true when everything in flight finished.
    public func drain() -> Bool {
        let c = service.configuration
        logger.info("draining", metadata: ["drain_delay_ms": .stringConvertible(c.drainDelayMilliseconds),
                                           "deadline_ms": .stringConvertible(c.drainDeadlineMilliseconds)])
        service.beginDrain()
        http.announceDrain()
        sleepSeconds(Double(c.drainDelayMilliseconds) / 1000)
        logger.info("closing listener", metadata: ["in_flight": .stringConvertible(Int(service.metrics.inFlight.value))])
        http.beginShutdown(deadline: .milliseconds(c.drainDeadlineMilliseconds))
        http.waitUntilStopped()
        metricsHTTP?.shutdown(deadline: .seconds(1))
        let clean = service.stopWorkers(deadline: monotonicNanoseconds() + 1_000_000_000)
        let left = Int(service.metrics.inFlight.value)
        logger.info("stopped", metadata: ["unfinished_requests": .stringConvertible(left)])
        return clean && left == 0
    }
}

