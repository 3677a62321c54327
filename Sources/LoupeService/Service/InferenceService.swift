// The inference service: the wiring of its parts. Each part has one job —
//   Readiness               readiness and drain state (Service/Readiness.swift)
//   RequestInstrumentation  request ids, trace context, CORS, HTTP metrics, access log
//   Batcher                 the bounded queue and the inference workers (Inference/)
//   PredictionRecorder      top-1 classes, prediction metrics and drift after each batch, and the
//                           predictions kept by request id for feedback (PredictionWindow)
//   LiveAccuracy            ground truth received: live accuracy, precision/recall, calibration
//   CaptureStore            sampled requests (and their labels) written as IDX sets (capture.*)
//   ShadowRunner            safe promotion: the other version of a pair classifies sampled copies off
//                           the request path (Lifecycle/ShadowRunner.swift)
//   PromotionMonitor        safe promotion: judges each candidate by the rules, promotes or rolls back
//   Routes/*                one handler type per route group, listed in Routes/RouteTable.swift
// Transport-agnostic: `ServiceServer` puts the routes on LoupeHTTP's router and a socket.
import Logging
import LoupeData
import LoupeHTTP
import Synchronization

public let loupeVersion = "0.1.0"

/// One route: method, template ("/v2/models/{m}/infer") and handler.
public struct ServiceRoute: Sendable {
    public var method: HTTPMethod
    public var template: String
    public var handler: HTTPHandler
    public init(method: HTTPMethod, template: String, handler: @escaping HTTPHandler) {
        self.method = method; self.template = template; self.handler = handler
    }
}

public final class InferenceService: Sendable {
    public let configuration: ServiceConfiguration
    public let provider: any ModelProvider
    public let metrics: ServiceMetrics
    let logger: Logger
    let readiness: Readiness
    let instrumentation: RequestInstrumentation
    let batcher: Batcher
    let recorder: PredictionRecorder
    let liveAccuracy: LiveAccuracy
    let promotion: PromotionMonitor
    let inputs: InputPolicy
    /// The window behind GET /api/status (the console's live operations).
    let statusSampler: StatusSampler
    private let extraRoutes = Mutex<[ServiceRoute]>([])

    public init(configuration: ServiceConfiguration, provider: any ModelProvider, registry: MetricsRegistry = MetricsRegistry(),
                logger: Logger, startedAt: UInt64 = monotonicNanoseconds()) {
        self.configuration = configuration
        self.provider = provider
        self.logger = logger
        let metrics = ServiceMetrics(registry: registry, version: loupeVersion)
        self.metrics = metrics
        readiness = Readiness(provider: provider, metrics: metrics, logger: logger, startedAt: startedAt)
        instrumentation = RequestInstrumentation(metrics: metrics, logger: logger, accessLog: configuration.accessLog,
                                                 cors: CORSPolicy(configuration.corsAllowedOrigins),
                                                 seed: UInt64(truncatingIfNeeded: wallClockSeconds().bitPattern) ^ startedAt)
        let capture = CaptureStore(configuration: configuration.captureConfiguration, logger: logger,
                                   seed: UInt64(truncatingIfNeeded: wallClockSeconds().bitPattern) ^ (startedAt &* 31))
        capture.register(on: registry)
        let tracker = PromotionTracker()
        let shadow = ShadowRunner(capacity: configuration.promotionShadowQueueImages, tracker: tracker,
                                  window: PredictionWindow(capacityImages: configuration.feedbackWindow,
                                                           maxAgeSeconds: Double(configuration.feedbackMaxAgeSeconds)),
                                  seed: UInt64(truncatingIfNeeded: wallClockSeconds().bitPattern) ^ (startedAt &* 131))
        registry.addCollector { w in shadow.write(into: &w) }
        recorder = PredictionRecorder(metrics: metrics,
                                      window: PredictionWindow(capacityImages: configuration.feedbackWindow,
                                                               maxAgeSeconds: Double(configuration.feedbackMaxAgeSeconds)),
                                      capture: capture, shadow: shadow)
        promotion = PromotionMonitor(provider: provider, tracker: tracker, logger: logger,
                                     intervalSeconds: Double(configuration.promotionEvaluateIntervalMilliseconds) / 1000)
        promotion.register(on: registry)
        liveAccuracy = LiveAccuracy(windowSize: configuration.feedbackAccuracyWindow, alertMargin: configuration.feedbackAlertMargin,
                                    alertMinLabels: configuration.feedbackAlertMinLabels)
        liveAccuracy.register(on: registry)
        inputs = InputPolicy(configuration)
        statusSampler = StatusSampler(metrics: metrics)
        batcher = Batcher(configuration: BatcherConfiguration(
            workers: configuration.effectiveInferenceWorkers, threadsPerWorker: configuration.inferenceThreads,
            maxBatchSize: configuration.maxBatchSize, maxQueueDelayMicroseconds: configuration.maxQueueDelayMicroseconds,
            queueCapacity: configuration.queueCapacity,
            faultDelayMilliseconds: configuration.faultInferenceDelayMilliseconds,
            faultDelayPercent: configuration.faultInferenceDelayPercent,
            onEventLoop: configuration.batchOnEventLoop, eventLoopMaxPassMicroseconds: configuration.eventLoopMaxPassMicroseconds), metrics: metrics.batcher)
        if configuration.faultInferenceDelayMilliseconds > 0 {
            logger.warning("fault injection is on: \(configuration.faultInferenceDelayPercent)% of forward passes are delayed by \(configuration.faultInferenceDelayMilliseconds) ms (fault.inference_delay_ms)")
        }
        registry.addCollector { [provider] w in
            w.family("loupe_models_ready", help: "Servable model versions now.", kind: .gauge)
            w.sample("loupe_models_ready", value: Double(provider.servedModels().count))
        }
    }

    /// Starts the inference workers.
    public func start() {
        batcher.start()
        recorder.capture.start()
        recorder.shadow.start()
        promotion.start()
        if recorder.capture.isEnabled {
            logger.notice("capture is on: \(configuration.captureSampleRate * 100)% of requests are written to \(configuration.captureDirectory) (capture.*); see docs/operations.md on personal data")
            for model in provider.servedModels() where model.outputCount > CaptureStore.maxClasses {
                recorder.capture.refuse(model: model.name, classCount: model.outputCount)
            }
        }
        _ = readiness.check()
    }

    // MARK: Readiness and drain (Readiness.swift)

    /// Ready: a model is loaded (and passed its self-test) and the server is not draining.
    public func checkReadiness() -> Bool { readiness.check() }
    /// Seconds from start to the first ready state, nil before.
    public var startToReadySeconds: Double? { readiness.startToReadySeconds }
    public var isDraining: Bool { readiness.isDraining }
    /// SIGTERM, step 1: readiness turns 503; requests are still served.
    public func beginDrain() { readiness.beginDrain() }

    /// Last step of shutdown: stops the inference workers after the queue empties.
    public func stopWorkers(deadline: UInt64) -> Bool {
        promotion.stop()
        recorder.shadow.stop()
        batcher.stop()
        let stopped = batcher.waitUntilStopped(deadline: deadline)
        recorder.capture.flush(final: true)   // what waited for labels is written unlabelled
        return stopped
    }

    // MARK: Routes (Routes/RouteTable.swift)

    /// Adds a route served next to the built-in ones. Must be called before the server starts.
    public func addRoute(_ method: HTTPMethod, _ template: String, _ handler: @escaping HTTPHandler) {
        extraRoutes.withLock { $0.append(ServiceRoute(method: method, template: template, handler: handler)) }
    }

    /// Serves the repository extension's endpoints (when `repository_api.enabled`) over `repository`.
    public func addRepositoryRoutes(_ repository: ModelRepository) {
        for route in RepositoryRoutes.routes(repository) { addRoute(route.method, route.template, route.handler) }
    }

    var addedRoutes: [ServiceRoute] { extraRoutes.withLock { $0 } }
}
