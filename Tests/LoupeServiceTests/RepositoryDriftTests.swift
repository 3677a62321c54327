import Testing
@testable import LoupeService

@Suite struct RepositoryDriftTests {
    @Test func psiIsZeroForEqualDistributionsAndGrowsWithShift() {
        let e = [0.25, 0.25, 0.25, 0.25]
        #expect(abs(populationStabilityIndex(actual: e, expected: e)) < 1e-12)
        // Counts are normalized first.
        #expect(abs(populationStabilityIndex(actual: [10, 10, 10, 10], expected: e)) < 1e-12)
        let small = populationStabilityIndex(actual: [0.3, 0.25, 0.25, 0.2], expected: e)
        let large = populationStabilityIndex(actual: [0.7, 0.1, 0.1, 0.1], expected: e)
        #expect(small > 0 && small < 0.1)
        #expect(large > 0.25)
        // Hand-computed: (0.5-0.25)ln2 + (0-0.25)... with the empty bin floored at 1e-4.
        let v = populationStabilityIndex(actual: [0.5, 0.5, 0, 0], expected: e)
        let floorTerm = (1e-4 - 0.25) * log(1e-4 / 0.25)
        let expected = 2 * (0.25 * log(2.0)) + 2 * floorTerm
        #expect(abs(v - expected) < 1e-3)
    }

    @Test func featuresEqualAPlainLoopForEveryLengthAndBinCount() {
        var g = SystemRandomNumberGenerator()
        for length in [0, 1, 3, 4, 5, 783, 784, 785] {
            for bins in [1, 2, 16, 256] {
                for threshold in [0, 1, 128, 255, 256] {
                    let pixels = (0..<length).map { _ in UInt8.random(in: 0...255, using: &g) }
                    let f = ImageFeatures(pixels: pixels[...], bins: bins, inkThreshold: threshold)
                    var h = [UInt16](repeating: 0, count: bins)
                    for p in pixels { h[Int(p) * bins / 256] += 1 }
                    let n = Double(max(1, length))
                    #expect(f.histogram == h)
                    #expect(f.meanIntensity == Double(pixels.reduce(0) { $0 + Int($1) }) / n / 255)
                    #expect(f.inkFraction == Double(pixels.filter { Int($0) >= threshold }.count) / n)
                }
            }
        }
    }

    @Test func featuresMatchTrainingDefinitions() {
        // 4 pixels: 0, 127, 128, 255 → mean (510/4)/255 = 0.5, ink (≥128) 2/4, bins 0, 7, 8, 15.
        let f = ImageFeatures(pixels: [0, 127, 128, 255] as [UInt8], bins: 16, inkThreshold: 128)
        #expect(abs(f.meanIntensity - 0.5) < 1e-12)
        #expect(f.inkFraction == 0.5)
        var h = [UInt16](repeating: 0, count: 16)
        h[0] = 1; h[7] = 1; h[8] = 1; h[15] = 1
        #expect(f.histogram == h)
    }

    func reference() -> DriftReference {
        var hist = [Double](repeating: 0, count: 16)
        hist[0] = 0.5; hist[15] = 0.5
        return DriftReference(labels: ["a", "b"], classPriors: [0.5, 0.5], meanIntensity: 0.5, inkFraction: 0.5,
                              inkThreshold: 128, intensityHistogram: hist)
    }

    @Test func windowMatchingTrainingHasNoDrift() {
        let w = DriftWindow(reference: reference(), capacity: 100)
        for i in 0..<100 {
            w.record(pixels: [0, 255, 0, 255] as [UInt8], predictedClass: i % 2)
        }
        let s = w.summary()
        #expect(s.images == 100)
        #expect(s.liveClassShare == [0.5, 0.5])
        #expect(abs(s.liveMeanIntensity! - 0.5) < 1e-9)
        #expect(s.liveInkFraction == 0.5)
        #expect(abs(s.classPSI!) < 1e-9)
        #expect(abs(s.intensityPSI!) < 1e-9)
    }

    @Test func windowSlidesAndForgetsOldImages() {
        let w = DriftWindow(reference: reference(), capacity: 10)
        for _ in 0..<10 { w.record(pixels: [0, 255, 0, 255] as [UInt8], predictedClass: 0) }
        #expect(w.summary().classPSI! > 0.25)   // all class 0 against 50/50 priors
        // Darker images, balanced classes: after 10 more the first ten are gone entirely.
        var batch: [UInt8] = []
        var classes: [Int] = []
        for i in 0..<10 { batch += [0, 0, 0, 40]; classes.append(i % 2) }
        w.recordBatch(pixels: batch, predictedClasses: classes)
        let s = w.summary()
        #expect(s.images == 10)
        #expect(abs(s.classPSI!) < 1e-9)
        #expect(abs(s.liveMeanIntensity! - 10.0 / 255) < 1e-9)
        #expect(s.liveInkFraction == 0)
        #expect(s.intensityPSI! > 0.25)
        #expect(s.liveHistogram[0] == 0.75 && s.liveHistogram[2] == 0.25)
    }

    @Test func predictionsWithoutPixelsCountOnlyForClasses() {
        let w = DriftWindow(reference: reference(), capacity: 4)
        w.recordBatch(pixels: [UInt8](), predictedClasses: [0, 1, 1, 1])
        let s = w.summary()
        #expect(s.images == 4)
        #expect(s.liveClassShare == [0.25, 0.75])
        #expect(s.liveMeanIntensity == nil)
        #expect(s.intensityPSI == nil)
        w.record(pixels: [255, 255] as [UInt8], predictedClass: 0)   // evicts a pixel-less entry
        #expect(w.summary().liveMeanIntensity == 1)
    }

    @Test func missingReferenceStatisticsGiveNoPSI() {
        let w = DriftWindow(reference: DriftReference(labels: ["a", "b", "c"]), capacity: 8)
        w.record(pixels: [1, 2, 3] as [UInt8], predictedClass: 2)
        let s = w.summary()
        #expect(s.classPSI == nil && s.intensityPSI == nil)
        #expect(s.liveClassShare == [0, 0, 1])
    }

    @Test func referenceChangeWithOtherClassCountResetsTheWindow() {
        let w = DriftWindow(reference: reference(), capacity: 8)
        w.record(pixels: [1] as [UInt8], predictedClass: 1)
        w.setReference(DriftReference(labels: ["a", "b", "c"]))
        #expect(w.summary().images == 0)
        #expect(w.summary().liveClassShare.count == 3)
    }
}

#if canImport(Glibc)
import Glibc
#endif

@Suite struct RepositoryPredictionReferenceTests {
    @Test func predictionDriftPrefersTheModelsHeldOutPredictionShares() {
        // The model predicts class 0 for 80% of held-out images (its bias); live traffic that
        // matches that bias is no drift, although it differs from the 50/50 class priors.
        let biased = DriftReference(labels: ["a", "b"], classPriors: [0.5, 0.5], predictedClassShares: [0.8, 0.2])
        let w = DriftWindow(reference: biased, capacity: 10)
        w.recordBatch(pixels: [UInt8](), predictedClasses: [0, 0, 0, 0, 0, 0, 0, 0, 1, 1])
        #expect(abs(w.summary().classPSI!) < 1e-9)
        let priorsOnly = DriftWindow(reference: DriftReference(labels: ["a", "b"], classPriors: [0.5, 0.5]), capacity: 10)
        priorsOnly.recordBatch(pixels: [UInt8](), predictedClasses: [0, 0, 0, 0, 0, 0, 0, 0, 1, 1])
        #expect(priorsOnly.summary().classPSI! > 0.25)
    }
}
