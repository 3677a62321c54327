// Safe promotion's rules, decided without a clock, a file or a request: from the evidence gathered
// about a candidate version beside the version that serves (requests seen, top-1 agreement on the
// same images, feedback counts of each, forward-pass latency histograms), the pure judge says wait,
// promote or roll back, and why. The monitor (PromotionMonitor.swift) feeds it and carries the
// verdict out; the rules are unit-tested on counts alone (PromotionRulesTests). See
// docs/model-lifecycle.md §5 "Safe promotion".
#if canImport(Glibc)
import Glibc
#endif

/// How a new version of a model reaches traffic (`promotion.mode`).
public enum PromotionMode: String, Sendable, Equatable, CaseIterable {
    /// It serves every request without a version as soon as it has loaded (the behaviour before
    /// safe promotion, and the default).
    case immediate
    /// The serving version answers every request; the new version runs on a sampled copy of them
    /// off the request path, and nothing it says reaches a client.
    case shadow
    /// `promotion.canary_percent` of the requests (sticky per client with `promotion.canary_key_header`)
    /// are answered by the new version.
    case canary
}

/// The promotion settings of one model (the `promotion.*` keys, with `promotion.models.<name>.*`
/// overrides). The initial values are the defaults of Config/loupe.yaml.
public struct PromotionPolicy: Sendable, Equatable {
    public var mode: PromotionMode = .immediate
    /// Share of requests without a version the candidate answers in canary mode, in percent.
    public var canaryPercent: Double = 10
    /// Share of answered requests whose images the other version also classifies off the request
    /// path (shadow: the candidate; canary: whichever version did not answer), for agreement,
    /// latency and shadow accuracy.
    public var shadowSampleRate: Double = 1
    /// Requests the candidate must have handled (answered or run off the path) before any decision.
    public var minRequests: Int = 200
    /// Smallest share of compared images on which both versions give the same top-1 class (0 = off).
    public var minAgreement: Double = 0.9
    /// Labels each version needs before the accuracy rule decides (0 = the accuracy rule is off).
    public var minLabels: Int = 100
    /// The candidate may be at most this much less accurate than the serving version.
    public var maxAccuracyDrop: Double = 0.02
    /// Confidence of the one-sided accuracy test.
    public var confidence: Double = 0.95
    /// Largest allowed ratio of the candidate's p99 forward-pass time to the serving version's (0 = off).
    public var maxLatencyRatio: Double = 2
    /// Carry verdicts out (promote, roll back); false: only report them, and people decide through
    /// the repository API.
    public var automatic: Bool = true

    public init() {}
}

/// Forward-pass times in fixed logarithmic buckets (1 µs · 1.25^i, up to ≈ 45 s), so a percentile
/// costs O(buckets) and memory stays constant.
struct LatencyHistogram: Sendable, Equatable {
    static let bucketCount = 80
    static let growth = 1.25
    private(set) var counts = [Int](repeating: 0, count: LatencyHistogram.bucketCount)
    private(set) var total = 0

    /// Upper bound of bucket `i`, in seconds.
    static func upperBound(_ i: Int) -> Double { 1e-6 * pow(growth, Double(i)) }

    static func bucket(seconds: Double) -> Int {
        guard seconds > 1e-6 else { return 0 }
        let i = Int((log(seconds / 1e-6) / log(growth)).rounded(.up))
        return min(max(i, 0), bucketCount - 1)
    }

    mutating func observe(seconds: Double) {
        counts[Self.bucket(seconds: seconds)] += 1
        total += 1
    }

    /// The upper bound of the bucket holding quantile `q` (nil when empty).
    func quantile(_ q: Double) -> Double? {
        guard total > 0 else { return nil }
        let rank = max(1, Int((q * Double(total)).rounded(.up)))
        var seen = 0
        for (i, c) in counts.enumerated() {
            seen += c
            if seen >= rank { return Self.upperBound(i) }
        }
        return Self.upperBound(Self.bucketCount - 1)
    }
}

/// What is known about a candidate version against the serving version of the same model.
struct PromotionEvidence: Sendable, Equatable {
    /// Requests the candidate handled: answered (canary) or classified off the request path.
    var seen = 0
    /// Images both versions classified, and of them those with the same top-1 class.
    var compared = 0
    var agreed = 0
    /// Shadow copies dropped because the shadow queue was full.
    var dropped = 0
    /// Feedback: labelled images each version predicted (answered or shadowed), and right.
    var candidateLabels = 0
    var candidateCorrect = 0
    var servingLabels = 0
    var servingCorrect = 0
    var candidateLatency = LatencyHistogram()
    var servingLatency = LatencyHistogram()

    var agreement: Double? { compared == 0 ? nil : Double(agreed) / Double(compared) }
    var candidateAccuracy: Double? { candidateLabels == 0 ? nil : Double(candidateCorrect) / Double(candidateLabels) }
    var servingAccuracy: Double? { servingLabels == 0 ? nil : Double(servingCorrect) / Double(servingLabels) }
}

/// The judge's answer. `rule` is a bounded code (the metric's `reason` label); `reason` a sentence.
enum PromotionVerdict: Sendable, Equatable {
    case wait(progress: String)
    case promote(rule: String, reason: String)
    case rollback(rule: String, reason: String)
}

enum PromotionJudge {
    /// The verdict on `evidence` under `rules`. Nothing is decided before `minRequests`; then the
    /// accuracy rule (when on), the agreement rule (when on) and the latency rule (when on) are
    /// checked in that order: the first that fails rolls back; all passing promotes; any still
    /// short of evidence waits.
    static func verdict(_ e: PromotionEvidence, rules: PromotionPolicy) -> PromotionVerdict {
        guard e.seen >= rules.minRequests else {
            return .wait(progress: "\(e.seen) of \(rules.minRequests) requests seen (promotion.min_requests)")
        }
        var waiting: [String] = []
        if rules.minLabels > 0 {
            switch accuracyCheck(e, rules: rules) {
            case .fail(let why): return .rollback(rule: "accuracy", reason: why)
            case .wait(let why): waiting.append(why)
            case .pass: break
            }
        }
        if rules.minAgreement > 0 {
            // The share needs a sample of its own: min(min_requests, 100) compared images.
            let need = min(rules.minRequests, 100)
            if let a = e.agreement, e.compared >= need {
                if a < rules.minAgreement {
                    return .rollback(rule: "agreement", reason: "the candidate agreed with the serving version on \(percent(a)) of \(e.compared) images, below promotion.min_agreement \(percent(rules.minAgreement))")
                }
            } else {
                waiting.append("\(e.compared) of \(need) images compared by both versions (promotion.shadow_sample_rate)")
            }
        }
        if rules.maxLatencyRatio > 0 {
            let need = min(rules.minRequests, 100)
            if e.candidateLatency.total >= need, e.servingLatency.total >= need,
               let c = e.candidateLatency.quantile(0.99), let s = e.servingLatency.quantile(0.99) {
                if c > rules.maxLatencyRatio * s {
                    return .rollback(rule: "latency", reason: "the candidate's p99 forward pass \(milliseconds(c)) is more than promotion.max_latency_ratio \(rules.maxLatencyRatio)× the serving version's \(milliseconds(s))")
                }
            } else {
                waiting.append("latency samples \(min(e.candidateLatency.total, e.servingLatency.total)) of \(need)")
            }
        }
        if !waiting.isEmpty { return .wait(progress: waiting.joined(separator: "; ")) }
        var passed: [String] = []
        if rules.minLabels > 0, let c = e.candidateAccuracy, let s = e.servingAccuracy {
            passed.append("accuracy \(percent(c)) vs \(percent(s))")
        }
        if rules.minAgreement > 0, let a = e.agreement { passed.append("agreement \(percent(a))") }
        if rules.maxLatencyRatio > 0 { passed.append("p99 within \(rules.maxLatencyRatio)×") }
        let summary = passed.isEmpty ? "every rule is off" : passed.joined(separator: ", ")
        return .promote(rule: "rules_passed", reason: "\(e.seen) requests seen; \(summary)")
    }

    enum Check: Equatable { case pass, wait(String), fail(String) }

    /// The accuracy rule, a one-sided test on the feedback counts: with the Agresti–Caffo interval
    /// for the difference of two proportions (each count plus one success and one failure; the
    /// versions' labelled images are treated as independent samples), the candidate fails when even
    /// the upper bound of `accuracy(candidate) − accuracy(serving)` at `confidence` lies below
    /// `−maxAccuracyDrop` (it is worse by more than the allowed drop), and passes when the lower
    /// bound is at least `−maxAccuracyDrop` (non-inferiority shown); otherwise it waits for labels.
    static func accuracyCheck(_ e: PromotionEvidence, rules: PromotionPolicy) -> Check {
        guard e.candidateLabels >= rules.minLabels, e.servingLabels >= rules.minLabels else {
            return .wait("labels \(e.candidateLabels) (candidate) and \(e.servingLabels) (serving) of \(rules.minLabels) each (promotion.min_labels)")
        }
        let (low, high) = differenceBounds(e, confidence: rules.confidence)
        let c = Double(e.candidateCorrect) / Double(e.candidateLabels)
        let s = Double(e.servingCorrect) / Double(e.servingLabels)
        let drop = rules.maxAccuracyDrop
        if high < -drop {
            return .fail("live accuracy \(percent(c)) on \(e.candidateLabels) labels vs \(percent(s)) on \(e.servingLabels) for the serving version: worse by more than promotion.max_accuracy_drop \(percent(drop)) at \(percent(rules.confidence)) confidence (difference at most \(signedPercent(high)))")
        }
        if low >= -drop { return .pass }
        return .wait("accuracy difference \(signedPercent(c - s)) not yet conclusive (between \(signedPercent(low)) and \(signedPercent(high)))")
    }

    /// One-sided bounds of accuracy(candidate) − accuracy(serving) at `confidence` (Agresti–Caffo).
    static func differenceBounds(_ e: PromotionEvidence, confidence: Double) -> (low: Double, high: Double) {
        let nc = Double(e.candidateLabels + 2), ns = Double(e.servingLabels + 2)
        let pc = Double(e.candidateCorrect + 1) / nc, ps = Double(e.servingCorrect + 1) / ns
        let se = (pc * (1 - pc) / nc + ps * (1 - ps) / ns).squareRoot()
        let z = normalQuantile(confidence)
        return (pc - ps - z * se, pc - ps + z * se)
    }

    /// The standard normal quantile Φ⁻¹(p) for p in (0, 1), by bisection on Φ(z) = erfc(−z/√2)/2
    /// (to 1e-9; p = 0.95 gives 1.6449).
    static func normalQuantile(_ p: Double) -> Double {
        let target = min(max(p, 1e-12), 1 - 1e-12)
        var low = -10.0, high = 10.0
        for _ in 0..<80 {
            let mid = (low + high) / 2
            if 0.5 * erfc(-mid / 2.0.squareRoot()) < target { low = mid } else { high = mid }
        }
        return (low + high) / 2
    }

    static func percent(_ x: Double) -> String { "\((x * 1000).rounded() / 10)%" }
    static func signedPercent(_ x: Double) -> String { (x >= 0 ? "+" : "") + percent(x) }
    static func milliseconds(_ s: Double) -> String { "\((s * 1e6).rounded() / 1e3) ms" }
}
