import Testing
@testable import LoupeEngine
@_spi(Kernels) import LoupeKernels

// Backward of the general layers vs central finite differences, as GradientCheckTests does for the
// dense and fused conv kernels: L = Σ f(θ) · R for a fixed random R, numeric (L(θ+h) − L(θ−h)) / 2h
// in Double over float forwards, tolerance |numeric − analytic| ≤ 2e-3 + 2e-3·|analytic| (withinTolerance).
// Samples are moved away from kinks rather than loosening the tolerance: no ReLU pre-activation
// within 0.01 of 0, max-pool inputs are distinct values 0.02 apart, no activation
// input within 0.05 of a ReLU/leaky/clip kink; h (≤ 4e-3 for conv, 1e-2 elsewhere) cannot cross them.
// The check itself: checkFiniteDifferences (GradientCheckTests.swift).

@Suite struct LayerGradientCheckTests {
    @Test(arguments: ["reference", "avx2"]) func stridedPaddedConvBackwardMatchesFiniteDifferences(_ name: String) throws {
        try checkConv(name)
    }
    @Test(.enabled(if: ISA.hasAVX512, "this CPU has no AVX-512")) func stridedPaddedConvBackwardMatchesFiniteDifferencesAVX512() throws {
        try checkConv("avx512")
    }
    @Test(arguments: ["reference", "avx2"]) func depthwiseConvBackwardMatchesFiniteDifferences(_ name: String) throws {
        try checkConv(name, depthwise: true)
    }
    @Test(.enabled(if: ISA.hasAVX512, "this CPU has no AVX-512")) func depthwiseConvBackwardMatchesFiniteDifferencesAVX512() throws {
        try checkConv("avx512", depthwise: true)
    }
    @Test(arguments: ["reference", "avx2"]) func poolingBackwardMatchesFiniteDifferences(_ name: String) throws {
        try checkPooling(name)
    }
    @Test(.enabled(if: ISA.hasAVX512, "this CPU has no AVX-512")) func poolingBackwardMatchesFiniteDifferencesAVX512() throws {
        try checkPooling("avx512")
    }
    @Test(arguments: ["reference", "avx2"]) func activationBackwardMatchesFiniteDifferences(_ name: String) throws {
        try checkActivations(name)
    }
    @Test(.enabled(if: ISA.hasAVX512, "this CPU has no AVX-512")) func activationBackwardMatchesFiniteDifferencesAVX512() throws {
        try checkActivations("avx512")
    }

    /// The general conv (im2col + GEMM), or with `depthwise` the depthwise kernels on the same geometries with
    /// filters = channels.
    func checkConv(_ tableName: String, depthwise: Bool = false) throws {
        let table = try table(named: tableName)
        var geometries = [
            // 3 channels, stride 2, asymmetric pads, 16 filters, ReLU.
            ConvGeometry(height: 7, width: 6, channels: 3, filters: 16, kernel: 3, padTop: 1, padLeft: 0, outHeight: 4, outWidth: 2, relu: true, stride: 2),
            // 1 channel, same padding stride 1, 5 filters (the scalar GEMM path), linear.
            ConvGeometry(height: 5, width: 5, channels: 1, filters: 5, kernel: 3, padTop: 1, padLeft: 1, outHeight: 5, outWidth: 5, relu: false),
            // 2×2 stride 3 (gaps between windows), 2 channels.
            ConvGeometry(height: 8, width: 7, channels: 2, filters: 16, kernel: 2, padTop: 0, padLeft: 0, outHeight: 3, outWidth: 2, relu: true, stride: 3),
            // A 3×2 kernel with strides (1, 2) and pads (top 1, left 1): 7×8 → 7×4, 3 channels, 4 filters, ReLU.
            ConvGeometry(height: 7, width: 8, channels: 3, filters: 4, kernelHeight: 3, kernelWidth: 2, padTop: 1, padLeft: 1,
                         outHeight: 7, outWidth: 4, relu: true, strideHeight: 1, strideWidth: 2),
            // A 1×4 kernel with strides (2, 1), valid: 6×9 → 3×6, 17 channels (a SIMD block and a tail when depthwise).
            ConvGeometry(height: 6, width: 9, channels: 17, filters: 5, kernelHeight: 1, kernelWidth: 4, padTop: 0, padLeft: 0,
                         outHeight: 3, outWidth: 6, relu: false, strideHeight: 2, strideWidth: 1),
        ]
        if depthwise { geometries = geometries.map { var d = $0; d.filters = d.channels; return d } }
        let weightCount = { (g: ConvGeometry) in depthwise ? g.depthwiseWeightCount : g.weightCount }
        for g in geometries {
            let n = 2
            var seed: UInt64 = 500
            var x = randomBuffer(n * g.inputSize, seed: seed), w = randomBuffer(weightCount(g), seed: seed + 1, scale: 0.5)
            let b = randomBuffer(g.filters, seed: 7, scale: 0.1)
            var plain = g; plain.relu = false
            func kinkFree() -> Bool {
                guard g.relu else { return true }
                let z = FloatBuffer(count: n * g.outputSize)
                if depthwise {
                    Reference.depthwiseForward(plain, n: n, input: x.base, weight: w.base, bias: b.base, output: z.base)
                } else {
                    Reference.convForward(plain, n: n, input: x.base, weight: w.base, bias: b.base, output: z.base)
                }
                return z.array().allSatisfy { abs($0) > 0.01 }
            }
            var tries = 0
            while !kinkFree() && tries < 500 {
                seed += 10; tries += 1
                x = randomBuffer(n * g.inputSize, seed: seed); w = randomBuffer(weightCount(g), seed: seed + 1, scale: 0.5)
            }
            #expect(tries < 500, "could not find a kink-free sample")
            let columns = FloatBuffer(count: max(1, min(n, g.imagesPerColumnBlock) * g.columnSize))
            let dColumns = FloatBuffer(count: columns.count)
            let r = randomBuffer(n * g.outputSize, seed: 8)
            let y = FloatBuffer(count: n * g.outputSize)
            func loss() -> Double {
                if depthwise {
                    table.depthwiseForward(g, n, x.base, w.base, b.base, y.base)
                } else {
                    table.convForward(g, n, x.base, w.base, b.base, y.base, columns.base)
                }
                return dot(y, r, n * g.outputSize)
            }
            _ = loss()
            let dY = copyBuffer(r)
            if g.relu { table.reluBackward(n * g.outputSize, y.base, dY.base) }
            let dW = FloatBuffer(count: weightCount(g)), dB = FloatBuffer(count: g.filters), dX = FloatBuffer(count: n * g.inputSize)
            if depthwise {
                table.depthwiseBackward(g, n, x.base, w.base, dY.base, dW.base, dB.base, dX.base)
            } else {
                table.convBackward(g, n, x.base, w.base, dY.base, dW.base, dB.base, dX.base, columns.base, dColumns.base)
            }
            checkFiniteDifferences("\(tableName) \(depthwise ? "depthwise" : "conv") k\(g.kernelHeight)×\(g.kernelWidth) s(\(g.strideHeight), \(g.strideWidth)) C\(g.channels)",
                                   h: 4e-3, [(w, dW, "weight"), (b, dB, "bias"), (x, dX, "input")], loss: loss)
        }
    }

    func checkPooling(_ tableName: String) throws {
        let table = try table(named: tableName)
        let geometries = [
            Pool2DGeometry(height: 7, width: 6, channels: 3, kernelHeight: 3, kernelWidth: 3, stride: 2, padTop: 1, padLeft: 1, outHeight: 4, outWidth: 3),
            Pool2DGeometry(height: 5, width: 5, channels: 17, kernelHeight: 2, kernelWidth: 2, stride: 1, padTop: 0, padLeft: 0, outHeight: 4, outWidth: 4),
            Pool2DGeometry(height: 4, width: 3, channels: 16, kernelHeight: 4, kernelWidth: 3, stride: 1, padTop: 0, padLeft: 0, outHeight: 1, outWidth: 1),
            // A 2×3 window with strides (2, 1) and pads (top 1, left 0): 7×6 → 4×4, overlapping columns.
            Pool2DGeometry(height: 7, width: 6, channels: 19, kernelHeight: 2, kernelWidth: 3, strideHeight: 2, strideWidth: 1,
                           padTop: 1, padLeft: 0, outHeight: 4, outWidth: 4),
        ]
        for g in geometries {
            let n = 2
            // Distinct values 0.02 apart in a seeded random order: every window's maximum beats its runner-up
            // by at least 0.02, so a ±4e-3 step cannot change a winner.
            var rng = SeededGenerator(seed: 600)
            let order = (0..<(n * g.inputSize)).shuffled(using: &rng)
            let x = FloatBuffer(order.map { Float($0) * 0.02 - Float(n * g.inputSize) * 0.01 })
            let r = randomBuffer(n * g.outputSize, seed: 9)
            let y = FloatBuffer(count: n * g.outputSize), arg = IndexBuffer(count: n * g.outputSize)
            let label = "\(tableName) pool \(g.kernelHeight)×\(g.kernelWidth) s(\(g.strideHeight), \(g.strideWidth)) pad \(g.padTop)"
            func maxLoss() -> Double { table.maxPoolForward(g, n, x.base, y.base, arg.base); return dot(y, r, n * g.outputSize) }
            _ = maxLoss()
            let dX = FloatBuffer(count: n * g.inputSize)
            table.maxPoolBackward(g, n, r.base, arg.base, dX.base)
            checkFiniteDifferences("\(label) max", h: 4e-3, [(x, dX, "input")], loss: maxLoss)
            func avgLoss() -> Double { table.avgPoolForward(g, n, x.base, y.base); return dot(y, r, n * g.outputSize) }
            table.avgPoolBackward(g, n, r.base, dX.base)
            checkFiniteDifferences("\(label) avg", h: 1e-2, [(x, dX, "input")], loss: avgLoss)
        }
    }

    func checkActivations(_ tableName: String) throws {
        let table = try table(named: tableName)
        let count = 53
        for f in layerActivations {
            let x = randomBuffer(count, seed: 700, scale: 4)
            // Move inputs off the kinks: 0 for relu/leaky, min and max for clip.
            let kinks: [Float]
            switch f {
            case .relu, .leakyRelu: kinks = [0]
            case let .clip(lo, hi): kinks = [lo, hi]
            default: kinks = []
            }
            for i in 0..<count { for k in kinks where abs(x[i] - k) < 0.05 { x[i] = k + 0.1 } }
            let r = randomBuffer(count, seed: 701), y = FloatBuffer(count: count)
            func loss() -> Double { table.activationForward(f, count, x.base, y.base); return dot(y, r, count) }
            _ = loss()
            let dX = FloatBuffer(count: count)
            table.activationBackward(f, count, y.base, r.base, dX.base)
            checkFiniteDifferences("\(tableName) \(f)", h: 1e-2, [(x, dX, "input")], loss: loss)
        }
    }
}
