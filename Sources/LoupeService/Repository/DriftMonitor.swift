// Input and prediction drift: a sliding window over the last N images a model saw, compared with
// the training-set statistics `loupe train` recorded in the model header (LoupeData's
// InputStatistics). Features are computed the same way as there: intensity = pixel / 255,
// ink = pixel ≥ threshold (128), a 16-bin histogram of pixel >> 4.
import LoupeEngine
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// What the training set looked like: the reference live traffic is compared with.
public struct DriftReference: Sendable, Equatable {
    /// Class labels, index = class (bounded: the model's outputs).
    public var labels: [String]
    /// Share of each class in the training set (sums to 1); nil when not recorded.
    public var classPriors: [Double]?
    /// Share of each class among the model's own predictions on held-out images at training
    /// time; nil when not recorded. Preferred over `classPriors` for prediction drift, since it
    /// already contains the model's bias.
    public var predictedClassShares: [Double]?
    /// Mean pixel / 255 over the training images; nil when not recorded.
    public var meanIntensity: Double?
    /// Share of pixels ≥ `inkThreshold`; nil when not recorded.
    public var inkFraction: Double?
    /// Pixel value (0…255) from which a pixel counts as ink.
    public var inkThreshold: Int
    /// Share of pixels in each of `count` equal-width bins over 0…255 (16 bins: pixel >> 4);
    /// nil when not recorded.
    public var intensityHistogram: [Double]?

    public init(labels: [String], classPriors: [Double]? = nil, predictedClassShares: [Double]? = nil,
                meanIntensity: Double? = nil, inkFraction: Double? = nil, inkThreshold: Int = 128,
                intensityHistogram: [Double]? = nil) {
        self.labels = labels; self.classPriors = classPriors; self.predictedClassShares = predictedClassShares
        self.meanIntensity = meanIntensity
        self.inkFraction = inkFraction; self.inkThreshold = inkThreshold; self.intensityHistogram = intensityHistogram
    }

    /// What the predicted-class shares are compared with: the model's held-out prediction
    /// shares when recorded, else the training class priors.
    var expectedClassShares: [Double]? { predictedClassShares ?? classPriors }

    /// Bins of the live histogram: the recorded histogram's count (a divisor of 256), else 16.
    var histogramBins: Int {
        if let n = intensityHistogram?.count, n > 0, n <= 256, 256 % n == 0 { return n }
        return 16
    }
}

/// Population stability index Σ (a − e) · ln(a / e) over matching bins of two distributions
/// (each normalized to sum 1 first). Empty bins are floored at `floor` so the index stays finite.
/// Rule of thumb: < 0.1 no real change, 0.1–0.25 moderate, > 0.25 the population has moved.
public func populationStabilityIndex(actual: [Double], expected: [Double], floor: Double = 1e-4) -> Double {
    precondition(actual.count == expected.count, "PSI needs bins of the same count")
    let sa = actual.reduce(0, +), se = expected.reduce(0, +)
    guard sa > 0, se > 0 else { return 0 }
    var psi = 0.0
    for i in actual.indices {
        let a = max(actual[i] / sa, floor), e = max(expected[i] / se, floor)
        psi += (a - e) * log(a / e)
    }
    return psi
}

/// Features of one image, computed outside any lock.
struct ImageFeatures: Equatable {
    var meanIntensity: Double
    var inkFraction: Double
    var histogram: [UInt16]

    init(pixels: some Collection<UInt8>, bins: Int, inkThreshold: Int) {
        if let f = pixels.withContiguousStorageIfAvailable({ ImageFeatures(buffer: $0, bins: bins, inkThreshold: inkThreshold) }) {
            self = f
        } else {
            self = Array(pixels).withUnsafeBufferPointer { ImageFeatures(buffer: $0, bins: bins, inkThreshold: inkThreshold) }
        }
    }

    init(buffer: UnsafeBufferPointer<UInt8>, bins: Int, inkThreshold: Int) {
        var histogram = [UInt16](repeating: 0, count: bins)
        let (mean, ink) = histogram.withUnsafeMutableBufferPointer {
            Self.measure(buffer, inkThreshold: inkThreshold, histogram: $0)
        }
        self.meanIntensity = mean
        self.inkFraction = ink
        self.histogram = histogram
    }

    /// The engine's `PixelCounts` (the same counting as the training-time statistics): the mean
    /// intensity and ink share of `buffer`'s pixels, and their histogram written into `histogram`
    /// (its count is the bins).
    static func measure(_ buffer: UnsafeBufferPointer<UInt8>, inkThreshold: Int,
                        histogram: UnsafeMutableBufferPointer<UInt16>) -> (mean: Double, ink: Double) {
        let bins = histogram.count
        let (sum, ink) = withUnsafeTemporaryAllocation(of: UInt32.self, capacity: bins) { counts in
            counts.initialize(repeating: 0)
            let totals = PixelCounts.accumulate(buffer, inkThreshold: inkThreshold, histogram: counts)
            for b in 0..<bins { histogram[b] = UInt16(truncatingIfNeeded: counts[b]) }
            return totals
        }
        let count = Double(max(1, buffer.count))
        return (Double(sum) / count / 255, Double(ink) / count)
    }
}

/// The last `capacity` images a model saw: predicted classes and input features, with running
/// totals so a scrape costs O(classes + bins). One short critical section per image or batch;
/// the per-image features are computed before it.
public final class DriftWindow: Sendable {
    struct State {
        var reference: DriftReference
        var bins: Int
        var capacity: Int
        var filled = 0
        var next = 0
        var ringClass: [Int32]
        var ringMean: [Double]
        var ringInk: [Double]
        var ringHistogram: [UInt16]   // capacity × bins
        var classCounts: [Int]
        var histogram: [Int]
        var meanSum: Double = 0
        var inkSum: Double = 0
        /// Entries of the window that carry input features (a prediction may come without).
        var featured = 0

        init(reference: DriftReference, capacity: Int) {
            self.reference = reference
            self.bins = reference.histogramBins
            self.capacity = capacity
            ringClass = Array(repeating: -1, count: capacity)
            ringMean = Array(repeating: 0, count: capacity)
            ringInk = Array(repeating: 0, count: capacity)
            ringHistogram = Array(repeating: 0, count: capacity * bins)
            classCounts = Array(repeating: 0, count: reference.labels.count)
            histogram = Array(repeating: 0, count: bins)
        }

        mutating func push(_ f: ImageFeatures?, predictedClass: Int) {
            guard let f else { return push(mean: 0, ink: 0, histogram: nil, predictedClass: predictedClass) }
            f.histogram.withUnsafeBufferPointer {
                push(mean: f.meanIntensity, ink: f.inkFraction, histogram: $0, predictedClass: predictedClass)
            }
        }

        /// One image's features (none: `histogram` nil, or of another bin count) and predicted class.
        mutating func push(mean: Double, ink: Double, histogram h: UnsafeBufferPointer<UInt16>?, predictedClass: Int) {
            let slot = next
            if filled == capacity {   // evict the oldest
                let old = Int(ringClass[slot])
                if old >= 0 { classCounts[old] -= 1 }
                if ringMean[slot] >= 0 {
                    featured -= 1
                    meanSum -= ringMean[slot]
                    inkSum -= ringInk[slot]
                    for b in 0..<bins { histogram[b] -= Int(ringHistogram[slot * bins + b]) }
                }
            } else {
                filled += 1
            }
            let cls = predictedClass >= 0 && predictedClass < classCounts.count ? predictedClass : -1
            ringClass[slot] = Int32(cls)
            if cls >= 0 { classCounts[cls] += 1 }
            if let h, h.count == bins {
                featured += 1
                ringMean[slot] = mean; meanSum += mean
                ringInk[slot] = ink; inkSum += ink
                for b in 0..<bins {
                    ringHistogram[slot * bins + b] = h[b]
                    histogram[b] += Int(h[b])
                }
            } else {
                ringMean[slot] = -1
            }
            next = (slot + 1) % capacity
        }
    }

    let state: Mutex<State>

    public init(reference: DriftReference, capacity: Int) {
        state = Mutex(State(reference: reference, capacity: max(1, capacity)))
    }

    /// Replaces the training-set reference (another version became the default). The window is
    /// kept unless the class count or histogram bins changed.
    func setReference(_ reference: DriftReference) {
        state.withLock { s in
            guard s.reference != reference else { return }
            if reference.labels.count != s.reference.labels.count || reference.histogramBins != s.bins {
                s = State(reference: reference, capacity: s.capacity)
            } else {
                s.reference = reference
            }
        }
    }

    public var reference: DriftReference { state.withLock { $0.reference } }

    private var featureParameters: (bins: Int, inkThreshold: Int) {
        state.withLock { ($0.bins, $0.reference.inkThreshold) }
    }

    /// Records one image (its 8-bit pixels) and the class predicted for it.
    public func record(pixels: some Collection<UInt8>, predictedClass: Int) {
        let p = featureParameters
        let features = ImageFeatures(pixels: pixels, bins: p.bins, inkThreshold: p.inkThreshold)
        state.withLock { $0.push(features, predictedClass: predictedClass) }
    }

    /// Records a batch: `pixels` holds `count` images back to back (or is empty when the inputs
    /// are not available as pixels), `predictedClasses` one class per image. One lock round trip;
    /// the features are computed before it, into scratch space on the stack (no array per image).
    public func recordBatch(pixels: some RandomAccessCollection<UInt8>, predictedClasses: [Int]) {
        let count = predictedClasses.count
        guard count > 0 else { return }
        let perImage = pixels.count / count
        guard perImage > 0 else {
            state.withLock { s in for c in predictedClasses { s.push(nil, predictedClass: c) } }
            return
        }
        if pixels.withContiguousStorageIfAvailable({ recordBatch($0, perImage: perImage, predictedClasses: predictedClasses) }) == nil {
            Array(pixels).withUnsafeBufferPointer { recordBatch($0, perImage: perImage, predictedClasses: predictedClasses) }
        }
    }

    private func recordBatch(_ pixels: UnsafeBufferPointer<UInt8>, perImage: Int, predictedClasses: [Int]) {
        let count = predictedClasses.count
        let p = featureParameters
        let bins = p.bins
        withUnsafeTemporaryAllocation(of: UInt16.self, capacity: count * bins) { histograms in
            withUnsafeTemporaryAllocation(of: (mean: Double, ink: Double).self, capacity: count) { totals in
                for i in 0..<count {
                    totals[i] = ImageFeatures.measure(UnsafeBufferPointer(rebasing: pixels[(i * perImage)..<((i + 1) * perImage)]),
                                                      inkThreshold: p.inkThreshold,
                                                      histogram: UnsafeMutableBufferPointer(rebasing: histograms[(i * bins)..<((i + 1) * bins)]))
                }
                state.withLock { s in
                    for i in 0..<count {
                        s.push(mean: totals[i].mean, ink: totals[i].ink,
                               histogram: UnsafeBufferPointer(rebasing: histograms[(i * bins)..<((i + 1) * bins)]),
                               predictedClass: predictedClasses[i])
                    }
                }
            }
        }
    }

    /// The window summarized and compared with the reference.
    public struct Summary: Sendable {
        public var reference: DriftReference
        /// Images in the window (≤ capacity).
        public var images: Int
        public var liveClassShare: [Double]
        public var liveMeanIntensity: Double?
        public var liveInkFraction: Double?
        public var liveHistogram: [Double]
        /// PSI of the predicted-class distribution against `reference.expectedClassShares`.
        public var classPSI: Double?
        /// PSI of the pixel-intensity histogram against the training histogram.
        public var intensityPSI: Double?
    }

    public func summary() -> Summary {
        // Copy only the small aggregates; the ring buffers stay behind the lock.
        let (reference, n, featured, classCounts, histogram, meanSum, inkSum) = state.withLock { s in
            (s.reference, s.filled, s.featured, s.classCounts, s.histogram, s.meanSum, s.inkSum)
        }
        let classTotal = classCounts.reduce(0, +)
        let liveClass = classCounts.map { classTotal > 0 ? Double($0) / Double(classTotal) : 0 }
        let histTotal = histogram.reduce(0, +)
        let liveHist = histogram.map { histTotal > 0 ? Double($0) / Double(histTotal) : 0 }
        var classPSI: Double? = nil
        if classTotal > 0, let priors = reference.expectedClassShares, priors.count == liveClass.count {
            classPSI = populationStabilityIndex(actual: liveClass, expected: priors)
        }
        var intensityPSI: Double? = nil
        if histTotal > 0, let hist = reference.intensityHistogram, hist.count == liveHist.count {
            intensityPSI = populationStabilityIndex(actual: liveHist, expected: hist)
        }
        return Summary(
            reference: reference, images: n, liveClassShare: liveClass,
            liveMeanIntensity: featured > 0 ? meanSum / Double(featured) : nil,
            liveInkFraction: featured > 0 ? inkSum / Double(featured) : nil,
            liveHistogram: liveHist, classPSI: classPSI, intensityPSI: intensityPSI)
    }
}
