// Fused valid convolution + ReLU + max pooling, vectorised over filters (K % 16 == 0).
// input (N, H, W, C), weight (k, k, C, K) HWIO, bias (K) → output (N, PH, PW, K) pooled,
// argmax (N, PH, PW, K) Int32 = window index dh·p + dw of the first maximum, or 255 where ReLU
// zeroed the output (so the gradient there is 0). pool p = 1 gives a plain convolution.
// max and ReLU commute, so pooling the pre-activations (bias included) and then applying ReLU
// equals Keras's conv → ReLU → pool, gradient routing included.

@_spi(Kernels) public struct ConvPoolGeometry: Sendable, Equatable {
    public var conv: ConvGeometry
    public var pool: Int
    @inlinable public var outHeight: Int { conv.outHeight / pool }
    @inlinable public var outWidth: Int { conv.outWidth / pool }
    @inlinable public var outputSize: Int { outHeight * outWidth * conv.filters }
    public init(conv: ConvGeometry, pool: Int) { self.conv = conv; self.pool = pool }
}

@_spi(Kernels) public enum ConvKernels {
    /// Whether `seedForward` runs g: the seed network's conv shape (3×3, 1 channel, pool 2) with filters a multiple
    /// of the table's vector (`narrow`, the AVX2 table: 8; else 16).
    @inlinable
    public static func takesSeedForward(_ g: ConvPoolGeometry, narrow: Bool) -> Bool {
        g.conv.kernel == 3 && g.conv.channels == 1 && g.pool == 2 && g.conv.filters % (narrow ? 8 : 16) == 0
    }

    /// The seed conv's shape (`takesSeedForward`): forward3x3Pool2Wide (16 filters a pass, zmm), or with `narrow`
    /// (the AVX2 table) forward3x3Pool2Narrow (8 filters a pass, 16 ymm registers). Same arithmetic per lane in the
    /// same order on every path, so identical results. Each table calls it from a closure of its own (KernelSet), so
    /// the kernel is inlined there with ReLU as a constant (one copy per value: no test in the epilogue).
    @inlinable @inline(__always)
    public static func seedForward(_ g: ConvPoolGeometry, n: Int, input: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                                   bias: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, argmax: UnsafeMutablePointer<Int32>,
                                   narrow: Bool) {
        switch (narrow, g.conv.relu) {
        case (true, true): forward3x3Pool2Narrow(g, n: n, input: input, weight: weight, bias: bias, output: output, argmax: argmax, relu: true)
        case (true, false): forward3x3Pool2Narrow(g, n: n, input: input, weight: weight, bias: bias, output: output, argmax: argmax, relu: false)
        case (false, true): forward3x3Pool2Wide(g, n: n, input: input, weight: weight, bias: bias, output: output, argmax: argmax, relu: true)
        case (false, false): forward3x3Pool2Wide(g, n: n, input: input, weight: weight, bias: bias, output: output, argmax: argmax, relu: false)
        }
    }

    /// Any other shape (the seed's shape takes `seedForward`), vectorised over filters (K % 16 == 0).
    @inlinable @inline(__always)
    public static func forward(_ g: ConvPoolGeometry, n: Int, input: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                                bias: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, argmax: UnsafeMutablePointer<Int32>) {
        let c = g.conv
        let K = c.filters, C = c.channels, k = c.kernel, W = c.width, p = g.pool
        let PH = g.outHeight, PW = g.outWidth
        let inSize = c.height * W * C, outSize = g.outputSize
        let rowStride = W * C
        for b in 0..<n {
            let x = input + b * inSize, y = output + b * outSize, am = argmax + b * outSize
            for ph in 0..<PH { for pw in 0..<PW {
                let origin = x + (ph * p * W + pw * p) * C
                let o = (ph * PW + pw) * K
                var kc = 0
                if p == 2 {
                    while kc + 32 <= K {
                        let bias0 = load16(bias + kc), bias1 = load16(bias + kc + 16)
                        var a0 = bias0, a1 = bias0, a2 = bias0, a3 = bias0, e0 = bias1, e1 = bias1, e2 = bias1, e3 = bias1
                        for kh in 0..<k { for kw in 0..<k {
                            let px = origin + kh * rowStride + kw * C
                            let wp = weight + (kh * k + kw) * C * K + kc
                            for ci in 0..<C {
                                let w0 = load16(wp + ci * K), w1 = load16(wp + ci * K + 16)
                                let v0 = splat(px[ci]), v1 = splat(px[C + ci]), v2 = splat(px[rowStride + ci]), v3 = splat(px[rowStride + C + ci])
                                a0.addProduct(v0, w0); a1.addProduct(v1, w0); a2.addProduct(v2, w0); a3.addProduct(v3, w0)
                                e0.addProduct(v0, w1); e1.addProduct(v1, w1); e2.addProduct(v2, w1); e3.addProduct(v3, w1)
                            }
                        }}
                        finishPool4(a0, a1, a2, a3, c.relu, y + o + kc, am + o + kc)
                        finishPool4(e0, e1, e2, e3, c.relu, y + o + kc + 16, am + o + kc + 16)
                        kc += 32
                    }
                    while kc < K {
                        let bias0 = load16(bias + kc)
                        var a0 = bias0, a1 = bias0, a2 = bias0, a3 = bias0
                        for kh in 0..<k { for kw in 0..<k {
                            let px = origin + kh * rowStride + kw * C
                            let wp = weight + (kh * k + kw) * C * K + kc
                            for ci in 0..<C {
                                let w0 = load16(wp + ci * K)
                                a0.addProduct(splat(px[ci]), w0); a1.addProduct(splat(px[C + ci]), w0)
                                a2.addProduct(splat(px[rowStride + ci]), w0); a3.addProduct(splat(px[rowStride + C + ci]), w0)
                            }
                        }}
                        finishPool4(a0, a1, a2, a3, c.relu, y + o + kc, am + o + kc)
                        kc += 16
                    }
                } else {
                    while kc < K {
                        var best = F16(repeating: -.infinity)
                        var index = I16(repeating: 0)
                        for dh in 0..<p { for dw in 0..<p {
                            var a = load16(bias + kc)
                            let pos = origin + (dh * W + dw) * C
                            for kh in 0..<k { for kw in 0..<k {
                                let px = pos + kh * rowStride + kw * C
                                let wp = weight + (kh * k + kw) * C * K + kc
                                for ci in 0..<C { a.addProduct(splat(px[ci]), load16(wp + ci * K)) }
                            }}
                            index = select(greaterMask(a, best), I16(repeating: Int32(dh * p + dw)), index)
                            best = maximum(best, a)
                        }}
                        store(best, index, c.relu, y + o + kc, am + o + kc)
                        kc += 16
                    }
                }
            }}
        }
    }

    /// The seed network's conv (3×3, 1 channel, 2×2 pool) on AVX-512, 16 filters a pass: three neighbouring pooled
    /// outputs a step, so 12 window accumulators (12 independent chains of 9 FMAs) beside the 9 weight vectors, all
    /// in zmm registers. A step reads 4 input rows × 8 columns; each kernel row's 3 taps run along a pixel row
    /// (`strip6`: each pixel broadcast once and used by every window that holds it, 8 broadcasts per 18 FMAs), and
    /// `pool4` pools with a compare into a mask register and two masked moves a window. Measured (batch 256, 1 thread): two
    /// outputs a step with the integer-mask pooling (greaterMask/select: 8 instructions a window) 72% of the zmm peak;
    /// the mask pooling alone → 83%; three outputs a step → 84%; four → 81% (C prototypes of each, then this).
    /// Each window sums bias, then its 9 taps in (kh, kw) order, as every seed conv path and the reference do.
    @inlinable @inline(__always)
    static func forward3x3Pool2Wide(_ g: ConvPoolGeometry, n: Int, input: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                                    bias: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, argmax: UnsafeMutablePointer<Int32>,
                                    relu: Bool) {
        let c = g.conv
        let K = c.filters, W = c.width, PH = g.outHeight, PW = g.outWidth
        let inSize = c.height * W, outSize = g.outputSize
        for kc in stride(from: 0, to: K, by: 16) {
            let bv = load16(bias + kc)
            let w00 = load16(weight + kc), w01 = load16(weight + K + kc), w02 = load16(weight + 2 * K + kc)
            let w10 = load16(weight + 3 * K + kc), w11 = load16(weight + 4 * K + kc), w12 = load16(weight + 5 * K + kc)
            let w20 = load16(weight + 6 * K + kc), w21 = load16(weight + 7 * K + kc), w22 = load16(weight + 8 * K + kc)
            for b in 0..<n {
                let x = input + b * inSize, y = output + b * outSize + kc, am = argmax + b * outSize + kc
                for ph in 0..<PH {
                    let r0 = x + 2 * ph * W, r1 = r0 + W, r2 = r1 + W, r3 = r2 + W
                    var pw = 0
                    while pw + 3 <= PW {
                        // a: the conv row 2·ph, e: the row below; window (dh, dw) of pooled output j is (a or e)[2j + dw].
                        let o = 2 * pw
                        var a0 = bv, a1 = bv, a2 = bv, a3 = bv, a4 = bv, a5 = bv
                        var e0 = bv, e1 = bv, e2 = bv, e3 = bv, e4 = bv, e5 = bv
                        strip6(r0 + o, w00, w01, w02, &a0, &a1, &a2, &a3, &a4, &a5)
                        strip6(r1 + o, w10, w11, w12, &a0, &a1, &a2, &a3, &a4, &a5)
                        strip6(r1 + o, w00, w01, w02, &e0, &e1, &e2, &e3, &e4, &e5)
                        strip6(r2 + o, w20, w21, w22, &a0, &a1, &a2, &a3, &a4, &a5)
                        strip6(r2 + o, w10, w11, w12, &e0, &e1, &e2, &e3, &e4, &e5)
                        strip6(r3 + o, w20, w21, w22, &e0, &e1, &e2, &e3, &e4, &e5)
                        let q = (ph * PW + pw) * K
                        pool4(a0, a1, e0, e1, relu, y + q, am + q)
                        pool4(a2, a3, e2, e3, relu, y + q + K, am + q + K)
                        pool4(a4, a5, e4, e5, relu, y + q + 2 * K, am + q + 2 * K)
                        pw += 3
                    }
                    while pw < PW {
                        let o = 2 * pw
                        var a0 = bv, a1 = bv, e0 = bv, e1 = bv
                        strip2(r0 + o, w00, w01, w02, &a0, &a1)
                        strip2(r1 + o, w10, w11, w12, &a0, &a1)
                        strip2(r1 + o, w00, w01, w02, &e0, &e1)
                        strip2(r2 + o, w20, w21, w22, &a0, &a1)
                        strip2(r2 + o, w10, w11, w12, &e0, &e1)
                        strip2(r3 + o, w20, w21, w22, &e0, &e1)
                        let q = (ph * PW + pw) * K
                        pool4(a0, a1, e0, e1, relu, y + q, am + q)
                        pw += 1
                    }
                }
            }
        }
    }

    /// The seed conv for 16 ymm registers, 8 filters a pass: two neighbouring pooled outputs a step (8 window
    /// accumulators), kernel row by kernel row: its 3 weight vectors are loaded and run along the two pixel rows
    /// under it (`strip4`), so 8 + 3 registers are live where holding all 9 weights spilled. Measured (batch 256,
    /// 1 thread): all 9 weights as FMA memory operands with the integer-mask pooling 70% of the ymm peak; row by
    /// row with `pool4`'s mask pooling 80% (one output a step 76%, three 73–77%: spills). Same sums as forward3x3Pool2Wide.
    @inlinable @inline(__always)
    static func forward3x3Pool2Narrow(_ g: ConvPoolGeometry, n: Int, input: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                                      bias: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, argmax: UnsafeMutablePointer<Int32>,
                                      relu: Bool) {
        let c = g.conv
        let K = c.filters, W = c.width, PH = g.outHeight, PW = g.outWidth
        let inSize = c.height * W, outSize = g.outputSize
        for kc in stride(from: 0, to: K, by: 8) {
            let bv = load8(bias + kc)
            let wk = weight + kc
            for b in 0..<n {
                let x = input + b * inSize, y = output + b * outSize + kc, am = argmax + b * outSize + kc
                for ph in 0..<PH {
                    let r0 = x + 2 * ph * W
                    var pw = 0
                    while pw + 2 <= PW {
                        let px = r0 + 2 * pw
                        var a0 = bv, a1 = bv, a2 = bv, a3 = bv, e0 = bv, e1 = bv, e2 = bv, e3 = bv
                        for kh in 0..<3 {
                            let wr = wk + 3 * kh * K
                            let w0 = load8(wr), w1 = load8(wr + K), w2 = load8(wr + 2 * K)
                            strip4(px + kh * W, w0, w1, w2, &a0, &a1, &a2, &a3)
                            strip4(px + (kh + 1) * W, w0, w1, w2, &e0, &e1, &e2, &e3)
                        }
                        let q = (ph * PW + pw) * K
                        pool4(a0, a1, e0, e1, relu, y + q, am + q)
                        pool4(a2, a3, e2, e3, relu, y + q + K, am + q + K)
                        pw += 2
                    }
                    while pw < PW {
                        let px = r0 + 2 * pw
                        var a0 = bv, a1 = bv, e0 = bv, e1 = bv
                        for kh in 0..<3 {
                            let wr = wk + 3 * kh * K
                            let w0 = load8(wr), w1 = load8(wr + K), w2 = load8(wr + 2 * K)
                            strip2(px + kh * W, w0, w1, w2, &a0, &a1)
                            strip2(px + (kh + 1) * W, w0, w1, w2, &e0, &e1)
                        }
                        let q = (ph * PW + pw) * K
                        pool4(a0, a1, e0, e1, relu, y + q, am + q)
                        pw += 1
                    }
                }
            }
        }
    }

    // One kernel row's 3 taps along a row of pixels: window j += px[j]·w0, px[j + 1]·w1, px[j + 2]·w2, in that order;
    // each pixel is broadcast once and used at once by the windows that hold it. SIMD16 and SIMD8 copies (here and
    // pool4/take): written once as a generic over both, the specialisations came out as weak shared symbols
    // (check_isa.sh) and ran at half speed.
    @_transparent @usableFromInline
    static func strip6(_ px: UnsafePointer<Float>, _ w0: F16, _ w1: F16, _ w2: F16,
                       _ a0: inout F16, _ a1: inout F16, _ a2: inout F16, _ a3: inout F16, _ a4: inout F16, _ a5: inout F16) {
        do { let x = splat(px[0]); a0.addProduct(x, w0) }
        do { let x = splat(px[1]); a1.addProduct(x, w0); a0.addProduct(x, w1) }
        do { let x = splat(px[2]); a2.addProduct(x, w0); a1.addProduct(x, w1); a0.addProduct(x, w2) }
        do { let x = splat(px[3]); a3.addProduct(x, w0); a2.addProduct(x, w1); a1.addProduct(x, w2) }
        do { let x = splat(px[4]); a4.addProduct(x, w0); a3.addProduct(x, w1); a2.addProduct(x, w2) }
        do { let x = splat(px[5]); a5.addProduct(x, w0); a4.addProduct(x, w1); a3.addProduct(x, w2) }
        do { let x = splat(px[6]); a5.addProduct(x, w1); a4.addProduct(x, w2) }
        do { let x = splat(px[7]); a5.addProduct(x, w2) }
    }
    @_transparent @usableFromInline
    static func strip2(_ px: UnsafePointer<Float>, _ w0: F16, _ w1: F16, _ w2: F16, _ a0: inout F16, _ a1: inout F16) {
        do { let x = splat(px[0]); a0.addProduct(x, w0) }
        do { let x = splat(px[1]); a1.addProduct(x, w0); a0.addProduct(x, w1) }
        do { let x = splat(px[2]); a1.addProduct(x, w1); a0.addProduct(x, w2) }
        do { let x = splat(px[3]); a1.addProduct(x, w2) }
    }
    @_transparent @usableFromInline
    static func strip4(_ px: UnsafePointer<Float>, _ w0: F8, _ w1: F8, _ w2: F8,
                       _ a0: inout F8, _ a1: inout F8, _ a2: inout F8, _ a3: inout F8) {
        do { let x = splat8(px[0]); a0.addProduct(x, w0) }
        do { let x = splat8(px[1]); a1.addProduct(x, w0); a0.addProduct(x, w1) }
        do { let x = splat8(px[2]); a2.addProduct(x, w0); a1.addProduct(x, w1); a0.addProduct(x, w2) }
        do { let x = splat8(px[3]); a3.addProduct(x, w0); a2.addProduct(x, w1); a1.addProduct(x, w2) }
        do { let x = splat8(px[4]); a3.addProduct(x, w1); a2.addProduct(x, w2) }
        do { let x = splat8(px[5]); a3.addProduct(x, w2) }
    }
    @_transparent @usableFromInline
    static func strip2(_ px: UnsafePointer<Float>, _ w0: F8, _ w1: F8, _ w2: F8, _ a0: inout F8, _ a1: inout F8) {
        do { let x = splat8(px[0]); a0.addProduct(x, w0) }
        do { let x = splat8(px[1]); a1.addProduct(x, w0); a0.addProduct(x, w1) }
        do { let x = splat8(px[2]); a1.addProduct(x, w1); a0.addProduct(x, w2) }
        do { let x = splat8(px[3]); a1.addProduct(x, w2) }
    }

    /// Max pooling of the 4 windows s0…s3 (window index dh·2 + dw) into y, the index of the first maximum into am;
    /// with ReLU folded in: start from (+0, index 255) and take each window greater than the best so far, so no
    /// positive window leaves (+0, 255) — equal to max-then-ReLU with the reference's first-maximum rule (ordered `>`,
    /// as the reference compares). `take` compiles to vcmpps (into a k register on AVX-512) and two blends or masked
    /// moves: 3 instructions a window (objdump, Swift 6.3), where greaterMask/select took 8. (SIMDMask's own
    /// `replace(with:where:)` came out as 4-lane pieces inside these kernels: 17% of peak.)
    @_transparent @usableFromInline
    static func pool4(_ s0: F16, _ s1: F16, _ s2: F16, _ s3: F16, _ relu: Bool, _ y: UnsafeMutablePointer<Float>,
                      _ am: UnsafeMutablePointer<Int32>) {
        var best = relu ? F16(repeating: 0) : s0
        var index = I16(repeating: relu ? 255 : 0)
        if relu { take(s0, 0, &best, &index) }
        take(s1, 1, &best, &index); take(s2, 2, &best, &index); take(s3, 3, &best, &index)
        store16(best, y)
        UnsafeMutableRawPointer(am).storeBytes(of: index, as: I16.self)
    }
    /// One window of pool4: (best, index) = (s, window) in the lanes where s > best. (A nested function capturing
    /// best and index boxed them on the heap.)
    @_transparent @usableFromInline
    static func take(_ s: F16, _ window: Int32, _ best: inout F16, _ index: inout I16) {
        let m = unsafeBitCast(s .> best, to: I16.self)
        best = floats(select(m, bits(s), bits(best)))
        index = select(m, I16(repeating: window), index)
    }
    @_transparent @usableFromInline
    static func take(_ s: F8, _ window: Int32, _ best: inout F8, _ index: inout I8) {
        let m = unsafeBitCast(s .> best, to: I8.self)
        best = floats(select(m, bits(s), bits(best)))
        index = select(m, I8(repeating: window), index)
    }
    @_transparent @usableFromInline
    static func pool4(_ s0: F8, _ s1: F8, _ s2: F8, _ s3: F8, _ relu: Bool, _ y: UnsafeMutablePointer<Float>,
                      _ am: UnsafeMutablePointer<Int32>) {
        var best = relu ? F8(repeating: 0) : s0
        var index = I8(repeating: relu ? 255 : 0)
        if relu { take(s0, 0, &best, &index) }
        take(s1, 1, &best, &index); take(s2, 2, &best, &index); take(s3, 3, &best, &index)
        store8(best, y)
        UnsafeMutableRawPointer(am).storeBytes(of: index, as: I8.self)
    }

    /// The seed conv's weight and bias gradients for 16 ymm registers: 8 filters per pass; the 9 weight-gradient
    /// vectors, dOutput, its argmax and one routed vector stay in registers (perf showed the wide path's
    /// accumulators spilled to the stack here). Window masks come from a decrementing copy of the argmax
    /// (no per-window constant vectors), and the bias sum is its own pass. Same order per lane as `backward`.
    @inlinable @inline(__always)
    static func backward3x3Pool2Narrow(_ g: ConvPoolGeometry, n: Int, input: UnsafePointer<Float>, dOutput: UnsafePointer<Float>,
                                       argmax: UnsafePointer<Int32>, dWeight: UnsafeMutablePointer<Float>, dBias: UnsafeMutablePointer<Float>) {
        let c = g.conv
        let K = c.filters, W = c.width, PH = g.outHeight, PW = g.outWidth
        let inSize = c.height * W, outSize = g.outputSize
        // Images outer, filter blocks inner: one image's dOutput and argmax (43 KB) stay in L1 for all filter blocks
        // instead of the whole batch's streaming from L3 once per block; the gradient vectors are reloaded per
        // image, so each still sums the images in order.
        for b in 0..<n { for kc in stride(from: 0, to: K, by: 8) {
            var biasAcc = load8(dBias + kc)
            do {
                let dy = dOutput + b * outSize, am = argmax + b * outSize
                for q in 0..<(PH * PW) {
                    let o = q * K + kc
                    biasAcc += keep(~equalMask(UnsafeRawPointer(am + o).loadUnaligned(as: I8.self), 255), load8(dy + o))
                }
            }
            store8(biasAcc, dBias + kc)
            var g0 = load8(dWeight + 0 * K + kc), g1 = load8(dWeight + 1 * K + kc), g2 = load8(dWeight + 2 * K + kc)
            var g3 = load8(dWeight + 3 * K + kc), g4 = load8(dWeight + 4 * K + kc), g5 = load8(dWeight + 5 * K + kc)
            var g6 = load8(dWeight + 6 * K + kc), g7 = load8(dWeight + 7 * K + kc), g8 = load8(dWeight + 8 * K + kc)
            do {
                let x = input + b * inSize, dy = dOutput + b * outSize, am = argmax + b * outSize
                for ph in 0..<PH { for pw in 0..<PW {
                    let o = (ph * PW + pw) * K + kc
                    let d = load8(dy + o)
                    // Window s's share: d where index == s (vpcmpeqd + vpand: 8 instructions for the 4 windows, where
                    // the decrementing-copy masks took 15).
                    let index = UnsafeRawPointer(am + o).loadUnaligned(as: I8.self)
                    let ds0 = keep(unsafeBitCast(index .== I8(repeating: 0), to: I8.self), d)
                    let ds1 = keep(unsafeBitCast(index .== I8(repeating: 1), to: I8.self), d)
                    let ds2 = keep(unsafeBitCast(index .== I8(repeating: 2), to: I8.self), d)
                    let ds3 = keep(unsafeBitCast(index .== I8(repeating: 3), to: I8.self), d)
                    // The 4×4 pixels under the pooled output, row by row, each broadcast once and used at once by the
                    // taps of the windows that contain it (window s = (s >> 1, s & 1) sees pixel (r, c) at tap
                    // (r − s >> 1, c − s & 1)). Each gradient vector still receives windows 0, 1, 2, 3 in that order.
                    let px = x + ph * 2 * W + pw * 2
                    do { let v = splat8(px[0]); g0.addProduct(v, ds0) }
                    do { let v = splat8(px[1]); g1.addProduct(v, ds0); g0.addProduct(v, ds1) }
                    do { let v = splat8(px[2]); g2.addProduct(v, ds0); g1.addProduct(v, ds1) }
                    do { let v = splat8(px[3]); g2.addProduct(v, ds1) }
                    do { let v = splat8(px[W + 0]); g3.addProduct(v, ds0); g0.addProduct(v, ds2) }
                    do { let v = splat8(px[W + 1]); g4.addProduct(v, ds0); g3.addProduct(v, ds1); g1.addProduct(v, ds2); g0.addProduct(v, ds3) }
                    do { let v = splat8(px[W + 2]); g5.addProduct(v, ds0); g4.addProduct(v, ds1); g2.addProduct(v, ds2); g1.addProduct(v, ds3) }
                    do { let v = splat8(px[W + 3]); g5.addProduct(v, ds1); g2.addProduct(v, ds3) }
                    do { let v = splat8(px[2 * W + 0]); g6.addProduct(v, ds0); g3.addProduct(v, ds2) }
                    do { let v = splat8(px[2 * W + 1]); g7.addProduct(v, ds0); g6.addProduct(v, ds1); g4.addProduct(v, ds2); g3.addProduct(v, ds3) }
                    do { let v = splat8(px[2 * W + 2]); g8.addProduct(v, ds0); g7.addProduct(v, ds1); g5.addProduct(v, ds2); g4.addProduct(v, ds3) }
                    do { let v = splat8(px[2 * W + 3]); g8.addProduct(v, ds1); g5.addProduct(v, ds3) }
                    do { let v = splat8(px[3 * W + 0]); g6.addProduct(v, ds2) }
                    do { let v = splat8(px[3 * W + 1]); g7.addProduct(v, ds2); g6.addProduct(v, ds3) }
                    do { let v = splat8(px[3 * W + 2]); g8.addProduct(v, ds2); g7.addProduct(v, ds3) }
                    do { let v = splat8(px[3 * W + 3]); g8.addProduct(v, ds3) }
                }}
            }
            store8(g0, dWeight + 0 * K + kc); store8(g1, dWeight + 1 * K + kc); store8(g2, dWeight + 2 * K + kc)
            store8(g3, dWeight + 3 * K + kc); store8(g4, dWeight + 4 * K + kc); store8(g5, dWeight + 5 * K + kc)
            store8(g6, dWeight + 6 * K + kc); store8(g7, dWeight + 7 * K + kc); store8(g8, dWeight + 8 * K + kc)
        }}
    }

    /// dInput (N, H, W, C) = Σ over windows and taps of weight · dZ (dZ = dOutput routed through argmax).
    @_transparent @usableFromInline
    static func backwardInput(_ g: ConvPoolGeometry, n: Int, weight: UnsafePointer<Float>, dOutput: UnsafePointer<Float>,
                              argmax: UnsafePointer<Int32>, dInput: UnsafeMutablePointer<Float>) {
        let c = g.conv
        let K = c.filters, C = c.channels, k = c.kernel, W = c.width, p = g.pool
        let PH = g.outHeight, PW = g.outWidth
        let inSize = c.height * W * C, outSize = g.outputSize
        dInput.update(repeating: 0, count: n * inSize)
        for b in 0..<n {
            let dy = dOutput + b * outSize, am = argmax + b * outSize, dx = dInput + b * inSize
            for ph in 0..<PH { for pw in 0..<PW { for dh in 0..<p { for dw in 0..<p {
                let window = Int32(dh * p + dw)
                let pos = ((ph * p + dh) * W + pw * p + dw) * C
                for kh in 0..<k { for kw in 0..<k { for ci in 0..<C {
                    var acc = F16(repeating: 0)
                    for kc in stride(from: 0, to: K, by: 16) {
                        let o = (ph * PW + pw) * K + kc
                        let ds = keep(equalMask(UnsafeRawPointer(am + o).loadUnaligned(as: I16.self), window), load16(dy + o))
                        acc.addProduct(load16(weight + ((kh * k + kw) * C + ci) * K + kc), ds)
                    }
                    dx[pos + (kh * W + kw) * C + ci] += acc.sum()
                }}}
            }}}}
        }
    }

    @_transparent @usableFromInline
    static func finishPool4(_ a0: F16, _ a1: F16, _ a2: F16, _ a3: F16, _ relu: Bool,
                            _ y: UnsafeMutablePointer<Float>, _ am: UnsafeMutablePointer<Int32>) {
        if relu {
            // ReLU folded into the max: start from (+0, index 255) and take each window that is greater, in window
            // order. Equals max-then-ReLU (first maximum's index; +0 and 255 where no window is positive) with one
            // compare/select step fewer.
            var best = I16(repeating: 0), index = I16(repeating: 255)
            var m = greaterMask(a0, floats(best)); index = select(m, I16(repeating: 0), index); best = select(m, bits(a0), best)
            m = greaterMask(a1, floats(best)); index = select(m, I16(repeating: 1), index); best = select(m, bits(a1), best)
            m = greaterMask(a2, floats(best)); index = select(m, I16(repeating: 2), index); best = select(m, bits(a2), best)
            m = greaterMask(a3, floats(best)); index = select(m, I16(repeating: 3), index); best = select(m, bits(a3), best)
            store16(floats(best), y)
            UnsafeMutableRawPointer(am).storeBytes(of: index, as: I16.self)
            return
        }
        var best = bits(a0)
        var index = I16(repeating: 0)
        var m = greaterMask(a1, floats(best)); index = select(m, I16(repeating: 1), index); best = select(m, bits(a1), best)
        m = greaterMask(a2, floats(best)); index = select(m, I16(repeating: 2), index); best = select(m, bits(a2), best)
        m = greaterMask(a3, floats(best)); index = select(m, I16(repeating: 3), index); best = select(m, bits(a3), best)
        store(floats(best), index, relu, y, am)
    }

    @_transparent @usableFromInline
    static func store(_ value: F16, _ index: SIMD16<Int32>, _ relu: Bool, _ y: UnsafeMutablePointer<Float>, _ am: UnsafeMutablePointer<Int32>) {
        var v = value, idx = index
        if relu {
            let alive = greaterMask(v, F16(repeating: 0))
            v = keep(alive, v)
            idx = select(alive, idx, I16(repeating: 255))
        }
        store16(v, y)
        UnsafeMutableRawPointer(am).storeBytes(of: idx, as: I16.self)
    }

    /// dOutput (N, PH, PW, K) w.r.t. the pooled (post-ReLU) output. dWeight += Σ x ⊗ dZ, dBias += Σ dZ where dZ
    /// is dOutput routed through argmax; dInput (if given) = dZ correlated with the kernel (written, not accumulated).
    /// `narrow` (AVX2): the seed conv 8 filters per pass (backward3x3Pool2Narrow), same results.
    @inlinable @inline(__always)
    public static func backward(_ g: ConvPoolGeometry, n: Int, input: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                                 dOutput: UnsafePointer<Float>, argmax: UnsafePointer<Int32>, dWeight: UnsafeMutablePointer<Float>,
                                 dBias: UnsafeMutablePointer<Float>, dInput: UnsafeMutablePointer<Float>?, narrow: Bool = false) {
        let c = g.conv
        let K = c.filters, C = c.channels, k = c.kernel, W = c.width, p = g.pool
        let PH = g.outHeight, PW = g.outWidth
        let inSize = c.height * W * C, outSize = g.outputSize
        let rowStride = W * C
        if let dInput { backwardInput(g, n: n, weight: weight, dOutput: dOutput, argmax: argmax, dInput: dInput) }
        if narrow && k == 3 && C == 1 && p == 2 && K % 8 == 0 {
            backward3x3Pool2Narrow(g, n: n, input: input, dOutput: dOutput, argmax: argmax, dWeight: dWeight, dBias: dBias)
            return
        }
        if k == 3 && C == 1 && p == 2 {
            // The seed network's conv: all 9 weight-gradient vectors stay in registers. Images outer, filter blocks
            // inner (one image's dOutput and argmax stay in L1 for every block; per lane the same order).
            for b in 0..<n { for kc in stride(from: 0, to: K, by: 16) {
                var biasAcc = load16(dBias + kc)
                var g0 = load16(dWeight + 0 * K + kc), g1 = load16(dWeight + 1 * K + kc), g2 = load16(dWeight + 2 * K + kc)
                var g3 = load16(dWeight + 3 * K + kc), g4 = load16(dWeight + 4 * K + kc), g5 = load16(dWeight + 5 * K + kc)
                var g6 = load16(dWeight + 6 * K + kc), g7 = load16(dWeight + 7 * K + kc), g8 = load16(dWeight + 8 * K + kc)
                do {
                    let x = input + b * inSize, dy = dOutput + b * outSize, am = argmax + b * outSize
                    for ph in 0..<PH { for pw in 0..<PW {
                        let o = (ph * PW + pw) * K + kc
                        let d = load16(dy + o)
                        let index = UnsafeRawPointer(am + o).loadUnaligned(as: I16.self)
                        biasAcc += keep(~equalMask(index, 255), d)
                        for s in 0..<4 {
                            let ds = keep(equalMask(index, Int32(s)), d)
                            let px = x + (ph * 2 + (s >> 1)) * W + pw * 2 + (s & 1)
                            g0.addProduct(splat(px[0]), ds); g1.addProduct(splat(px[1]), ds); g2.addProduct(splat(px[2]), ds)
                            g3.addProduct(splat(px[W]), ds); g4.addProduct(splat(px[W + 1]), ds); g5.addProduct(splat(px[W + 2]), ds)
                            g6.addProduct(splat(px[2 * W]), ds); g7.addProduct(splat(px[2 * W + 1]), ds); g8.addProduct(splat(px[2 * W + 2]), ds)
                        }
                    }}
                }
                store16(g0, dWeight + 0 * K + kc); store16(g1, dWeight + 1 * K + kc); store16(g2, dWeight + 2 * K + kc)
                store16(g3, dWeight + 3 * K + kc); store16(g4, dWeight + 4 * K + kc); store16(g5, dWeight + 5 * K + kc)
                store16(g6, dWeight + 6 * K + kc); store16(g7, dWeight + 7 * K + kc); store16(g8, dWeight + 8 * K + kc)
                store16(biasAcc, dBias + kc)
            }}
            return
        }
        for kc in stride(from: 0, to: K, by: 16) {
            var biasAcc = load16(dBias + kc)
            do {
                for b in 0..<n {
                    let x = input + b * inSize, dy = dOutput + b * outSize, am = argmax + b * outSize
                    for ph in 0..<PH { for pw in 0..<PW {
                        let o = (ph * PW + pw) * K + kc
                        let d = load16(dy + o)
                        let index = UnsafeRawPointer(am + o).loadUnaligned(as: I16.self)
                        biasAcc += keep(~equalMask(index, 255), d)
                        for dh in 0..<p { for dw in 0..<p {
                            let ds = keep(equalMask(index, Int32(dh * p + dw)), d)
                            let pos = (ph * p + dh) * rowStride + (pw * p + dw) * C
                            for kh in 0..<k { for kw in 0..<k {
                                let px = pos + kh * rowStride + kw * C
                                let wo = (kh * k + kw) * C * K + kc
                                for ci in 0..<C {
                                    let gp = dWeight + wo + ci * K
                                    store16(load16(gp).addingProduct(splat(x[px + ci]), ds), gp)
                                }
                            }}
                        }}
                    }}
                }
            }
            store16(biasAcc, dBias + kc)
        }
    }
}

// General convolution (any kH×kW kernel, strides, padding, channels, filters) as im2col + the dense GEMM:
// one image's patches form an (OH·OW) × (kH·kW·C) matrix whose rows are in (kh, kw, c) order, which
// is exactly the row order of the HWIO weight seen as a (kH·kW·C) × K matrix. So
// output (OH·OW, K) = columns · weight + bias, on the same SIMD tiles as the dense layers.
extension ConvKernels {
    /// Copies `count` floats (SIMD16 blocks, one SIMD8 block, then a scalar tail: a 3×3 kernel row of
    /// 3 channels is 8 + 1).
    @inlinable @inline(__always)
    static func copy(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, _ count: Int) {
        var i = 0
        while i + 16 <= count { store16(load16(src + i), dst + i); i += 16 }
        if i + 8 <= count {
            UnsafeMutableRawPointer(dst + i).storeBytes(of: UnsafeRawPointer(src + i).loadUnaligned(as: SIMD8<Float>.self), as: SIMD8<Float>.self)
            i += 8
        }
        while i < count { dst[i] = src[i]; i += 1 }
    }

    /// dst[0..<count] += src[0..<count].
    @inlinable @inline(__always)
    static func add(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, _ count: Int) {
        var i = 0
        while i + 16 <= count { store16(load16(dst + i) + load16(src + i), dst + i); i += 16 }
        while i < count { dst[i] += src[i]; i += 1 }
    }

    /// The kw range [lo, hi) of taps whose input column ow·sW + kw − padLeft lies inside the image.
    @inlinable @inline(__always)
    static func tapRange(_ g: ConvGeometry, _ origin: Int) -> (Int, Int) {
        (max(0, -origin), min(g.kernelWidth, g.width - origin))
    }

    /// One image (H, W, C) → columns (OH·OW, kH·kW·C); padded taps are 0. The in-image taps of one
    /// kernel row are contiguous in the input, so each is one vector copy.
    @inlinable @inline(__always)
    public static func im2col(_ g: ConvGeometry, input x: UnsafePointer<Float>, columns: UnsafeMutablePointer<Float>) {
        let C = g.channels, kh = g.kernelHeight, kw = g.kernelWidth, rowSize = kh * kw * C
        var row = columns
        for oh in 0..<g.outHeight {
            for ow in 0..<g.outWidth {
                let iw0 = ow * g.strideWidth - g.padLeft
                let (lo, hi) = tapRange(g, iw0)
                for r in 0..<kh {
                    let ih = oh * g.strideHeight + r - g.padTop
                    let dst = row + r * kw * C
                    if ih < 0 || ih >= g.height || lo >= hi {
                        dst.update(repeating: 0, count: kw * C)
                        continue
                    }
                    if lo > 0 { dst.update(repeating: 0, count: lo * C) }
                    copy(x + (ih * g.width + iw0 + lo) * C, dst + lo * C, (hi - lo) * C)
                    if hi < kw { (dst + hi * C).update(repeating: 0, count: (kw - hi) * C) }
                }
                row += rowSize
            }
        }
    }

    /// The transpose of im2col: dInput (H, W, C) += the column gradients at the pixels they came from.
    @inlinable @inline(__always)
    public static func col2im(_ g: ConvGeometry, columns: UnsafePointer<Float>, dInput dx: UnsafeMutablePointer<Float>) {
        let C = g.channels, kh = g.kernelHeight, kw = g.kernelWidth, rowSize = kh * kw * C
        var row = columns
        for oh in 0..<g.outHeight {
            for ow in 0..<g.outWidth {
                let iw0 = ow * g.strideWidth - g.padLeft
                let (lo, hi) = tapRange(g, iw0)
                if lo < hi {
                    for r in 0..<kh {
                        let ih = oh * g.strideHeight + r - g.padTop
                        if ih < 0 || ih >= g.height { continue }
                        add(row + (r * kw + lo) * C, dx + (ih * g.width + iw0 + lo) * C, (hi - lo) * C)
                    }
                }
                row += rowSize
            }
        }
    }

    /// input (N, H, W, C), weight (kH, kW, C, K) HWIO, bias (K) → output (N, OH, OW, K), ReLU if g.relu.
    /// `columns` holds min(N, g.imagesPerColumnBlock) · g.columnSize floats (unused when pointwise).
    /// Convolutions with K % 16 == 0 run `direct` (the table's `directForward`, one image per call: no im2col
    /// matrix), the others im2col + `gemm`; both are closures of their own for the same reason.
    /// `gemm` is the ISA table's dense forward (n, in, out, relu, x, weight, bias, y), passed as a function
    /// so its large inlined body lives once in that closure: a second inlined copy here pushes the caller
    /// past the inliner's budget and leaves out-of-line (AVX2-compiled) calls in the AVX-512 module
    /// (Benchmarks/EngineBench/check_isa.sh).
    /// Convolutions that `directForward` runs (see there); the others take im2col + GEMM. 1×1 stride-1 convs
    /// too: they need no copy, and the GEMM's 4-row tiles are latency-bound at 16 or 32 filters (perf: the
    /// 32×32×3 CNN's 1×1 conv took 7% of its batch-256 time that way).
    @inlinable @inline(__always)
    public static func usesDirectForward(_ g: ConvGeometry) -> Bool {
        g.filters % 16 == 0 && paddedHeight(g) * paddedWidth(g) * g.channels <= g.columnSize
    }
    /// Input rows and columns one image's outputs read, counted from the first (padded) one.
    @inlinable @inline(__always) static func paddedHeight(_ g: ConvGeometry) -> Int { (g.outHeight - 1) * g.strideHeight + g.kernelHeight }
    @inlinable @inline(__always) static func paddedWidth(_ g: ConvGeometry) -> Int { (g.outWidth - 1) * g.strideWidth + g.kernelWidth }

    @inlinable @inline(__always)
    public static func generalForward(_ g: ConvGeometry, n: Int, input: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                                      bias: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>,
                                      columns: UnsafeMutablePointer<Float>,
                                      gemm: (Int, Int, Int, Bool, UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>,
                                             UnsafeMutablePointer<Float>) -> Void,
                                      direct: (ConvGeometry, UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>,
                                               UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>) -> Void) {
        if usesDirectForward(g) {
            for b in 0..<n { direct(g, input + b * g.inputSize, weight, bias, output + b * g.outputSize, columns) }
            return
        }
        let rows = g.outHeight * g.outWidth, depth = g.taps * g.channels
        let pointwise = g.isPointwise
        let block = pointwise ? n : g.imagesPerColumnBlock
        var b0 = 0
        while b0 < n {
            let m = min(block, n - b0)
            if !pointwise { for b in 0..<m { im2col(g, input: input + (b0 + b) * g.inputSize, columns: columns + b * g.columnSize) } }
            gemm(m * rows, depth, g.filters, g.relu, pointwise ? input + b0 * g.inputSize : UnsafePointer(columns), weight, bias,
                 output + b0 * g.outputSize)
            b0 += m
        }
    }

    /// dOutput (N, OH, OW, K) w.r.t. the pre-activation. dWeight += columnsᵀ·dOutput, dBias += Σ dOutput,
    /// dInput (if given) = col2im(dOutput · weightᵀ). `columns` and `dColumns` as in generalForward;
    /// `gemm` is the table's dense backward (n, in, out, x, weight, weightᵀ?, dY, dWeight +=, dBias +=, dX =).
    @inlinable @inline(__always)
    public static func generalBackward(_ g: ConvGeometry, n: Int, input: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                                       dOutput: UnsafePointer<Float>, dWeight: UnsafeMutablePointer<Float>, dBias: UnsafeMutablePointer<Float>,
                                       dInput: UnsafeMutablePointer<Float>?, columns: UnsafeMutablePointer<Float>,
                                       dColumns: UnsafeMutablePointer<Float>,
                                       gemm: (Int, Int, Int, UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>?, UnsafePointer<Float>,
                                              UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>?) -> Void) {
        let rows = g.outHeight * g.outWidth, depth = g.taps * g.channels
        let pointwise = g.isPointwise
        let block = pointwise ? n : g.imagesPerColumnBlock
        var b0 = 0
        while b0 < n {
            let m = min(block, n - b0)
            if !pointwise { for b in 0..<m { im2col(g, input: input + (b0 + b) * g.inputSize, columns: columns + b * g.columnSize) } }
            // A pointwise conv's input gradient is the GEMM's dX itself; otherwise it goes through col2im.
            let dX: UnsafeMutablePointer<Float>? = dInput == nil ? nil : (pointwise ? dInput! + b0 * g.inputSize : dColumns)
            gemm(m * rows, depth, g.filters, pointwise ? input + b0 * g.inputSize : UnsafePointer(columns), weight, nil,
                 dOutput + b0 * g.outputSize, dWeight, dBias, dX)
            if let dInput, !pointwise {
                let dx = dInput + b0 * g.inputSize
                dx.update(repeating: 0, count: m * g.inputSize)
                for b in 0..<m { col2im(g, columns: dColumns + b * g.columnSize, dInput: dx + b * g.inputSize) }
            }
            b0 += m
        }
    }

    /// The image as the direct kernels read it: copied into `scratch` with its zero padding (H' × W' × C, H' =
    /// (OH−1)·sH + kH, W' = (OW−1)·sW + kW), or the input itself when unpadded. Returns (image, row stride).
    @_transparent @usableFromInline
    static func padForDirect(_ g: ConvGeometry, input: UnsafePointer<Float>, scratch: UnsafeMutablePointer<Float>)
        -> (UnsafePointer<Float>, Int) {
        let C = g.channels
        guard g.padTop > 0 || g.padLeft > 0 || paddedHeight(g) > g.height || paddedWidth(g) > g.width else { return (input, g.width * C) }
        // Row by row: the image's part of the row copied, only the border zeroed (perf: zeroing the whole
        // buffer first cost ~8% of the 32×32×3 CNN).
        let hp = paddedHeight(g), wp = paddedWidth(g)
        let c0 = min(wp, max(0, g.padLeft)), c1 = max(c0, min(wp, g.padLeft + g.width))
        for r in 0..<hp {
            let ih = r - g.padTop, row = scratch + r * wp * C
            if ih < 0 || ih >= g.height || c0 == c1 { row.update(repeating: 0, count: wp * C); continue }
            if c0 > 0 { row.update(repeating: 0, count: c0 * C) }
            copy(input + (ih * g.width + c0 - g.padLeft) * C, row + c0 * C, (c1 - c0) * C)
            if c1 < wp { (row + c1 * C).update(repeating: 0, count: (wp - c1) * C) }
        }
        return (UnsafePointer(scratch), wp * C)
    }

    /// directForward for a 3×3, 3-channel, stride-1-wide conv on AVX-512 (the first conv of an RGB CNN, 16 filters a
    /// pass): the 12 × 16 tile reads one broadcast per FMA, which bound it at ~60% of peak (perf). Here a tile is 16
    /// neighbouring output pixels of one row; per kernel row its 9 weight vectors stay in registers and each of the
    /// 18 × 3 input values under the tile is broadcast once and used by every output (up to 3) whose window holds
    /// it — 54 broadcasts + 9 loads per 144 FMAs. Each output still sums bias, then the taps in (kh, kw, c) order,
    /// so the result equals im2col + GEMM bit for bit. Leftover pixels of a row (OW % 16) take one pixel at a time.
    @inlinable @inline(__always)
    public static func usesDirect3x3C3(_ g: ConvGeometry) -> Bool {
        g.channels == 3 && g.kernelHeight == 3 && g.kernelWidth == 3 && g.strideWidth == 1 && g.filters % 16 == 0 && g.outWidth >= 16
            && usesDirectForward(g)
    }
    @inlinable @inline(__always)
    public static func direct3x3C3(_ g: ConvGeometry, input: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>,
                                   output: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>) {
        let (src, rowStride) = padForDirect(g, input: input, scratch: scratch)
        let K = g.filters, OW = g.outWidth, sH = g.strideHeight, relu = g.relu
        @inline(__always) func put(_ v: F16, _ p: Int, _ kc: Int) { store16(relu ? LoupeKernels.relu(v) : v, output + p * K + kc) }
        for kc in stride(from: 0, to: K, by: 16) {
            let bv = load16(bias + kc)
            let wk = weight + kc
            for oh in 0..<g.outHeight {
                let rowBase = src + oh * sH * rowStride
                var ow = 0
                while ow + 16 <= OW {
                    let tile = rowBase + ow * 3, p = oh * OW + ow
                        var s0 = bv, s1 = bv, s2 = bv, s3 = bv, s4 = bv, s5 = bv, s6 = bv, s7 = bv, s8 = bv, s9 = bv, s10 = bv, s11 = bv, s12 = bv, s13 = bv, s14 = bv, s15 = bv
                        for r in 0..<3 {
                            let px = tile + r * rowStride, wr = wk + r * 9 * K
                            let w00 = load16(wr + 0 * K),  w01 = load16(wr + 1 * K),  w02 = load16(wr + 2 * K)
                            let w10 = load16(wr + 3 * K),  w11 = load16(wr + 4 * K),  w12 = load16(wr + 5 * K)
                            let w20 = load16(wr + 6 * K),  w21 = load16(wr + 7 * K),  w22 = load16(wr + 8 * K)
                            do { let x = splat(px[0]); s0.addProduct(x, w00) }
                            do { let x = splat(px[1]); s0.addProduct(x, w01) }
                            do { let x = splat(px[2]); s0.addProduct(x, w02) }
                            do { let x = splat(px[3]); s1.addProduct(x, w00); s0.addProduct(x, w10) }
                            do { let x = splat(px[4]); s1.addProduct(x, w01); s0.addProduct(x, w11) }
                            do { let x = splat(px[5]); s1.addProduct(x, w02); s0.addProduct(x, w12) }
                            do { let x = splat(px[6]); s2.addProduct(x, w00); s1.addProduct(x, w10); s0.addProduct(x, w20) }
                            do { let x = splat(px[7]); s2.addProduct(x, w01); s1.addProduct(x, w11); s0.addProduct(x, w21) }
                            do { let x = splat(px[8]); s2.addProduct(x, w02); s1.addProduct(x, w12); s0.addProduct(x, w22) }
                            do { let x = splat(px[9]); s3.addProduct(x, w00); s2.addProduct(x, w10); s1.addProduct(x, w20) }
                            do { let x = splat(px[10]); s3.addProduct(x, w01); s2.addProduct(x, w11); s1.addProduct(x, w21) }
                            do { let x = splat(px[11]); s3.addProduct(x, w02); s2.addProduct(x, w12); s1.addProduct(x, w22) }
                            do { let x = splat(px[12]); s4.addProduct(x, w00); s3.addProduct(x, w10); s2.addProduct(x, w20) }
                            do { let x = splat(px[13]); s4.addProduct(x, w01); s3.addProduct(x, w11); s2.addProduct(x, w21) }
                            do { let x = splat(px[14]); s4.addProduct(x, w02); s3.addProduct(x, w12); s2.addProduct(x, w22) }
                            do { let x = splat(px[15]); s5.addProduct(x, w00); s4.addProduct(x, w10); s3.addProduct(x, w20) }
                            do { let x = splat(px[16]); s5.addProduct(x, w01); s4.addProduct(x, w11); s3.addProduct(x, w21) }
                            do { let x = splat(px[17]); s5.addProduct(x, w02); s4.addProduct(x, w12); s3.addProduct(x, w22) }
                            do { let x = splat(px[18]); s6.addProduct(x, w00); s5.addProduct(x, w10); s4.addProduct(x, w20) }
                            do { let x = splat(px[19]); s6.addProduct(x, w01); s5.addProduct(x, w11); s4.addProduct(x, w21) }
                            do { let x = splat(px[20]); s6.addProduct(x, w02); s5.addProduct(x, w12); s4.addProduct(x, w22) }
                            do { let x = splat(px[21]); s7.addProduct(x, w00); s6.addProduct(x, w10); s5.addProduct(x, w20) }
                            do { let x = splat(px[22]); s7.addProduct(x, w01); s6.addProduct(x, w11); s5.addProduct(x, w21) }
                            do { let x = splat(px[23]); s7.addProduct(x, w02); s6.addProduct(x, w12); s5.addProduct(x, w22) }
                            do { let x = splat(px[24]); s8.addProduct(x, w00); s7.addProduct(x, w10); s6.addProduct(x, w20) }
                            do { let x = splat(px[25]); s8.addProduct(x, w01); s7.addProduct(x, w11); s6.addProduct(x, w21) }
                            do { let x = splat(px[26]); s8.addProduct(x, w02); s7.addProduct(x, w12); s6.addProduct(x, w22) }
                            do { let x = splat(px[27]); s9.addProduct(x, w00); s8.addProduct(x, w10); s7.addProduct(x, w20) }
                            do { let x = splat(px[28]); s9.addProduct(x, w01); s8.addProduct(x, w11); s7.addProduct(x, w21) }
                            do { let x = splat(px[29]); s9.addProduct(x, w02); s8.addProduct(x, w12); s7.addProduct(x, w22) }
                            do { let x = splat(px[30]); s10.addProduct(x, w00); s9.addProduct(x, w10); s8.addProduct(x, w20) }
                            do { let x = splat(px[31]); s10.addProduct(x, w01); s9.addProduct(x, w11); s8.addProduct(x, w21) }
                            do { let x = splat(px[32]); s10.addProduct(x, w02); s9.addProduct(x, w12); s8.addProduct(x, w22) }
                            do { let x = splat(px[33]); s11.addProduct(x, w00); s10.addProduct(x, w10); s9.addProduct(x, w20) }
                            do { let x = splat(px[34]); s11.addProduct(x, w01); s10.addProduct(x, w11); s9.addProduct(x, w21) }
                            do { let x = splat(px[35]); s11.addProduct(x, w02); s10.addProduct(x, w12); s9.addProduct(x, w22) }
                            do { let x = splat(px[36]); s12.addProduct(x, w00); s11.addProduct(x, w10); s10.addProduct(x, w20) }
                            do { let x = splat(px[37]); s12.addProduct(x, w01); s11.addProduct(x, w11); s10.addProduct(x, w21) }
                            do { let x = splat(px[38]); s12.addProduct(x, w02); s11.addProduct(x, w12); s10.addProduct(x, w22) }
                            do { let x = splat(px[39]); s13.addProduct(x, w00); s12.addProduct(x, w10); s11.addProduct(x, w20) }
                            do { let x = splat(px[40]); s13.addProduct(x, w01); s12.addProduct(x, w11); s11.addProduct(x, w21) }
                            do { let x = splat(px[41]); s13.addProduct(x, w02); s12.addProduct(x, w12); s11.addProduct(x, w22) }
                            do { let x = splat(px[42]); s14.addProduct(x, w00); s13.addProduct(x, w10); s12.addProduct(x, w20) }
                            do { let x = splat(px[43]); s14.addProduct(x, w01); s13.addProduct(x, w11); s12.addProduct(x, w21) }
                            do { let x = splat(px[44]); s14.addProduct(x, w02); s13.addProduct(x, w12); s12.addProduct(x, w22) }
                            do { let x = splat(px[45]); s15.addProduct(x, w00); s14.addProduct(x, w10); s13.addProduct(x, w20) }
                            do { let x = splat(px[46]); s15.addProduct(x, w01); s14.addProduct(x, w11); s13.addProduct(x, w21) }
                            do { let x = splat(px[47]); s15.addProduct(x, w02); s14.addProduct(x, w12); s13.addProduct(x, w22) }
                            do { let x = splat(px[48]); s15.addProduct(x, w10); s14.addProduct(x, w20) }
                            do { let x = splat(px[49]); s15.addProduct(x, w11); s14.addProduct(x, w21) }
                            do { let x = splat(px[50]); s15.addProduct(x, w12); s14.addProduct(x, w22) }
                            do { let x = splat(px[51]); s15.addProduct(x, w20) }
                            do { let x = splat(px[52]); s15.addProduct(x, w21) }
                            do { let x = splat(px[53]); s15.addProduct(x, w22) }
                        }
                        put(s0, p + 0, kc); put(s1, p + 1, kc); put(s2, p + 2, kc); put(s3, p + 3, kc); put(s4, p + 4, kc); put(s5, p + 5, kc); put(s6, p + 6, kc); put(s7, p + 7, kc); put(s8, p + 8, kc); put(s9, p + 9, kc); put(s10, p + 10, kc); put(s11, p + 11, kc); put(s12, p + 12, kc); put(s13, p + 13, kc); put(s14, p + 14, kc); put(s15, p + 15, kc)
                    ow += 16
                }
                while ow < OW {
                    var s0 = bv
                    let tile = rowBase + ow * 3
                    for r in 0..<3 {
                        for j in 0..<9 { s0.addProduct(splat(tile[r * rowStride + j]), load16(wk + (r * 9 + j) * K)) }
                    }
                    put(s0, oh * OW + ow, kc)
                    ow += 1
                }
            }
        }
    }

    /// One image's convolution without an im2col matrix (implicit GEMM): the image is copied once into `scratch`
    /// with its zero padding (H' × W' × C, H' = (OH−1)·sH + kH, W' = (OW−1)·sW + kW; no copy when unpadded), and
    /// register tiles of output pixels × 16 filters read their taps straight from it: for kernel row r, the kW·C
    /// taps of a pixel are contiguous, in the weight's (kh, kw, c) row order. Tiles run over the flattened output
    /// pixels (so rows of any width fill them); each tile pixel has its own input pointer. AVX-512: 12 pixels ×
    /// 16 filters (12 zmm accumulators); AVX2 (`narrow`): 6 × 16 (12 ymm). Sums bias + taps in im2col's order,
    /// padded taps included as 0 · w, so the result equals im2col + GEMM bit for bit.
    /// input (H, W, C), weight (kH, kW, C, K), bias (K) → output (OH, OW, K), ReLU if g.relu.
    @inlinable @inline(__always)
    public static func directForward(_ g: ConvGeometry, input: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>,
                              output: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>, narrow: Bool) {
        let C = g.channels, K = g.filters, OW = g.outWidth, pixels = g.outHeight * OW
        let sH = g.strideHeight, sW = g.strideWidth
        let (src, rowStride) = padForDirect(g, input: input, scratch: scratch)
        let kH = g.kernelHeight, kWC = g.kernelWidth * C, relu = g.relu
        /// Walks the output pixels in order, giving each one's first tap (past the last pixel it stays on the last:
        /// a partial tile repeats it and skips its stores). No division per pixel.
        var cursorPixel = 0, cursorColumn = 0
        var cursorRow = src
        @inline(__always) func next() -> UnsafePointer<Float> {
            let a = cursorRow + cursorColumn * sW * C
            if cursorPixel < pixels - 1 {
                cursorPixel += 1
                cursorColumn += 1
                if cursorColumn == OW { cursorColumn = 0; cursorRow += sH * rowStride }
            }
            return a
        }
        @inline(__always) func put(_ v: F16, _ p: Int, _ kc: Int) {
            if p < pixels { store16(relu ? LoupeKernels.relu(v) : v, output + p * K + kc) }
        }
        var kc0 = 0
        if !narrow {
            // AVX-512, 32 filters per pass: 6 pixels × 2 zmm (12 accumulators) read 6 broadcasts and 2 weight vectors
            // per 12 FMAs, where the 12 × 16 tile reads 12 broadcasts and 1 vector.
            while kc0 + 32 <= K {
                let bv = load16(bias + kc0), bw = load16(bias + kc0 + 16)
                let wk = weight + kc0
                var p = 0
                cursorPixel = 0; cursorColumn = 0; cursorRow = src
                while p < pixels {
                    let a0 = next(), a1 = next(), a2 = next(), a3 = next(), a4 = next(), a5 = next()
                    var s0 = bv, s1 = bv, s2 = bv, s3 = bv, s4 = bv, s5 = bv
                    var t0 = bw, t1 = bw, t2 = bw, t3 = bw, t4 = bw, t5 = bw
                    for r in 0..<kH {
                        let o = r * rowStride
                        var wp = wk + r * kWC * K
                        for j in 0..<kWC {
                            let w = load16(wp), v = load16(wp + 16)
                            let x0 = splat(a0[o + j]), x1 = splat(a1[o + j]), x2 = splat(a2[o + j])
                            let x3 = splat(a3[o + j]), x4 = splat(a4[o + j]), x5 = splat(a5[o + j])
                            s0.addProduct(x0, w); t0.addProduct(x0, v); s1.addProduct(x1, w); t1.addProduct(x1, v)
                            s2.addProduct(x2, w); t2.addProduct(x2, v); s3.addProduct(x3, w); t3.addProduct(x3, v)
                            s4.addProduct(x4, w); t4.addProduct(x4, v); s5.addProduct(x5, w); t5.addProduct(x5, v)
                            wp += K
                        }
                    }
                    put(s0, p, kc0); put(s1, p + 1, kc0); put(s2, p + 2, kc0); put(s3, p + 3, kc0); put(s4, p + 4, kc0); put(s5, p + 5, kc0)
                    put(t0, p, kc0 + 16); put(t1, p + 1, kc0 + 16); put(t2, p + 2, kc0 + 16)
                    put(t3, p + 3, kc0 + 16); put(t4, p + 4, kc0 + 16); put(t5, p + 5, kc0 + 16)
                    p += 6
                }
                kc0 += 32
            }
        }
        for kc in stride(from: kc0, to: K, by: 16) {
            let bv = load16(bias + kc)
            let wk = weight + kc
            var p = 0
            cursorPixel = 0; cursorColumn = 0; cursorRow = src
            if narrow {
                while p < pixels {
                    let a0 = next(), a1 = next(), a2 = next(), a3 = next(), a4 = next(), a5 = next()
                    var s0 = bv, s1 = bv, s2 = bv, s3 = bv, s4 = bv, s5 = bv
                    for r in 0..<kH {
                        let o = r * rowStride
                        var wp = wk + r * kWC * K
                        for j in 0..<kWC {
                            let w = load16(wp)
                            s0.addProduct(splat(a0[o + j]), w); s1.addProduct(splat(a1[o + j]), w); s2.addProduct(splat(a2[o + j]), w)
                            s3.addProduct(splat(a3[o + j]), w); s4.addProduct(splat(a4[o + j]), w); s5.addProduct(splat(a5[o + j]), w)
                            wp += K
                        }
                    }
                    put(s0, p, kc); put(s1, p + 1, kc); put(s2, p + 2, kc); put(s3, p + 3, kc); put(s4, p + 4, kc); put(s5, p + 5, kc)
                    p += 6
                }
            } else {
                while p < pixels {
                    let a0 = next(), a1 = next(), a2 = next(), a3 = next(), a4 = next(), a5 = next()
                    let a6 = next(), a7 = next(), a8 = next(), a9 = next(), a10 = next(), a11 = next()
                    var s0 = bv, s1 = bv, s2 = bv, s3 = bv, s4 = bv, s5 = bv, s6 = bv, s7 = bv, s8 = bv, s9 = bv, s10 = bv, s11 = bv
                    for r in 0..<kH {
                        let o = r * rowStride
                        var wp = wk + r * kWC * K
                        for j in 0..<kWC {
                            let w = load16(wp)
                            s0.addProduct(splat(a0[o + j]), w); s1.addProduct(splat(a1[o + j]), w); s2.addProduct(splat(a2[o + j]), w)
                            s3.addProduct(splat(a3[o + j]), w); s4.addProduct(splat(a4[o + j]), w); s5.addProduct(splat(a5[o + j]), w)
                            s6.addProduct(splat(a6[o + j]), w); s7.addProduct(splat(a7[o + j]), w); s8.addProduct(splat(a8[o + j]), w)
                            s9.addProduct(splat(a9[o + j]), w); s10.addProduct(splat(a10[o + j]), w); s11.addProduct(splat(a11[o + j]), w)
                            wp += K
                        }
                    }
                    put(s0, p, kc); put(s1, p + 1, kc); put(s2, p + 2, kc); put(s3, p + 3, kc); put(s4, p + 4, kc); put(s5, p + 5, kc)
                    put(s6, p + 6, kc); put(s7, p + 7, kc); put(s8, p + 8, kc); put(s9, p + 9, kc); put(s10, p + 10, kc); put(s11, p + 11, kc)
                    p += 12
                }
            }
        }
    }
}
