// Which kernel instantiation runs. Filled in with the AVX2 / AVX-512 policy (docs/performance.md).
enum ISA {
    static let kernels: KernelSet = KernelSet.reference
}
