// Helpers for the SIMD kernels. Everything here is @inlinable @inline(__always) so each ISA
// module (this one at x86-64-v3, LoupeKernelsAVX512 at x86-64-v4) compiles its own copy inline;
// no out-of-line copy exists that the linker could merge across ISAs.

@usableFromInline typealias F16 = SIMD16<Float>

@inlinable @inline(__always) func load16(_ p: UnsafePointer<Float>) -> SIMD16<Float> {
    UnsafeRawPointer(p).loadUnaligned(as: SIMD16<Float>.self)
}
@inlinable @inline(__always) func load16(_ p: UnsafeMutablePointer<Float>) -> SIMD16<Float> {
    UnsafeRawPointer(p).loadUnaligned(as: SIMD16<Float>.self)
}
@inlinable @inline(__always) func store16(_ v: SIMD16<Float>, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD16<Float>.self)
}
@inlinable @inline(__always) func splat(_ x: Float) -> SIMD16<Float> { SIMD16<Float>(repeating: x) }

/// Sums each of 16 vectors: lane i of the result is the sum of the lanes of v_i.
@inlinable @inline(__always)
func transposeSum(_ v0: F16, _ v1: F16, _ v2: F16, _ v3: F16, _ v4: F16, _ v5: F16, _ v6: F16, _ v7: F16,
                  _ v8: F16, _ v9: F16, _ v10: F16, _ v11: F16, _ v12: F16, _ v13: F16, _ v14: F16, _ v15: F16) -> F16 {
    @inline(__always) func fold(_ a: F16, _ b: F16) -> F16 {
        // lanes 0-7: 8 partial sums of a; lanes 8-15: of b
        F16(lowHalf: a.lowHalf + a.highHalf, highHalf: b.lowHalf + b.highHalf)
    }
    @inline(__always) func pairs(_ a: F16, _ b: F16) -> F16 {
        // adjacent lanes summed: a's groups first, then b's
        F16(lowHalf: a.evenHalf + a.oddHalf, highHalf: b.evenHalf + b.oddHalf)
    }
    let l1a = fold(v0, v1), l1b = fold(v2, v3), l1c = fold(v4, v5), l1d = fold(v6, v7)
    let l1e = fold(v8, v9), l1f = fold(v10, v11), l1g = fold(v12, v13), l1h = fold(v14, v15)
    // l1a = [v0: 8 partials, v1: 8 partials]; pairs → [v0: 4, v1: 4, v2: 4, v3: 4]
    let l2a = pairs(l1a, l1b), l2b = pairs(l1c, l1d), l2c = pairs(l1e, l1f), l2d = pairs(l1g, l1h)
    let l3a = pairs(l2a, l2b), l3b = pairs(l2c, l2d)   // [v0: 2, v1: 2, ..., v7: 2]
    return pairs(l3a, l3b)                            // [v0, v1, ..., v15]
}

// Lane masks as integer vectors (-1 = set, 0 = clear) built with arithmetic and bit casts.
// The stdlib's SIMDMask `replacing(with:where:)` / `replace(with:where:)` and SIMD `squareRoot()`
// compile to per-lane loops or 4-lane pieces here (measured with perf and objdump); these compile to
// a few vector instructions each. A comparison itself is fine: `unsafeBitCast(a .> b, to: I16.self)`
// is one vcmpps (into a k register on AVX-512), and `select` on it one blend or masked move
// (ConvKernels.take: 3 instructions a pooling window where greaterMask + select take 8).
@usableFromInline typealias I16 = SIMD16<Int32>
@inlinable @inline(__always) func bits(_ v: F16) -> I16 { unsafeBitCast(v, to: I16.self) }
@inlinable @inline(__always) func floats(_ v: I16) -> F16 { unsafeBitCast(v, to: F16.self) }
/// -1 in the lanes where a > b, else 0 (finite inputs: b - a is negative exactly when a > b,
/// and never rounds to zero for a ≠ b thanks to gradual underflow).
@inlinable @inline(__always) func greaterMask(_ a: F16, _ b: F16) -> I16 { bits(b - a) &>> 31 }
/// -1 in the lanes where index == value, else 0, for indices and values in 0...255.
@inlinable @inline(__always) func equalMask(_ index: I16, _ value: Int32) -> I16 {
    ((index ^ I16(repeating: value)) &- 1) &>> 31
}
/// v in the lanes where mask is set, +0 elsewhere.
@inlinable @inline(__always) func keep(_ mask: I16, _ v: F16) -> F16 { floats(bits(v) & mask) }
/// a in the lanes where mask is set, b elsewhere.
@inlinable @inline(__always) func select(_ mask: I16, _ a: I16, _ b: I16) -> I16 { b ^ ((b ^ a) & mask) }
/// Lane-wise max without the stdlib's generic pointwiseMax (which is emitted out of line as a shared
/// specialization: slow, and a copy the linker could merge across ISA modules).
@inlinable @inline(__always) func maximum(_ a: F16, _ b: F16) -> F16 { floats(select(greaterMask(a, b), bits(a), bits(b))) }
@inlinable @inline(__always) func relu(_ v: F16) -> F16 { keep(greaterMask(v, F16(repeating: 0)), v) }

/// √v for v ≥ 0 from the bit-trick reciprocal square root and three Newton steps (relative error
/// about 1e-7, a few ulps); exact 0 for v = 0. Used by Adam, where √v only scales the step.
@inlinable @inline(__always) func squareRootApprox(_ v: F16) -> F16 {
    var y = floats(I16(repeating: 0x5F37_5A86) &- (bits(v) &>> 1))
    let half = v * 0.5
    let threeHalves = F16(repeating: 1.5)
    y = y * (threeHalves - half * y * y)
    y = y * (threeHalves - half * y * y)
    y = y * (threeHalves - half * y * y)
    return v * y
}

/// e^x per lane (Cephes's expf: x = n·ln2 + r with n rounded to nearest by the 1.5·2²³ trick, a degree-6
/// polynomial for e^r on |r| ≤ ln2/2, 2ⁿ built in the exponent bits). Relative error ≤ 2e-7 on
/// [-87, 88]; x is clamped to that range (e^x underflows to ~1e-38 / overflows to ~1.7e38 at the ends).
/// Used by sigmoid and tanh, where libm's scalar expf/tanhf dominated a small CNN's time (measured:
/// 2048 tanh values cost more than the network's convolutions at batch 1).
@inlinable @inline(__always) func exp16(_ x: F16) -> F16 {
    let lo = F16(repeating: -87.3), hi = F16(repeating: 88.3)
    var v = floats(select(greaterMask(x, lo), bits(x), bits(lo)))
    v = floats(select(greaterMask(v, hi), bits(hi), bits(v)))
    let magic = F16(repeating: 12_582_912)   // 1.5·2²³: adding it rounds to an integer in the low mantissa bits
    let t = v * 1.442_695_04 + magic
    let n = t - magic
    var r = v - n * 0.693_359_375
    r = r - n * -2.121_944_4e-4
    var p = F16(repeating: 1.987_569_15e-4)
    p = p * r + 1.398_199_95e-3
    p = p * r + 8.333_451_9e-3
    p = p * r + 4.166_579_59e-2
    p = p * r + 0.166_666_655
    p = p * r + 0.500_000_01
    let e = p * (r * r) + r + 1
    let scale = floats((bits(t) &- bits(magic) &+ 127) &<< 23)
    return e * scale
}

// 8-lane (one ymm) forms of the helpers above, for the AVX2 table's kernels whose register tiles need
// SIMD8 granularity to fit 16 ymm registers (ConvKernels' narrow paths).
@usableFromInline typealias F8 = SIMD8<Float>
@usableFromInline typealias I8 = SIMD8<Int32>
@inlinable @inline(__always) func load8(_ p: UnsafePointer<Float>) -> F8 { UnsafeRawPointer(p).loadUnaligned(as: F8.self) }
@inlinable @inline(__always) func load8(_ p: UnsafeMutablePointer<Float>) -> F8 { UnsafeRawPointer(p).loadUnaligned(as: F8.self) }
@inlinable @inline(__always) func store8(_ v: F8, _ p: UnsafeMutablePointer<Float>) { UnsafeMutableRawPointer(p).storeBytes(of: v, as: F8.self) }
@inlinable @inline(__always) func splat8(_ x: Float) -> F8 { F8(repeating: x) }
@inlinable @inline(__always) func bits(_ v: F8) -> I8 { unsafeBitCast(v, to: I8.self) }
@inlinable @inline(__always) func floats(_ v: I8) -> F8 { unsafeBitCast(v, to: F8.self) }
@inlinable @inline(__always) func greaterMask(_ a: F8, _ b: F8) -> I8 { bits(b - a) &>> 31 }
@inlinable @inline(__always) func equalMask(_ index: I8, _ value: Int32) -> I8 { ((index ^ I8(repeating: value)) &- 1) &>> 31 }
@inlinable @inline(__always) func keep(_ mask: I8, _ v: F8) -> F8 { floats(bits(v) & mask) }
@inlinable @inline(__always) func select(_ mask: I8, _ a: I8, _ b: I8) -> I8 { b ^ ((b ^ a) & mask) }
