#!/usr/bin/env bash
# The whole test suite: unit tests of every library plus end-to-end tests that run the real
# `loupe` binary on loopback. Usage: bash scripts/test.sh
# Installs what the tests need first (apt + pip; nothing when already present).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-test-deps.sh
bash scripts/check-no-foundation.sh
swift build --product loupe
swift test
# The container's runtime contract once more, with the image's own build (release,
# --static-swift-stdlib); DeploymentTests ran it with the debug build. Needs root (CI is root).
LOUPE_CONTRACT_RELEASE=1 bash scripts/runtime-contract.sh
