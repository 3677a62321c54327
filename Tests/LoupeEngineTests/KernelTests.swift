import Testing
@testable import LoupeEngine
@_spi(Kernels) import LoupeKernels
import LoupeKernelsAVX512

/// Random floats in [-scale, scale) from a seeded generator, in an owned buffer.
func randomBuffer(_ count: Int, seed: UInt64, scale: Float = 1) -> FloatBuffer {
    var rng = SeededGenerator(seed: seed)
    let b = FloatBuffer(count: count)
    for i in 0..<count { b[i] = (rng.nextUnitFloat() * 2 - 1) * scale }
    return b
}

func copyBuffer(_ b: FloatBuffer) -> FloatBuffer { FloatBuffer(b.array()) }

/// max |a - b| / max(1, |b|) over the first count elements.
func maxRelativeError(_ a: FloatBuffer, _ b: FloatBuffer, count: Int? = nil) -> Float {
    var e: Float = 0
    for i in 0..<(count ?? b.count) { e = max(e, abs(a[i] - b[i]) / max(1, abs(b[i]))) }
    return e
}

/// The SIMD tables this CPU can run (AVX2 always; AVX-512 where cpuid says so).
let simdTables: [KernelSet] = ISA.available.filter { $0.name != "reference" }

let seedConv = ConvPoolGeometry(conv: ConvGeometry(height: 28, width: 28, channels: 1, filters: 32, kernel: 3, padTop: 0, padLeft: 0,
                                                   outHeight: 26, outWidth: 26, relu: true), pool: 2)
/// The seed conv's kernels (3×3, 1 channel, pool 2) without ReLU, 16 filters, an odd pooled width (one output past the pairs).
let seedShapedConvNoReLU = ConvPoolGeometry(conv: ConvGeometry(height: 12, width: 13, channels: 1, filters: 16, kernel: 3, padTop: 0, padLeft: 0,
                                                              outHeight: 10, outWidth: 11, relu: false), pool: 2)
/// A geometry that takes the generic paths: 2 channels, 2×2 kernel, pool 3, odd sizes, 16 filters, no ReLU.
let oddConv = ConvPoolGeometry(conv: ConvGeometry(height: 9, width: 11, channels: 2, filters: 16, kernel: 2, padTop: 0, padLeft: 0,
                                                  outHeight: 8, outWidth: 10, relu: false), pool: 3)
let plainConv = ConvPoolGeometry(conv: ConvGeometry(height: 6, width: 5, channels: 3, filters: 48, kernel: 3, padTop: 0, padLeft: 0,
                                                    outHeight: 4, outWidth: 3, relu: true), pool: 1)

@Suite struct KernelTests {
    @Test func theFallbackAndTheAVX512TablesAreBothAvailableToTests() {
        #expect(simdTables.contains { $0.name == "avx2" })
        #expect(ISA.hasAVX2)
        if ISA.hasAVX512 { #expect(simdTables.contains { $0.name == "avx512" }) }
    }

    // Tolerance: 1e-5 relative; the kernels sum in the reference's order except the dX dot products.
    @Test(arguments: [seedConv, seedShapedConvNoReLU, oddConv, plainConv])
    func convPoolMatchesReference(_ g: ConvPoolGeometry) {
        let n = 3
        let x = randomBuffer(n * g.conv.inputSize, seed: 1), w = randomBuffer(g.conv.weightCount, seed: 2, scale: 0.5)
        let b = randomBuffer(g.conv.filters, seed: 3, scale: 0.2), dOut = randomBuffer(n * g.outputSize, seed: 4)
        let refOut = FloatBuffer(count: n * g.outputSize), refArg = IndexBuffer(count: n * g.outputSize)
        Reference.convPoolForward(g, n: n, input: x.base, weight: w.base, bias: b.base, output: refOut.base, argmax: refArg.base)
        let refDW = randomBuffer(g.conv.weightCount, seed: 5), refDB = randomBuffer(g.conv.filters, seed: 6)
        let refDX = FloatBuffer(count: n * g.conv.inputSize)
        Reference.convPoolBackward(g, n: n, input: x.base, weight: w.base, dOutput: dOut.base, argmax: refArg.base,
                                   dWeight: refDW.base, dBias: refDB.base, dInput: refDX.base)
        for table in simdTables {
            let out = FloatBuffer(count: n * g.outputSize), arg = IndexBuffer(count: n * g.outputSize)
            table.convPoolForward(g, n, x.base, w.base, b.base, out.base, arg.base)
            #expect(maxRelativeError(out, refOut) < 1e-5, "\(table.name) forward")
            var argMismatch = 0
            for i in 0..<(n * g.outputSize) where arg.base[i] != refArg.base[i] { argMismatch += 1 }
            #expect(argMismatch == 0, "\(table.name) argmax")
            let dW = randomBuffer(g.conv.weightCount, seed: 5), dB = randomBuffer(g.conv.filters, seed: 6)
            let dX = FloatBuffer(count: n * g.conv.inputSize)
            table.convPoolBackward(g, n, x.base, w.base, dOut.base, arg.base, dW.base, dB.base, dX.base)
            #expect(maxRelativeError(dW, refDW) < 1e-5, "\(table.name) dWeight")
            #expect(maxRelativeError(dB, refDB) < 1e-5, "\(table.name) dBias")
            let dxError = maxRelativeError(dX, refDX)
            #expect(dxError < 1e-5, "\(table.name) dInput \(dxError)")
        }
    }

    // (13, 300, 128): 12 rows in the AVX-512 6×64 tiles plus a one-row rest.
    @Test(arguments: [(1, 5408, 128, true), (5, 37, 48, false), (7, 128, 10, false), (4, 64, 16, true), (6, 80, 32, true), (9, 5408, 128, true),
                      (13, 300, 128, false)])
    func denseMatchesReference(_ shape: (Int, Int, Int, Bool)) {
        let (n, inputs, outputs, relu) = shape
        let x = randomBuffer(n * inputs, seed: 11), w = randomBuffer(inputs * outputs, seed: 12, scale: 0.1)
        let b = randomBuffer(outputs, seed: 13), dY = randomBuffer(n * outputs, seed: 14)
        let refY = FloatBuffer(count: n * outputs)
        Reference.denseForward(n: n, inputs: inputs, outputs: outputs, relu: relu, x: x.base, weight: w.base, bias: b.base, y: refY.base)
        let refDW = randomBuffer(inputs * outputs, seed: 15), refDB = randomBuffer(outputs, seed: 16), refDX = FloatBuffer(count: n * inputs)
        Reference.denseBackward(n: n, inputs: inputs, outputs: outputs, x: x.base, weight: w.base, dY: dY.base,
                                dWeight: refDW.base, dBias: refDB.base, dX: refDX.base)
        for table in simdTables {
            let y = FloatBuffer(count: n * outputs)
            table.denseForward(n, inputs, outputs, relu, x.base, w.base, b.base, y.base)
            #expect(maxRelativeError(y, refY) < 1e-5, "\(table.name) forward")
            let dW = randomBuffer(inputs * outputs, seed: 15), dB = randomBuffer(outputs, seed: 16), dX = FloatBuffer(count: n * inputs)
            table.denseBackward(n, inputs, outputs, x.base, w.base, nil, dY.base, dW.base, dB.base, dX.base)
            #expect(maxRelativeError(dW, refDW) < 1e-5, "\(table.name) dWeight")
            #expect(maxRelativeError(dB, refDB) < 1e-5, "\(table.name) dBias")
            #expect(maxRelativeError(dX, refDX) < 1e-5, "\(table.name) dX")
            // The training path: dX from the transposed weight (built by the table's transpose, in two halves).
            let wT = FloatBuffer(count: inputs * outputs)
            table.transpose(inputs, outputs, w.base, wT.base, 0, inputs / 2)
            table.transpose(inputs, outputs, w.base, wT.base, inputs / 2, inputs - inputs / 2)
            let refWT = FloatBuffer(count: inputs * outputs)
            KernelSet.reference.transpose(inputs, outputs, w.base, refWT.base, 0, inputs)
            #expect(wT.array() == refWT.array(), "\(table.name) packed transpose")
            let dW2 = randomBuffer(inputs * outputs, seed: 15), dB2 = randomBuffer(outputs, seed: 16), dX2 = FloatBuffer(count: n * inputs)
            table.denseBackward(n, inputs, outputs, x.base, w.base, wT.base, dY.base, dW2.base, dB2.base, dX2.base)
            #expect(maxRelativeError(dX2, refDX) < 1e-5, "\(table.name) dX via weightT")
            #expect(dW2.array() == dW.array(), "\(table.name) dW via weightT")
        }
    }

    /// Batches of 1–3 images take the matrix-vector path that skips the weight rows of zero inputs
    /// (DenseKernels.forwardRows). Inputs here are ReLU-like: about half exact zeros (some −0), runs of zeros
    /// longer than a 64-input mask word, and widths that leave partial words and partial 128-column tiles.
    /// Tolerance 1e-5 relative against the plain loops; the two tables must agree bit for bit.
    @Test(arguments: [(1, 5408, 128), (2, 300, 144), (3, 37, 48), (1, 200, 16), (1, 64, 64), (2, 1000, 272)])
    func denseRowsSkippingZeroInputsMatchReference(_ shape: (Int, Int, Int)) {
        let (n, inputs, outputs) = shape
        let x = randomBuffer(n * inputs, seed: 51), w = randomBuffer(inputs * outputs, seed: 52, scale: 0.1)
        let b = randomBuffer(outputs, seed: 53)
        for i in 0..<(n * inputs) where x[i] < 0 { x[i] = i % 7 == 0 ? -0.0 : 0 }
        for i in stride(from: 0, to: min(n * inputs, 150), by: 1) where i >= 70 { x[i] = 0 }   // a long run of zeros
        var results: [[Float]] = []
        for relu in [false, true] {
            let refY = FloatBuffer(count: n * outputs)
            Reference.denseForward(n: n, inputs: inputs, outputs: outputs, relu: relu, x: x.base, weight: w.base, bias: b.base, y: refY.base)
            for table in simdTables {
                let y = FloatBuffer(count: n * outputs)
                table.denseForward(n, inputs, outputs, relu, x.base, w.base, b.base, y.base)
                #expect(maxRelativeError(y, refY) < 1e-5, "\(table.name) relu \(relu)")
                if !relu { results.append(y.array()) }
            }
        }
        #expect(results.allSatisfy { $0 == results[0] }, "the tables agree bit for bit")
        // A NaN input is not skipped: it reaches every output.
        let xNaN = copyBuffer(x)
        xNaN[inputs - 1] = .nan
        for table in simdTables {
            let y = FloatBuffer(count: n * outputs)
            table.denseForward(n, inputs, outputs, false, xNaN.base, w.base, b.base, y.base)
            #expect((0..<outputs).allSatisfy { y[$0].isNaN }, "\(table.name) NaN propagates")
        }
    }

    @Test func reluBackwardMatchesReference() {
        let count = 1000
        let out = randomBuffer(count, seed: 21)
        for i in 0..<count where out[i] < 0 { out[i] = 0 }   // ReLU outputs: zeros and positives
        let g = randomBuffer(count, seed: 22)
        let ref = copyBuffer(g)
        Reference.reluBackward(count: count, output: out.base, gradient: ref.base)
        for table in simdTables {
            let got = copyBuffer(g)
            table.reluBackward(count, out.base, got.base)
            #expect(got.array() == ref.array(), "\(table.name)")
        }
    }

    // Adam's SIMD path uses a Newton-refined √v (relative error ~1e-7): tolerance 1e-6 relative.
    @Test(arguments: [OptimizerRule.adam(beta1: 0.9, beta2: 0.999, epsilon: 1e-7), .sgd(momentum: 0.9)])
    func optimizerMatchesReference(_ rule: OptimizerRule) {
        let count = 1000 + 7, shards = 2
        let grads = [randomBuffer(count, seed: 31), randomBuffer(count, seed: 32)]
        let pointers = UnsafeMutablePointer<UnsafeMutablePointer<Float>>.allocate(capacity: shards)
        defer { pointers.deallocate() }
        for s in 0..<shards { pointers[s] = grads[s].base }
        let mask = FloatBuffer(count: count)
        for i in 0..<count where i % 3 != 0 { mask[i] = 1 }
        let step = OptimizerStep(rule: rule, learningRate: 0.01, l2x2: 0.02, alpha: 0.003)
        let w0 = randomBuffer(count, seed: 33), m0 = randomBuffer(count, seed: 34, scale: 0.1), v0 = randomBuffer(count, seed: 35, scale: 0.1)
        for i in 0..<count { v0[i] = abs(v0[i]) }
        let (rw, rm, rv) = (copyBuffer(w0), copyBuffer(m0), copyBuffer(v0))
        Reference.optimizer(step, first: 0, count: count, gradients: pointers, shards: shards, weights: rw.base, mask: mask.base,
                            moment1: rm.base, moment2: rv.base)
        for table in simdTables {
            let (w, m, v) = (copyBuffer(w0), copyBuffer(m0), copyBuffer(v0))
            table.optimizer(step, 0, count, pointers, shards, w.base, mask.base, m.base, v.base)
            #expect(maxRelativeError(w, rw) < 1e-6, "\(table.name) weights")
            #expect(maxRelativeError(m, rm) < 1e-6, "\(table.name) moment1")
            #expect(maxRelativeError(v, rv) < 1e-6, "\(table.name) moment2")
        }
    }

    /// The seed conv's shape on both tables (ConvKernels.seedForward: 8 filters × 2 pooled outputs a step on AVX2,
    /// 16 × 3 on AVX-512): the same sums in the same order, so pooled values and argmax agree bit for bit — at pooled
    /// widths that leave each tile's remainder (7 = 3·2 + 1 = 2·3 + 1, 13, 5), with and without ReLU, 16 to 48 filters.
    @Test(.enabled(if: ISA.hasAVX512, "this CPU has no AVX-512"))
    func seedConvTablesAgreeBitForBit() throws {
        let avx2 = try #require(simdTables.first { $0.name == "avx2" }), avx512 = try #require(simdTables.first { $0.name == "avx512" })
        for (h, w, k, relu) in [(28, 28, 32, true), (17, 16, 48, true), (12, 13, 16, false), (9, 17, 32, false)] {
            let g = ConvPoolGeometry(conv: ConvGeometry(height: h, width: w, channels: 1, filters: k, kernel: 3, padTop: 0, padLeft: 0,
                                                        outHeight: h - 2, outWidth: w - 2, relu: relu), pool: 2)
            #expect(ConvKernels.takesSeedForward(g, narrow: true) && ConvKernels.takesSeedForward(g, narrow: false))
            let n = 3
            let x = randomBuffer(n * g.conv.inputSize, seed: 51), wt = randomBuffer(g.conv.weightCount, seed: 52, scale: 0.5)
            let b = randomBuffer(k, seed: 53, scale: 0.2)
            var values: [[Float]] = [], indices: [[Int32]] = []
            for table in [avx2, avx512] {
                let y = FloatBuffer(count: n * g.outputSize), am = IndexBuffer(count: n * g.outputSize)
                table.convPoolForward(g, n, x.base, wt.base, b.base, y.base, am.base)
                values.append(y.array())
                indices.append((0..<(n * g.outputSize)).map { am.base[$0] })
            }
            #expect(values[0] == values[1], "\(h)×\(w), \(k) filters, relu \(relu): values")
            #expect(indices[0] == indices[1], "\(h)×\(w), \(k) filters, relu \(relu): argmax")
        }
    }

    /// Ties: on a constant image the 4 windows under each pooled output are equal, so the argmax is the first window
    /// (0) — or 255 with ReLU where the value is not positive — as in the reference's first-maximum rule.
    @Test(arguments: [true, false])
    func seedConvPoolTiesTakeTheFirstWindow(_ relu: Bool) {
        let g = ConvPoolGeometry(conv: ConvGeometry(height: 10, width: 12, channels: 1, filters: 32, kernel: 3, padTop: 0, padLeft: 0,
                                                    outHeight: 8, outWidth: 10, relu: relu), pool: 2)
        let n = 2
        let x = FloatBuffer([Float](repeating: 0.5, count: n * g.conv.inputSize))
        let w = randomBuffer(g.conv.weightCount, seed: 61, scale: 0.5), b = randomBuffer(32, seed: 62, scale: 0.5)
        let refOut = FloatBuffer(count: n * g.outputSize), refArg = IndexBuffer(count: n * g.outputSize)
        Reference.convPoolForward(g, n: n, input: x.base, weight: w.base, bias: b.base, output: refOut.base, argmax: refArg.base)
        #expect((0..<(n * g.outputSize)).contains { refArg.base[$0] == 0 }, "some windows tie above zero")
        if relu { #expect((0..<(n * g.outputSize)).contains { refArg.base[$0] == 255 }, "some windows tie at or below zero") }
        for table in simdTables {
            let out = FloatBuffer(count: n * g.outputSize), arg = IndexBuffer(count: n * g.outputSize)
            table.convPoolForward(g, n, x.base, w.base, b.base, out.base, arg.base)
            #expect(maxRelativeError(out, refOut) < 1e-5, "\(table.name) forward")
            #expect((0..<(n * g.outputSize)).allSatisfy { arg.base[$0] == refArg.base[$0] }, "\(table.name) argmax")
        }
    }

    /// The AVX2 tiles (6×16, panel order) split the rows as the AVX-512 4×64 tiles do, so forward, dW and dX agree
    /// bit for bit for every batch size — the remainder rows included (not only the 4-aligned shards training uses).
    @Test(.enabled(if: ISA.hasAVX512, "this CPU has no AVX-512"))
    func denseTablesAgreeBitForBitAtEveryBatchSize() throws {
        let avx2 = try #require(simdTables.first { $0.name == "avx2" }), avx512 = try #require(simdTables.first { $0.name == "avx512" })
        for (inputs, outputs) in [(300, 128), (96, 48)] {
            let w = randomBuffer(inputs * outputs, seed: 41, scale: 0.1), b = randomBuffer(outputs, seed: 42)
            let wT = FloatBuffer(count: inputs * outputs)
            avx2.transpose(inputs, outputs, w.base, wT.base, 0, inputs)
            for n in 1...13 {
                let x = randomBuffer(n * inputs, seed: 43 + UInt64(n)), dY = randomBuffer(n * outputs, seed: 44 + UInt64(n))
                var results: [[Float]] = []
                for table in [avx2, avx512] {
                    let y = FloatBuffer(count: n * outputs), dW = FloatBuffer(count: inputs * outputs), dB = FloatBuffer(count: outputs)
                    let dX = FloatBuffer(count: n * inputs)
                    table.denseForward(n, inputs, outputs, true, x.base, w.base, b.base, y.base)
                    table.denseBackward(n, inputs, outputs, x.base, w.base, wT.base, dY.base, dW.base, dB.base, dX.base)
                    results.append(y.array() + dW.array() + dB.array() + dX.array())
                }
                #expect(results[0] == results[1], "\(n) × \(inputs) → \(outputs)")
            }
        }
    }

    /// The peak-FMA probe does the FMAs it claims: its result equals a plain loop of fused multiply-adds over the
    /// 12 chains (every lane of a chain holds the same value). Tolerance 1e-6 relative: the final sum of the lanes
    /// may associate differently from this loop's.
    @Test func fmaProbeMatchesPlainLoops() {
        func reference(lanes: Int, iterations: Int, seed: Float) -> Float {
            let m: Float = 0.999_999, c: Float = seed * 1e-7
            var a = [Float](repeating: seed, count: 12)
            for i in 1..<12 { a[i] = a[i - 1] + c }
            for _ in 0..<iterations { for i in 0..<12 { a[i] = c.addingProduct(a[i], m) } }   // fused: c + a·m, one rounding
            let chains = ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7])) + ((a[8] + a[9]) + (a[10] + a[11]))
            var sum: Float = 0
            for _ in 0..<lanes { sum += chains }
            return sum
        }
        for iterations in [0, 1, 1000] {
            let ymm = reference(lanes: 8, iterations: iterations, seed: 3)
            #expect(abs(FMAProbe.ymm(iterations: iterations, seed: 3) - ymm) <= 1e-6 * ymm, "ymm, \(iterations)")
            if ISA.hasAVX512 {
                let zmm = reference(lanes: 16, iterations: iterations, seed: 3)
                #expect(abs(zmmFMAProbe(iterations: iterations, seed: 3) - zmm) <= 1e-6 * zmm, "zmm, \(iterations)")
            }
        }
    }

    /// The FLOP counts benchmarks report: the seed network's conv (26·26 outputs × 288 weights) + dense layers.
    @Test func multiplyAddCountsOfTheSeedNetwork() throws {
        let plan = try Sequential(architecture: .seed, seed: 1).plan
        #expect(plan.forwardMACsPerImage == 26 * 26 * 288 + 5408 * 128 + 128 * 10)
        // Training: forward + weight gradients + the input gradients of both dense layers (not the first conv's).
        #expect(plan.trainingMACsPerImage == 3 * (26 * 26 * 288 + 5408 * 128 + 128 * 10) - 26 * 26 * 288)
    }
}
