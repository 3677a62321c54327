// The peak-FMA probe: how many fp32 FLOP/s one thread of this CPU can do with fused multiply-adds
// on the vector width of a kernel table, so benchmarks can state "% of measured peak" for the ISA
// path that ran. Twelve independent accumulator chains: more than FMA latency × FMA ports on every
// x86 core (Haswell/Zen 2-5: 4-5 cycles × 2 ports = 8-10 chains), so the loop is throughput-bound;
// 12 vectors + 2 operands fit the 16 ymm registers (no spills). Each ISA module compiles its own
// copy of `run` (this module at x86-64-v3: SIMD8<Float> = one ymm; LoupeKernelsAVX512 at x86-64-v4:
// SIMD16<Float> = one zmm).

@_spi(Kernels) public enum FMAProbe {
    /// `iterations` rounds of 12 vector FMAs a = c + a·m of V's width (bounded values: no overflow, no
    /// denormals); returns a lane sum so the work is not dead.
    /// FLOPs done: iterations · 12 · V.scalarCount · 2.
    @inlinable @inline(__always)
    public static func run<V: SIMD>(_: V.Type, iterations: Int, seed: Float) -> Float where V.Scalar == Float {
        let m = V(repeating: 0.999_999), c = V(repeating: seed * 1e-7)
        var a0 = V(repeating: seed), a1 = a0 + c, a2 = a1 + c, a3 = a2 + c, a4 = a3 + c, a5 = a4 + c
        var a6 = a5 + c, a7 = a6 + c, a8 = a7 + c, a9 = a8 + c, a10 = a9 + c, a11 = a10 + c
        for _ in 0..<iterations {
            a0 = c.addingProduct(a0, m); a1 = c.addingProduct(a1, m); a2 = c.addingProduct(a2, m)
            a3 = c.addingProduct(a3, m); a4 = c.addingProduct(a4, m); a5 = c.addingProduct(a5, m)
            a6 = c.addingProduct(a6, m); a7 = c.addingProduct(a7, m); a8 = c.addingProduct(a8, m)
            a9 = c.addingProduct(a9, m); a10 = c.addingProduct(a10, m); a11 = c.addingProduct(a11, m)
        }
        let s = ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7)) + ((a8 + a9) + (a10 + a11))
        return s.sum()
    }

    /// The AVX2 (ymm) probe, compiled in this x86-64-v3 module.
    public static func ymm(iterations: Int, seed: Float) -> Float { run(SIMD8<Float>.self, iterations: iterations, seed: seed) }
    public static let ymmLanes = 8
}
