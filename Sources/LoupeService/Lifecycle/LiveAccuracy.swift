// What ground truth says about a model version in production: labels received, accuracy since
// start and over the most recent `feedback.accuracy_window` labels, per-class precision and
// recall, and the expected calibration error (ECE) of its confidences. One `AccuracyTally` per
// (model, version), a plain value type updated under one lock and read at scrape time.
import LoupeData
import Synchronization

/// The running counts for one model version. Pure: feed it labelled predictions, read the figures.
struct AccuracyTally: Sendable, Equatable {
    let classCount: Int
    let windowSize: Int
    private(set) var received = 0
    private(set) var correct = 0
    /// The last `windowSize` outcomes as a ring (true = correct).
    private var recent: [Bool] = []
    private var recentNext = 0
    private(set) var recentCorrect = 0
    /// Per class: predicted and right, predicted, actually that class.
    private(set) var truePositives: [Int]
    private(set) var predicted: [Int]
    private(set) var actual: [Int]
    /// Confidence bins of the calibration error: [0, 0.1), [0.1, 0.2), …, [0.9, 1].
    private var calibration = CalibrationBins(bins: 10)

    init(classCount: Int, windowSize: Int) {
        self.classCount = classCount
        self.windowSize = max(1, windowSize)
        truePositives = [Int](repeating: 0, count: classCount)
        predicted = truePositives
        actual = truePositives
    }

    /// One labelled prediction. `label` and `predictedClass` are below `classCount`.
    mutating func add(label: Int, predictedClass: Int, confidence: Float) {
        let right = label == predictedClass
        received += 1
        if right { correct += 1; truePositives[label] += 1 }
        predicted[predictedClass] += 1
        actual[label] += 1
        if recent.count < windowSize {
            recent.append(right)
        } else {
            if recent[recentNext] { recentCorrect -= 1 }
            recent[recentNext] = right
            recentNext = (recentNext + 1) % windowSize
        }
        if right { recentCorrect += 1 }
        calibration.add(confidence: confidence, correct: right)
    }

    var recentCount: Int { recent.count }
    /// Accuracy since start (nil before the first label).
    var accuracy: Double? { received == 0 ? nil : Double(correct) / Double(received) }
    /// Accuracy over the last `windowSize` labels.
    var recentAccuracy: Double? { recent.isEmpty ? nil : Double(recentCorrect) / Double(recent.count) }
    /// Of the images predicted as class k, the share that were k (nil when none was predicted k).
    func precision(_ k: Int) -> Double? { predicted[k] == 0 ? nil : Double(truePositives[k]) / Double(predicted[k]) }
    /// Of the images of class k, the share predicted as k (nil when no label was k).
    func recall(_ k: Int) -> Double? { actual[k] == 0 ? nil : Double(truePositives[k]) / Double(actual[k]) }

    /// Expected calibration error over 10 confidence bins (nil before the first label).
    var calibrationError: Double? { calibration.expectedCalibrationError }
}

/// A model version: the key of the live statistics.
struct ModelVersion: Hashable, Sendable, Comparable {
    var model: String
    var version: Int
    static func < (a: ModelVersion, b: ModelVersion) -> Bool { (a.model, a.version) < (b.model, b.version) }
}

/// The live statistics of every model version that received feedback, and their metric families.
final class LiveAccuracy: Sendable {
    /// Per-class series are written for models with at most this many classes (bounded labels).
    static let maxClassSeries = 100

    let windowSize: Int
    /// `feedback.alert_margin` and `feedback.alert_min_labels`, exported for the alert rule.
    let alertMargin: Double
    let alertMinLabels: Int
    private let tallies = Mutex<[ModelVersion: AccuracyTally]>([:])
    /// Class names per model version, for the per-class series.
    private let classNames = Mutex<[ModelVersion: [String]]>([:])

    init(windowSize: Int, alertMargin: Double, alertMinLabels: Int) {
        self.windowSize = windowSize; self.alertMargin = alertMargin; self.alertMinLabels = alertMinLabels
    }

    /// Records labelled predictions of one model version; returns its tally afterwards.
    @discardableResult
    func record(_ key: ModelVersion, classNames names: [String], labels: [Int], classes: [Int], confidences: [Float]) -> AccuracyTally {
        if classNames.withLock({ $0[key] == nil }) { classNames.withLock { $0[key] = names } }
        return tallies.withLock { t in
            var tally = t[key] ?? AccuracyTally(classCount: names.count, windowSize: windowSize)
            for i in labels.indices { tally.add(label: labels[i], predictedClass: classes[i], confidence: confidences[i]) }
            t[key] = tally
            return tally
        }
    }

    func tally(_ key: ModelVersion) -> AccuracyTally? { tallies.withLock { $0[key] } }

    func register(on registry: MetricsRegistry) {
        registry.addCollector { [weak self] w in self?.write(into: &w) }
    }

    func write(into w: inout MetricsWriter) {
        let all = tallies.withLock { $0 }.sorted { $0.key < $1.key }
        let names = classNames.withLock { $0 }
        func labels(_ k: ModelVersion) -> [(String, String)] { [("model", k.model), ("version", String(k.version))] }
        w.family("loupe_feedback_total", help: "Ground-truth labels received (POST /feedback), by model and version.", kind: .counter)
        for (k, t) in all { w.sample("loupe_feedback_total", labels: labels(k), value: Double(t.received)) }
        w.family("loupe_feedback_correct_total", help: "Labels that matched the model's top-1 prediction, by model and version.", kind: .counter)
        for (k, t) in all { w.sample("loupe_feedback_correct_total", labels: labels(k), value: Double(t.correct)) }
        w.family("loupe_live_accuracy", help: "Share of labelled predictions that were right: window=recent over the last feedback.accuracy_window labels, window=all since start.", kind: .gauge)
        for (k, t) in all {
            if let a = t.recentAccuracy { w.sample("loupe_live_accuracy", labels: labels(k) + [("window", "recent")], value: a) }
            if let a = t.accuracy { w.sample("loupe_live_accuracy", labels: labels(k) + [("window", "all")], value: a) }
        }
        w.family("loupe_live_accuracy_labels", help: "Labels the live accuracy is computed over, by window.", kind: .gauge)
        for (k, t) in all {
            w.sample("loupe_live_accuracy_labels", labels: labels(k) + [("window", "recent")], value: Double(t.recentCount))
            w.sample("loupe_live_accuracy_labels", labels: labels(k) + [("window", "all")], value: Double(t.received))
        }
        w.family("loupe_live_precision", help: "Per class: of the labelled images predicted as the class, the share that were it (since start).", kind: .gauge)
        for (k, t) in all where t.classCount <= Self.maxClassSeries {
            let n = names[k] ?? []
            for c in 0..<t.classCount {
                if let p = t.precision(c) { w.sample("loupe_live_precision", labels: labels(k) + [("class", c < n.count ? n[c] : String(c))], value: p) }
            }
        }
        w.family("loupe_live_recall", help: "Per class: of the labelled images of the class, the share predicted as it (since start).", kind: .gauge)
        for (k, t) in all where t.classCount <= Self.maxClassSeries {
            let n = names[k] ?? []
            for c in 0..<t.classCount {
                if let r = t.recall(c) { w.sample("loupe_live_recall", labels: labels(k) + [("class", c < n.count ? n[c] : String(c))], value: r) }
            }
        }
        w.family("loupe_live_calibration_error", help: "Expected calibration error of the top-1 confidences against the labels (10 bins, since start): 0 = confidences match accuracy.", kind: .gauge)
        for (k, t) in all {
            if let e = t.calibrationError { w.sample("loupe_live_calibration_error", labels: labels(k), value: e) }
        }
        w.family("loupe_live_accuracy_alert_margin", help: "feedback.alert_margin: LoupeLiveAccuracyBelowTest fires when recent live accuracy is this far below the recorded test accuracy.", kind: .gauge)
        w.sample("loupe_live_accuracy_alert_margin", value: alertMargin)
        w.family("loupe_live_accuracy_alert_min_labels", help: "feedback.alert_min_labels: recent labels needed before the live-accuracy alert may fire.", kind: .gauge)
        w.sample("loupe_live_accuracy_alert_min_labels", value: Double(alertMinLabels))
    }
}
