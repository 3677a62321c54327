import Testing
@testable import LoupeData

@Suite struct EvaluationStatisticsTests {
    @Test func rocAUCMatchesWorkedExamples() {
        // scikit-learn's roc_auc_score example: 0.75.
        #expect(ClassifierStatistics.rocAUC(scores: [0.1, 0.4, 0.35, 0.8], positive: [false, false, true, true]) == 0.75)
        // Ties count half; a perfect ranking is 1, a reversed one 0.
        #expect(ClassifierStatistics.rocAUC(scores: [0.5, 0.5], positive: [true, false]) == 0.5)
        #expect(ClassifierStatistics.rocAUC(scores: [0.9, 0.8, 0.1], positive: [true, true, false]) == 1)
        #expect(ClassifierStatistics.rocAUC(scores: [0.1, 0.8, 0.9], positive: [true, false, false]) == 0)
        #expect(ClassifierStatistics.rocAUC(scores: [0.1, 0.2], positive: [true, true]) == nil)
    }

    @Test func mcnemarExactAndChiSquared() {
        // 1 vs 9 discordant: exact two-sided p = 2 · (1 + 10) / 2^10.
        let exact = ClassifierStatistics.mcnemar(onlyA: 1, onlyB: 9)
        #expect(exact.method == "exact binomial")
        #expect(abs(exact.pValue - 22.0 / 1024) < 1e-12)
        #expect(abs(exact.statistic - 4.9) < 1e-12)
        // 10 vs 30: χ² = (|10 − 30| − 1)² / 40 = 9.025, p = erfc(√(χ²/2)) = 0.0026631…
        let chi = ClassifierStatistics.mcnemar(onlyA: 10, onlyB: 30)
        #expect(abs(chi.statistic - 9.025) < 1e-12)
        #expect(abs(chi.pValue - 0.002663119259) < 1e-9)
        #expect(ClassifierStatistics.mcnemar(onlyA: 5, onlyB: 5).pValue == 1)
        #expect(ClassifierStatistics.mcnemar(onlyA: 0, onlyB: 0).pValue == 1)
    }

    @Test func reportCarriesAUCCalibrationAndComparison() {
        // 3 classes, 4 examples; probabilities row by row.
        let p: [Float] = [0.7, 0.2, 0.1,   0.2, 0.6, 0.2,   0.5, 0.4, 0.1,   0.1, 0.1, 0.8]
        let labels: [UInt8] = [0, 1, 1, 2]
        let r = EvaluationReport(probabilities: p, labels: labels, count: 4, classNames: ["a", "b", "c"])
        #expect(r.accuracy == 0.75)
        // Class 0 scores [0.7, 0.2, 0.5, 0.1], positive only the first: ranked above all 3 negatives.
        #expect(r.classes[0].rocAUC == 1)
        // Class 1 scores [0.2, 0.6, 0.4, 0.1], positives 2nd and 3rd: both above both negatives.
        #expect(r.classes[1].rocAUC == 1)
        #expect(r.macroROCAUC == 1)
        // Bins: 0.7 right, 0.6 right, 0.5 wrong, 0.8 right → ECE = ¼(0.3 + 0.4 + 0.5 + 0.2) = 0.35.
        #expect(abs(r.calibrationError - 0.35) < 1e-6)
        #expect(r.reliability.count == 10 && r.reliability[5].count == 1 && r.reliability[5].accuracy == 0)
        let c = ModelComparison(first: [0, 1, 0, 2], second: [0, 0, 1, 1], labels: labels)
        #expect(c.bothRight == 1 && c.onlyFirst == 2 && c.onlySecond == 1 && c.bothWrong == 0)
        #expect(c.accuracyDifference == -0.25)
    }

    /// A network whose outputs are NaN (weights or activations overflowed) has no confidence: it counts
    /// in the lowest bin instead of trapping on Int(NaN), in `loupe evaluate` and the server's live ECE.
    @Test func aNaNConfidenceCountsInTheLowestBin() {
        var bins = CalibrationBins(bins: 10)
        bins.add(confidence: .nan, correct: false)
        bins.add(confidence: .infinity, correct: true)
        bins.add(confidence: -.infinity, correct: false)
        #expect(bins.counts == [2, 0, 0, 0, 0, 0, 0, 0, 0, 1])
        #expect(bins.expectedCalibrationError == 0)
        let report = EvaluationReport(probabilities: [.nan, .nan, 0.2, 0.8], labels: [0, 1], count: 2, classNames: ["a", "b"])
        #expect(report.count == 2 && report.reliability.reduce(0) { $0 + $1.count } == 2)
    }

    @Test func crossValidationMeanAndDeviation() {
        let (m, s) = CrossValidationReport.meanAndDeviation([0.8, 0.9, 1.0])
        #expect(abs(m - 0.9) < 1e-12 && abs(s - 0.1) < 1e-12)
    }
}
