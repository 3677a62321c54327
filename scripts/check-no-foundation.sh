#!/usr/bin/env bash
# The engine, the HTTP layer, the service (and the ONNX reader) stay free of full Foundation
# (DESIGN §1: `import Foundation` adds ≈8 MB of RSS and ICU to a server; FoundationEssentials, where
# a target needs it, costs ≈2 MB). Fails naming each file that imports Foundation or one of its
# heavy modules. Run by scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
found=$(grep -rlE '^\s*(@_exported\s+)?import\s+(Foundation|FoundationNetworking|FoundationXML)\s*$' \
    Sources/LoupeEngine Sources/LoupeHTTP Sources/LoupeService Sources/LoupeONNX --include='*.swift' || true)
if [ -n "$found" ]; then
    echo "check-no-foundation: full Foundation imported by:" >&2
    echo "$found" >&2
    exit 1
fi
echo "check-no-foundation: ok (LoupeEngine, LoupeHTTP, LoupeService, LoupeONNX import no full Foundation)"
