#if canImport(Glibc)
import Glibc
#endif

/// Confidence bins for calibration: per bin ([0, 0.1), [0.1, 0.2), …, [0.9, 1] by default) the
/// predictions that fell in it, their summed top-1 confidence and how many were right. Used by
/// `loupe evaluate` (ECE and the reliability table) and the server's live statistics.
public struct CalibrationBins: Sendable, Equatable, Codable {
    public private(set) var counts: [Int]
    public private(set) var confidenceSums: [Double]
    public private(set) var correct: [Int]

    public init(bins: Int = 10) {
        counts = [Int](repeating: 0, count: max(1, bins))
        confidenceSums = [Double](repeating: 0, count: max(1, bins))
        correct = counts
    }

    public mutating func add(confidence: Float, correct right: Bool) {
        // NaN (a network whose outputs overflowed) is no confidence: the lowest bin, not a trap in Int(_:).
        let c = confidence.isNaN ? 0 : Double(min(max(confidence, 0), 1))
        let b = min(Int(c * Double(counts.count)), counts.count - 1)
        counts[b] += 1
        confidenceSums[b] += c
        if right { correct[b] += 1 }
    }

    public var total: Int { counts.reduce(0, +) }

    /// Expected calibration error: Σ over bins of (share of predictions in the bin) ×
    /// |accuracy in the bin − mean confidence in the bin|; nil when empty.
    public var expectedCalibrationError: Double? {
        let n = total
        guard n > 0 else { return nil }
        var e = 0.0
        for b in counts.indices where counts[b] > 0 {
            let m = Double(counts[b])
            e += m / Double(n) * abs(Double(correct[b]) / m - confidenceSums[b] / m)
        }
        return e
    }

    /// One row of a reliability table.
    public struct Row: Sendable, Equatable, Codable {
        public var lower: Double
        public var upper: Double
        public var count: Int
        /// nil for an empty bin.
        public var meanConfidence: Double?
        public var accuracy: Double?
    }

    public var table: [Row] {
        counts.indices.map { b in
            let m = Double(counts[b])
            return Row(lower: Double(b) / Double(counts.count), upper: Double(b + 1) / Double(counts.count), count: counts[b],
                       meanConfidence: counts[b] > 0 ? confidenceSums[b] / m : nil,
                       accuracy: counts[b] > 0 ? Double(correct[b]) / m : nil)
        }
    }
}

/// One-vs-rest ROC AUC and McNemar's test: the statistics `loupe evaluate` adds to accuracy.
public enum ClassifierStatistics {
    /// The area under the ROC curve of `scores` for telling `positive` examples from the others:
    /// the probability that a random positive scores above a random negative (ties count half),
    /// from the rank sum (Mann–Whitney). nil without both positives and negatives.
    public static func rocAUC(scores: [Float], positive: [Bool]) -> Double? {
        let p = positive.filter { $0 }.count, n = positive.count - p
        guard p > 0, n > 0 else { return nil }
        let order = scores.indices.sorted { scores[$0] < scores[$1] }
        var rankSum = 0.0
        var i = 0
        while i < order.count {
            var j = i
            while j + 1 < order.count && scores[order[j + 1]] == scores[order[i]] { j += 1 }
            let averageRank = Double(i + j + 2) / 2   // ranks are 1-based
            for k in i...j where positive[order[k]] { rankSum += averageRank }
            i = j + 1
        }
        return (rankSum - Double(p) * Double(p + 1) / 2) / (Double(p) * Double(n))
    }

    /// McNemar's test of two classifiers on the same examples, from the discordant counts:
    /// `onlyA` right only by A, `onlyB` right only by B. Exact two-sided binomial p-value below 25
    /// discordant pairs, else the χ² statistic with continuity correction, (|b − c| − 1)² / (b + c),
    /// and its 1-degree-of-freedom p-value.
    public static func mcnemar(onlyA b: Int, onlyB c: Int) -> (statistic: Double, pValue: Double, method: String) {
        let n = b + c
        guard n > 0 else { return (0, 1, "no discordant pairs") }
        let chi2 = pow(max(Double(abs(b - c)) - 1, 0), 2) / Double(n)
        if n < 25 {
            // P(X ≤ min(b, c)) for X ~ Binomial(n, 1/2), doubled.
            var tail = 0.0
            var term = pow(0.5, Double(n))   // C(n, 0) / 2^n
            for k in 0...min(b, c) {
                tail += term
                term *= Double(n - k) / Double(k + 1)
            }
            return (chi2, min(1, 2 * tail), "exact binomial")
        }
        return (chi2, erfc((chi2 / 2).squareRoot()), "chi-squared with continuity correction")
    }
}
