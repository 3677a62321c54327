// ISA policy (also in Package.swift and docs/performance.md, "Engine"):
// - LoupeEngine and LoupeKernels compile for x86-64-v3 (AVX2 + FMA): the minimum the engine needs
//   to be fast, and what every x86-64 server since Haswell (2013) / Zen 1 (2017) has.
// - LoupeKernelsAVX512 compiles the same @inlinable kernel source for x86-64-v4 (AVX-512).
// - At start-up cpuid picks the AVX-512 table when the CPU and OS support it, else the AVX2 one.
//   LOUPE_ISA=avx2 forces the fallback (tests run both tables against the plain-loop references).
import CLoupeCPU
import CLoupeInt8
import Glibc
@_spi(Kernels) import LoupeKernels
import LoupeKernelsAVX512

package enum ISA {
    /// The kernel table every Sequential and Trainer uses.
    package static let kernels: KernelSet = {
        if let forced = getenv("LOUPE_ISA").map({ String(cString: $0) }) {
            switch forced {
            case "avx2": return KernelSet.avx2
            case "reference": return KernelSet.reference
            case "avx512" where hasAVX512: return avx512KernelSet
            default: break
            }
        }
        return hasAVX512 ? avx512KernelSet : KernelSet.avx2
    }()

    package static let hasAVX512 = loupe_cpu_has_avx512() != 0
    package static let hasAVX2 = loupe_cpu_has_x86_64_v3() != 0

    /// The int8 GEMM every quantized model uses: AVX-512 VNNI, else AVX-VNNI, else AVX2 (int16 widening).
    /// LOUPE_ISA=avx512 | avxvnni | avx2 | reference forces one (when the CPU has it).
    package static let int8: Int8Path = {
        if let forced = getenv("LOUPE_ISA").map({ String(cString: $0) }) {
            switch forced {
            case "avx512" where hasAVX512VNNI: return .avx512vnni
            case "avxvnni" where hasAVXVNNI: return .avxvnni
            case "avx2" where hasAVX2: return .avx2
            case "reference": return .scalar
            default: break
            }
        }
        return hasAVX512VNNI ? .avx512vnni : hasAVXVNNI ? .avxvnni : hasAVX2 ? .avx2 : .scalar
    }()

    package static let hasAVX512VNNI = loupe_cpu_has_avx512vnni() != 0
    package static let hasAVXVNNI = loupe_cpu_has_avxvnni() != 0

    /// Every table this CPU can run, for tests and benchmarks.
    package static var available: [KernelSet] {
        hasAVX512 ? [KernelSet.reference, KernelSet.avx2, avx512KernelSet] : [KernelSet.reference, KernelSet.avx2]
    }
}

/// The name of the kernel set in use: "avx512", "avx2" or "reference" (for logs and benchmarks).
public var engineKernelName: String { ISA.kernels.name }

/// The int8 GEMM path quantized models use: "avx512vnni", "avxvnni", "avx2" or "scalar".
public var int8KernelName: String { ISA.int8.rawValue }

/// CPU facts for benchmarks (package-internal).
package enum ISAInfo {
    package static var hasAVX512: Bool { ISA.hasAVX512 }
}
