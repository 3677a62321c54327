// The counts input-drift statistics are made of, over 8-bit pixels: their sum, how many are ink
// (at or above a threshold) and a histogram of equal-width bins. One implementation for the
// trainer's reference statistics (LoupeData's InputStatistics) and the server's live drift window
// (LoupeService), so both sides count alike; it lives in the engine for the engine's compile
// flags (x86-64-v3, -Ounchecked), since the server runs it on every image it classifies.

public enum PixelCounts {
    /// Adds every pixel of `pixels` into `histogram`, whose count is the number of bins (a power
    /// of two dividing 256: bin = pixel >> (8 − log2 bins)), and returns the pixel sum and how
    /// many pixels are ≥ `inkThreshold` (clamped to 0…256). About 0.1 µs for 784 pixels: the sum
    /// and the ink count are plain loops the compiler vectorizes; the histogram counts into four
    /// interleaved tables, so neighbouring pixels of the same bin (long runs of background) do not
    /// wait on each other's store, and folds them at the end.
    @discardableResult
    public static func accumulate(_ pixels: UnsafeBufferPointer<UInt8>, inkThreshold: Int,
                                  histogram: UnsafeMutableBufferPointer<UInt32>) -> (sum: Int, ink: Int) {
        let bins = histogram.count
        precondition(bins > 0 && bins <= 256 && bins & (bins - 1) == 0, "bins must be a power of two up to 256")
        let shift = 8 - bins.trailingZeroBitCount   // as an Int: 8 (one bin) must shift every bit out
        // Branch-free: p ≥ threshold ⟺ p + (256 − threshold) ≥ 256, i.e. bit 8 of the sum.
        let inkBias = UInt16(max(0, min(256, 256 - inkThreshold)))
        var sum = 0, ink = 0
        var start = 0
        while start < pixels.count {   // 32-bit lanes vectorize twice as wide; 2^24 bytes cannot overflow them
            let end = min(pixels.count, start + (1 << 24))
            var s: UInt32 = 0, k: UInt32 = 0
            for i in start..<end { s &+= UInt32(pixels[i]) }
            for i in start..<end { k &+= UInt32((UInt16(pixels[i]) &+ inkBias) &>> 8) }
            sum += Int(s); ink += Int(k)
            start = end
        }
        withUnsafeTemporaryAllocation(of: UInt32.self, capacity: 4 * bins) { lanes in
            lanes.initialize(repeating: 0)
            let l0 = lanes.baseAddress!, l1 = l0 + bins, l2 = l1 + bins, l3 = l2 + bins
            let n = pixels.count, quads = n & ~3
            var i = 0
            while i < quads {
                l0[Int(pixels[i]) &>> shift] &+= 1
                l1[Int(pixels[i &+ 1]) &>> shift] &+= 1
                l2[Int(pixels[i &+ 2]) &>> shift] &+= 1
                l3[Int(pixels[i &+ 3]) &>> shift] &+= 1
                i &+= 4
            }
            while i < n { l0[Int(pixels[i]) &>> shift] &+= 1; i &+= 1 }
            for b in 0..<bins { histogram[b] &+= l0[b] &+ l1[b] &+ l2[b] &+ l3[b] }
        }
        return (sum, ink)
    }
}
