// The hot kernels, as a table of functions, so one build can carry an AVX2 and an AVX-512
// instantiation of the same source and pick one at start-up (see ISA.swift in LoupeEngine).

package struct KernelSet: Sendable {
    package var name: String
    /// input (N, H, W, C), weight (k, k, C, K), bias → output (N, OH, OW, K)
    package var convForward: @Sendable (ConvGeometry, Int, UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>, UnsafeMutablePointer<Float>) -> Void
    /// (geometry, n, input, weight, dOutput, dWeight +=, dBias +=, dInput =)
    package var convBackward: @Sendable (ConvGeometry, Int, UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>?) -> Void
    package var maxPoolForward: @Sendable (PoolGeometry, Int, UnsafePointer<Float>, UnsafeMutablePointer<Float>, UnsafeMutablePointer<UInt8>) -> Void
    package var maxPoolBackward: @Sendable (PoolGeometry, Int, UnsafePointer<Float>, UnsafePointer<UInt8>, UnsafeMutablePointer<Float>) -> Void
    /// (n, in, out, relu, x, weight, bias, y)
    package var denseForward: @Sendable (Int, Int, Int, Bool, UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>, UnsafeMutablePointer<Float>) -> Void
    /// (n, in, out, x, weight, dY, dWeight +=, dBias +=, dX =)
    package var denseBackward: @Sendable (Int, Int, Int, UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>?) -> Void
    /// (count, reluOutput, gradient in place)
    package var reluBackward: @Sendable (Int, UnsafePointer<Float>, UnsafeMutablePointer<Float>) -> Void

    /// The plain-loop references: slow, obviously correct.
    package static let reference = KernelSet(
        name: "reference",
        convForward: { Reference.convForward($0, n: $1, input: $2, weight: $3, bias: $4, output: $5) },
        convBackward: { Reference.convBackward($0, n: $1, input: $2, weight: $3, dOutput: $4, dWeight: $5, dBias: $6, dInput: $7) },
        maxPoolForward: { Reference.maxPoolForward($0, n: $1, input: $2, output: $3, argmax: $4) },
        maxPoolBackward: { Reference.maxPoolBackward($0, n: $1, dOutput: $2, argmax: $3, dInput: $4) },
        denseForward: { Reference.denseForward(n: $0, inputs: $1, outputs: $2, relu: $3, x: $4, weight: $5, bias: $6, y: $7) },
        denseBackward: { Reference.denseBackward(n: $0, inputs: $1, outputs: $2, x: $3, weight: $4, dY: $5, dWeight: $6, dBias: $7, dX: $8) },
        reluBackward: { Reference.reluBackward(count: $0, output: $1, gradient: $2) })
}
