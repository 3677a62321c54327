import Testing
@testable import LoupeData

// The attribution heatmap (/explain?format=png, loupe explain --png) for any H×W and 1 or 3 channels:
// gray images stay gray, RGB images show their own colours desaturated, the overlay is red for positive
// and blue for negative attributions (summed over a pixel's channels), and the PNG decodes back.
@Suite struct HeatmapTests {
    /// Where no attribution is, the output is the dimmed image: 0.55 · v + 10 per channel, with v the
    /// gray value (C = 1) or the colour moved 65 % towards the pixel's channel mean (C = 3).
    @Test func withoutAttributionsTheImageShowsDimmedGrayOrDesaturatedColour() {
        let gray: [UInt8] = [0, 100, 200, 255, 50, 150]   // 2 × 3
        let g = AttributionHeatmap.render(pixels: gray, attributions: [Float](repeating: 0, count: 6), width: 3, height: 2, channels: 1, scale: 1)
        #expect(g.count == 2 * 3 * 3)
        for p in 0..<6 {
            let expected = UInt8((0.55 * Float(gray[p]) + 10).rounded())
            #expect(g[3 * p] == expected && g[3 * p + 1] == expected && g[3 * p + 2] == expected, "pixel \(p)")
        }
        // A pure red, a pure green and a gray pixel (1 × 3).
        let rgb: [UInt8] = [240, 0, 0, 0, 240, 0, 90, 90, 90]
        let c = AttributionHeatmap.render(pixels: rgb, attributions: [Float](repeating: 0, count: 9), width: 3, height: 1, channels: 3, scale: 1)
        for p in 0..<3 {
            let mean = Float(Int(rgb[3 * p]) + Int(rgb[3 * p + 1]) + Int(rgb[3 * p + 2])) / 3
            for k in 0..<3 {
                let v = mean + AttributionHeatmap.saturation * (Float(rgb[3 * p + k]) - mean)
                #expect(c[3 * p + k] == UInt8((0.55 * v + 10).rounded()), "pixel \(p) channel \(k)")
            }
        }
        #expect(c[0] > c[1] && c[4] > c[3], "the red pixel stays reddish and the green one greenish")
        #expect(c[6] == c[7] && c[7] == c[8], "a gray pixel stays gray")
    }

    /// The strongest positive pixel (summed over channels) is red, the strongest negative one blue; each
    /// pixel is a scale × scale block.
    @Test func positiveIsRedNegativeIsBlueSummedOverChannels() {
        let pixels = [UInt8](repeating: 128, count: 2 * 2 * 3)
        // Pixel 0: +1 spread over its channels; pixel 3: −1 in the blue channel only; the rest cancel out.
        let a: [Float] = [0.5, 0.25, 0.25, 0.3, -0.3, 0, 0, 0, 0, 0, 0, -1]
        let out = AttributionHeatmap.render(pixels: pixels, attributions: a, width: 2, height: 2, channels: 3, scale: 2)
        #expect(out.count == 4 * 4 * 3)
        func at(_ x: Int, _ y: Int) -> (UInt8, UInt8, UInt8) { let o = (y * 4 + x) * 3; return (out[o], out[o + 1], out[o + 2]) }
        let red = at(0, 0), blue = at(3, 3), none = at(2, 0)
        #expect(red.0 > 180 && red.1 < 70 && red.2 < 70, "\(red)")
        #expect(blue.2 > 180 && blue.0 < 70, "\(blue)")
        #expect(none.0 == none.1 && none.1 == none.2, "a pixel whose channels cancel shows the image: \(none)")
        #expect(at(1, 1) == red && at(2, 2) == blue, "2 × 2 blocks")
    }

    /// Any size: the PNG is (H·s) × (W·s) RGB with s = min(16, ⌊224 / max(H, W)⌋) (at least 1).
    @Test(arguments: [(28, 28, 1), (32, 32, 3), (24, 40, 3), (7, 3, 1), (256, 200, 3)])
    func thePNGDecodesAtTheScaledSize(_ shape: (Int, Int, Int)) throws {
        let (h, w, c) = shape
        var state: UInt32 = 7
        let pixels = (0..<(h * w * c)).map { _ -> UInt8 in state = state &* 1_664_525 &+ 1_013_904_223; return UInt8(state >> 24) }
        let attributions = (0..<(h * w * c)).map { Float($0 % 7) - 3 }
        let png = AttributionHeatmap.png(pixels: pixels, attributions: attributions, width: w, height: h, channels: c)
        let image = try ImageDecoder.decode(png)
        let s = max(1, min(16, 224 / max(h, w)))
        #expect(image.width == w * s && image.height == h * s)
    }
}
