#!/usr/bin/env bash
# The whole test suite: unit tests of every library plus end-to-end tests that run the real
# `loupe` binary on loopback. Usage: bash scripts/test.sh
# Installs what the tests need first (apt + pip; nothing when already present).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-test-deps.sh
bash scripts/check-no-foundation.sh
swift build --product loupe
# The test bundle and the benchmarks by product rather than `swift test`'s build of everything:
# that also builds every build-tool plugin of the dependencies, and swift-protobuf's (which Loupe
# does not use: onnx.pb.swift is generated once and committed) compiles protoc and abseil from C++
# source, about 290 files (docs/onnx.md, "Parsing").
swift build --product LoupePackageTests
for bench in loupe-engine-bench loupe-data-bench loupe-http-bench loupe-lifecycle-bench; do
    swift build --product "$bench"
done
swift test --skip-build
# The container's runtime contract once more, with the image's own build (release,
# --static-swift-stdlib); DeploymentTests ran it with the debug build. Needs root (CI is root).
LOUPE_CONTRACT_RELEASE=1 bash scripts/runtime-contract.sh
