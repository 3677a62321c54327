// The hot kernels as a table of functions, so one binary can carry an AVX2 and an AVX-512
// instantiation of the same @inlinable source and pick one at start-up (LoupeEngine/ISA.swift).

package struct KernelSet: Sendable {
    package var name: String
    /// (geometry, n, input, weight, bias, output, argmax) — see ConvKernels.forward.
    package var convPoolForward: @Sendable (ConvPoolGeometry, Int, UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>,
                                            UnsafeMutablePointer<Float>, UnsafeMutablePointer<Int32>) -> Void
    /// (geometry, n, input, weight, dOutput, argmax, dWeight +=, dBias +=, dInput =)
    package var convPoolBackward: @Sendable (ConvPoolGeometry, Int, UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>,
                                             UnsafePointer<Int32>, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>,
                                             UnsafeMutablePointer<Float>?) -> Void
    /// (n, in, out, relu, x, weight, bias, y)
    package var denseForward: @Sendable (Int, Int, Int, Bool, UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>,
                                         UnsafeMutablePointer<Float>) -> Void
    /// (n, in, out, x, weight, weightᵀ (out × in) or nil, dY, dWeight +=, dBias +=, dX =)
    package var denseBackward: @Sendable (Int, Int, Int, UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>?, UnsafePointer<Float>,
                                          UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>?) -> Void
    /// (n, in, out, weight, weightᵀ or nil, dY, dX =): the input gradient alone (explanations need no dWeight).
    package var denseBackwardInput: @Sendable (Int, Int, Int, UnsafePointer<Float>, UnsafePointer<Float>?, UnsafePointer<Float>,
                                               UnsafeMutablePointer<Float>) -> Void
    /// (rows, cols, src, dst, firstRow, rowCount): dst = srcᵀ packed in 64-row panels (DenseKernels.transpose).
    package var transpose: @Sendable (Int, Int, UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int, Int) -> Void
    /// (count, reluOutput, gradient in place)
    package var reluBackward: @Sendable (Int, UnsafePointer<Float>, UnsafeMutablePointer<Float>) -> Void
    /// (step, first, count, shard gradients, shard count, weights, L2 mask, moment1, moment2)
    package var optimizer: @Sendable (OptimizerStep, Int, Int, UnsafePointer<UnsafeMutablePointer<Float>>, Int, UnsafeMutablePointer<Float>,
                                      UnsafePointer<Float>, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>) -> Void

    package init(name: String,
                 convPoolForward: @escaping @Sendable (ConvPoolGeometry, Int, UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Int32>) -> Void,
                 convPoolBackward: @escaping @Sendable (ConvPoolGeometry, Int, UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Int32>, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>?) -> Void,
                 denseForward: @escaping @Sendable (Int, Int, Int, Bool, UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>, UnsafeMutablePointer<Float>) -> Void,
                 denseBackward: @escaping @Sendable (Int, Int, Int, UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>?, UnsafePointer<Float>, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>?) -> Void,
                 denseBackwardInput: @escaping @Sendable (Int, Int, Int, UnsafePointer<Float>, UnsafePointer<Float>?, UnsafePointer<Float>, UnsafeMutablePointer<Float>) -> Void,
                 transpose: @escaping @Sendable (Int, Int, UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int, Int) -> Void,
                 reluBackward: @escaping @Sendable (Int, UnsafePointer<Float>, UnsafeMutablePointer<Float>) -> Void,
                 optimizer: @escaping @Sendable (OptimizerStep, Int, Int, UnsafePointer<UnsafeMutablePointer<Float>>, Int, UnsafeMutablePointer<Float>, UnsafePointer<Float>, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>) -> Void) {
        self.name = name
        self.convPoolForward = convPoolForward; self.convPoolBackward = convPoolBackward
        self.denseForward = denseForward; self.denseBackward = denseBackward; self.denseBackwardInput = denseBackwardInput
        self.transpose = transpose
        self.reluBackward = reluBackward; self.optimizer = optimizer
    }

    /// The plain-loop references: slow, obviously correct.
    package static let reference = KernelSet(
        name: "reference",
        convPoolForward: { Reference.convPoolForward($0, n: $1, input: $2, weight: $3, bias: $4, output: $5, argmax: $6) },
        convPoolBackward: { Reference.convPoolBackward($0, n: $1, input: $2, weight: $3, dOutput: $4, argmax: $5, dWeight: $6, dBias: $7, dInput: $8) },
        denseForward: { Reference.denseForward(n: $0, inputs: $1, outputs: $2, relu: $3, x: $4, weight: $5, bias: $6, y: $7) },
        denseBackward: { Reference.denseBackward(n: $0, inputs: $1, outputs: $2, x: $3, weight: $4, dY: $6, dWeight: $7, dBias: $8, dX: $9) },
        denseBackwardInput: { Reference.denseBackwardInput(n: $0, inputs: $1, outputs: $2, weight: $3, dY: $5, dX: $6) },
        transpose: { rows, cols, src, dst, first, count in
            for j in first..<(first + count) {
                let j0 = j / 64 * 64, width = min(64, rows - j0)
                for k in 0..<cols { dst[j0 * cols + k * width + j - j0] = src[j * cols + k] }
            }
        },
        reluBackward: { Reference.reluBackward(count: $0, output: $1, gradient: $2) },
        optimizer: { Reference.optimizer($0, first: $1, count: $2, gradients: $3, shards: $4, weights: $5, mask: $6, moment1: $7, moment2: $8) })

    /// The SIMD kernels compiled for this module's ISA (x86-64-v3: AVX2 + FMA), with the narrow dense tiles.
    package static let avx2 = KernelSet(
        name: "avx2",
        convPoolForward: { ConvKernels.forward($0, n: $1, input: $2, weight: $3, bias: $4, output: $5, argmax: $6) },
        convPoolBackward: { ConvKernels.backward($0, n: $1, input: $2, weight: $3, dOutput: $4, argmax: $5, dWeight: $6, dBias: $7, dInput: $8) },
        denseForward: { DenseKernels.forward(n: $0, inputs: $1, outputs: $2, relu: $3, x: $4, weight: $5, bias: $6, y: $7, narrow: true) },
        denseBackward: { DenseKernels.backward(n: $0, inputs: $1, outputs: $2, x: $3, weight: $4, weightT: $5, dY: $6, dWeight: $7, dBias: $8, dX: $9, narrow: true) },
        denseBackwardInput: { DenseKernels.backwardInput(n: $0, inputs: $1, outputs: $2, weight: $3, weightT: $4, dY: $5, dX: $6, narrow: true) },
        transpose: { DenseKernels.transpose(rows: $0, cols: $1, src: $2, dst: $3, firstRow: $4, rowCount: $5) },
        reluBackward: { ElementwiseKernels.reluBackward(count: $0, output: $1, gradient: $2) },
        optimizer: { $0.apply(first: $1, count: $2, gradients: $3, shards: $4, weights: $5, mask: $6, moment1: $7, moment2: $8) })
}
