#!/usr/bin/env bash
# Builds and runs the libFuzzer target for the PNG, JPEG and PGM decoders (Fuzz/ImageFuzz.swift).
# Usage: bash Fuzz/run-images.sh [seconds=120] [extra libFuzzer flags...]
#   Reproduce a crash: bash Fuzz/run-images.sh 0 .build/fuzz-images/artifacts/crash-<hash>
# Builds with `swiftc -sanitize=fuzzer,address` straight from the decoders' sources (no package).
# One process, niced; the working corpus is .build/fuzz-images/corpus, seeded from the decoder
# test fixtures (every PNG colour type, bit depth, Adam7, tRNS; PGM P2/P5, 8 and 16 bits) and JPEGs
# cjpeg makes from them when it is installed (baseline, progressive, gray, 4:2:0). libjpeg-turbo
# itself is the system library, not instrumented: the fuzzer steers by LoupeData's own code
# (JPEGHeader, the budget, orientation), and ASan still sees the output buffers it writes.
# -malloc_limit_mb=64: one allocation past 64 MiB is a finding (memory must follow the data,
# never what a header claims). Crashes go to .build/fuzz-images/artifacts/; add each as a
# regression test in Tests/LoupeDataTests/DecodeMemoryTests.swift.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_TO_RUN="${1:-120}"; shift || true
OUT=.build/fuzz-images
mkdir -p "$OUT/corpus" "$OUT/artifacts"
swiftc -sanitize=fuzzer,address -parse-as-library -O -module-name LoupeImageFuzz \
    Fuzz/ImageFuzz.swift \
    Sources/LoupeData/ImageDecoder.swift Sources/LoupeData/PNGDecoder.swift Sources/LoupeData/PGMDecoder.swift \
    Sources/LoupeData/JPEGHeader.swift Sources/LoupeData/JPEGDecoder.swift \
    Sources/LoupeData/Zlib.swift Sources/LoupeData/DecodeBudget.swift Sources/LoupeData/LoupeDataError.swift \
    -I Sources/CZlib -lz -I Sources/CTurboJPEG -lturbojpeg \
    -o "$OUT/image-fuzz" 2> >(grep -v "Cannot export local symbol" >&2)
if [ "$#" -gt 0 ] && [ -f "$1" ]; then
    exec "$OUT/image-fuzz" -malloc_limit_mb=64 "$@"
fi
for f in Tests/LoupeDataTests/Fixtures/images/*.png Tests/LoupeDataTests/Fixtures/images/*.pgm; do
    cp -n "$f" "$OUT/corpus/" 2>/dev/null || true
done
if command -v cjpeg > /dev/null; then
    for f in Tests/LoupeDataTests/Fixtures/images/p5_8bit.pgm Tests/LoupeDataTests/Fixtures/images/p5_16bit.pgm; do
        name=$(basename "$f" .pgm)
        cjpeg -quality 80 "$f" > "$OUT/corpus/$name.jpg"
        cjpeg -quality 80 -progressive "$f" > "$OUT/corpus/$name-progressive.jpg"
    done
fi
exec nice -n 10 "$OUT/image-fuzz" "$OUT/corpus" \
    -max_len=65536 -timeout=10 -rss_limit_mb=1024 -malloc_limit_mb=64 \
    -max_total_time="$SECONDS_TO_RUN" -print_final_stats=1 \
    -artifact_prefix="$OUT/artifacts/" "$@"
