import ArgumentParser
import Dispatch
import Logging
import LoupeData
import LoupeService
#if canImport(Glibc)
import Glibc
#endif

struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve models over HTTP: /predict, /health, /metrics and the KServe v2 protocol.",
        discussion: """
            Settings come from built-in defaults < the YAML file (--config or LOUPE_CONFIG) < LOUPE_* \
            environment variables < flags. Config/loupe.yaml lists every key with its default; any key \
            can be set with --set key=value. SIGTERM/SIGINT drain (readiness 503, serve for \
            shutdown.drain_delay_ms, stop accepting, finish in-flight within shutdown.deadline_ms, exit 0); \
            a second signal exits at once. SIGHUP reloads the model repository.
            """)

    @Option(help: "YAML configuration file (default: $LOUPE_CONFIG, else none).")
    var config: String?
    @Option(help: ArgumentHelp(ServiceConfiguration.serveFlagHelp("models")))
    var models: String?
    @Option(help: ArgumentHelp(ServiceConfiguration.serveFlagHelp("host")))
    var host: String?
    @Option(parsing: .unconditional, help: ArgumentHelp(ServiceConfiguration.serveFlagHelp("port")))
    var port: String?
    @Option(parsing: .unconditional, help: ArgumentHelp(ServiceConfiguration.serveFlagHelp("max-batch-size")))
    var maxBatchSize: String?
    @Option(parsing: .unconditional, help: ArgumentHelp(ServiceConfiguration.serveFlagHelp("max-queue-delay-us")))
    var maxQueueDelayUs: String?
    @Option(parsing: .unconditional, help: ArgumentHelp(ServiceConfiguration.serveFlagHelp("workers")))
    var workers: String?
    @Option(parsing: .unconditional, help: ArgumentHelp(ServiceConfiguration.serveFlagHelp("threads")))
    var threads: String?
    @Option(help: ArgumentHelp(ServiceConfiguration.serveFlagHelp("tls-cert")))
    var tlsCert: String?
    @Option(help: ArgumentHelp(ServiceConfiguration.serveFlagHelp("tls-key")))
    var tlsKey: String?
    @Option(help: ArgumentHelp(ServiceConfiguration.serveFlagHelp("log-format")))
    var logFormat: String?
    @Option(help: ArgumentHelp(ServiceConfiguration.serveFlagHelp("log-level")))
    var logLevel: String?
    @Option(name: .customLong("set"), help: ArgumentHelp("Any configuration key, e.g. --set shutdown.drain_delay_ms=0 (repeatable).", valueName: "key=value"))
    var settings: [String] = []
    @Flag(help: "Print the effective configuration as key: value lines and exit.")
    var printConfig = false

    /// A configuration error found in `run`: the sentence and serve's own usage (ArgumentParser would
    /// print the top-level one from here), exit status 64 like any usage error.
    static func refuse(_ message: String) -> ExitCode {
        Terminal.error("Error: \(message)\nUsage: loupe " + usageString() + "\n  See 'loupe serve --help' for every option; Config/loupe.yaml for every key.")
        return ExitCode(64)
    }

    func run() throws {
        // Start-to-ready counts from the kernel's start of this process (so exec, dynamic loading
        // and runtime start-up are in it), unless that is more than a second before this point:
        // then the process was a launcher first (`swift run` builds, then execs into loupe in the
        // same process) and the figure is counted from here instead, and logged as such.
        let enteredMain = monotonicNanoseconds()
        let processStart = processStartMonotonicNanoseconds()
        let launcherSeconds = Double(enteredMain &- processStart) / 1e9
        let startedAt = launcherSeconds > 1 ? enteredMain : processStart
        // Block the signals we handle in this thread before any other thread exists, so every
        // thread inherits the mask and the kernel keeps them pending for Dispatch's signal sources
        // (signalfd on Linux). Without this a SIGTERM can be delivered to a busy worker thread,
        // where SIG_IGN discards it, and the drain never starts.
        var handled = sigset_t()
        sigemptyset(&handled)
        for sig in [SIGTERM, SIGINT, SIGHUP] { sigaddset(&handled, sig) }
        pthread_sigmask(SIG_BLOCK, &handled, nil)
        let environment = environmentVariables()
        let overrides: [(key: String, value: String)]
        do {
            overrides = try ServiceConfiguration.serveOverrides(flags: [
                "models": models, "host": host, "port": port, "max-batch-size": maxBatchSize, "max-queue-delay-us": maxQueueDelayUs,
                "workers": workers, "threads": threads, "tls-cert": tlsCert, "tls-key": tlsKey, "log-format": logFormat, "log-level": logLevel,
            ], settings: settings)
        } catch {
            throw Self.refuse("\(error)")
        }
        var warnings: [String] = []
        let configuration: ServiceConfiguration
        do {
            configuration = try ServiceConfiguration.load(file: config ?? environment["LOUPE_CONFIG"], environment: environment,
                                                          overrides: overrides, warnings: &warnings)
        } catch {
            throw Self.refuse("\(error)")
        }
        if printConfig {
            for (key, value) in configuration.renderedKeyValues() { print("\(key): \(value)") }
            return
        }

        let format: LoupeLogHandler.Format = switch configuration.logFormat {
        case .json: .json
        case .text: .text
        case .auto: isTerminal(1) ? .text : .json
        }
        let level = Logger.Level(rawValue: configuration.logLevel) ?? .info
        LoggingSystem.bootstrap { label in LoupeLogHandler(label: label, format: format, level: level) }
        // Info lines (the access log) go through a buffer written by a background thread; see LogSink.
        LogSink.standardOutput.startBuffering()
        defer { LogSink.standardOutput.flush() }
        let logger = Logger(label: "loupe")
        for warning in warnings { logger.warning("\(warning)") }
        if launcherSeconds > 1 {
            logger.info("the process ran another program before loupe (e.g. swift run building it): start-to-ready is counted from loupe's own start",
                        metadata: ["seconds_before_loupe": .stringConvertible((launcherSeconds * 1000).rounded() / 1000)])
        }

        let runtime: ServeRuntime
        do {
            runtime = try ServeRuntime(configuration: configuration, logger: logger, startedAt: startedAt)
            try runtime.start()
        } catch {
            logger.critical("cannot start the server", metadata: ["error": "\(error)"])
            throw ExitCode(1)
        }

        // Signals: handled on a queue, not in async-signal context.
        let finished = DispatchSemaphore(value: 0)
        let signalQueue = DispatchQueue(label: "loupe.signals")
        let draining = SignalLatch()
        var sources: [any DispatchSourceSignal] = []
        for sig in [SIGTERM, SIGINT] {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: signalQueue)
            source.setEventHandler {
                if draining.trip() {
                    logger.warning("second signal: exiting now", metadata: ["signal": .stringConvertible(Int(sig))])
                    Glibc.exit(1)
                }
                logger.info("signal received: draining", metadata: ["signal": .stringConvertible(Int(sig))])
                DispatchQueue.global().async {
                    runtime.drain()
                    finished.signal()
                }
            }
            source.resume()
            sources.append(source)
        }
        signal(SIGHUP, SIG_IGN)
        let hup = DispatchSource.makeSignalSource(signal: SIGHUP, queue: signalQueue)
        hup.setEventHandler { runtime.reload(reason: "SIGHUP") }
        hup.resume()
        sources.append(hup)

        runtime.loadModels()
        finished.wait()
        withExtendedLifetime(sources) {}
    }
}

/// Set once by the first termination signal; a second one sees it set.
final class SignalLatch: @unchecked Sendable {
    private var tripped = false
    /// Returns true if the latch was already tripped.
    func trip() -> Bool {
        defer { tripped = true }
        return tripped
    }
}
