// swift-tools-version: 6.1
import PackageDescription

// Kernels are compiled for x86-64-v3 (AVX2 + FMA) at least; see docs/performance.md for the
// ISA policy. -Ounchecked keeps bounds checks out of the hot loops in every configuration,
// so even debug test builds of the engine run at speed.
let engineFlags: [SwiftSetting] = [
    .unsafeFlags(["-Ounchecked"]),
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
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
    ],
    targets: [
        .systemLibrary(name: "CZlib", path: "Sources/CZlib"),
        .systemLibrary(name: "COpenSSL", path: "Sources/COpenSSL"),
        .target(name: "LoupeEngine", swiftSettings: engineFlags),
        .target(name: "LoupeData", dependencies: ["LoupeEngine", "CZlib", "COpenSSL"]),
        .target(name: "CLoupeSystem"),
        .target(name: "LoupeHTTP", dependencies: ["CZlib", "COpenSSL", "CLoupeSystem"]),
        .target(
            name: "LoupeService",
            dependencies: [
                "LoupeEngine", "LoupeData", "LoupeHTTP",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "loupe",
            dependencies: [
                "LoupeEngine", "LoupeData", "LoupeHTTP", "LoupeService",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(name: "loupe-engine-bench", dependencies: ["LoupeEngine"], path: "Benchmarks/EngineBench",
                          swiftSettings: engineFlags),
        .executableTarget(name: "loupe-http-bench", dependencies: ["LoupeHTTP"], path: "Benchmarks/HTTPBench"),
        .testTarget(name: "LoupeEngineTests", dependencies: ["LoupeEngine"]),
        .testTarget(name: "LoupeDataTests", dependencies: ["LoupeData", "LoupeEngine"]),
        .testTarget(name: "LoupeHTTPTests", dependencies: ["LoupeHTTP"]),
        .testTarget(name: "LoupeServiceTests", dependencies: ["LoupeService", "LoupeData", "LoupeEngine", "LoupeHTTP"]),
        .testTarget(name: "EndToEndTests", dependencies: ["LoupeData", "LoupeEngine"]),
    ]
)
