#!/usr/bin/env python3
"""Where the int8 time goes, stage by stage, on the seed network (issue 15's profile):
    python3 Benchmarks/Int8/stages.py [MODEL.loupe] [--reps 30] [--paths avx512vnni,avxvnni,avx2]
MODEL is a quantized seed-network file (`loupe quantize models/fashion/1 --output /tmp/q/fashion/1/model.loupe`);
without one it quantizes models/fashion/1 that way first (needs .build/release/loupe or a debug build).
Its weights are read with scripts/read_loupe.py (docs/model-format.md §12), packed as the engine packs them, and
Benchmarks/Int8/stages.c — compiled here with clang against Sources/LoupeEngine/KernelsInt8 — runs the int8 forward
of the first 256 Fashion-MNIST test images through the C kernels, timing each stage with this thread's CPU time
(steady under other load): input quantization, the fused conv + ReLU + pool + requantize, the dense 5408 → 128
GEMM, its requantization, the dense 128 → 10 GEMM + dequantize. Batch 256 (one call per stage) and batch 1
(per image; each stage's figure includes one clock read, ≈ 0.3–0.4 µs). The output bytes of the dense layer are
hashed per path: every path must print the same hash. Swift-level overheads (the fp32 softmax, the call) are not
in it: `loupe-engine-bench int8` measures the whole call."""
import atexit, os, shutil, struct, subprocess, sys, tempfile
import numpy as np

root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(root, "scripts"))
import read_loupe as R

args = sys.argv[1:]
reps, paths, model = 30, "avx512vnni,avxvnni,avx2", None
while args:
    a = args.pop(0)
    if a == "--reps": reps = int(args.pop(0))
    elif a == "--paths": paths = args.pop(0)
    else: model = a
tmp = tempfile.mkdtemp(prefix="loupe-int8-stages-")
atexit.register(shutil.rmtree, tmp, True)
if model is None:
    model = os.path.join(tmp, "q", "fashion", "1", "model.loupe")
    loupe = next((p for p in (os.path.join(root, ".build/release/loupe"), os.path.join(root, ".build/debug/loupe")) if os.path.exists(p)), None)
    if loupe is None: sys.exit("no loupe binary: swift build -c release --product loupe, or pass a quantized MODEL.loupe")
    subprocess.run([loupe, "quantize", os.path.join(root, "models/fashion/1"), "--output", model], check=True, stdout=subprocess.DEVNULL)
header, params = R.read(open(model, "rb").read())[:2]
quant = header.get("quantization")
if not quant: sys.exit(f"{model} is not a quantized model")
arch = header["architecture"]
kinds = [l["type"] for l in arch["layers"]]
if arch["inputShape"] != [28, 28, 1] or kinds != ["conv2d", "maxPool2d", "flatten", "dense", "dense"]:
    sys.exit("stages.py times the seed network only (28×28×1 → conv 3×3 → pool 2 → dense → dense)")
f32 = np.float32
table = {t["name"]: t for t in header["tensors"]}
p = np.frombuffer(params.tobytes(), dtype="<f4")
L = quant["layers"]
out = bytearray()
norm = header["normalization"]
out += struct.pack("<ffff i", f32(norm["scale"]), f32(norm["offset"]), f32(1) / f32(L[0]["inputScale"]), 0, L[0]["inputZeroPoint"])
for i, lq in enumerate(L):
    t = table[lq["name"] + ".weight"]
    w = p[t["offset"]:][:int(np.prod(t["shape"]))].reshape(-1, t["shape"][-1])          # (k, oc) in (kh, kw, c) order
    b = p[table[lq["name"] + ".bias"]["offset"]:][:t["shape"][-1]].astype(f32)
    sw = np.array(lq["weightScales"], dtype=f32)
    q = np.clip(np.rint((w / sw).astype(f32)), -127, 127).astype(np.int8)
    zc = (q.astype(np.int64).sum(axis=0) * lq["inputZeroPoint"]).astype(np.int32)
    m = (f32(lq["inputScale"]) * sw).astype(f32)
    nxt = L[i + 1] if i + 1 < len(L) else None
    relu = 1 if arch["layers"][[0, 3, 4][i]].get("activation") == "relu" else 0
    inv = f32(1) / f32(nxt["inputScale"]) if nxt else f32(1)
    out += struct.pack("<iii f i", q.shape[0], q.shape[1], relu, inv, nxt["inputZeroPoint"] if nxt else 0)
    out += q.tobytes() + zc.tobytes() + m.tobytes() + b.tobytes()
weights = os.path.join(tmp, "weights.bin")
open(weights, "wb").write(out)
src = os.path.join(root, "Sources/LoupeEngine/KernelsInt8")
exe = os.path.join(tmp, "stages")
subprocess.run(["clang", "-O2", "-march=x86-64-v3", "-ffp-contract=off", "-I", os.path.join(src, "include"),
                os.path.join(root, "Benchmarks/Int8/stages.c"), os.path.join(src, "int8.c"), os.path.join(src, "conv.c"),
                "-lz", "-lm", "-o", exe], check=True)
for path in paths.split(","):
    for n in (256, 1):
        subprocess.run([exe, weights, path, str(n), str(reps if n > 1 else reps * 100)], check=True)
