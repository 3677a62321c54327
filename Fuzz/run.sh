#!/usr/bin/env bash
# Builds and runs the libFuzzer target for the HTTP parser (Fuzz/ParserFuzz.swift).
# Usage: bash Fuzz/run.sh [seconds=120] [extra libFuzzer flags...]
#   Reproduce a crash: bash Fuzz/run.sh 0 .build/fuzz/artifacts/crash-<hash>
# Builds with `swiftc -sanitize=fuzzer,address` straight from the parser's sources (no package).
# One process, niced; the working corpus is .build/fuzz/corpus (seeded from Fuzz/corpus),
# crashes go to .build/fuzz/artifacts/. Add each crash as a regression test in
# Tests/LoupeHTTPTests/ParserFuzzRegressionTests.swift.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_TO_RUN="${1:-120}"; shift || true
OUT=.build/fuzz
mkdir -p "$OUT/corpus" "$OUT/artifacts"
swiftc -sanitize=fuzzer,address -parse-as-library -O -module-name LoupeHTTPFuzz \
    Fuzz/ParserFuzz.swift \
    Sources/LoupeHTTP/Parser.swift Sources/LoupeHTTP/ParseError.swift \
    Sources/LoupeHTTP/PercentDecoding.swift Sources/LoupeHTTP/Interface.swift \
    Sources/LoupeHTTP/Router.swift Sources/LoupeHTTP/ResponseWriter.swift Sources/LoupeHTTP/Gzip.swift \
    -I Sources/CZlib -lz \
    -o "$OUT/parser-fuzz" 2> >(grep -v "Cannot export local symbol" >&2)
if [ "$#" -gt 0 ] && [ -f "$1" ]; then
    exec "$OUT/parser-fuzz" "$@"
fi
cp -n Fuzz/corpus/* "$OUT/corpus/" 2>/dev/null || true
exec nice -n 10 "$OUT/parser-fuzz" "$OUT/corpus" \
    -dict=Fuzz/http.dict -max_len=4096 -timeout=5 -rss_limit_mb=1024 \
    -max_total_time="$SECONDS_TO_RUN" -print_final_stats=1 \
    -artifact_prefix="$OUT/artifacts/" "$@"
