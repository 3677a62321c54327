import LoupeEngine

/// Summary statistics of a set of UInt8 images (and labels), stored in the model header as
/// the baseline for input-drift metrics. Compute live statistics with `ImageStatistics.of`
/// so the numbers are comparable.
public struct InputStatistics: Codable, Sendable, Equatable {
    /// Images summarised.
    public var sampleCount: Int
    /// Fraction of the images with each label (sums to 1).
    public var classPriors: [Double]
    /// Mean pixel value over all pixels, scaled to [0, 1] (pixel / 255).
    public var meanIntensity: Double
    /// Standard deviation over images of the per-image mean intensity.
    public var meanIntensityStd: Double
    /// Fraction of pixels >= `inkThreshold` over all pixels.
    public var inkFraction: Double
    /// Standard deviation over images of the per-image ink fraction.
    public var inkFractionStd: Double
    /// Pixel value from which a pixel counts as ink (128).
    public var inkThreshold: Int
    /// Fraction of all pixels in each of 16 equal bins: bin i holds values 16·i … 16·i+15.
    public var histogram: [Double]
    /// Share of each class among the trained model's predictions on held-out images (the test
    /// split), the reference for prediction drift: a model's own bias is not drift. Optional
    /// (absent in files written before it existed, or when evaluation was skipped).
    public var predictedClassShares: [Double]? = nil

    public static let defaultInkThreshold = 128
    public static let histogramBins = 16

    /// Summarises `count` images of `pixelsPerImage` bytes each.
    public static func compute(images: [UInt8], labels: [UInt8], count: Int, pixelsPerImage: Int, classCount: Int) -> InputStatistics {
        var priors = [Double](repeating: 0, count: classCount)
        for l in labels.prefix(count) where Int(l) < classCount { priors[Int(l)] += 1 }
        var counts = [UInt32](repeating: 0, count: histogramBins)
        var binTotals = [Int](repeating: 0, count: histogramBins)
        var sumMean = 0.0, sumMean2 = 0.0, sumInk = 0.0, sumInk2 = 0.0
        images.withUnsafeBufferPointer { all in
            for i in 0..<count {
                let image = UnsafeBufferPointer(rebasing: all[i * pixelsPerImage..<(i + 1) * pixelsPerImage])
                let (sum, ink) = counts.withUnsafeMutableBufferPointer { h in
                    h.update(repeating: 0)
                    return PixelCounts.accumulate(image, inkThreshold: defaultInkThreshold, histogram: h)
                }
                for b in 0..<histogramBins { binTotals[b] += Int(counts[b]) }
                let m = Double(sum) / Double(pixelsPerImage) / 255
                let f = Double(ink) / Double(pixelsPerImage)
                sumMean += m; sumMean2 += m * m
                sumInk += f; sumInk2 += f * f
            }
        }
        let n = Double(max(count, 1))
        let total = Double(max(count * pixelsPerImage, 1))
        let histogram = binTotals.map { Double($0) / total }
        let meanM = sumMean / n, meanF = sumInk / n
        return InputStatistics(
            sampleCount: count,
            classPriors: priors.map { $0 / n },
            meanIntensity: meanM,
            meanIntensityStd: (max(sumMean2 / n - meanM * meanM, 0)).squareRoot(),
            inkFraction: meanF,
            inkFractionStd: (max(sumInk2 / n - meanF * meanF, 0)).squareRoot(),
            inkThreshold: defaultInkThreshold,
            histogram: histogram
        )
    }
}

/// Per-image statistics, computed the same way as `InputStatistics` (for live drift metrics).
public struct ImageStatistics: Sendable, Equatable {
    /// Mean pixel / 255.
    public var meanIntensity: Double
    /// Fraction of pixels >= threshold.
    public var inkFraction: Double

    public static func of(_ pixels: ArraySlice<UInt8>, inkThreshold: Int = InputStatistics.defaultInkThreshold) -> ImageStatistics {
        var histogram: [UInt32] = [0]
        let (sum, ink) = pixels.withUnsafeBufferPointer { p in
            histogram.withUnsafeMutableBufferPointer { PixelCounts.accumulate(p, inkThreshold: inkThreshold, histogram: $0) }
        }
        let n = Double(max(pixels.count, 1))
        return ImageStatistics(meanIntensity: Double(sum) / n / 255, inkFraction: Double(ink) / n)
    }
}
