// The same @inlinable kernels as LoupeKernels, compiled here for x86-64-v4 (AVX-512 F/BW/CD/DQ/VL):
// SIMD16<Float> becomes one zmm register and the 4×64 tiles keep all 16 accumulators in registers.
// Only called after LoupeEngine's cpuid check (ISA.swift) says the CPU has AVX-512.
@_spi(Kernels) import LoupeKernels

package let avx512KernelSet = KernelSet(
    name: "avx512",
    convPoolForward: {
        if ConvKernels.takesSeedForward($0, narrow: false) { avx512SeedConvForward($0, $1, $2, $3, $4, $5, $6) }
        else { ConvKernels.forward($0, n: $1, input: $2, weight: $3, bias: $4, output: $5, argmax: $6) }
    },
    convPoolBackward: { ConvKernels.backward($0, n: $1, input: $2, weight: $3, dOutput: $4, argmax: $5, dWeight: $6, dBias: $7, dInput: $8) },
    denseForward: avx512DenseForward,
    denseBackward: avx512DenseBackward,
    denseBackwardInput: avx512DenseBackwardInput,
    transpose: { DenseKernels.transpose(rows: $0, cols: $1, src: $2, dst: $3, firstRow: $4, rowCount: $5) },
    reluBackward: { ElementwiseKernels.reluBackward(count: $0, output: $1, gradient: $2) },
    optimizer: { $0.apply(first: $1, count: $2, gradients: $3, shards: $4, weights: $5, mask: $6, moment1: $7, moment2: $8) },
    convForward: { ConvKernels.generalForward($0, n: $1, input: $2, weight: $3, bias: $4, output: $5, columns: $6, gemm: avx512DenseForward,
                                               direct: avx512DirectConv) },
    convBackward: { ConvKernels.generalBackward($0, n: $1, input: $2, weight: $3, dOutput: $4, dWeight: $5, dBias: $6, dInput: $7,
                                                 columns: $8, dColumns: $9, gemm: avx512DenseBackward) },
    depthwiseForward: { DepthwiseKernels.forward($0, n: $1, input: $2, weight: $3, bias: $4, output: $5) },
    depthwiseBackward: { DepthwiseKernels.backward($0, n: $1, input: $2, weight: $3, dOutput: $4, dWeight: $5, dBias: $6, dInput: $7) },
    maxPoolForward: { PoolKernels.maxForward($0, n: $1, input: $2, output: $3, argmax: $4) },
    maxPoolBackward: { PoolKernels.maxBackward($0, n: $1, dOutput: $2, argmax: $3, dInput: $4) },
    avgPoolForward: { PoolKernels.avgForward($0, n: $1, input: $2, output: $3) },
    avgPoolBackward: { PoolKernels.avgBackward($0, n: $1, dOutput: $2, dInput: $3) },
    activationForward: { ElementwiseKernels.activationForward($0, count: $1, x: $2, y: $3) },
    activationBackward: { ElementwiseKernels.activationBackward($0, count: $1, y: $2, dY: $3, dX: $4) })

/// The seed conv forward (ConvKernels.seedForward, 16 filters a pass), in a closure of its own so it is inlined.
let avx512SeedConvForward: @Sendable (ConvPoolGeometry, Int, UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>,
                                      UnsafeMutablePointer<Float>, UnsafeMutablePointer<Int32>) -> Void = {
    ConvKernels.seedForward($0, n: $1, input: $2, weight: $3, bias: $4, output: $5, argmax: $6, narrow: false)
}

/// The direct conv forward (12 pixels × 16 filters tiles), one image per call.
let avx512DirectConv: @Sendable (ConvGeometry, UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>, UnsafeMutablePointer<Float>,
                                 UnsafeMutablePointer<Float>) -> Void = {
    if ConvKernels.usesDirect3x3C3($0) { avx512Direct3x3C3($0, $1, $2, $3, $4, $5); return }
    ConvKernels.directForward($0, input: $1, weight: $2, bias: $3, output: $4, scratch: $5, narrow: false)
}
/// The first conv of an RGB CNN (3×3, 3 channels; ConvKernels.direct3x3C3), in a closure of its own so it is inlined.
let avx512Direct3x3C3: @Sendable (ConvGeometry, UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>, UnsafeMutablePointer<Float>,
                                  UnsafeMutablePointer<Float>) -> Void = {
    ConvKernels.direct3x3C3($0, input: $1, weight: $2, bias: $3, output: $4, scratch: $5)
}

/// The dense GEMMs (4×64 tiles), shared by the dense and general-conv entries so each is inlined once.
let avx512DenseForward: @Sendable (Int, Int, Int, Bool, UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>,
                                   UnsafeMutablePointer<Float>) -> Void = {
    if $0 < 4 { avx512DenseRows($0, $1, $2, $3, $4, $5, $6, $7) }
    else { DenseKernels.forward(n: $0, inputs: $1, outputs: $2, relu: $3, x: $4, weight: $5, bias: $6, y: $7) }
}
/// Batches of 1–3 images: the matrix-vector products that skip zero inputs (DenseKernels.forwardRows).
let avx512DenseRows: @Sendable (Int, Int, Int, Bool, UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>,
                                UnsafeMutablePointer<Float>) -> Void = {
    DenseKernels.forwardRows(n: $0, inputs: $1, outputs: $2, relu: $3, x: $4, weight: $5, bias: $6, y: $7, narrow: false)
}
let avx512DenseBackward: @Sendable (Int, Int, Int, UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>?, UnsafePointer<Float>,
                                    UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>?) -> Void = {
    // dW, dB here; dX through its own closure, so each large kernel body is inlined into a function of its own
    // (one function holding both exceeds the inliner's budget and calls the AVX2-compiled copy — check_isa.sh).
    DenseKernels.backward(n: $0, inputs: $1, outputs: $2, x: $3, weight: $4, weightT: $5, dY: $6, dWeight: $7, dBias: $8, dX: nil)
    if let dX = $9 { avx512DenseBackwardInput($0, $1, $2, $4, $5, $6, dX) }
}
let avx512DenseBackwardInput: @Sendable (Int, Int, Int, UnsafePointer<Float>, UnsafePointer<Float>?, UnsafePointer<Float>,
                                     UnsafeMutablePointer<Float>) -> Void = {
    DenseKernels.backwardInput(n: $0, inputs: $1, outputs: $2, weight: $3, weightT: $4, dY: $5, dX: $6)
}

/// The AVX-512 (zmm) peak-FMA probe, compiled for x86-64-v4 (see LoupeKernels' FMAProbe).
public func zmmFMAProbe(iterations: Int, seed: Float) -> Float { FMAProbe.run(SIMD16<Float>.self, iterations: iterations, seed: seed) }
