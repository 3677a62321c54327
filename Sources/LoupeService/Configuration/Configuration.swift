// The service's configuration: one type holding every default (documented in Config/loupe.yaml,
// which a test keeps in step with this file), loaded from defaults < YAML file < LOUPE_* environment
// < command-line flags. Every key has a dotted name (`batching.max_batch_size`), an environment
// name (`LOUPE_BATCHING_MAX_BATCH_SIZE`) and a parser that refuses bad values naming the key.

import LoupeData

/// Every setting of `loupe serve`. The initial values are the defaults.
public struct ServiceConfiguration: Sendable, Equatable {
    // server
    public var host = "0.0.0.0"
    public var port = 8080
    public var tlsCertificatePath = ""
    public var tlsKeyPath = ""
    public var eventLoopThreads = 0
    public var handlerThreads = 0
    public var handlersOnEventLoop = true
    public var yieldBeforeSleep = false
    public var inlineDecodeMaxBytes = 65536
    public var gzipMinimumBytes = 1024
    public var corsAllowedOrigins = ""
    // limits
    public var maxConnections = 1024
    public var maxRequestsPerConnection = 1000
    public var maxHeaderBytes = 16 * 1024
    public var maxBodyBytes = 8 * 1024 * 1024
    public var headerTimeoutMilliseconds = 10_000
    public var bodyTimeoutMilliseconds = 30_000
    public var idleTimeoutMilliseconds = 75_000
    public var writeTimeoutMilliseconds = 30_000
    public var maxImagesPerRequest = 1024
    public var maxImageDimension = 4096
    public var decodeBudgetBytes = 64 << 20
    // batching
    public var maxBatchSize = 64
    public var maxQueueDelayMicroseconds = 0
    public var queueCapacity = 4096
    public var batchOnEventLoop = true
    public var eventLoopMaxPassMicroseconds = 1000
    // inference
    public var inferenceWorkers = 0
    public var inferenceThreads = 1
    public var defaultTopK = 3
    public var maxExplainPasses = 100_000
    // shutdown
    public var drainDelayMilliseconds = 5000
    public var drainDeadlineMilliseconds = 4000
    // logging
    public var logFormat = LogFormat.auto
    public var logLevel = "info"
    public var accessLog = true
    // models
    public var modelsDirectory = "models"
    public var pollIntervalMilliseconds = 5000
    public var stableAfterMilliseconds = 500
    public var maxModelBytes = 256 << 20
    public var maxInputSide = 256
    public var maxWorkspaceBytes = 1 << 30
    public var versionPolicy = "latest"
    /// Per-model version policy (`models.policy.<name>`), overriding `versionPolicy`.
    public var modelPolicies: [String: String] = [:]
    public var defaultModel = ""
    public var selfTest = true
    public var selfTestTolerance = 1e-4
    // drift
    public var driftWindow = 1000
    // feedback (ground truth)
    public var feedbackWindow = 10_000
    public var feedbackMaxAgeSeconds = 3600
    public var feedbackAccuracyWindow = 1000
    public var feedbackAlertMargin = 0.05
    public var feedbackAlertMinLabels = 200
    // capture (sampled requests written as IDX sets)
    public var captureEnabled = false
    public var captureSampleRate = 0.01
    public var captureMaxBytes = 256 << 20
    public var captureDirectory = "capture"
    public var captureFlushIntervalSeconds = 60
    // repository API (Triton repository extension)
    public var repositoryAPIEnabled = false
    public var repositoryAPIToken = ""
    // promotion (how a new version reaches traffic; Lifecycle/PromotionRules.swift)
    public var promotionMode = "immediate"
    public var promotionCanaryPercent = 10.0
    public var promotionCanaryKeyHeader = ""
    public var promotionShadowSampleRate = 1.0
    public var promotionShadowQueueImages = 256
    public var promotionMinRequests = 200
    public var promotionMinAgreement = 0.9
    public var promotionMinLabels = 100
    public var promotionMaxAccuracyDrop = 0.02
    public var promotionConfidence = 0.95
    public var promotionMaxLatencyRatio = 2.0
    public var promotionAutomatic = true
    public var promotionEvaluateIntervalMilliseconds = 1000
    /// Per-model overrides (`promotion.models.<name>.<key>`): model → key (without `promotion.`) → value.
    public var promotionOverrides: [String: [String: String]] = [:]
    // metrics
    public var metricsEnabled = true
    /// 0: /metrics on the main listener. Else a listener of its own (and none on the main one).
    public var metricsPort = 0
    public var metricsHost = "0.0.0.0"
    // fault injection (off)
    public var faultInferenceDelayMilliseconds = 0
    public var faultInferenceDelayPercent = 100

    public enum LogFormat: String, Sendable, Equatable, CaseIterable { case auto, json, text }

    public init() {}

    /// Worker count after resolving 0 = one per CPU this process may use (availableProcessorCount).
    public var effectiveInferenceWorkers: Int {
        if inferenceWorkers > 0 { return inferenceWorkers }
        return availableProcessorCount()
    }
}

/// A configuration problem, reported at start with the key it concerns.
public struct ConfigurationError: Error, CustomStringConvertible, Equatable {
    public var key: String
    public var message: String
    public var source: String
    public var description: String { "invalid configuration: \(key) (\(source)): \(message)" }
}

/// One configuration key: name, documentation, and how to read and write it as text.
public struct ConfigurationKey: Sendable {
    public let name: String
    public let summary: String
    let apply: @Sendable (inout ServiceConfiguration, String) throws(ConfigurationValueError) -> Void
    let read: @Sendable (ServiceConfiguration) -> String

    /// `LOUPE_` + the dotted name in upper case with dots as underscores.
    public var environmentName: String {
        "LOUPE_" + name.uppercased().replacingOccurrences(".", "_")
    }
    public func currentValue(in configuration: ServiceConfiguration) -> String { read(configuration) }
}

struct ConfigurationValueError: Error { var message: String }

extension ServiceConfiguration {
    /// Every key, in the order of Config/loupe.yaml.
    public static let keys: [ConfigurationKey] = [
        string("server.host", \.host, "Address to listen on (0.0.0.0 = every IPv4 interface; :: for IPv6)."),
        int("server.port", \.port, 0...65535, "TCP port (0 = any free port, logged at start)."),
        string("server.tls.certificate", \.tlsCertificatePath, "PEM certificate chain; TLS is on when this and the key are set."),
        string("server.tls.key", \.tlsKeyPath, "PEM private key."),
        int("server.event_loop_threads", \.eventLoopThreads, 0...1024, "Socket I/O threads (epoll loops); 0 = one per CPU."),
        int("server.handler_threads", \.handlerThreads, 0...1024, "Threads that decode requests (PNG, JSON) before they are queued; 0 = one per CPU."),
        bool("server.handlers_on_event_loop", \.handlersOnEventLoop, "Run request handlers (routing, decoding small bodies) on the socket threads: two thread hand-offs fewer per request. false = on the HTTP layer's handler threads."),
        bool("server.yield_before_sleep", \.yieldBeforeSleep, "A socket thread that has just handled events yields its core once before it sleeps: faster when its cores are shared with the process sending the requests (a sidecar proxy), much slower beside CPU-bound work. false = sleep at once."),
        int("server.inline_decode_max_bytes", \.inlineDecodeMaxBytes, 0...1_073_741_824, "Bodies larger than this are decoded on a separate queue, not on the socket thread."),
        int("server.gzip_min_bytes", \.gzipMinimumBytes, 0...1_073_741_824, "Responses at least this large are gzipped for clients that accept it (0 = never)."),
        string("server.cors.allowed_origins", \.corsAllowedOrigins, "Origins whose browser pages may call the API (comma-separated, or *); empty = CORS off."),
        int("limits.max_connections", \.maxConnections, 1...1_000_000, "Open connections at most; a connection beyond it is answered 503 + Retry-After and closed."),
        int("limits.max_requests_per_connection", \.maxRequestsPerConnection, 0...100_000_000, "Requests on one keep-alive connection at most; the last response says Connection: close (0 = no limit)."),
        int("limits.max_header_bytes", \.maxHeaderBytes, 1024...1_048_576, "Request line + headers at most (431 above)."),
        int("limits.max_body_bytes", \.maxBodyBytes, 1024...1_073_741_824, "Request body at most (413 above)."),
        int("limits.header_timeout_ms", \.headerTimeoutMilliseconds, 1...3_600_000, "A request's line and headers must arrive within this time of its first byte (408 after)."),
        int("limits.body_timeout_ms", \.bodyTimeoutMilliseconds, 1...3_600_000, "Longest gap without a body byte while a body is read (408 after)."),
        int("limits.idle_timeout_ms", \.idleTimeoutMilliseconds, 1...3_600_000, "Idle keep-alive connections are closed after this time."),
        int("limits.write_timeout_ms", \.writeTimeoutMilliseconds, 1...3_600_000, "A client that stops reading its response is cut off after this time."),
        int("limits.max_images_per_request", \.maxImagesPerRequest, 1...1_000_000, "Images in one request at most (413 above)."),
        int("limits.max_image_dimension", \.maxImageDimension, 28...65_535, "Width or height of an uploaded PNG/JPEG/WebP/PGM at most, checked before decoding (413 above)."),
        int("limits.decode_budget_bytes", \.decodeBudgetBytes, 1 << 16...(1 << 40), "Memory all image decodes in flight may hold together; past it a request gets 503 + Retry-After."),
        int("batching.max_batch_size", \.maxBatchSize, 1...65_536, "Images run through the model at once at most; queued requests are merged up to this."),
        int("batching.max_queue_delay_us", \.maxQueueDelayMicroseconds, 0...10_000_000, "How long a worker waits for more requests to fill a batch (0 = take what is queued, never wait)."),
        int("batching.queue_size", \.queueCapacity, 1...10_000_000, "Images waiting for a worker at most; beyond it requests get 503 + Retry-After."),
        bool("batching.on_event_loop", \.batchOnEventLoop, "Predictions decoded on a socket thread run there: one forward pass per loop iteration, no thread hand-off. Not with max_queue_delay_us or a fault delay; explanations and requests over max_batch_size images always go to the workers."),
        int("batching.event_loop_max_pass_us", \.eventLoopMaxPassMicroseconds, 0...10_000_000, "A loop runs predictions itself only while the pass is expected (the model's measured cost per image × images) to take at most this long; a loop computing serves no other connection, health probes included. Unmeasured models and the rest go to the workers. 0 = no limit."),
        int("inference.workers", \.inferenceWorkers, 0...1024, "Inference worker threads, each with its own workspace (0 = one per CPU)."),
        int("inference.threads", \.inferenceThreads, 1...1024, "Threads each worker uses to split one batch."),
        int("inference.default_top_k", \.defaultTopK, 0...1000, "Classes listed in top_k when ?top_k= is not given."),
        int("inference.max_explain_passes", \.maxExplainPasses, 1...1_000_000_000, "Network passes one explanation request may cost at most: images × passes per image (integrated gradients: steps + (steps + 3) / 3, 43 at 32 steps; saliency and gradient × input: 2; occlusion: window positions + 1). Over it: 413. The default, about 15 s of one worker on the seed network, allows the console's and the docs' uses and 1024 images at the default 32 steps."),
        int("shutdown.drain_delay_ms", \.drainDelayMilliseconds, 0...3_600_000, "After SIGTERM: readiness answers 503 and requests are still served for this long."),
        int("shutdown.deadline_ms", \.drainDeadlineMilliseconds, 0...3_600_000, "Then: listener closed; in-flight requests get this long to finish before exit."),
        ConfigurationKey(name: "logging.format", summary: "auto (JSON lines, text on a TTY), json or text.",
                         apply: { (c, v) throws(ConfigurationValueError) in
                             guard let f = LogFormat(rawValue: v.lowercased()) else {
                                 throw ConfigurationValueError(message: "expected one of auto, json, text, got '\(v)'")
                             }
                             c.logFormat = f
                         }, read: { $0.logFormat.rawValue }),
        oneOf("logging.level", \.logLevel, ["trace", "debug", "info", "notice", "warning", "error", "critical"], "Lowest level logged."),
        bool("logging.access_log", \.accessLog, "One log line per request (request id, route, status, latency)."),
        string("models.dir", \.modelsDirectory, "Model repository: <dir>/<name>/<version>/model.loupe."),
        int("models.poll_interval_ms", \.pollIntervalMilliseconds, 0...86_400_000, "How often the repository is scanned for new versions (0 = never; SIGHUP still reloads)."),
        int("models.stable_after_ms", \.stableAfterMilliseconds, 0...3_600_000, "A new or changed file is loaded only after it has not changed for this long."),
        int("models.max_model_bytes", \.maxModelBytes, 64...(1 << 40), "Model files larger than this are refused."),
        int("models.max_input_side", \.maxInputSide, 1...4096, "Largest input image height or width a model may take: serve refuses to load a model with a larger input, and loupe import refuses to import one."),
        int("models.max_workspace_bytes", \.maxWorkspaceBytes, 1 << 20...(1 << 40), "Workspace one inference worker may allocate for a model: its layers' outputs, im2col columns and pool indices for the chunk of a batching.max_batch_size batch it runs at once, × inference.threads (an int8 model: its own int8 scratch), plus what the worker's first explanation of the model allocates (64 images forward and backward, the dense weights transposed). Computed from the same layouts the buffers are then made from, before anything is allocated: a model needing more is refused at load with a sentence. Each worker holds one per model it serves."),
        string("models.version_policy", \.versionPolicy, "Versions served per model: latest, latest:N, all, or a list of version numbers (\"1,3\")."),
        modelName("models.default", \.defaultModel, "Model used when a request names none (empty = the only one, or the first by name)."),
        bool("models.self_test", \.selfTest, "Run each model on its golden samples before serving it."),
        double("models.self_test_tolerance", \.selfTestTolerance, 0...1, "Largest allowed difference of a golden sample's class probability from the recorded one."),
        int("drift.window", \.driftWindow, 1...10_000_000, "Most recent images the drift statistics (PSI) are computed over."),
        int("feedback.window", \.feedbackWindow, 0...10_000_000, "Images of recent predictions kept by X-Request-ID for POST /feedback (0 = feedback by request id off)."),
        int("feedback.max_age_s", \.feedbackMaxAgeSeconds, 1...31_536_000, "Feedback for a prediction older than this is refused as expired."),
        int("feedback.accuracy_window", \.feedbackAccuracyWindow, 1...10_000_000, "Most recent labels the sliding live accuracy (loupe_live_accuracy{window=\"recent\"}) covers."),
        double("feedback.alert_margin", \.feedbackAlertMargin, 0...1, "The live-accuracy alert fires when recent live accuracy is this far below the model's recorded test accuracy."),
        int("feedback.alert_min_labels", \.feedbackAlertMinLabels, 1...10_000_000, "Recent labels needed before the live-accuracy alert may fire."),
        bool("capture.enabled", \.captureEnabled, "Write a sample of requests (pixels, prediction, and the label once feedback brings one) as IDX sets under capture.dir."),
        double("capture.sample_rate", \.captureSampleRate, 0...1, "Share of requests captured (0.01 = 1%)."),
        int("capture.max_bytes", \.captureMaxBytes, 1 << 16...(1 << 40), "Bytes the captured sets may take on disk (the oldest are deleted to make room) and records may hold in memory while they wait for labels."),
        string("capture.dir", \.captureDirectory, "Directory of the captured sets: <dir>/<model>/<UTC time>-<n>/."),
        int("capture.flush_interval_s", \.captureFlushIntervalSeconds, 1...86_400, "How often labelled (and expired unlabelled) records are written as a new set."),
        bool("repository_api.enabled", \.repositoryAPIEnabled, "Enable POST /v2/repository/index and …/models/{m}/load|unload."),
        string("repository_api.token", \.repositoryAPIToken, "If set, the repository API requires 'Authorization: Bearer <token>'."),
        oneOf("promotion.mode", \.promotionMode, PromotionMode.allCases.map(\.rawValue), "How a new version reaches traffic: immediate (serves at once), shadow (runs on a copy of live traffic off the request path; clients never see it) or canary (answers promotion.canary_percent of requests); shadow and canary promote or roll back by the rules below."),
        double("promotion.canary_percent", \.promotionCanaryPercent, 0...100, "Canary mode: percent of requests without a version that the new version answers."),
        string("promotion.canary_key_header", \.promotionCanaryKeyHeader, "Canary mode: request header whose value (FNV-1a hashed) picks the version, so a client keeps its version; empty or absent = the request's X-Request-ID."),
        double("promotion.shadow_sample_rate", \.promotionShadowSampleRate, 0...1, "Share of answered requests the other version also classifies off the request path (shadow: the new version; canary: the one that did not answer), for agreement, latency and shadow accuracy."),
        int("promotion.shadow_queue_images", \.promotionShadowQueueImages, 1...1_000_000, "Images waiting for the low-priority shadow worker at most; copies beyond it are dropped and counted (loupe_shadow_dropped_total)."),
        int("promotion.min_requests", \.promotionMinRequests, 1...100_000_000, "Requests the new version must have handled (answered or shadowed) before any decision."),
        double("promotion.min_agreement", \.promotionMinAgreement, 0...1, "Roll back when the two versions' top-1 classes agree on less than this share of compared images (0 = rule off)."),
        int("promotion.min_labels", \.promotionMinLabels, 0...100_000_000, "Feedback labels each version needs before the accuracy rule decides (0 = accuracy rule off)."),
        double("promotion.max_accuracy_drop", \.promotionMaxAccuracyDrop, 0...1, "Largest allowed drop of live accuracy against the serving version (one-sided Agresti–Caffo test at promotion.confidence)."),
        double("promotion.confidence", \.promotionConfidence, 0.5...0.999999, "Confidence of the one-sided accuracy test."),
        double("promotion.max_latency_ratio", \.promotionMaxLatencyRatio, 0...1000, "Roll back when the new version's p99 forward pass exceeds this multiple of the serving version's (0 = rule off)."),
        bool("promotion.auto", \.promotionAutomatic, "Promote or roll back by the rules automatically; false = only report the verdict (/health, metrics) and wait for POST …/promote or …/rollback."),
        int("promotion.evaluate_interval_ms", \.promotionEvaluateIntervalMilliseconds, 10...3_600_000, "How often the rules are evaluated."),
        bool("metrics.enabled", \.metricsEnabled, "Serve GET /metrics."),
        int("metrics.port", \.metricsPort, 0...65535, "0: /metrics is served on the main listener. Else on a listener of its own at metrics.host:metrics.port, and not on the main one."),
        string("metrics.host", \.metricsHost, "Address of the separate metrics listener (127.0.0.1 keeps it to the pod or host)."),
        int("fault.inference_delay_ms", \.faultInferenceDelayMilliseconds, 0...600_000, "Fault injection, for tests and drills: add this delay to forward passes (0 = off; never in production)."),
        int("fault.inference_delay_percent", \.faultInferenceDelayPercent, 0...100, "Share of forward passes that get the injected delay."),
    ]

    /// Per-model policies use a key prefix rather than a fixed key.
    static let policyPrefix = "models.policy."
    /// Per-model promotion settings: `promotion.models.<name>.<key>` for these keys.
    static let promotionPrefix = "promotion.models."
    static let promotionModelKeys = ["mode", "canary_percent", "shadow_sample_rate", "min_requests", "min_agreement",
                                     "min_labels", "max_accuracy_drop", "confidence", "max_latency_ratio", "auto"]

    static func key(named name: String) -> ConfigurationKey? { keys.first { $0.name == name } }
}
