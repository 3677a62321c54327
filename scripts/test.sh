#!/usr/bin/env bash
# The whole test suite: unit tests of every library plus end-to-end tests that run the real
# `loupe` binary on loopback. Usage: bash scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
swift build --product loupe
swift test
