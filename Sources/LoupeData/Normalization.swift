/// How UInt8 pixels become model inputs: `x = pixel * scale + offset`.
public struct Normalization: Codable, Sendable, Equatable {
    public var scale: Float
    public var offset: Float

    public init(scale: Float, offset: Float) {
        self.scale = scale
        self.offset = offset
    }

    /// pixel / 255, giving [0, 1] — what Loupe trains with.
    public static let standard = Normalization(scale: 1.0 / 255.0, offset: 0)

    public func apply(_ pixels: [UInt8]) -> [Float] {
        var out = [Float](repeating: 0, count: pixels.count)
        apply(pixels[...], into: &out, at: 0)
        return out
    }

    public func apply(_ pixels: ArraySlice<UInt8>, into out: inout [Float], at start: Int) {
        var i = start
        for p in pixels {
            out[i] = Float(p) * scale + offset
            i += 1
        }
    }
}
