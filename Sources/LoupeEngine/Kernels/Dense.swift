// Dense layer kernels. Layout: x (N, in) row-major, weight (in, out) row-major (Keras), y (N, out).
// The SIMD paths need out % 16 == 0; other widths (e.g. the 10-class head) use the small loops.

@_spi(Kernels) public enum DenseKernels {
    /// Rows of the weight matrix per cache block: 256 × 128 floats = 128 KB stays in L2 while
    /// every 4-image tile of the batch streams past it.
    @usableFromInline static var kBlock: Int { 256 }

    /// y (N, out) = x (N, in) · weight (in, out) + bias; ReLU if relu. The kernel tables send batches of 1–3 images to
    /// `forwardRows` instead (each table through its own closure, so each body is inlined into a function of its own).
    /// `narrow` (the AVX2 table) uses 6×16 tiles, one B panel at a time (forwardPanels): 4×64 tiles need 16
    /// accumulators, which fit AVX-512's 32 zmm registers but spill on AVX2's 16 ymm. Per output element the
    /// summation order is the same either way, so both give identical results.
    @inlinable @inline(__always)
    public static func forward(n: Int, inputs: Int, outputs: Int, relu: Bool, x: UnsafePointer<Float>,
                                weight: UnsafePointer<Float>, bias: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>,
                                narrow: Bool = false) {
        guard outputs % 16 == 0 else {
            forwardSmall(n: n, inputs: inputs, outputs: outputs, relu: relu, x: x, weight: weight, bias: bias, y: y)
            return
        }
        for m in 0..<n { for j in stride(from: 0, to: outputs, by: 16) { store16(load16(bias + j), y + m * outputs + j) } }
        var k0 = 0
        while k0 < inputs {
            let kc = min(kBlock, inputs - k0)
            if narrow {
                forwardPanels(n: n, kc: kc, x: x + k0, lda: inputs, b: weight + k0 * outputs, outputs: outputs, y: y)
                k0 += kc
                continue
            }
            var m = 0
            // Rows past the last multiple of 4 take the one-row two-chain tiles (another summation order, the same on
            // both tables), so the 6-row tiles cover whole dozens of the first 4·⌊n/4⌋ rows and 4-row tiles the rest.
            let sixEnd = outputs % 64 == 0 ? (n - n % 4) / 12 * 12 : 0
            while m + 6 <= sixEnd {
                for j in stride(from: 0, to: outputs, by: 64) {
                    tileNN6x4(kc, x + m * inputs + k0, inputs, weight + k0 * outputs + j, outputs, y + m * outputs + j, outputs)
                }
                m += 6
            }
            while m + 4 <= n {
                var j = 0
                while j + 64 <= outputs {
                    tileNN4x4(kc, x + m * inputs + k0, inputs, weight + k0 * outputs + j, outputs, y + m * outputs + j, outputs)
                    j += 64
                }
                while j < outputs {
                    tileNN4x1(kc, x + m * inputs + k0, inputs, weight + k0 * outputs + j, outputs, y + m * outputs + j, outputs)
                    j += 16
                }
                m += 4
            }
            while m < n {
                var j = 0
                while j + 64 <= outputs {   // one row: 1×64 has enough independent chains on either ISA
                    tileNN1x4(kc, x + m * inputs + k0, weight + k0 * outputs + j, outputs, y + m * outputs + j)
                    j += 64
                }
                while j < outputs {
                    tileNN1x1(kc, x + m * inputs + k0, weight + k0 * outputs + j, outputs, y + m * outputs + j)
                    j += 16
                }
                m += 1
            }
            k0 += kc
        }
        if relu {
            for i in stride(from: 0, to: n * outputs, by: 16) { store16(LoupeKernels.relu(load16(y + i)), y + i) }
        }
    }

    /// `forward` for batches of 1–3 images (batch-1 inference): one matrix-vector product per image, bound by
    /// streaming the weight (the seed network's 2.8 MB: from L3 on every call). It reads only the weight rows
    /// whose input is not ±0 — after ReLU and max pooling about half of them on the seed network, so half the
    /// bytes. Per block of kBlock inputs (a 128 KB slice of the weight at 128 outputs, L2-resident while the
    /// block's 1–3 rows and its column tiles pass over it), a 256-bit mask of the block's nonzero inputs is built
    /// with vector compares (no data-dependent branch per input, which would mispredict about half the time), then
    /// each column tile of the output runs one broadcast-FMA row per set bit. Tiles are 128 columns (8 zmm
    /// accumulators) on AVX-512 and 64 (8 ymm) on the narrow AVX2 table. Every output sums bias + Σ x[k]·w[k]
    /// over the nonzero k in ascending order (one chain) whatever the tile, so both tables give identical
    /// results; skipping x[k] = 0 changes nothing but the sign of an all-zero sum (and drops 0·∞ = NaN for an
    /// infinite weight). No scratch memory: the mask lives in a register.
    @inlinable @inline(__always)
    public static func forwardRows(n: Int, inputs: Int, outputs: Int, relu: Bool, x: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                                   bias: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, narrow: Bool) {
        guard outputs % 16 == 0 else {
            forwardSmall(n: n, inputs: inputs, outputs: outputs, relu: relu, x: x, weight: weight, bias: bias, y: y)
            return
        }
        for m in 0..<n { (y + m * outputs).update(from: bias, count: outputs) }
        var k0 = 0
        while k0 < inputs {
            let kc = min(kBlock, inputs - k0)
            let b = weight + k0 * outputs
            for m in 0..<n {
                let xr = x + m * inputs + k0, yr = y + m * outputs
                var masks = SIMD4<UInt64>()
                for word in 0..<4 where 64 * word < kc { masks[word] = nonzeroMask64(xr + 64 * word, min(64, kc - 64 * word)) }
                var j = 0
                if !narrow {
                    while j + 128 <= outputs { sparseTile8(masks, xr, b + j, outputs, yr + j); j += 128 }
                }
                while j + 64 <= outputs { sparseTile4(masks, xr, b + j, outputs, yr + j); j += 64 }
                while j < outputs { sparseTile1(masks, xr, b + j, outputs, yr + j); j += 16 }
            }
            k0 += kc
        }
        if relu {
            for i in stride(from: 0, to: n * outputs, by: 16) { store16(LoupeKernels.relu(load16(y + i)), y + i) }
        }
    }

    /// Bit i set when a[i] is not ±0, for i < count (≤ 16): |a| + 0x7fffffff carries into bit 31 exactly then.
    @inlinable @inline(__always)
    static func nonzeroMask(_ a: UnsafePointer<Float>, _ count: Int) -> UInt32 {
        if count == 16 {
            let u = unsafeBitCast(load16(a), to: SIMD16<UInt32>.self) & 0x7fff_ffff
            let lane = SIMD16<UInt32>(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)
            let one: SIMD16<UInt32> = (u &+ 0x7fff_ffff) &>> 31
            let bit: SIMD16<UInt32> = one &<< lane
            let h8 = bit.lowHalf | bit.highHalf, h4 = h8.lowHalf | h8.highHalf, h2 = h4.lowHalf | h4.highHalf
            return h2.x | h2.y   // the bits are disjoint: OR-folding the lanes sums them
        }
        var mask: UInt32 = 0
        for i in 0..<count { mask |= (((a[i].bitPattern & 0x7fff_ffff) &+ 0x7fff_ffff) >> 31) << UInt32(i) }
        return mask
    }

    /// Bit i set when a[i] is not ±0, for i < count (≤ 64). 64 inputs per mask: the loop over its set bits ends
    /// with one mispredicted branch per mask, so wider masks cost fewer of them.
    @inlinable @inline(__always)
    static func nonzeroMask64(_ a: UnsafePointer<Float>, _ count: Int) -> UInt64 {
        if count == 64 {
            return UInt64(nonzeroMask(a, 16)) | UInt64(nonzeroMask(a + 16, 16)) << 16
                | UInt64(nonzeroMask(a + 32, 16)) << 32 | UInt64(nonzeroMask(a + 48, 16)) << 48
        }
        var mask: UInt64 = 0, i = 0
        while i < count { mask |= UInt64(nonzeroMask(a + i, min(16, count - i))) << UInt64(i); i += 16 }
        return mask
    }

    /// Calls body(k) for every set bit k of the 256-bit mask (bit k % 64 of word k / 64), in ascending order.
    @inlinable @inline(__always)
    static func forEachNonzero(_ masks: SIMD4<UInt64>, _ body: (Int) -> Void) {
        for word in 0..<4 {
            var mask = masks[word]
            while mask != 0 {
                body(64 * word + mask.trailingZeroBitCount)
                mask &= mask &- 1
            }
        }
    }

    /// c (1 × 128) += Σ a[k] · B[k, 0..<128] over the k whose bit is set in masks (k < 256: bit k % 64 of word k / 64), in ascending order.
    @inlinable @inline(__always)
    static func sparseTile8(_ masks: SIMD4<UInt64>, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ ldb: Int, _ c: UnsafeMutablePointer<Float>) {
        var s0 = load16(c), s1 = load16(c + 16), s2 = load16(c + 32), s3 = load16(c + 48)
        var s4 = load16(c + 64), s5 = load16(c + 80), s6 = load16(c + 96), s7 = load16(c + 112)
        forEachNonzero(masks) { k in
            let xv = splat(a[k]), bp = b + k * ldb
            s0.addProduct(xv, load16(bp)); s1.addProduct(xv, load16(bp + 16))
            s2.addProduct(xv, load16(bp + 32)); s3.addProduct(xv, load16(bp + 48))
            s4.addProduct(xv, load16(bp + 64)); s5.addProduct(xv, load16(bp + 80))
            s6.addProduct(xv, load16(bp + 96)); s7.addProduct(xv, load16(bp + 112))
        }
        store16(s0, c); store16(s1, c + 16); store16(s2, c + 32); store16(s3, c + 48)
        store16(s4, c + 64); store16(s5, c + 80); store16(s6, c + 96); store16(s7, c + 112)
    }

    /// c (1 × 64) += Σ a[k] · B[k, 0..<64] over the k whose bit is set in masks (k < 256: bit k % 64 of word k / 64), in ascending order.
    @inlinable @inline(__always)
    static func sparseTile4(_ masks: SIMD4<UInt64>, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ ldb: Int, _ c: UnsafeMutablePointer<Float>) {
        var s0 = load16(c), s1 = load16(c + 16), s2 = load16(c + 32), s3 = load16(c + 48)
        forEachNonzero(masks) { k in
            let xv = splat(a[k]), bp = b + k * ldb
            s0.addProduct(xv, load16(bp)); s1.addProduct(xv, load16(bp + 16))
            s2.addProduct(xv, load16(bp + 32)); s3.addProduct(xv, load16(bp + 48))
        }
        store16(s0, c); store16(s1, c + 16); store16(s2, c + 32); store16(s3, c + 48)
    }

    /// c (1 × 16) += Σ a[k] · B[k, 0..<16] over the k whose bit is set in masks (k < 256: bit k % 64 of word k / 64), in ascending order.
    @inlinable @inline(__always)
    static func sparseTile1(_ masks: SIMD4<UInt64>, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ ldb: Int, _ c: UnsafeMutablePointer<Float>) {
        var s = load16(c)
        forEachNonzero(masks) { k in s.addProduct(splat(a[k]), load16(b + k * ldb)) }
        store16(s, c)
    }

    /// The AVX2 (16 ymm) order of `forward`'s block: C (n × out) += A (n × kc, row stride lda) · B (kc × out).
    /// One 16-column panel of B at a time (kc × 16 floats: 16 KB at kc = 256, L1-resident) while the 6-row
    /// strips of A stream past it: 6×16 tiles are 12 ymm accumulators + 2 for B + 1 broadcast, the largest
    /// tile that fits 16 ymm registers, and they load B once per 12 FMAs (4×16 tiles: once per 8).
    /// Rows are split exactly as the 4×64 path splits them, so every output sums in the same order on both
    /// tables: the first n & ~3 rows in order (6-, 4- and 1-row tiles, one accumulator chain per output), the
    /// last n % 4 rows through the single-row tiles (tileNN1x4 pairs even and odd k: enough chains at batch 1).
    @inlinable @inline(__always)
    static func forwardPanels(n: Int, kc: Int, x: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, outputs: Int,
                              y: UnsafeMutablePointer<Float>) {
        let tiled = n & ~3
        for j in stride(from: 0, to: outputs, by: 16) {
            var m = 0
            while m + 6 <= tiled {
                tileNN6x1(kc, x + m * lda, lda, b + j, outputs, y + m * outputs + j, outputs)
                m += 6
            }
            if m + 4 <= tiled {
                tileNN4x1(kc, x + m * lda, lda, b + j, outputs, y + m * outputs + j, outputs)
                m += 4
            }
            while m < tiled {
                tileNN1x1(kc, x + m * lda, b + j, outputs, y + m * outputs + j)
                m += 1
            }
        }
        for m in tiled..<n {
            var j = 0
            while j + 64 <= outputs { tileNN1x4(kc, x + m * lda, b + j, outputs, y + m * outputs + j); j += 64 }
            while j < outputs { tileNN1x1(kc, x + m * lda, b + j, outputs, y + m * outputs + j); j += 16 }
        }
    }

    /// C (6 × 16) += A (6 × K, row stride lda) · B (K × 16, row stride ldb): 12 ymm accumulators on AVX2.
    @inlinable @inline(__always)
    static func tileNN6x1(_ K: Int, _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ ldb: Int,
                          _ c: UnsafeMutablePointer<Float>, _ ldc: Int, overwrite: Bool = false) {
        let z = F16(repeating: 0)
        var s0 = z, s1 = z, s2 = z, s3 = z, s4 = z, s5 = z
        if !overwrite {
            s0 = load16(c); s1 = load16(c + ldc); s2 = load16(c + 2 * ldc)
            s3 = load16(c + 3 * ldc); s4 = load16(c + 4 * ldc); s5 = load16(c + 5 * ldc)
        }
        let a0 = a, a1 = a + lda, a2 = a + 2 * lda, a3 = a + 3 * lda, a4 = a + 4 * lda, a5 = a + 5 * lda
        var bp = b
        for k in 0..<K {
            let bv = load16(bp)
            s0.addProduct(splat(a0[k]), bv); s1.addProduct(splat(a1[k]), bv); s2.addProduct(splat(a2[k]), bv)
            s3.addProduct(splat(a3[k]), bv); s4.addProduct(splat(a4[k]), bv); s5.addProduct(splat(a5[k]), bv)
            bp += ldb
        }
        store16(s0, c); store16(s1, c + ldc); store16(s2, c + 2 * ldc)
        store16(s3, c + 3 * ldc); store16(s4, c + 4 * ldc); store16(s5, c + 5 * ldc)
    }

    /// C (6 × 16) += Aᵀ · B where A (K × ≥6) has row stride lda (column r of the tile is a[k·lda + r]), B (K × 16):
    /// the AVX2 tile of the weight gradient (12 ymm accumulators).
    @inlinable @inline(__always)
    static func tileTN6x1(_ K: Int, _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ ldb: Int,
                          _ c: UnsafeMutablePointer<Float>, _ ldc: Int) {
        var s0 = load16(c), s1 = load16(c + ldc), s2 = load16(c + 2 * ldc)
        var s3 = load16(c + 3 * ldc), s4 = load16(c + 4 * ldc), s5 = load16(c + 5 * ldc)
        var ap = a, bp = b
        for _ in 0..<K {
            let bv = load16(bp)
            s0.addProduct(splat(ap[0]), bv); s1.addProduct(splat(ap[1]), bv); s2.addProduct(splat(ap[2]), bv)
            s3.addProduct(splat(ap[3]), bv); s4.addProduct(splat(ap[4]), bv); s5.addProduct(splat(ap[5]), bv)
            ap += lda; bp += ldb
        }
        store16(s0, c); store16(s1, c + ldc); store16(s2, c + 2 * ldc)
        store16(s3, c + 3 * ldc); store16(s4, c + 4 * ldc); store16(s5, c + 5 * ldc)
    }

    /// C (6 × 64) += A (6 × K, row stride lda) · B (K × 64, row stride ldb): 24 zmm accumulators, so each B row loaded
    /// from L2 serves 6 images (tileNN4x4: 4) — 4 loads + 6 broadcasts per 24 FMAs. AVX-512 only (32 registers).
    /// Same order per output as tileNN4x4 (one chain, k ascending).
    @inlinable @inline(__always)
    static func tileNN6x4(_ K: Int, _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ ldb: Int,
                          _ c: UnsafeMutablePointer<Float>, _ ldc: Int) {
        let c0 = c + 0 * ldc, c1 = c + 1 * ldc, c2 = c + 2 * ldc, c3 = c + 3 * ldc, c4 = c + 4 * ldc, c5 = c + 5 * ldc
        var s00 = load16(c0), s01 = load16(c0 + 16), s02 = load16(c0 + 32), s03 = load16(c0 + 48)
        var s10 = load16(c1), s11 = load16(c1 + 16), s12 = load16(c1 + 32), s13 = load16(c1 + 48)
        var s20 = load16(c2), s21 = load16(c2 + 16), s22 = load16(c2 + 32), s23 = load16(c2 + 48)
        var s30 = load16(c3), s31 = load16(c3 + 16), s32 = load16(c3 + 32), s33 = load16(c3 + 48)
        var s40 = load16(c4), s41 = load16(c4 + 16), s42 = load16(c4 + 32), s43 = load16(c4 + 48)
        var s50 = load16(c5), s51 = load16(c5 + 16), s52 = load16(c5 + 32), s53 = load16(c5 + 48)
        let a0 = a + 0 * lda, a1 = a + 1 * lda, a2 = a + 2 * lda, a3 = a + 3 * lda, a4 = a + 4 * lda, a5 = a + 5 * lda
        var bp = b
        for k in 0..<K {
            let b0 = load16(bp), b1 = load16(bp + 16), b2 = load16(bp + 32), b3 = load16(bp + 48)
            do { let x = splat(a0[k]); s00.addProduct(x, b0); s01.addProduct(x, b1); s02.addProduct(x, b2); s03.addProduct(x, b3) }
            do { let x = splat(a1[k]); s10.addProduct(x, b0); s11.addProduct(x, b1); s12.addProduct(x, b2); s13.addProduct(x, b3) }
            do { let x = splat(a2[k]); s20.addProduct(x, b0); s21.addProduct(x, b1); s22.addProduct(x, b2); s23.addProduct(x, b3) }
            do { let x = splat(a3[k]); s30.addProduct(x, b0); s31.addProduct(x, b1); s32.addProduct(x, b2); s33.addProduct(x, b3) }
            do { let x = splat(a4[k]); s40.addProduct(x, b0); s41.addProduct(x, b1); s42.addProduct(x, b2); s43.addProduct(x, b3) }
            do { let x = splat(a5[k]); s50.addProduct(x, b0); s51.addProduct(x, b1); s52.addProduct(x, b2); s53.addProduct(x, b3) }
            bp += ldb
        }
        store16(s00, c0); store16(s01, c0 + 16); store16(s02, c0 + 32); store16(s03, c0 + 48)
        store16(s10, c1); store16(s11, c1 + 16); store16(s12, c1 + 32); store16(s13, c1 + 48)
        store16(s20, c2); store16(s21, c2 + 16); store16(s22, c2 + 32); store16(s23, c2 + 48)
        store16(s30, c3); store16(s31, c3 + 16); store16(s32, c3 + 32); store16(s33, c3 + 48)
        store16(s40, c4); store16(s41, c4 + 16); store16(s42, c4 + 32); store16(s43, c4 + 48)
        store16(s50, c5); store16(s51, c5 + 16); store16(s52, c5 + 32); store16(s53, c5 + 48)
    }

    /// C (4 × 64) += A (4 × K, row stride lda) · B (K × 64, row stride ldb).
    @inlinable @inline(__always)
    static func tileNN4x4(_ K: Int, _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ ldb: Int,
                          _ c: UnsafeMutablePointer<Float>, _ ldc: Int, overwrite: Bool = false) {
        let c0 = c, c1 = c + ldc, c2 = c + 2 * ldc, c3 = c + 3 * ldc
        let z = F16(repeating: 0)
        var s00 = z, s01 = z, s02 = z, s03 = z, s10 = z, s11 = z, s12 = z, s13 = z
        var s20 = z, s21 = z, s22 = z, s23 = z, s30 = z, s31 = z, s32 = z, s33 = z
        if !overwrite {
            s00 = load16(c0); s01 = load16(c0 + 16); s02 = load16(c0 + 32); s03 = load16(c0 + 48)
            s10 = load16(c1); s11 = load16(c1 + 16); s12 = load16(c1 + 32); s13 = load16(c1 + 48)
            s20 = load16(c2); s21 = load16(c2 + 16); s22 = load16(c2 + 32); s23 = load16(c2 + 48)
            s30 = load16(c3); s31 = load16(c3 + 16); s32 = load16(c3 + 32); s33 = load16(c3 + 48)
        }
        let a0 = a, a1 = a + lda, a2 = a + 2 * lda, a3 = a + 3 * lda
        var bp = b
        for k in 0..<K {
            let b0 = load16(bp), b1 = load16(bp + 16), b2 = load16(bp + 32), b3 = load16(bp + 48)
            let x0 = splat(a0[k]), x1 = splat(a1[k]), x2 = splat(a2[k]), x3 = splat(a3[k])
            s00.addProduct(x0, b0); s01.addProduct(x0, b1); s02.addProduct(x0, b2); s03.addProduct(x0, b3)
            s10.addProduct(x1, b0); s11.addProduct(x1, b1); s12.addProduct(x1, b2); s13.addProduct(x1, b3)
            s20.addProduct(x2, b0); s21.addProduct(x2, b1); s22.addProduct(x2, b2); s23.addProduct(x2, b3)
            s30.addProduct(x3, b0); s31.addProduct(x3, b1); s32.addProduct(x3, b2); s33.addProduct(x3, b3)
            bp += ldb
        }
        store16(s00, c0); store16(s01, c0 + 16); store16(s02, c0 + 32); store16(s03, c0 + 48)
        store16(s10, c1); store16(s11, c1 + 16); store16(s12, c1 + 32); store16(s13, c1 + 48)
        store16(s20, c2); store16(s21, c2 + 16); store16(s22, c2 + 32); store16(s23, c2 + 48)
        store16(s30, c3); store16(s31, c3 + 16); store16(s32, c3 + 32); store16(s33, c3 + 48)
    }

    /// C (4 × 16) += A (4 × K) · B (K × 16).
    @inlinable @inline(__always)
    static func tileNN4x1(_ K: Int, _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ ldb: Int,
                          _ c: UnsafeMutablePointer<Float>, _ ldc: Int, overwrite: Bool = false) {
        let z = F16(repeating: 0)
        var s0 = z, s1 = z, s2 = z, s3 = z
        if !overwrite { s0 = load16(c); s1 = load16(c + ldc); s2 = load16(c + 2 * ldc); s3 = load16(c + 3 * ldc) }
        var bp = b
        for k in 0..<K {
            let bv = load16(bp)
            s0.addProduct(splat(a[k]), bv); s1.addProduct(splat(a[lda + k]), bv)
            s2.addProduct(splat(a[2 * lda + k]), bv); s3.addProduct(splat(a[3 * lda + k]), bv)
            bp += ldb
        }
        store16(s0, c); store16(s1, c + ldc); store16(s2, c + 2 * ldc); store16(s3, c + 3 * ldc)
    }

    /// C (1 × 64) += a (1 × K) · B (K × 64). Batch-1 inference: bound by streaming B from L3.
    @inlinable @inline(__always)
    static func tileNN1x4(_ K: Int, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ ldb: Int, _ c: UnsafeMutablePointer<Float>,
                          overwrite: Bool = false) {
        let z = F16(repeating: 0)
        var s0 = z, s1 = z, s2 = z, s3 = z
        if !overwrite { s0 = load16(c); s1 = load16(c + 16); s2 = load16(c + 32); s3 = load16(c + 48) }
        var t0 = F16(repeating: 0), t1 = F16(repeating: 0), t2 = F16(repeating: 0), t3 = F16(repeating: 0)
        var bp = b
        var k = 0
        while k + 2 <= K {
            let x0 = splat(a[k]), x1 = splat(a[k + 1])
            s0.addProduct(x0, load16(bp)); s1.addProduct(x0, load16(bp + 16))
            s2.addProduct(x0, load16(bp + 32)); s3.addProduct(x0, load16(bp + 48))
            t0.addProduct(x1, load16(bp + ldb)); t1.addProduct(x1, load16(bp + ldb + 16))
            t2.addProduct(x1, load16(bp + ldb + 32)); t3.addProduct(x1, load16(bp + ldb + 48))
            bp += 2 * ldb
            k += 2
        }
        if k < K {
            let x0 = splat(a[k])
            s0.addProduct(x0, load16(bp)); s1.addProduct(x0, load16(bp + 16))
            s2.addProduct(x0, load16(bp + 32)); s3.addProduct(x0, load16(bp + 48))
        }
        store16(s0 + t0, c); store16(s1 + t1, c + 16); store16(s2 + t2, c + 32); store16(s3 + t3, c + 48)
    }

    @inlinable @inline(__always)
    static func tileNN1x1(_ K: Int, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ ldb: Int, _ c: UnsafeMutablePointer<Float>,
                          overwrite: Bool = false) {
        var s = overwrite ? F16(repeating: 0) : load16(c)
        var bp = b
        for k in 0..<K { s.addProduct(splat(a[k]), load16(bp)); bp += ldb }
        store16(s, c)
    }

    /// Plain loops for widths that are not a multiple of 16 (i outer, so the inner loop is contiguous).
    @inlinable @inline(__always)
    static func forwardSmall(n: Int, inputs: Int, outputs: Int, relu: Bool, x: UnsafePointer<Float>,
                             weight: UnsafePointer<Float>, bias: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>) {
        for m in 0..<n {
            let yr = y + m * outputs, xr = x + m * inputs
            for j in 0..<outputs { yr[j] = bias[j] }
            for i in 0..<inputs {
                let xi = xr[i], wr = weight + i * outputs
                for j in 0..<outputs { yr[j] += xi * wr[j] }
            }
            if relu { for j in 0..<outputs { yr[j] = max(yr[j], 0) } }
        }
    }

    /// dY (N, out) is w.r.t. the pre-activation. dWeight += xᵀ·dY, dBias += Σ dY, dX (if given) = dY·weightᵀ.
    @inlinable @inline(__always)
    public static func backward(n: Int, inputs: Int, outputs: Int, x: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                                 weightT: UnsafePointer<Float>?, dY: UnsafePointer<Float>, dWeight: UnsafeMutablePointer<Float>,
                                 dBias: UnsafeMutablePointer<Float>, dX: UnsafeMutablePointer<Float>?, narrow: Bool = false) {
        guard outputs % 16 == 0 else {
            backwardSmall(n: n, inputs: inputs, outputs: outputs, x: x, weight: weight, dY: dY, dWeight: dWeight, dBias: dBias, dX: dX)
            return
        }
        // dBias: rows summed in order.
        for j in stride(from: 0, to: outputs, by: 16) {
            var s = load16(dBias + j)
            for m in 0..<n { s += load16(dY + m * outputs + j) }
            store16(s, dBias + j)
        }
        // dWeight (in × out) += xᵀ (in × N) · dY (N × out), in 4-row × 64-column tiles over the batch.
        var i = 0
        if narrow {
            // AVX2: 6 weight rows × 16 columns per tile (see tileTN6x1); the rows' 6 x-values per image are contiguous.
            while i + 6 <= inputs {
                for j in stride(from: 0, to: outputs, by: 16) { tileTN6x1(n, x + i, inputs, dY + j, outputs, dWeight + i * outputs + j, outputs) }
                i += 6
            }
        }
        while i + 4 <= inputs {
            var j = 0
            while !narrow && j + 64 <= outputs { tileTN4x4(n, x + i, inputs, dY + j, outputs, dWeight + i * outputs + j, outputs); j += 64 }
            while j < outputs { tileTN4x1(n, x + i, inputs, dY + j, outputs, dWeight + i * outputs + j, outputs); j += 16 }
            i += 4
        }
        if i < inputs {
            for j in stride(from: 0, to: outputs, by: 16) { tileTN1(n, inputs - i, x + i, inputs, dY + j, outputs, dWeight + i * outputs + j, outputs) }
        }
        guard let dX else { return }
        backwardInput(n: n, inputs: inputs, outputs: outputs, weight: weight, weightT: weightT, dY: dY, dX: dX, narrow: narrow)
    }

    /// dX (N, in) = dY (N, out) · weightᵀ (written, not accumulated): the input half of `backward`, also used
    /// alone for gradients with respect to the network's input (explanations), where no parameter gradient is needed.
    /// weightT (out × in, packed by `transpose`) is optional; without it the dot products run along weight's rows.
    @inlinable @inline(__always)
    public static func backwardInput(n: Int, inputs: Int, outputs: Int, weight: UnsafePointer<Float>, weightT: UnsafePointer<Float>?,
                                     dY: UnsafePointer<Float>, dX: UnsafeMutablePointer<Float>, narrow: Bool = false) {
        guard outputs % 16 == 0 else {
            for m in 0..<n {
                let dy = dY + m * outputs
                for i in 0..<inputs {
                    let wr = weight + i * outputs
                    var acc: Float = 0
                    for j in 0..<outputs { acc += wr[j] * dy[j] }
                    dX[m * inputs + i] = acc
                }
            }
            return
        }
        if let weightT, inputs % 16 == 0 {
            // dX (N × in) = dY (N × out) · weightᵀ with weightᵀ packed in 64-column panels (see transpose):
            // the forward GEMM's tiles, one contiguous panel (out × 64, L1/L2-resident) at a time while the
            // batch streams past it.
            var j0 = 0
            while j0 < inputs {
                let width = min(64, inputs - j0)
                let panel = weightT + j0 * outputs
                if narrow {
                    // AVX2: each 16-column slice of the panel (out × 16, stride width) against 6-row strips of dY; rows
                    // split as in forwardPanels, so each dX sums in the wide path's order.
                    let tiled = n & ~3
                    for j in stride(from: 0, to: width, by: 16) {
                        var m = 0
                        while m + 6 <= tiled {
                            tileNN6x1(outputs, dY + m * outputs, outputs, panel + j, width, dX + m * inputs + j0 + j, inputs, overwrite: true)
                            m += 6
                        }
                        if m + 4 <= tiled {
                            tileNN4x1(outputs, dY + m * outputs, outputs, panel + j, width, dX + m * inputs + j0 + j, inputs, overwrite: true)
                            m += 4
                        }
                        while m < tiled {
                            tileNN1x1(outputs, dY + m * outputs, panel + j, width, dX + m * inputs + j0 + j, overwrite: true)
                            m += 1
                        }
                    }
                    for m in tiled..<n {
                        var j = 0
                        while j + 64 <= width {
                            tileNN1x4(outputs, dY + m * outputs, panel + j, width, dX + m * inputs + j0 + j, overwrite: true); j += 64
                        }
                        while j < width { tileNN1x1(outputs, dY + m * outputs, panel + j, width, dX + m * inputs + j0 + j, overwrite: true); j += 16 }
                    }
                    j0 += width
                    continue
                }
                var j = 0
                while j < width {
                    let wide = !narrow && j + 64 <= width
                    var m = 0
                    while m + 4 <= n {
                        if wide { tileNN4x4(outputs, dY + m * outputs, outputs, panel + j, width, dX + m * inputs + j0 + j, inputs, overwrite: true) }
                        else { tileNN4x1(outputs, dY + m * outputs, outputs, panel + j, width, dX + m * inputs + j0 + j, inputs, overwrite: true) }
                        m += 4
                    }
                    while m < n {
                        if wide { tileNN1x4(outputs, dY + m * outputs, panel + j, width, dX + m * inputs + j0 + j, overwrite: true) }
                        else { tileNN1x1(outputs, dY + m * outputs, panel + j, width, dX + m * inputs + j0 + j, overwrite: true) }
                        m += 1
                    }
                    j += wide ? 64 : 16
                }
                j0 += width
            }
            return
        }
        // dX (N × in) = dY (N × out) · weightᵀ: dot products along out, 2 images × 8 weight rows at a time,
        // weight rows blocked by 64 so the block stays in L1 while the batch passes.
        var i0 = 0
        while i0 < inputs {
            let ib = min(64, inputs - i0)
            var m = 0
            while m + 2 <= n {
                var ii = i0
                while ii + 8 <= i0 + ib { tileNT2x8(outputs, dY + m * outputs, weight + ii * outputs, dX + m * inputs + ii, inputs); ii += 8 }
                while ii < i0 + ib { dotRows(outputs, dY + m * outputs, 2, outputs, weight + ii * outputs, dX + m * inputs + ii, inputs); ii += 1 }
                m += 2
            }
            if m < n {
                for ii in i0..<(i0 + ib) { dotRows(outputs, dY + m * outputs, 1, outputs, weight + ii * outputs, dX + m * inputs + ii, inputs) }
            }
            i0 += ib
        }
    }

    /// Packs weightᵀ for the input-gradient GEMM: weight (rows × cols) = (in × out) becomes panels of 64
    /// input rows (the last one narrower), each stored (cols × width) contiguous, so a panel is one
    /// contiguous block: element (k, j) of weightᵀ sits at panelStart(j) · cols + k · width + (j − panelStart).
    /// Writes the entries for weight rows [firstRow, firstRow + rowCount) (threads split the rows).
    @inlinable @inline(__always)
    public static func transpose(rows: Int, cols: Int, src: UnsafePointer<Float>, dst: UnsafeMutablePointer<Float>,
                                 firstRow: Int, rowCount: Int) {
        for j in firstRow..<(firstRow + rowCount) {
            let j0 = j & ~63, width = min(64, rows - j0)
            let d = dst + j0 * cols + (j - j0), s = src + j * cols
            for k in 0..<cols { d[k * width] = s[k] }
        }
    }

    /// C (4 × 64) += Aᵀ · B where A (K × ≥4) has row stride lda (so column r of the tile is a[k·lda + r]), B (K × 64).
    @inlinable @inline(__always)
    static func tileTN4x4(_ K: Int, _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ ldb: Int,
                          _ c: UnsafeMutablePointer<Float>, _ ldc: Int) {
        let c0 = c, c1 = c + ldc, c2 = c + 2 * ldc, c3 = c + 3 * ldc
        var s00 = load16(c0), s01 = load16(c0 + 16), s02 = load16(c0 + 32), s03 = load16(c0 + 48)
        var s10 = load16(c1), s11 = load16(c1 + 16), s12 = load16(c1 + 32), s13 = load16(c1 + 48)
        var s20 = load16(c2), s21 = load16(c2 + 16), s22 = load16(c2 + 32), s23 = load16(c2 + 48)
        var s30 = load16(c3), s31 = load16(c3 + 16), s32 = load16(c3 + 32), s33 = load16(c3 + 48)
        var ap = a, bp = b
        for _ in 0..<K {
            let b0 = load16(bp), b1 = load16(bp + 16), b2 = load16(bp + 32), b3 = load16(bp + 48)
            let x0 = splat(ap[0]), x1 = splat(ap[1]), x2 = splat(ap[2]), x3 = splat(ap[3])
            s00.addProduct(x0, b0); s01.addProduct(x0, b1); s02.addProduct(x0, b2); s03.addProduct(x0, b3)
            s10.addProduct(x1, b0); s11.addProduct(x1, b1); s12.addProduct(x1, b2); s13.addProduct(x1, b3)
            s20.addProduct(x2, b0); s21.addProduct(x2, b1); s22.addProduct(x2, b2); s23.addProduct(x2, b3)
            s30.addProduct(x3, b0); s31.addProduct(x3, b1); s32.addProduct(x3, b2); s33.addProduct(x3, b3)
            ap += lda; bp += ldb
        }
        store16(s00, c0); store16(s01, c0 + 16); store16(s02, c0 + 32); store16(s03, c0 + 48)
        store16(s10, c1); store16(s11, c1 + 16); store16(s12, c1 + 32); store16(s13, c1 + 48)
        store16(s20, c2); store16(s21, c2 + 16); store16(s22, c2 + 32); store16(s23, c2 + 48)
        store16(s30, c3); store16(s31, c3 + 16); store16(s32, c3 + 32); store16(s33, c3 + 48)
    }

    /// C (4 × 16) += Aᵀ · B, one 16-wide column block.
    @inlinable @inline(__always)
    static func tileTN4x1(_ K: Int, _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ ldb: Int,
                          _ c: UnsafeMutablePointer<Float>, _ ldc: Int) {
        var s0 = load16(c), s1 = load16(c + ldc), s2 = load16(c + 2 * ldc), s3 = load16(c + 3 * ldc)
        var ap = a, bp = b
        for _ in 0..<K {
            let bv = load16(bp)
            s0.addProduct(splat(ap[0]), bv); s1.addProduct(splat(ap[1]), bv)
            s2.addProduct(splat(ap[2]), bv); s3.addProduct(splat(ap[3]), bv)
            ap += lda; bp += ldb
        }
        store16(s0, c); store16(s1, c + ldc); store16(s2, c + 2 * ldc); store16(s3, c + 3 * ldc)
    }

    /// C (rows × 16) += Aᵀ · B for rows ≤ 4, one 16-wide column block.
    @inlinable @inline(__always)
    static func tileTN1(_ K: Int, _ rows: Int, _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ ldb: Int,
                        _ c: UnsafeMutablePointer<Float>, _ ldc: Int) {
        for r in 0..<rows {
            var s = load16(c + r * ldc)
            for k in 0..<K { s.addProduct(splat(a[k * lda + r]), load16(b + k * ldb)) }
            store16(s, c + r * ldc)
        }
    }

    /// C[m, i] = Σ_k A[m, k] · B[i, k] for 2 rows m (stride lda) × 8 rows i (stride K), K % 16 == 0.
    @inlinable @inline(__always)
    static func tileNT2x8(_ K: Int, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ c: UnsafeMutablePointer<Float>, _ ldc: Int) {
        let z = F16(repeating: 0)
        var p0 = z, p1 = z, p2 = z, p3 = z, p4 = z, p5 = z, p6 = z, p7 = z
        var q0 = z, q1 = z, q2 = z, q3 = z, q4 = z, q5 = z, q6 = z, q7 = z
        let a1 = a + K
        for k in stride(from: 0, to: K, by: 16) {
            let x0 = load16(a + k), x1 = load16(a1 + k)
            let w0 = load16(b + k), w1 = load16(b + K + k), w2 = load16(b + 2 * K + k), w3 = load16(b + 3 * K + k)
            p0.addProduct(x0, w0); p1.addProduct(x0, w1); p2.addProduct(x0, w2); p3.addProduct(x0, w3)
            q0.addProduct(x1, w0); q1.addProduct(x1, w1); q2.addProduct(x1, w2); q3.addProduct(x1, w3)
            let w4 = load16(b + 4 * K + k), w5 = load16(b + 5 * K + k), w6 = load16(b + 6 * K + k), w7 = load16(b + 7 * K + k)
            p4.addProduct(x0, w4); p5.addProduct(x0, w5); p6.addProduct(x0, w6); p7.addProduct(x0, w7)
            q4.addProduct(x1, w4); q5.addProduct(x1, w5); q6.addProduct(x1, w6); q7.addProduct(x1, w7)
        }
        let s = transposeSum(p0, p1, p2, p3, p4, p5, p6, p7, q0, q1, q2, q3, q4, q5, q6, q7)
        let r0 = s.lowHalf, r1 = s.highHalf
        UnsafeMutableRawPointer(c).storeBytes(of: r0, as: SIMD8<Float>.self)
        UnsafeMutableRawPointer(c + ldc).storeBytes(of: r1, as: SIMD8<Float>.self)
    }

    /// c[m·ldc] = Σ_k a[m·lda + k] · b[k] for `rows` rows m (K % 16 == 0).
    @inlinable @inline(__always)
    static func dotRows(_ K: Int, _ a: UnsafePointer<Float>, _ rows: Int, _ lda: Int, _ b: UnsafePointer<Float>,
                        _ c: UnsafeMutablePointer<Float>, _ ldc: Int) {
        for m in 0..<rows {
            var s = F16(repeating: 0)
            for k in stride(from: 0, to: K, by: 16) { s.addProduct(load16(a + m * lda + k), load16(b + k)) }
            c[m * ldc] = s.sum()
        }
    }

    @inlinable @inline(__always)
    static func backwardSmall(n: Int, inputs: Int, outputs: Int, x: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                              dY: UnsafePointer<Float>, dWeight: UnsafeMutablePointer<Float>,
                              dBias: UnsafeMutablePointer<Float>, dX: UnsafeMutablePointer<Float>?) {
        for m in 0..<n {
            let dy = dY + m * outputs, xr = x + m * inputs
            for j in 0..<outputs { dBias[j] += dy[j] }
            for i in 0..<inputs {
                let xi = xr[i], wr = weight + i * outputs, dwr = dWeight + i * outputs
                var acc: Float = 0
                for j in 0..<outputs { dwr[j] += xi * dy[j]; acc += wr[j] * dy[j] }
                dX?[m * inputs + i] = acc
            }
        }
    }
}
