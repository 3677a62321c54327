import CLoupeInt8
import Glibc
import Testing
@testable import LoupeEngine
@_spi(Kernels) import LoupeKernels

/// The int8 GEMM paths this CPU has (scalar always).
let int8Paths: [Int8Path] = Int8Path.allCases.filter(\.isSupported)

@Suite struct Int8KernelTests {
    /// Plain loop over the unpacked (k, oc) weight: the reference every path must equal exactly.
    static func referenceGEMM(n: Int, k: Int, oc: Int, a: [UInt8], w: [Int8]) -> [Int32] {
        var acc = [Int32](repeating: 0, count: n * oc)
        for r in 0..<n { for o in 0..<oc {
            var s: Int32 = 0
            for kk in 0..<k { s += Int32(a[r * k + kk]) * Int32(w[kk * oc + o]) }
            acc[r * oc + o] = s
        } }
        return acc
    }

    static func gemm(_ path: Int8Path, n: Int, k: Int, oc: Int, a: [UInt8], w: [Int8]) -> [Int32] {
        let (packed, kp, ocp) = Int8Network.pack(w, k: k, oc: oc)
        var padded = [UInt8](repeating: 0, count: n * kp)
        for r in 0..<n { for kk in 0..<k { padded[r * kp + kk] = a[r * k + kk] } }
        // Garbage in A's padding columns must not matter: W's padding rows are zero.
        for r in 0..<n { for kk in k..<kp { padded[r * kp + kk] = 255 } }
        var acc = [Int32](repeating: -1, count: n * ocp)
        padded.withUnsafeBufferPointer { pa in packed.withUnsafeBufferPointer { pw in acc.withUnsafeMutableBufferPointer { pc in
            path.gemm(n: n, kp: kp, ocp: ocp, a: pa.baseAddress!, lda: kp, w: pw.baseAddress!, acc: pc.baseAddress!, ldc: ocp)
        } } }
        var out = [Int32](repeating: 0, count: n * oc)
        for r in 0..<n { for o in 0..<oc { out[r * oc + o] = acc[r * ocp + o] } }
        return out
    }

    @Test("every int8 GEMM path equals the plain loop exactly (tolerance 0)", arguments: int8Paths)
    func gemmMatchesReference(path: Int8Path) {
        var rng = SeededGenerator(seed: 7)
        for (n, k, oc) in [(1, 9, 32), (1, 5408, 128), (1, 37, 40), (1, 20, 80), (2, 12, 16), (6, 16, 16), (14, 24, 48), (3, 37, 40), (5, 64, 130), (7, 3, 5), (9, 100, 64), (13, 260, 10),
                          // k past the AVX2 path's 2,048-column nibble blocks, with tails not a multiple of 32 or of 8 steps
                          (1, 4100, 48), (2, 2052, 32), (3, 6150, 16),
                          // row tiles over several k blocks of the VNNI paths (64 groups each) with a partial last block
                          (8, 1100, 48), (12, 2600, 128), (7, 516, 80)] {
            let a = (0..<(n * k)).map { _ in UInt8(rng.nextUnitFloat() * 256) }
            let w = (0..<(k * oc)).map { _ in Int8(Int(rng.nextUnitFloat() * 255) - 127) }
            #expect(Self.gemm(path, n: n, k: k, oc: oc, a: a, w: w) == Self.referenceGEMM(n: n, k: k, oc: oc, a: a, w: w),
                    "\(path) n \(n) k \(k) oc \(oc)")
        }
        // Rows with runs of zero 4-byte groups (the AVX2 path skips them at batch 1) and small values (high nibble 0).
        for (n, k, oc) in [(1, 5408, 128), (1, 37, 40), (1, 2100, 16), (2, 300, 32)] {
            let a = (0..<(n * k)).map { i -> UInt8 in
                let group = i / 4
                return group % 5 < 2 || (group / 9) % 3 == 0 ? 0 : UInt8(rng.nextUnitFloat() * (group % 2 == 0 ? 16 : 256))
            }
            let w = (0..<(k * oc)).map { _ in Int8(Int(rng.nextUnitFloat() * 255) - 127) }
            #expect(Self.gemm(path, n: n, k: k, oc: oc, a: a, w: w) == Self.referenceGEMM(n: n, k: k, oc: oc, a: a, w: w),
                    "\(path) sparse n \(n) k \(k) oc \(oc)")
        }
    }

    @Test("input quantization (32 lanes at a time, then a scalar tail) equals the plain loop: ties to even, clamps, NaN → 0")
    func inputQuantizationMatchesPlainLoop() {
        var rng = SeededGenerator(seed: 23)
        let inv: Float = 255, zero = 3
        let special: [Float] = [.nan, -.nan, .infinity, -.infinity, -0.0, 0, 0.5 / 255, 1.5 / 255, 2.5 / 255, -3.5 / 255,
                                252.5 / 255, 1, 1.02, -1, 1e30, -1e30, .leastNonzeroMagnitude, .greatestFiniteMagnitude]
        for count in Array(0...70) + [95, 96, 97, 784, 785] {
            let x = (0..<count).map { i -> Float in
                i % 3 == 0 ? special[(i / 3) % special.count] : rng.nextUnitFloat() * 1.2 - 0.1
            }
            var q = [UInt8](repeating: 0xEE, count: count + 32)
            x.withUnsafeBufferPointer { xb in q.withUnsafeMutableBufferPointer { qb in
                loupe_i8_quantize(Int32(count), xb.baseAddress ?? UnsafePointer(bitPattern: 16)!, inv, Int32(zero), qb.baseAddress!)
            } }
            let expected = x.map { v -> UInt8 in
                let t = (v * inv).rounded(.toNearestOrEven) + Float(zero)
                return t.isNaN ? 0 : UInt8(min(max(t, 0), 255))
            }
            #expect(Array(q[..<count]) == expected, "count \(count)")
            #expect(q[count...].allSatisfy { $0 == 0xEE }, "count \(count): nothing written past the output")
        }
    }

    @Test("the AVX2 GEMM splits 4-byte groups whose byte pairs could saturate vpmaddubsw (pair sums 255…510)",
          .enabled(if: ISA.hasAVX2, "this CPU has no AVX2"))
    func avx2SplitsSaturatingGroups() {
        var rng = SeededGenerator(seed: 13)
        // Pair sums at the limit (128 + 128 = 256 is whole; 129 + 128 is split), far past it, and mixed with zeros,
        // against weights at both ends (−128 · 256 = −32,768 is exactly int16's minimum).
        let patterns: [[UInt8]] = [[128, 128, 127, 129], [129, 128, 0, 0], [255, 255, 255, 255], [0, 255, 2, 255], [200, 57, 1, 255],
                                   [255, 0, 0, 255], [128, 128, 128, 128]]
        for (n, k, oc) in [(1, 64, 16), (3, 260, 32), (17, 520, 80), (1, 37, 64)] {
            let a = (0..<(n * k)).map { i in patterns[(i / 4 + i / 37) % patterns.count][i % 4] }
            for w in [[Int8](repeating: -128, count: k * oc), [Int8](repeating: 127, count: k * oc),
                      (0..<(k * oc)).map { i in i % 3 == 0 ? -128 : Int8(Int(rng.nextUnitFloat() * 256) - 128) }] {
                #expect(Self.gemm(.avx2, n: n, k: k, oc: oc, a: a, w: w) == Self.referenceGEMM(n: n, k: k, oc: oc, a: a, w: w),
                        "n \(n) k \(k) oc \(oc)")
            }
        }
    }

    @Test("extreme operands do not saturate (255 · −127 and 255 · 127 everywhere)", arguments: int8Paths)
    func extremesDoNotSaturate(path: Int8Path) {
        let n = 3, k = 1024, oc = 32
        let a = [UInt8](repeating: 255, count: n * k)
        for value: Int8 in [127, -127] {
            let w = [Int8](repeating: value, count: k * oc)
            let acc = Self.gemm(path, n: n, k: k, oc: oc, a: a, w: w)
            #expect(acc.allSatisfy { $0 == 255 * Int32(value) * Int32(k) }, "\(path) \(value)")
        }
    }

    /// Plain loops for the fused conv: sums over the unpadded image (`fill` outside), the max of each
    /// pool × pool block of sums, then requantization as docs/model-format.md §12 writes it.
    static func referenceConv(_ g: ConvGeometry, pool: Int, x: [UInt8], w: [Int8], zc: [Int32], m: [Float], bias: [Float],
                              relu: Bool, inv: Float, zero: Int, fill: UInt8) -> [UInt8] {
        let (c, oc) = (g.channels, g.filters)
        let ph = g.outHeight / pool, pw = g.outWidth / pool
        var out = [UInt8](repeating: 0, count: ph * pw * oc)
        for py in 0..<ph { for px in 0..<pw { for o in 0..<oc {
            var best = Int32.min
            for i in 0..<pool { for j in 0..<pool {
                let y = py * pool + i, xo = px * pool + j
                var s: Int32 = 0
                for kh in 0..<g.kernelHeight { for kw in 0..<g.kernelWidth { for ch in 0..<c {
                    let ih = y * g.strideHeight + kh - g.padTop, iw = xo * g.strideWidth + kw - g.padLeft
                    let v = ih >= 0 && ih < g.height && iw >= 0 && iw < g.width ? x[(ih * g.width + iw) * c + ch] : fill
                    s += Int32(v) * Int32(w[((kh * g.kernelWidth + kw) * c + ch) * oc + o])
                } } }
                best = max(best, s)
            } }
            var y = Float(best - zc[o]) * m[o]
            y = y + bias[o]
            if relu { y = max(y, 0) }
            let t = (y * inv).rounded(.toNearestOrEven) + Float(zero)
            out[(py * pw + px) * oc + o] = UInt8(min(max(t, 0), 255))
        } } }
        return out
    }

    @Test("the fused conv + pool + requantize kernel equals the plain loops exactly on every path", arguments: int8Paths)
    func fusedConvMatchesReference(path: Int8Path) {
        var rng = SeededGenerator(seed: 21)
        func int(_ n: Int) -> Int { Int(rng.nextUnitFloat() * Float(n)) % n }
        // (h, w, c, kh, kw, sh, sw, same padding, pool, filters): the seed conv, odd channel counts (rows not a
        // multiple of 4 bytes), non-square kernels and unequal strides, borders, pools 1…3, filters not a multiple
        // of 16 and more than 64, and an image too large for the AVX2 path's int16 copies on the stack (its fallback).
        var cases = [(28, 28, 1, 3, 3, 1, 1, false, 2, 32), (10, 9, 2, 3, 3, 1, 1, false, 2, 16), (5, 4, 16, 3, 3, 1, 1, true, 2, 8),
                     (9, 11, 3, 5, 5, 2, 2, true, 1, 20), (12, 12, 5, 1, 1, 1, 1, false, 3, 70), (7, 8, 4, 2, 2, 2, 2, false, 1, 48),
                     (6, 6, 7, 4, 4, 1, 1, true, 1, 96), (11, 13, 3, 2, 5, 1, 2, true, 2, 24), (14, 9, 1, 5, 1, 2, 1, false, 1, 16),
                     (40, 40, 32, 3, 3, 1, 1, true, 2, 16),
                     // the register-resident pool-2 kernels: 1 to 4 groups per window (1 to 8 pairs), rows shared or not,
                     // 16 or 32 channels, the last block partly filled
                     (9, 9, 1, 1, 3, 1, 1, false, 2, 20), (8, 10, 2, 2, 3, 1, 1, false, 2, 24), (12, 12, 1, 3, 3, 2, 1, false, 2, 10),
                     (10, 10, 3, 2, 1, 1, 1, true, 2, 40), (11, 11, 1, 4, 3, 1, 1, false, 2, 32),
                     // one channel, 3 × 3, pool 2, stride 1 (AVX2's pooledCells3x3): odd sizes, a partly filled last block
                     (13, 15, 1, 3, 3, 1, 1, false, 2, 20), (9, 12, 1, 3, 3, 1, 1, true, 2, 48)]
        for _ in 0..<24 {
            cases.append((3 + int(10), 3 + int(10), 1 + int(6), 1 + int(4), 1 + int(4), 1 + int(2), 1 + int(2), int(2) == 1, 1 + int(3), 1 + int(80)))
        }
        // Images mostly zero (a background with an object, sparse specks): the pool-2 kernels write the requantized 0
        // for blocks whose windows read only zero bytes without computing them, whatever the fill and zero point.
        let sparse = [(28, 28, 1, 3, 3, 1, 1, false, 2, 32), (28, 28, 1, 3, 3, 1, 1, true, 2, 32), (12, 12, 1, 3, 3, 2, 1, false, 2, 10),
                      (8, 10, 2, 2, 3, 1, 1, false, 2, 24), (10, 10, 3, 2, 1, 1, 1, true, 2, 40), (11, 11, 1, 4, 3, 1, 1, false, 2, 20),
                      (9, 9, 1, 1, 3, 1, 1, false, 2, 16), (14, 14, 4, 3, 3, 1, 1, true, 2, 70), (17, 19, 1, 3, 3, 1, 1, false, 2, 40),
                      (15, 16, 1, 3, 3, 1, 1, true, 2, 8)]
        for (i, (h, w, c, kh0, kw0, sh, sw, same, pool0, oc)) in (cases + sparse).enumerated() {
            let zeroed = i >= cases.count
            let kh = min(kh0, h), kw = min(kw0, w)
            let oh = same ? (h + sh - 1) / sh : (h - kh) / sh + 1, ow = same ? (w + sw - 1) / sw : (w - kw) / sw + 1
            let pool = pool0 <= min(oh, ow) ? pool0 : 1
            let g = ConvGeometry(height: h, width: w, channels: c, filters: oc, kernelHeight: kh, kernelWidth: kw,
                                 padTop: same ? (kh - 1) / 2 : 0, padLeft: same ? (kw - 1) / 2 : 0, outHeight: oh, outWidth: ow, relu: false,
                                 strideHeight: sh, strideWidth: sw)
            let (top, left) = zeroed ? (int(h), int(w)) : (0, 0)
            let (bottom, right) = zeroed ? (top + int(h - top + 1), left + int(w - left + 1)) : (0, 0)
            let x = (0..<(h * w * c)).map { j -> UInt8 in
                let (y, xo) = (j / c / w, j / c % w)
                guard zeroed else { return UInt8(int(256)) }
                return (y >= top && y < bottom && xo >= left && xo < right) || int(40) == 0 ? UInt8(int(256)) : 0
            }
            let wq = (0..<(kh * kw * c * oc)).map { _ in Int8(int(255) - 127) }
            let zc = (0..<oc).map { _ in Int32(int(20000)) - 10000 }
            let m = (0..<oc).map { _ in Float(1 + int(1000)) * 1e-5 }, bias = (0..<oc).map { _ in Float(int(2000) - 1000) * 1e-3 }
            let relu = int(2) == 1, inv = 0.5 + Float(int(100)) * 0.1, zero = int(256)
            let fill = zeroed && int(2) == 0 ? 0 : UInt8(int(256))
            let got = Int8Network.fusedConv(path, g, pool: pool, weight: wq, zeroCorrection: zc, multiplier: m, bias: bias, relu: relu,
                                            inverseScale: inv, zeroPoint: zero, fill: fill, image: x)
            let expected = Self.referenceConv(g, pool: pool, x: x, w: wq, zc: zc, m: m, bias: bias, relu: relu, inv: inv, zero: zero, fill: fill)
            #expect(got == expected, "\(path): h \(h) w \(w) c \(c) kernel \(kh)×\(kw) strides \(sh), \(sw) same \(same) pool \(pool) oc \(oc) zeroed \(zeroed)")
        }
    }

    @Test("the fused conv's sums do not saturate (255 · ±127 over a 5×5×16 window)", arguments: int8Paths)
    func fusedConvExtremes(path: Int8Path) {
        let g = ConvGeometry(height: 6, width: 6, channels: 16, filters: 16, kernel: 5, padTop: 0, padLeft: 0, outHeight: 2, outWidth: 2, relu: false)
        for value: Int8 in [127, -127] {
            // Sum ±12,954,000 (400 · 255 · 127): with m = 1e-6, inv = 1, zero = 128 → y ≈ ±12.95 → 141 or 115 (int16 sums would wrap).
            let out = Int8Network.fusedConv(path, g, pool: 2, weight: [Int8](repeating: value, count: 400 * 16), zeroCorrection: [Int32](repeating: 0, count: 16),
                                            multiplier: [Float](repeating: 1e-6, count: 16), bias: [Float](repeating: 0, count: 16), relu: false,
                                            inverseScale: 1, zeroPoint: 128, fill: 0, image: [UInt8](repeating: 255, count: 576))
            #expect(out == [UInt8](repeating: value > 0 ? 141 : 115, count: 16), "\(path) \(value)")
        }
    }

    // One named test per SIMD path, so a CPU without it shows a visible skip (the parameterised tests
    // above only list the paths this CPU has).
    @Test(.enabled(if: ISA.hasAVX512VNNI, "this CPU has no AVX-512 VNNI")) func avx512VNNIPath() {
        gemmMatchesReference(path: .avx512vnni); extremesDoNotSaturate(path: .avx512vnni)
        fusedConvMatchesReference(path: .avx512vnni); fusedConvExtremes(path: .avx512vnni)
    }
    @Test(.enabled(if: ISA.hasAVXVNNI, "this CPU has no AVX-VNNI")) func avxVNNIPath() {
        gemmMatchesReference(path: .avxvnni); extremesDoNotSaturate(path: .avxvnni)
        fusedConvMatchesReference(path: .avxvnni); fusedConvExtremes(path: .avxvnni)
    }
    @Test(.enabled(if: ISA.hasAVX2, "this CPU has no AVX2")) func avx2Path() {
        gemmMatchesReference(path: .avx2); extremesDoNotSaturate(path: .avx2)
        fusedConvMatchesReference(path: .avx2); fusedConvExtremes(path: .avx2)
    }

    @Test func theDefaultPathIsTheBestTheCPUHas() {
        #expect(ISA.int8.isSupported)
        if ISA.hasAVX512VNNI, getenv("LOUPE_ISA") == nil { #expect(ISA.int8 == .avx512vnni) }
    }
}

@Suite struct Int8NetworkTests {
    /// Conv (fused with a pool) → conv same padding, linear (negative outputs: a non-zero zero point
    /// downstream) → max pool → flatten → dense ReLU → dense softmax: every int8 op kind.
    static let architecture = Architecture(inputShape: [10, 9, 2], layers: [
        .conv2d(filters: 16, kernel: 3, padding: .valid, activation: .relu),
        .maxPool2d(pool: 2),
        .conv2d(filters: 8, kernel: 3, padding: .same, activation: .linear),
        .maxPool2d(pool: 2),
        .flatten,
        .dense(units: 20, activation: .relu),
        .dropout(rate: 0.5),
        .dense(units: 5, activation: .softmax),
    ])

    static func images(_ count: Int, seed: UInt64) -> [Float] {
        var rng = SeededGenerator(seed: seed)
        return (0..<(count * 180)).map { _ in Float(Int(rng.nextUnitFloat() * 256)) / 255 }
    }

    static func quantizedModel(_ calibrator: Calibrator = .minmax) throws -> Sequential {
        let fp32 = try Sequential(architecture: architecture, seed: 3)
        return try fp32.quantized(calibrationImages: images(64, seed: 11), count: 64, calibrator: calibrator)
    }

    /// docs/model-format.md §12 as plain loops: quantize the input, then per conv/dense layer
    /// acc = Σ (q − z)·w over in-bounds cells, y = float(acc)·m + b, ReLU, quantize with the next
    /// layer's input parameters (pooling on the uint8 values); the last layer's y are the logits.
    static func referenceLogits(_ model: Sequential, _ x: [Float], count: Int) -> [Float] {
        let q = model.quantization!
        var logits: [Float] = []
        for b in 0..<count {
            var shape = model.architecture.inputShape
            let first = q.layers[0]
            var t: [Int] = (0..<180).map { i in
                let v = (x[b * 180 + i] * (1 / first.inputScale)).rounded(.toNearestOrEven) + Float(first.inputZeroPoint)
                return Int(min(max(v, 0), 255))
            }
            var l = 0
            var out: [Float] = []
            for layer in model.architecture.layers {
                switch layer {
                case let .conv2d(filters, kernel, _, padding, activation):
                    let k = kernel.height   // the int8 path runs square kernels only
                    let lq = q.layers[l], slot = model.slot(named: "\(lq.name).weight")!, bias = model.slot(named: "\(lq.name).bias")!
                    let (h, w, c) = (shape[0], shape[1], shape[2])
                    let pad = padding == .same ? (k - 1) / 2 : 0
                    let oh = padding == .same ? h : h - k + 1, ow = padding == .same ? w : w - k + 1
                    var y = [Float](repeating: 0, count: oh * ow * filters)
                    for i in 0..<oh { for j in 0..<ow { for f in 0..<filters {
                        var acc: Int32 = 0
                        for kh in 0..<k { for kw in 0..<k {
                            let ih = i + kh - pad, iw = j + kw - pad
                            guard ih >= 0, ih < h, iw >= 0, iw < w else { continue }
                            for ch in 0..<c {
                                let wq = QuantizationMath.quantizeWeight(model.parameters[slot.offset + ((kh * k + kw) * c + ch) * filters + f],
                                                                         scale: lq.weightScales[f])
                                acc += Int32(t[(ih * w + iw) * c + ch] - lq.inputZeroPoint) * Int32(wq)
                            }
                        } }
                        var v = Float(acc) * (lq.inputScale * lq.weightScales[f])
                        v = v + model.parameters[bias.offset + f]
                        if activation == .relu { v = max(v, 0) }
                        y[(i * ow + j) * filters + f] = v
                    } } }
                    l += 1
                    out = y
                    t = quantizeNext(y, q, l)
                    shape = [oh, ow, filters]
                case let .maxPool2d(pool, _, _):
                    let p = pool.height
                    let (h, w, c) = (shape[0], shape[1], shape[2])
                    var y = [Int](repeating: 0, count: (h / p) * (w / p) * c)
                    for i in 0..<(h / p) { for j in 0..<(w / p) { for ch in 0..<c {
                        var m = 0
                        for a in 0..<p { for bb in 0..<p { m = max(m, t[((i * p + a) * w + j * p + bb) * c + ch]) } }
                        y[(i * (w / p) + j) * c + ch] = m
                    } } }
                    t = y
                    shape = [h / p, w / p, c]
                case .flatten:
                    shape = [shape.reduce(1, *)]
                case let .dense(units, activation):
                    let lq = q.layers[l], slot = model.slot(named: "\(lq.name).weight")!, bias = model.slot(named: "\(lq.name).bias")!
                    let inputs = shape[0]
                    var y = [Float](repeating: 0, count: units)
                    for o in 0..<units {
                        var acc: Int32 = 0
                        for i in 0..<inputs {
                            let wq = QuantizationMath.quantizeWeight(model.parameters[slot.offset + i * units + o], scale: lq.weightScales[o])
                            acc += Int32(t[i] - lq.inputZeroPoint) * Int32(wq)
                        }
                        var v = Float(acc) * (lq.inputScale * lq.weightScales[o])
                        v = v + model.parameters[bias.offset + o]
                        if activation == .relu { v = max(v, 0) }
                        y[o] = v
                    }
                    l += 1
                    out = y
                    t = quantizeNext(y, q, l)
                    shape = [units]
                case .dropout:
                    break
                default:
                    Issue.record("the reference covers conv2d, maxPool2d, flatten, dense and dropout only")
                }
            }
            logits += out
        }
        return logits
    }

    static func quantizeNext(_ y: [Float], _ q: QuantizationParameters, _ l: Int) -> [Int] {
        guard l < q.layers.count else { return [] }
        let inv = 1 / q.layers[l].inputScale, z = Float(q.layers[l].inputZeroPoint)
        return y.map { Int(min(max(($0 * inv).rounded(.toNearestOrEven) + z, 0), 255)) }
    }

    @Test("the int8 network equals the plain-loop spec exactly on every path (tolerance 0)", arguments: int8Paths)
    func networkMatchesSpec(path: Int8Path) throws {
        let model = try Self.quantizedModel()
        #expect(model.precision == "int8")
        #expect(model.quantization!.layers.map(\.name) == ["conv1", "conv2", "dense1", "dense2"])
        #expect(model.quantization!.layers[2].inputZeroPoint > 0, "conv2 is linear: dense1's input needs a zero point")
        let x = Self.images(23, seed: 5)
        let expected = Self.referenceLogits(model, x, count: 23)
        for threads in [1, 2] {
            #expect(model.int8Outputs(x, count: 23, path: path, threads: threads) == expected, "\(path), \(threads) threads")
        }
        // More chunks (32 images each) than threads: the workers claim them as they finish.
        let x70 = Self.images(70, seed: 6)
        let expected70 = Self.referenceLogits(model, x70, count: 70)
        for threads in [2, 3] {
            #expect(model.int8Outputs(x70, count: 70, path: path, threads: threads) == expected70, "\(path), \(threads) threads, 70 images")
        }
    }

    @Test("a workspace makes the int8 scratch once and keeps it across calls; a copy of the workspace gets its own")
    func int8ScratchIsKeptAcrossCalls() throws {
        let model = try Self.quantizedModel()
        let x = Self.images(3, seed: 4)
        var workspace = model.makeWorkspace(maxBatch: 4)
        let first = model.predict(x, count: 3, workspace: &workspace)
        // Weak: a strong reference here would itself make the scratch shared (and rightly replaced).
        weak var storage = workspace.int8
        #expect(storage != nil)
        for _ in 0..<3 { #expect(model.predict(x, count: 3, workspace: &workspace) == first) }
        #expect(storage != nil && workspace.int8 === storage, "the same scratch on every call")
        // Another quantized network (a different Int8Network) in the same workspace gets a scratch of its own.
        let other = try Self.quantizedModel(.percentile)
        _ = other.predict(x, count: 3, workspace: &workspace)
        #expect(workspace.int8 !== storage && workspace.int8?.network === other.int8)
        // A shared copy is not written by the other holder: the next call on it makes its own.
        var copy = workspace
        weak var shared = copy.int8
        _ = other.predict(x, count: 3, workspace: &copy)
        #expect(shared != nil && copy.int8 !== shared && workspace.int8 === shared)
    }

    @Test func predictUsesInt8AndStaysCloseToFP32() throws {
        let fp32 = try Sequential(architecture: Self.architecture, seed: 3)
        let model = try Self.quantizedModel()
        let x = Self.images(50, seed: 9)
        var w1 = fp32.makeWorkspace(maxBatch: 16), w2 = model.makeWorkspace(maxBatch: 16)
        let p = model.predict(x, count: 50, workspace: &w2, threads: 2)
        #expect(p == model.int8Outputs(x, count: 50, path: ISA.int8, softmax: true))
        let reference = fp32.predict(x, count: 50, workspace: &w1)
        var worst: Float = 0
        for i in p.indices { worst = max(worst, abs(p[i] - reference[i])) }
        #expect(worst < 0.05, "int8 probabilities within 0.05 of fp32 on random weights, worst \(worst)")
        #expect(model.weightBytes < fp32.weightBytes / 2, "int8 weights (padded to 16 channels) take under half the fp32 bytes")
    }

    @Test("non-square kernels and unequal strides run int8: every path equal, close to fp32")
    func nonSquareKernels() throws {
        let architecture = Architecture(inputShape: [10, 9, 2], layers: [
            .conv2d(filters: 16, kernel: Size2D(2, 3), stride: Size2D(1, 2), padding: .same, activation: .relu),
            .conv2d(filters: 8, kernel: Size2D(3, 1), padding: .valid, activation: .linear),
            .flatten,
            .dense(units: 5, activation: .softmax),
        ])
        let fp32 = try Sequential(architecture: architecture, seed: 4)
        let model = try fp32.quantized(calibrationImages: Self.images(64, seed: 11), count: 64, calibrator: .minmax)
        let x = Self.images(13, seed: 6)
        let scalar = try #require(model.int8Outputs(x, count: 13, path: .scalar, softmax: true))
        for path in int8Paths { #expect(model.int8Outputs(x, count: 13, path: path, threads: 2, softmax: true) == scalar, "\(path)") }
        var w = fp32.makeWorkspace(maxBatch: 13)
        let reference = fp32.predict(x, count: 13, workspace: &w)
        var worst: Float = 0
        for i in scalar.indices { worst = max(worst, abs(scalar[i] - reference[i])) }
        #expect(worst < 0.05, "int8 probabilities within 0.05 of fp32, worst \(worst)")
    }

    @Test("quantize orders a conv's channels so that the dense layer's input groups are zero together; outputs stay bit-identical")
    func channelOrderKeepsOutputs() throws {
        let architecture = Architecture(inputShape: [10, 9, 2], layers: [
            .conv2d(filters: 16, kernel: 3, padding: .valid, activation: .relu),
            .maxPool2d(pool: 2),
            .flatten,
            .dense(units: 20, activation: .relu),
            .dense(units: 5, activation: .softmax),
        ])
        let fp32 = try Sequential(architecture: architecture, seed: 8)
        let calibration = Self.images(64, seed: 11)
        let plain = try fp32.quantized(calibrationImages: calibration, count: 64, calibrator: .minmax, orderChannels: false)
        let ordered = try fp32.quantized(calibrationImages: calibration, count: 64, calibrator: .minmax)
        // The conv's channels moved (their scales with them); every layer's input quantization is the same.
        let (a, b) = (plain.quantization!.layers, ordered.quantization!.layers)
        #expect(a[0].weightScales != b[0].weightScales && a[0].weightScales.sorted() == b[0].weightScales.sorted())
        #expect(a.map(\.inputScale) == b.map(\.inputScale) && a.map(\.inputZeroPoint) == b.map(\.inputZeroPoint))
        #expect(a[1...].map(\.weightScales) == b[1...].map(\.weightScales))
        #expect(plain.parameters.sorted() == ordered.parameters.sorted(), "the same weights, moved")
        // The same function bit for bit: every path, and the plain-loop spec of either model.
        let x = Self.images(19, seed: 12)
        let expected = Self.referenceLogits(plain, x, count: 19)
        #expect(Self.referenceLogits(ordered, x, count: 19) == expected)
        for path in int8Paths {
            #expect(ordered.int8Outputs(x, count: 19, path: path) == expected, "\(path)")
            #expect(plain.int8Outputs(x, count: 19, path: path) == expected, "\(path)")
        }
        // The architecture of the other test (a linear conv feeds the dense layer: zero point > 0) is left as it is.
        let other = try Sequential(architecture: Self.architecture, seed: 3)
        #expect(try other.quantized(calibrationImages: calibration, count: 64, calibrator: .minmax).parameters
                == other.quantized(calibrationImages: calibration, count: 64, calibrator: .minmax, orderChannels: false).parameters)
    }

    @Test("the channel order groups channels that are zero on the same pixels, never worse than the identity")
    func zeroGroupOrderGroupsCoZeroChannels() {
        // 8 channels: the even ones are zero on pixels 0..<60, the odd ones on 40..<100; in the identity order no group
        // of 4 is ever all zero. Values 0.4 / inverse scale 1 round to 0 (zero); 0.6 rounds to 1.
        var values = [Float](repeating: 0.6, count: 100 * 8)
        for p in 0..<100 { for c in 0..<8 where (c % 2 == 0 && p < 60) || (c % 2 == 1 && p >= 40) { values[p * 8 + c] = 0.4 } }
        let order = Sequential.zeroGroupOrder(values, channels: 8, inverseScale: 1)
        #expect(order.sorted() == Array(0..<8))
        #expect(Set(order[0..<4]) == [0, 2, 4, 6] || Set(order[0..<4]) == [1, 3, 5, 7], "\(order)")
        // Nothing to gain (every channel zero everywhere, or nowhere): the identity.
        #expect(Sequential.zeroGroupOrder([Float](repeating: 0, count: 80), channels: 8, inverseScale: 1) == Array(0..<8))
        #expect(Sequential.zeroGroupOrder([Float](repeating: 5, count: 80), channels: 8, inverseScale: 1) == Array(0..<8))
    }

    @Test func calibrationOfPixelInputsIsExact() throws {
        let model = try Self.quantizedModel()
        // Inputs k/255 with 0 and 255 present: min/max gives scale 1/255, zero point 0, so pixels map to themselves.
        #expect(model.quantization!.layers[0].inputZeroPoint == 0)
        #expect(abs(model.quantization!.layers[0].inputScale - 1 / 255) < 1e-9)
        let pct = try Self.quantizedModel(.percentile)
        #expect(pct.quantization!.calibrator == .percentile && pct.quantization!.percentile == 99.99)
    }

    @Test func aQuantizationThatDoesNotFitTheNetworkIsASentence() throws {
        let model = try Self.quantizedModel()
        var q = model.quantization!
        q.layers.removeLast()
        #expect(throws: EngineError.self) { try Sequential(architecture: model.architecture, parameters: model.parameters, quantization: q) }
        q = model.quantization!
        q.layers[1].weightScales[0] = 0
        #expect(throws: EngineError.self) { try Sequential(architecture: model.architecture, parameters: model.parameters, quantization: q) }
    }
}
