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

    /// The one normalization loop (every entry point below writes through it): `n` pixels from
    /// `from` to `to`, a loop the compiler vectorizes.
    @inline(__always)
    func write(_ from: UnsafePointer<UInt8>, count n: Int, to: UnsafeMutablePointer<Float>) {
        let scale = self.scale, offset = self.offset
        for i in 0..<n { to[i] = Float(from[i]) * scale + offset }
    }

    public func apply(_ pixels: [UInt8]) -> [Float] {
        [Float](unsafeUninitializedCapacity: pixels.count) { buffer, initialized in
            pixels.withUnsafeBufferPointer { p in if let base = p.baseAddress { write(base, count: p.count, to: buffer.baseAddress!) } }
            initialized = pixels.count
        }
    }

    /// `apply(pixels)` appended to `out` (a forward pass's batch buffer: the pixels normalized
    /// where they are gathered, in no array of their own).
    public func append(_ pixels: [UInt8], to out: inout [Float]) {
        // 128 values at a time through a stack buffer, each chunk appended as one copy: no heap
        // memory, no per-element append.
        pixels.withUnsafeBufferPointer { p in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 128) { t in
                var start = 0
                while start < p.count {
                    let n = min(128, p.count - start)
                    write(p.baseAddress! + start, count: n, to: t.baseAddress!)
                    out.append(contentsOf: UnsafeBufferPointer(rebasing: t[0..<n]))
                    start += n
                }
            }
        }
    }

    public func apply(_ pixels: ArraySlice<UInt8>, into out: inout [Float], at start: Int) {
        precondition(start >= 0 && start + pixels.count <= out.count, "Normalization.apply: out of range")
        pixels.withUnsafeBufferPointer { p in
            out.withUnsafeMutableBufferPointer { o in
                if let base = p.baseAddress { write(base, count: p.count, to: o.baseAddress! + start) }
            }
        }
    }

    /// The 8-bit pixels model-ready values came from (the inverse of `apply`), rounded and clamped
    /// to 0…255; non-finite values become 0. Empty when `scale` is 0.
    public func pixels(fromNormalized input: [Float]) -> [UInt8] {
        guard scale != 0 else { return [] }
        let inverse = 1 / scale
        var pixels = [UInt8](repeating: 0, count: input.count)
        for i in input.indices {
            let p = ((input[i] - offset) * inverse).rounded()
            pixels[i] = p.isFinite ? UInt8(max(0, min(255, p))) : 0
        }
        return pixels
    }
}
