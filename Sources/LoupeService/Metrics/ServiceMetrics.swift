// The service's metric families (DESIGN §6), created once. Labels are bounded: route templates
// (or "unmatched"), methods from a fixed set, status codes, error codes, model names and class labels.
import LoupeHTTP
import Synchronization

public final class ServiceMetrics: Sendable {
    public let registry: MetricsRegistry
    let requests: MetricFamily
    let requestSeconds: HistogramFamily
    let inFlight: MetricValue
    let rejections: MetricFamily
    let predictions: MetricFamily
    let confidence: HistogramFamily
    let lowConfidence: MetricFamily
    let images: MetricFamily
    let startToReady: MetricValue
    let ready: MetricValue
    let draining: MetricValue
    private let predictionMeters = Mutex<[String: PredictionMeters]>([:])
    let batcher: BatcherMetrics
    let explanations: MetricFamily
    let explanationSeconds: HistogramFamily

    public init(registry: MetricsRegistry, version: String) {
        self.registry = registry
        registry.gauge("loupe_build_info", help: "Loupe build; the value is always 1.", labels: ["version"]).labels(version).set(1)
        requests = registry.counter("loupe_http_requests_total", help: "HTTP requests answered, by route template, method and status code.",
                                    labels: ["route", "method", "code"])
        requestSeconds = registry.histogram("loupe_http_request_duration_seconds",
                                            help: "Time from a request's arrival at the service to its response, by route template and method.",
                                            labels: ["route", "method"], buckets: MetricBuckets.latencySeconds)
        inFlight = registry.gauge("loupe_http_requests_in_flight", help: "Requests received and not yet answered.").unlabelled
        rejections = registry.counter("loupe_rejected_requests_total",
                                      help: "Requests refused, by reason (the error code of the response: queue_full, draining, not_ready, invalid_image, …).",
                                      labels: ["reason"])
        let queueDepth = registry.gauge("loupe_queue_depth", help: "Images waiting for an inference worker.").unlabelled
        let busy = registry.gauge("loupe_inference_workers_busy", help: "Inference workers running a batch now.").unlabelled
        let batchSize = registry.histogram("loupe_batch_size", help: "Images per forward pass.", buckets: MetricBuckets.batchSize).unlabelled
        let queueSeconds = registry.histogram("loupe_queue_duration_seconds", help: "Time a request waited in the queue before its batch started.",
                                              buckets: MetricBuckets.latencySeconds).unlabelled
        let inferenceSeconds = registry.histogram("loupe_inference_duration_seconds", help: "Time of one forward pass (one batch).",
                                                  buckets: MetricBuckets.latencySeconds).unlabelled
        batcher = BatcherMetrics(queueDepth: queueDepth, batchSize: batchSize, queueSeconds: queueSeconds,
                                 inferenceSeconds: inferenceSeconds, busyWorkers: busy)
        images = registry.counter("loupe_images_total", help: "Images classified, by model.", labels: ["model"])
        predictions = registry.counter("loupe_predictions_total", help: "Top-1 predictions, by model and class label.", labels: ["model", "label"])
        confidence = registry.histogram("loupe_prediction_confidence", help: "Top-1 probability of each prediction, by model.",
                                        labels: ["model"], buckets: MetricBuckets.confidence)
        lowConfidence = registry.counter("loupe_low_confidence_predictions_total",
                                         help: "Predictions whose top-1 probability was below 0.5, by model.", labels: ["model"])
        explanations = registry.counter("loupe_explanations_total", help: "Images explained by POST /explain, by attribution method.",
                                        labels: ["method"])
        explanationSeconds = registry.histogram("loupe_explanation_duration_seconds",
                                                help: "Time to explain one request's images on an inference worker, by attribution method.",
                                                labels: ["method"], buckets: MetricBuckets.latencySeconds)
        startToReady = registry.gauge("loupe_start_to_ready_seconds", help: "Time from process start to the first ready state (0 until then).").unlabelled
        ready = registry.gauge("loupe_ready", help: "1 when /health/ready answers 200, else 0.").unlabelled
        draining = registry.gauge("loupe_draining", help: "1 after SIGTERM while the server drains.").unlabelled
        ProcessMetrics.register(on: registry)
        registry.addCollector { w in
            w.family("loupe_log_lines_dropped_total",
                     help: "Log lines dropped because stdout was not being read fast enough (the log buffer was full).", kind: .counter)
            w.sample("loupe_log_lines_dropped_total", value: Double(LogSink.standardOutput.droppedLines))
        }
    }

    /// Normalised method label: the seven standard methods, else "other".
    static func methodLabel(_ m: HTTPMethod) -> String {
        if case .other = m { return "other" }
        return m.description
    }

    /// Records one top-1 prediction per image.
    func recordPredictions(model: String, labels: [String], classes: [Int], confidences: [Float]) {
        let m = meters(model: model)
        var low = 0
        /// Class `cls`'s series, from the model's cache (an index without a label: its own series).
        func series(_ cls: Int) -> MetricValue {
            guard cls >= 0 && cls < labels.count else { return predictions.labels(model, String(cls)) }
            return m.predictions(of: cls, label: labels[cls]) { predictions.labels(model, labels[cls]) }
        }
        if classes.count == 1 {
            series(classes[0]).increment()   // one image (most requests): no per-class tally
        } else {
            // Counted per class first: one series update per class seen, not per image.
            var perClass = [Int](repeating: 0, count: labels.count)
            for cls in classes {
                if cls >= 0 && cls < labels.count { perClass[cls] += 1 } else { series(cls).increment() }
            }
            for (cls, n) in perClass.enumerated() where n > 0 { series(cls).add(Double(n)) }
        }
        for p in confidences.prefix(classes.count) {
            let c = p.isNaN ? 0 : p   // no confidence (outputs that overflowed): 0, not a NaN sum for good
            m.confidence.observe(Double(c))
            if c < 0.5 { low += 1 }
        }
        m.images.add(Double(classes.count))
        if low > 0 { lowConfidence.labels(model).add(Double(low)) }   // the series appears with the first one
    }

    /// A model's per-model prediction series, found with one lookup of its name (the families' own
    /// lookups build a label array and hash it each time).
    private func meters(model: String) -> PredictionMeters {
        if let found = predictionMeters.withLock({ $0[model] }) { return found }
        let made = PredictionMeters(confidence: confidence.labels(model), images: images.labels(model))
        predictionMeters.withLock { cache in
            if cache.count >= 4096 { cache.removeAll() }   // bounded like the labels themselves
            cache[model] = made
        }
        return made
    }
}

private final class PredictionMeters: Sendable {
    let confidence: HistogramValue
    let images: MetricValue
    /// `loupe_predictions_total`'s series of this model by class index, each with the label it was
    /// found for, filled as classes are first predicted (a series appears with its first count).
    private let perClass = Mutex<[(label: String, series: MetricValue)?]>([])

    init(confidence: HistogramValue, images: MetricValue) { self.confidence = confidence; self.images = images }

    /// Class `index`'s series: the one found before for the same label, else `find()`'s (a new
    /// version of the model may name its classes differently). Bounded like the label values.
    func predictions(of index: Int, label: String, find: () -> MetricValue) -> MetricValue {
        if let known = perClass.withLock({ index < $0.count ? $0[index] : nil }), known.label == label { return known.series }
        let series = find()
        perClass.withLock { table in
            if index >= table.count { table.append(contentsOf: repeatElement(nil, count: index + 1 - table.count)) }
            table[index] = (label, series)
        }
        return series
    }
}
