#!/usr/bin/env bash
# Checks the ISA split of a release build: the x86-64-v3 modules contain no AVX-512 (zmm) code, and the
# AVX-512 module defines no weak/shared symbols the linker could merge with the AVX2 copies (a merged
# copy could put AVX-512 code on the fallback path). Usage: bash Benchmarks/EngineBench/check_isa.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
swift build -c release --product loupe-engine-bench >&2
B=.build/release
fail=0
for m in LoupeKernels LoupeEngine; do
  n=$(objdump -d "$B/$m.build/"*.o | grep -c zmm || true)
  echo "$m (x86-64-v3): $n instructions using zmm registers"; [ "$n" -eq 0 ] || fail=1
done
n=$(objdump -d "$B/LoupeKernelsAVX512.build/"*.o | grep -c zmm || true)
echo "LoupeKernelsAVX512 (x86-64-v4): $n instructions using zmm registers"; [ "$n" -gt 0 ] || fail=1
weak=$(nm "$B/LoupeKernelsAVX512.build/"*.o | grep -E ' [WwVv] ' | grep -v __swift_reflection_version || true)
if [ -n "$weak" ]; then echo "weak symbols in LoupeKernelsAVX512 (could be merged across ISAs):"; echo "$weak"; fail=1
else echo "LoupeKernelsAVX512 defines no weak symbols"; fi
undefined=$(nm "$B/LoupeKernelsAVX512.build/"*.o | grep ' U ' | grep '\$s12LoupeKernels' | grep -v 'KernelSetV4name' || true)
if [ -n "$undefined" ]; then echo "LoupeKernelsAVX512 calls out-of-line LoupeKernels code (not inlined, runs as AVX2):"; echo "$undefined"; fail=1
else echo "every kernel is inlined into LoupeKernelsAVX512"; fi
exit $fail
