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

    /// (geometry, n, input, weight, bias, output, columns) — ConvKernels.generalForward (any stride/padding).
    package var convForward: ConvForward
    /// (geometry, n, input, weight, dOutput, dWeight +=, dBias +=, dInput = (optional), columns, dColumns)
    package var convBackward: ConvBackward
    /// (geometry, n, input, weight, bias, output) — DepthwiseKernels.forward.
    package var depthwiseForward: DepthwiseForward
    /// (geometry, n, input, weight, dOutput, dWeight +=, dBias +=, dInput = (optional)) — DepthwiseKernels.backward.
    package var depthwiseBackward: DepthwiseBackward
    /// (geometry, n, input, output, argmax); nil argmax: the values only (inference).
    package var maxPoolForward: @Sendable (Pool2DGeometry, Int, UnsafePointer<Float>, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Int32>?) -> Void
    /// (geometry, n, dOutput, argmax, dInput =)
    package var maxPoolBackward: @Sendable (Pool2DGeometry, Int, UnsafePointer<Float>, UnsafePointer<Int32>, UnsafeMutablePointer<Float>) -> Void
    /// (geometry, n, input, output)
    package var avgPoolForward: @Sendable (Pool2DGeometry, Int, UnsafePointer<Float>, UnsafeMutablePointer<Float>) -> Void
    /// (geometry, n, dOutput, dInput =)
    package var avgPoolBackward: @Sendable (Pool2DGeometry, Int, UnsafePointer<Float>, UnsafeMutablePointer<Float>) -> Void
    /// (function, count, x, y)
    package var activationForward: @Sendable (ActivationFunction, Int, UnsafePointer<Float>, UnsafeMutablePointer<Float>) -> Void
    /// (function, count, y, dY, dX =)
    package var activationBackward: @Sendable (ActivationFunction, Int, UnsafePointer<Float>, UnsafePointer<Float>, UnsafeMutablePointer<Float>) -> Void

    package typealias ConvForward = @Sendable (ConvGeometry, Int, UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>,
                                               UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>) -> Void
    package typealias ConvBackward = @Sendable (ConvGeometry, Int, UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>,
                                                UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>?,
                                                UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>) -> Void

    package typealias DepthwiseForward = @Sendable (ConvGeometry, Int, UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>,
                                                    UnsafeMutablePointer<Float>) -> Void
    package typealias DepthwiseBackward = @Sendable (ConvGeometry, Int, UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>,
                                                     UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>?) -> Void

    package init(name: String,
                 convPoolForward: @escaping @Sendable (ConvPoolGeometry, Int, UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Int32>) -> Void,
                 convPoolBackward: @escaping @Sendable (ConvPoolGeometry, Int, UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Int32>, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>?) -> Void,
                 denseForward: @escaping @Sendable (Int, Int, Int, Bool, UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>, UnsafeMutablePointer<Float>) -> Void,
                 denseBackward: @escaping @Sendable (Int, Int, Int, UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>?, UnsafePointer<Float>, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>?) -> Void,
                 denseBackwardInput: @escaping @Sendable (Int, Int, Int, UnsafePointer<Float>, UnsafePointer<Float>?, UnsafePointer<Float>, UnsafeMutablePointer<Float>) -> Void,
                 transpose: @escaping @Sendable (Int, Int, UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int, Int) -> Void,
                 reluBackward: @escaping @Sendable (Int, UnsafePointer<Float>, UnsafeMutablePointer<Float>) -> Void,
                 optimizer: @escaping @Sendable (OptimizerStep, Int, Int, UnsafePointer<UnsafeMutablePointer<Float>>, Int, UnsafeMutablePointer<Float>, UnsafePointer<Float>, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>) -> Void,
                 convForward: @escaping ConvForward, convBackward: @escaping ConvBackward,
                 depthwiseForward: @escaping DepthwiseForward, depthwiseBackward: @escaping DepthwiseBackward,
                 maxPoolForward: @escaping @Sendable (Pool2DGeometry, Int, UnsafePointer<Float>, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Int32>?) -> Void,
                 maxPoolBackward: @escaping @Sendable (Pool2DGeometry, Int, UnsafePointer<Float>, UnsafePointer<Int32>, UnsafeMutablePointer<Float>) -> Void,
                 avgPoolForward: @escaping @Sendable (Pool2DGeometry, Int, UnsafePointer<Float>, UnsafeMutablePointer<Float>) -> Void,
                 avgPoolBackward: @escaping @Sendable (Pool2DGeometry, Int, UnsafePointer<Float>, UnsafeMutablePointer<Float>) -> Void,
                 activationForward: @escaping @Sendable (ActivationFunction, Int, UnsafePointer<Float>, UnsafeMutablePointer<Float>) -> Void,
                 activationBackward: @escaping @Sendable (ActivationFunction, Int, UnsafePointer<Float>, UnsafePointer<Float>, UnsafeMutablePointer<Float>) -> Void) {
        self.name = name
        self.convPoolForward = convPoolForward; self.convPoolBackward = convPoolBackward
        self.denseForward = denseForward; self.denseBackward = denseBackward; self.denseBackwardInput = denseBackwardInput
        self.transpose = transpose
        self.reluBackward = reluBackward; self.optimizer = optimizer
        self.convForward = convForward; self.convBackward = convBackward
        self.depthwiseForward = depthwiseForward; self.depthwiseBackward = depthwiseBackward
        self.maxPoolForward = maxPoolForward; self.maxPoolBackward = maxPoolBackward
        self.avgPoolForward = avgPoolForward; self.avgPoolBackward = avgPoolBackward
        self.activationForward = activationForward; self.activationBackward = activationBackward
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
        optimizer: { Reference.optimizer($0, first: $1, count: $2, gradients: $3, shards: $4, weights: $5, mask: $6, moment1: $7, moment2: $8) },
        convForward: { g, n, x, w, b, y, _ in Reference.convForward(g, n: n, input: x, weight: w, bias: b, output: y) },
        convBackward: { g, n, x, w, dy, dw, db, dx, _, _ in
            Reference.convBackward(g, n: n, input: x, weight: w, dOutput: dy, dWeight: dw, dBias: db, dInput: dx) },
        depthwiseForward: { Reference.depthwiseForward($0, n: $1, input: $2, weight: $3, bias: $4, output: $5) },
        depthwiseBackward: { Reference.depthwiseBackward($0, n: $1, input: $2, weight: $3, dOutput: $4, dWeight: $5, dBias: $6, dInput: $7) },
        maxPoolForward: { Reference.maxPool2dForward($0, n: $1, input: $2, output: $3, argmax: $4) },
        maxPoolBackward: { Reference.maxPool2dBackward($0, n: $1, dOutput: $2, argmax: $3, dInput: $4) },
        avgPoolForward: { Reference.avgPool2dForward($0, n: $1, input: $2, output: $3) },
        avgPoolBackward: { Reference.avgPool2dBackward($0, n: $1, dOutput: $2, dInput: $3) },
        activationForward: { Reference.activationForward($0, count: $1, x: $2, y: $3) },
        activationBackward: { Reference.activationBackward($0, count: $1, y: $2, dY: $3, dX: $4) })

    /// The SIMD kernels compiled for this module's ISA (x86-64-v3: AVX2 + FMA), with the narrow dense tiles.
    package static let avx2 = KernelSet(
        name: "avx2",
        convPoolForward: {
            if ConvKernels.takesSeedForward($0, narrow: true) { avx2SeedConvForward($0, $1, $2, $3, $4, $5, $6) }
            else { ConvKernels.forward($0, n: $1, input: $2, weight: $3, bias: $4, output: $5, argmax: $6) }
        },
        convPoolBackward: { ConvKernels.backward($0, n: $1, input: $2, weight: $3, dOutput: $4, argmax: $5, dWeight: $6, dBias: $7, dInput: $8,
                                                 narrow: true) },
        denseForward: avx2DenseForward,
        denseBackward: avx2DenseBackward,
        denseBackwardInput: avx2DenseBackwardInput,
        transpose: { DenseKernels.transpose(rows: $0, cols: $1, src: $2, dst: $3, firstRow: $4, rowCount: $5) },
        reluBackward: { ElementwiseKernels.reluBackward(count: $0, output: $1, gradient: $2) },
        optimizer: { $0.apply(first: $1, count: $2, gradients: $3, shards: $4, weights: $5, mask: $6, moment1: $7, moment2: $8) },
        convForward: { ConvKernels.generalForward($0, n: $1, input: $2, weight: $3, bias: $4, output: $5, columns: $6, gemm: avx2DenseForward,
                                                   direct: avx2DirectConv) },
        convBackward: { ConvKernels.generalBackward($0, n: $1, input: $2, weight: $3, dOutput: $4, dWeight: $5, dBias: $6, dInput: $7,
                                                     columns: $8, dColumns: $9, gemm: avx2DenseBackward) },
        depthwiseForward: { DepthwiseKernels.forward($0, n: $1, input: $2, weight: $3, bias: $4, output: $5) },
        depthwiseBackward: { DepthwiseKernels.backward($0, n: $1, input: $2, weight: $3, dOutput: $4, dWeight: $5, dBias: $6, dInput: $7) },
        maxPoolForward: { PoolKernels.maxForward($0, n: $1, input: $2, output: $3, argmax: $4) },
        maxPoolBackward: { PoolKernels.maxBackward($0, n: $1, dOutput: $2, argmax: $3, dInput: $4) },
        avgPoolForward: { PoolKernels.avgForward($0, n: $1, input: $2, output: $3) },
        avgPoolBackward: { PoolKernels.avgBackward($0, n: $1, dOutput: $2, dInput: $3) },
        activationForward: { ElementwiseKernels.activationForward($0, count: $1, x: $2, y: $3) },
        activationBackward: { ElementwiseKernels.activationBackward($0, count: $1, y: $2, dY: $3, dX: $4) })
}

/// The AVX2 table's seed conv forward (ConvKernels.seedForward, 8 filters a pass), in a closure of its own so it is inlined.
let avx2SeedConvForward: @Sendable (ConvPoolGeometry, Int, UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>,
                                    UnsafeMutablePointer<Float>, UnsafeMutablePointer<Int32>) -> Void = {
    ConvKernels.seedForward($0, n: $1, input: $2, weight: $3, bias: $4, output: $5, argmax: $6, narrow: true)
}

/// The AVX2 table's direct conv forward (6 pixels × 16 filters tiles), one image per call.
let avx2DirectConv: @Sendable (ConvGeometry, UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>, UnsafeMutablePointer<Float>,
                               UnsafeMutablePointer<Float>) -> Void = {
    ConvKernels.directForward($0, input: $1, weight: $2, bias: $3, output: $4, scratch: $5, narrow: true)
}

/// The AVX2 table's dense GEMMs (narrow tiles), shared by its dense and general-conv entries.
let avx2DenseForward: @Sendable (Int, Int, Int, Bool, UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>,
                                 UnsafeMutablePointer<Float>) -> Void = {
    if $0 < 4 { avx2DenseRows($0, $1, $2, $3, $4, $5, $6, $7) }
    else { DenseKernels.forward(n: $0, inputs: $1, outputs: $2, relu: $3, x: $4, weight: $5, bias: $6, y: $7, narrow: true) }
}
/// Batches of 1–3 images: the matrix-vector products that skip zero inputs (DenseKernels.forwardRows, 64-column tiles).
let avx2DenseRows: @Sendable (Int, Int, Int, Bool, UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>,
                              UnsafeMutablePointer<Float>) -> Void = {
    DenseKernels.forwardRows(n: $0, inputs: $1, outputs: $2, relu: $3, x: $4, weight: $5, bias: $6, y: $7, narrow: true)
}
let avx2DenseBackward: @Sendable (Int, Int, Int, UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>?, UnsafePointer<Float>,
                                  UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>?) -> Void = {
    // dW, dB here; dX through its own closure, so each large kernel body is inlined into a function of its own
    // (one function holding both exceeds the inliner's budget and calls the AVX2-compiled copy — check_isa.sh).
    DenseKernels.backward(n: $0, inputs: $1, outputs: $2, x: $3, weight: $4, weightT: $5, dY: $6, dWeight: $7, dBias: $8, dX: nil, narrow: true)
    if let dX = $9 { avx2DenseBackwardInput($0, $1, $2, $4, $5, $6, dX) }
}
let avx2DenseBackwardInput: @Sendable (Int, Int, Int, UnsafePointer<Float>, UnsafePointer<Float>?, UnsafePointer<Float>,
                                     UnsafeMutablePointer<Float>) -> Void = {
    DenseKernels.backwardInput(n: $0, inputs: $1, outputs: $2, weight: $3, weightT: $4, dY: $5, dX: $6, narrow: true)
}
