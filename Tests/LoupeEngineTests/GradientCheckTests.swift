import Testing
@testable import LoupeEngine
@_spi(Kernels) import LoupeKernels

// Backward vs central finite differences. Each check treats a layer as f(θ) and the scalar
// L = Σ f(θ) · R for a fixed random R, so the analytic gradient is backward(dOutput = R). The
// numeric gradient (L(θ+h) − L(θ−h)) / 2h uses float forward passes summed in Double (h = 1e-2 for
// dense, 4e-3 for conv). Inputs are moved away from kinks: samples whose ReLU pre-activations lie
// within 0.05 (dense) / 0.01 (conv) of 0, or whose pooling windows have a runner-up that close to
// the maximum, are regenerated; a ±h step moves any of them by at most half that, so it cannot cross
// a kink. Tolerance: |numeric − analytic| ≤ 2e-3 + 2e-3·|analytic|.

func withinTolerance(_ numeric: Double, _ analytic: Float) -> Bool {
    abs(numeric - Double(analytic)) <= 2e-3 + 2e-3 * abs(Double(analytic))
}

/// Checks d(L)/d(buffer[i]) for ~40 entries of each buffer (pairs: the buffer, its analytic
/// gradient, its name) against the central difference (L(θ+h) − L(θ−h)) / 2h.
func checkFiniteDifferences(_ label: String, h: Float, _ pairs: [(FloatBuffer, FloatBuffer, String)], loss: () -> Double) {
    for (buffer, grad, name) in pairs {
        for i in stride(from: 0, to: buffer.count, by: max(1, buffer.count / 40)) {
            let saved = buffer[i]
            buffer[i] = saved + h; let lp = loss()
            buffer[i] = saved - h; let lm = loss()
            buffer[i] = saved
            let numeric = (lp - lm) / Double(2 * h)
            #expect(withinTolerance(numeric, grad[i]), "\(label) d\(name)[\(i)]: numeric \(numeric) analytic \(grad[i])")
        }
    }
}

func dot(_ a: FloatBuffer, _ r: FloatBuffer, _ count: Int) -> Double {
    var s: Double = 0
    for i in 0..<count { s += Double(a[i]) * Double(r[i]) }
    return s
}

@Suite struct GradientCheckTests {
    @Test(arguments: ["reference", "avx2"]) func denseBackwardMatchesFiniteDifferences(_ tableName: String) throws {
        try checkDenseBackward(tableName)
    }

    @Test(.enabled(if: ISA.hasAVX512, "this CPU has no AVX-512")) func denseBackwardMatchesFiniteDifferencesAVX512() throws {
        try checkDenseBackward("avx512")
    }

    @Test(arguments: ["reference", "avx2"]) func convPoolBackwardMatchesFiniteDifferences(_ tableName: String) throws {
        try checkConvPoolBackward(tableName)
    }

    @Test(.enabled(if: ISA.hasAVX512, "this CPU has no AVX-512")) func convPoolBackwardMatchesFiniteDifferencesAVX512() throws {
        try checkConvPoolBackward("avx512")
    }

    func checkDenseBackward(_ tableName: String) throws {
        let table = try #require(ISA.available.first(where: { $0.name == tableName }), "kernel table \(tableName) is missing")
        let n = 3, inputs = 20, outputs = 16
        var seed: UInt64 = 100
        var x = randomBuffer(n * inputs, seed: seed), w = randomBuffer(inputs * outputs, seed: seed + 1, scale: 0.5)
        let b = randomBuffer(outputs, seed: 3, scale: 0.1)
        // Regenerate until no pre-activation is within 0.05 of the ReLU kink.
        while true {
            let pre = FloatBuffer(count: n * outputs)
            Reference.denseForward(n: n, inputs: inputs, outputs: outputs, relu: false, x: x.base, weight: w.base, bias: b.base, y: pre.base)
            if pre.array().allSatisfy({ abs($0) > 0.05 }) { break }
            seed += 10
            x = randomBuffer(n * inputs, seed: seed); w = randomBuffer(inputs * outputs, seed: seed + 1, scale: 0.5)
        }
        let r = randomBuffer(n * outputs, seed: 4)
        let y = FloatBuffer(count: n * outputs)
        func loss() -> Double {
            table.denseForward(n, inputs, outputs, true, x.base, w.base, b.base, y.base)
            return dot(y, r, n * outputs)
        }
        // Analytic: dPre = R masked by ReLU, then backward.
        _ = loss()
        let dY = copyBuffer(r)
        table.reluBackward(n * outputs, y.base, dY.base)
        let dW = FloatBuffer(count: inputs * outputs), dB = FloatBuffer(count: outputs), dX = FloatBuffer(count: n * inputs)
        table.denseBackward(n, inputs, outputs, x.base, w.base, nil, dY.base, dW.base, dB.base, dX.base)
        checkFiniteDifferences(tableName, h: 1e-2, [(w, dW, "weight"), (b, dB, "bias"), (x, dX, "input")], loss: loss)
    }

    func checkConvPoolBackward(_ tableName: String) throws {
        let table = try #require(ISA.available.first(where: { $0.name == tableName }), "kernel table \(tableName) is missing")
        // The seed's kernel path (3×3, 1 channel, pool 2, 32 filters) on a 6×6 input, and the generic path.
        let small = ConvPoolGeometry(conv: ConvGeometry(height: 6, width: 6, channels: 1, filters: 32, kernel: 3, padTop: 0, padLeft: 0,
                                                        outHeight: 4, outWidth: 4, relu: true), pool: 2)
        let odd = ConvPoolGeometry(conv: ConvGeometry(height: 7, width: 8, channels: 2, filters: 16, kernel: 2, padTop: 0, padLeft: 0,
                                                      outHeight: 6, outWidth: 7, relu: false), pool: 3)
        for g in [small, odd] {
            let n = 1
            let conv = g.conv
            var seed: UInt64 = 200
            var x = randomBuffer(n * conv.inputSize, seed: seed), w = randomBuffer(conv.weightCount, seed: seed + 1, scale: 0.5)
            let b = randomBuffer(conv.filters, seed: 5, scale: 0.1)
            // Regenerate until every pooling window has a clear winner and no pooled value is near the ReLU kink.
            func clear() -> Bool {
                let plain = ConvGeometry(height: conv.height, width: conv.width, channels: conv.channels, filters: conv.filters,
                                         kernel: conv.kernel, padTop: 0, padLeft: 0, outHeight: conv.outHeight, outWidth: conv.outWidth, relu: false)
                let z = FloatBuffer(count: n * plain.outputSize)
                Reference.convForward(plain, n: n, input: x.base, weight: w.base, bias: b.base, output: z.base)
                for bi in 0..<n { for ph in 0..<g.outHeight { for pw in 0..<g.outWidth { for f in 0..<conv.filters {
                    var values: [Float] = []
                    for dh in 0..<g.pool { for dw in 0..<g.pool {
                        values.append(z[bi * plain.outputSize + ((ph * g.pool + dh) * conv.outWidth + pw * g.pool + dw) * conv.filters + f])
                    }}
                    values.sort(by: >)
                    if values.count > 1 && values[0] - values[1] < 0.01 { return false }
                    if conv.relu && abs(values[0]) < 0.01 { return false }
                }}}}
                return true
            }
            var tries = 0
            while !clear() && tries < 500 {
                seed += 10; tries += 1
                x = randomBuffer(n * conv.inputSize, seed: seed); w = randomBuffer(conv.weightCount, seed: seed + 1, scale: 0.5)
            }
            #expect(tries < 500, "could not find a kink-free sample")
            let r = randomBuffer(n * g.outputSize, seed: 6)
            let y = FloatBuffer(count: n * g.outputSize), arg = IndexBuffer(count: n * g.outputSize)
            func loss() -> Double {
                table.convPoolForward(g, n, x.base, w.base, b.base, y.base, arg.base)
                return dot(y, r, n * g.outputSize)
            }
            _ = loss()
            let dW = FloatBuffer(count: conv.weightCount), dB = FloatBuffer(count: conv.filters), dX = FloatBuffer(count: n * conv.inputSize)
            table.convPoolBackward(g, n, x.base, w.base, r.base, arg.base, dW.base, dB.base, dX.base)
            checkFiniteDifferences("\(tableName) \(g.pool == 2 ? "seed" : "odd")", h: 4e-3, [(w, dW, "weight"), (b, dB, "bias"), (x, dX, "input")],
                                   loss: loss)
        }
    }

    /// Softmax cross-entropy: dLogits = (softmax − onehot) · scale.
    @Test func softmaxCrossEntropyGradientMatchesFiniteDifferences() {
        let n = 4, classes = 10
        let z = randomBuffer(n * classes, seed: 300, scale: 3)
        var labels: [UInt8] = [3, 0, 9, 5]
        let d = FloatBuffer(count: n * classes)
        func loss() -> Double {
            labels.withUnsafeMutableBufferPointer { l in softmaxCrossEntropy(n: n, classes: classes, logits: z.base, labels: l.baseAddress!, scale: 1, dLogits: d.base).loss }
        }
        _ = loss()
        let analytic = copyBuffer(d)
        let h: Float = 1e-2
        for i in 0..<(n * classes) {
            let saved = z[i]
            z[i] = saved + h; let lp = loss()
            z[i] = saved - h; let lm = loss()
            z[i] = saved
            #expect(withinTolerance((lp - lm) / Double(2 * h), analytic[i]), "dLogits[\(i)]")
        }
    }
}
