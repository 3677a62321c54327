// swift-tools-version: 6.1
import PackageDescription

// Engine ISA policy (docs/performance.md, "Engine"): LoupeEngine and LoupeKernels compile for
// x86-64-v3 (AVX2 + FMA), the engine's minimum; LoupeKernelsAVX512 compiles the same @inlinable
// kernels for x86-64-v4 (AVX-512), chosen at start-up by cpuid (LOUPE_ISA=avx2 forces the fallback).
// -Ounchecked keeps bounds checks out of the hot loops in every configuration, so even debug test
// builds of the engine run at speed. x86-64 only.
let engineFlags: [SwiftSetting] = [
    .unsafeFlags(["-Ounchecked", "-Xcc", "-march=x86-64-v3", "-Xllvm", "-sil-inline-overall-caller-block-limit=10000"]),
]
let avx512Flags: [SwiftSetting] = [
    .unsafeFlags(["-Ounchecked", "-Xcc", "-march=x86-64-v4", "-Xllvm", "-sil-inline-overall-caller-block-limit=10000"]),
]

let package = Package(
    name: "Loupe",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "loupe", targets: ["loupe"]),
        .library(name: "LoupeEngine", targets: ["LoupeEngine"]),
        .library(name: "LoupeHTTP", targets: ["LoupeHTTP"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        // ONNX files are parsed with swift-protobuf's generated messages (LoupeONNX). No default
        // traits: BinaryDelimitedStreams would pull full Foundation (InputStream) into the binary.
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0", traits: []),
    ],
    targets: [
        .systemLibrary(name: "CZlib", path: "Sources/CZlib"),
        .systemLibrary(name: "COpenSSL", path: "Sources/COpenSSL"),
        .systemLibrary(name: "CTurboJPEG", path: "Sources/CTurboJPEG"),
        .systemLibrary(name: "CWebP", path: "Sources/CWebP"),
        .target(name: "CLoupeCPU", path: "Sources/LoupeEngine/CPU"),
        // Int8 kernels: C with per-function target attributes (vpdpbusd needs intrinsics; Swift SIMD types do not
        // emit it). Always optimised, for the engine's x86-64-v3 minimum (vroundps for rint), and no FMA contraction:
        // every path must round y = acc·m + b the same way.
        .target(name: "CLoupeInt8", path: "Sources/LoupeEngine/KernelsInt8", cSettings: [.unsafeFlags(["-O2", "-march=x86-64-v3", "-ffp-contract=off"])]),
        .target(name: "LoupeKernels", path: "Sources/LoupeEngine/Kernels", exclude: ["README.md"], swiftSettings: engineFlags),
        .target(name: "LoupeKernelsAVX512", dependencies: ["LoupeKernels"], path: "Sources/LoupeEngine/KernelsAVX512", swiftSettings: avx512Flags),
        .target(name: "LoupeEngine", dependencies: ["LoupeKernels", "LoupeKernelsAVX512", "CLoupeCPU", "CLoupeInt8", "LoupeSystem"],
                exclude: ["Kernels", "KernelsAVX512", "KernelsInt8", "CPU"], swiftSettings: engineFlags),
        .target(name: "LoupeData", dependencies: ["LoupeEngine", "LoupeSystem", "CZlib", "COpenSSL", "CTurboJPEG", "CWebP"]),
        .target(name: "CLoupeSystem"),
        .target(name: "LoupeSystem", dependencies: ["CLoupeSystem"]),
        .target(name: "LoupeHTTP", dependencies: ["CZlib", "COpenSSL", "CLoupeSystem", "LoupeSystem"]),
        .target(
            name: "LoupeService",
            dependencies: [
                "LoupeEngine", "LoupeData", "LoupeHTTP", "LoupeSystem",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(name: "LoupeONNX", dependencies: ["LoupeEngine", .product(name: "SwiftProtobuf", package: "swift-protobuf")]),
        .executableTarget(
            name: "loupe",
            dependencies: [
                "LoupeEngine", "LoupeData", "LoupeHTTP", "LoupeService", "LoupeONNX", "COpenSSL",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(name: "loupe-engine-bench", dependencies: ["LoupeEngine", "LoupeKernels", "LoupeKernelsAVX512"], path: "Benchmarks/EngineBench",
                          exclude: ["compare.sh", "check_isa.sh", "summarize.py", "compare_cnn32.sh", "cnn32_ort.py", "compare_onnx.sh", "summarize_onnx.py"],
                          swiftSettings: engineFlags),
        .executableTarget(name: "loupe-data-bench", dependencies: ["LoupeData", "LoupeEngine", "CTurboJPEG"], path: "Benchmarks/DataBench"),
        .executableTarget(name: "loupe-http-bench", dependencies: ["LoupeHTTP"], path: "Benchmarks/HTTPBench", exclude: ["compare.sh"]),
        .executableTarget(name: "loupe-lifecycle-bench", dependencies: ["LoupeService", "LoupeData", "LoupeEngine",
                          .product(name: "Logging", package: "swift-log")], path: "Benchmarks/LifecycleBench"),
        .target(name: "LoupeTestSupport", dependencies: ["LoupeSystem"], path: "Tests/LoupeTestSupport"),
        .testTarget(name: "LoupeEngineTests", dependencies: ["LoupeTestSupport", "LoupeEngine"], exclude: ["Fixtures"]),
        .testTarget(name: "LoupeDataTests", dependencies: ["LoupeTestSupport", "LoupeData", "LoupeEngine"], exclude: ["Fixtures"]),
        .testTarget(name: "LoupeHTTPTests", dependencies: ["LoupeTestSupport", "LoupeHTTP"]),
        .testTarget(name: "LoupeServiceTests", dependencies: ["LoupeTestSupport", "LoupeService", "LoupeData", "LoupeEngine", "LoupeHTTP"]),
        .testTarget(name: "LoupeONNXTests", dependencies: ["LoupeTestSupport", "LoupeONNX", "LoupeEngine"]),
        .testTarget(name: "EndToEndTests", dependencies: ["LoupeTestSupport", "LoupeData", "LoupeEngine"], exclude: ["python"]),
    ]
)
