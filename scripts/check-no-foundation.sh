#!/usr/bin/env bash
# The engine, the HTTP layer, the service (and the ONNX reader) stay free of full Foundation
# (DESIGN §1: `import Foundation` adds ≈8 MB of RSS and ICU to a server; FoundationEssentials, where
# a target needs it, costs ≈2 MB). Fails naming each file that imports Foundation or one of its
# heavy modules. Run by scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
# An import in the #else branch of `#if canImport(FoundationEssentials)` is allowed: that is how
# swift-protobuf's generated code (LoupeONNX/Generated) imports, and on Linux it takes the
# FoundationEssentials branch.
found=$(find Sources/LoupeEngine Sources/LoupeHTTP Sources/LoupeService Sources/LoupeONNX -name '*.swift' -print0 |
    xargs -0 awk '
        FNR == 1 { guarded = 0; inelse = 0 }
        /^[[:space:]]*#if[[:space:]]+canImport\(FoundationEssentials\)/ { guarded = 1; inelse = 0; next }
        /^[[:space:]]*#else/ { if (guarded) inelse = 1; next }
        /^[[:space:]]*#endif/ { guarded = 0; inelse = 0; next }
        /^[[:space:]]*(@_exported[[:space:]]+)?import[[:space:]]+(Foundation|FoundationNetworking|FoundationXML)[[:space:]]*$/ {
            if (!inelse) print FILENAME
        }' | sort -u || true)
if [ -n "$found" ]; then
    echo "check-no-foundation: full Foundation imported by:" >&2
    echo "$found" >&2
    exit 1
fi
echo "check-no-foundation: ok (LoupeEngine, LoupeHTTP, LoupeService, LoupeONNX import no full Foundation)"
