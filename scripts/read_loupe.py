#!/usr/bin/env python3
"""An independent reader of Loupe's `.loupe` model files, written from docs/model-format.md
alone (Python standard library; numpy only for --check-golden).

    python3 scripts/read_loupe.py MODEL.loupe            # validate, print a JSON summary
    python3 scripts/read_loupe.py MODEL.loupe --check-golden   # + run the golden samples (numpy)

Exit status 0 when the file is valid (and the golden samples reproduce), 1 otherwise, with
`invalid: <problem>` on stderr.
"""
import base64
import hashlib
import json
import math
import struct
import sys
from array import array

MAGIC = b"\x89LOUPE\r\n"
VERSION = 1
MAX_HEADER = 16 * 1024 * 1024


class Invalid(Exception):
    pass


def expected_tensors(arch):
    """The tensor table docs/model-format.md §4 derives from an architecture, and the output size."""
    shape = list(arch["inputShape"])
    tensors, offset, convs, denses = [], 0, 0, 0

    def add(name, s):
        nonlocal offset
        tensors.append({"name": name, "offset": offset, "shape": s})
        offset += math.prod(s)

    for layer in arch["layers"]:
        t = layer["type"]
        if t == "conv2d":
            k, f = layer["kernel"], layer["filters"]
            convs += 1
            add(f"conv{convs}.weight", [k, k, shape[2], f])
            add(f"conv{convs}.bias", [f])
            if layer.get("padding", "valid") == "valid":
                shape = [shape[0] - k + 1, shape[1] - k + 1, f]
            else:
                shape = [shape[0], shape[1], f]
        elif t == "maxPool2d":
            p = layer.get("pool", 2)
            shape = [shape[0] // p, shape[1] // p, shape[2]]
        elif t == "flatten":
            shape = [math.prod(shape)]
        elif t == "dense":
            u = layer["units"]
            denses += 1
            add(f"dense{denses}.weight", [shape[0], u])
            add(f"dense{denses}.bias", [u])
            shape = [u]
        elif t == "dropout":
            pass
        else:
            raise Invalid(f"shape mismatch: unknown layer type {t!r}")
    return tensors, math.prod(shape)


def read(data):
    if len(data) < 16:
        if len(data) < 8 and MAGIC.startswith(data):
            raise Invalid(f"truncated: {len(data)} bytes")
        if data[:8] != MAGIC[:min(8, len(data))] or len(data) < 8:
            raise Invalid("bad magic")
        raise Invalid(f"truncated: {len(data)} bytes")
    if data[:8] != MAGIC:
        raise Invalid("bad magic")
    version, hlen = struct.unpack_from("<II", data, 8)
    if version != VERSION:
        raise Invalid(f"unsupported version {version}")
    if hlen > MAX_HEADER:
        raise Invalid("invalid header: too long")
    if len(data) < 16 + hlen:
        raise Invalid("truncated inside the header")
    d = (16 + hlen + 63) // 64 * 64
    try:
        header = json.loads(data[16:16 + hlen].decode("utf-8"))
        p = header["parameterCount"]
    except Exception as e:
        if len(data) >= d + 32 and hashlib.sha256(data[:-32]).digest() != data[-32:]:
            raise Invalid("checksum mismatch")
        raise Invalid(f"invalid header: {e}")
    end = d + 4 * p
    if len(data) < end + 32:
        raise Invalid(f"truncated: {len(data)} bytes, expected {end + 32}")
    if len(data) > end + 32:
        raise Invalid(f"trailing bytes: {len(data)} bytes, expected {end + 32}")
    digest = hashlib.sha256(data[:end]).digest()
    if digest != data[end:]:
        raise Invalid("checksum mismatch")
    if any(data[16 + hlen:d]):
        raise Invalid("invalid header: non-zero padding")
    arch = header["architecture"]
    if header["inputShape"] != arch["inputShape"]:
        raise Invalid("shape mismatch: inputShape differs from the architecture's")
    tensors, outputs = expected_tensors(arch)
    if header["tensors"] != tensors:
        raise Invalid("shape mismatch: the tensor table is not what the architecture implies")
    if sum(math.prod(t["shape"]) for t in tensors) != p:
        raise Invalid("shape mismatch: parameterCount")
    if len(header["labels"]) != outputs:
        raise Invalid("shape mismatch: labels")
    params = array("f")
    params.frombytes(data[d:end])
    if sys.byteorder == "big":
        params.byteswap()
    return header, params, digest.hex(), hlen, d


def forward(header, params, pixels):
    """The network on one UInt8 image, per docs/model-format.md §3–4 (numpy)."""
    import numpy as np
    arch = header["architecture"]
    n = header["normalization"]
    x = np.frombuffer(pixels, dtype=np.uint8).astype(np.float32) * np.float32(n["scale"]) + np.float32(n["offset"])
    x = x.reshape(arch["inputShape"])
    table = {t["name"]: t for t in header["tensors"]}
    p = np.frombuffer(params.tobytes(), dtype="<f4")

    def tensor(name):
        t = table[name]
        return p[t["offset"]:t["offset"] + math.prod(t["shape"])].reshape(t["shape"])

    convs = denses = 0
    last = len(arch["layers"]) - 1
    for i, layer in enumerate(arch["layers"]):
        t = layer["type"]
        act = layer.get("activation", "linear")
        if t == "conv2d":
            convs += 1
            w, b = tensor(f"conv{convs}.weight"), tensor(f"conv{convs}.bias")
            k = layer["kernel"]
            if layer.get("padding", "valid") == "same":
                lo = (k - 1) // 2
                x = np.pad(x, ((lo, k - 1 - lo), (lo, k - 1 - lo), (0, 0)))
            oh, ow = x.shape[0] - k + 1, x.shape[1] - k + 1
            y = np.zeros((oh, ow, w.shape[3]), dtype=np.float64)
            for di in range(k):
                for dj in range(k):
                    y += x[di:di + oh, dj:dj + ow, :].astype(np.float64) @ w[di, dj].astype(np.float64)
            x = y + b
        elif t == "maxPool2d":
            q = layer.get("pool", 2)
            h, wd = x.shape[0] // q, x.shape[1] // q
            x = x[:h * q, :wd * q, :].reshape(h, q, wd, q, x.shape[2]).max(axis=(1, 3))
        elif t == "flatten":
            x = x.reshape(-1)
        elif t == "dense":
            denses += 1
            x = x.astype(np.float64) @ tensor(f"dense{denses}.weight").astype(np.float64) + tensor(f"dense{denses}.bias")
        if t in ("conv2d", "dense"):
            if act == "relu":
                x = np.maximum(x, 0)
            elif act == "softmax" and i == last:
                e = np.exp(x - x.max())
                x = e / e.sum()
    return x


def main(argv):
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    path = argv[0]
    with open(path, "rb") as f:
        data = f.read()
    try:
        header, params, sha, hlen, d = read(data)
    except Invalid as e:
        print(f"invalid: {e}", file=sys.stderr)
        return 1
    summary = {
        "file": path,
        "version": VERSION,
        "headerLength": hlen,
        "dataOffset": d,
        "parameterCount": len(params),
        "sha256": sha,
        "labels": header["labels"],
        "tensors": [
            {"name": t["name"], "shape": t["shape"],
             "sum": math.fsum(params[t["offset"]:t["offset"] + math.prod(t["shape"])]),
             "first": params[t["offset"]]}
            for t in header["tensors"]
        ],
        "testAccuracy": header["training"].get("testAccuracy"),
        "goldenSamples": len(header["goldenSamples"]),
    }
    if "--check-golden" in argv:
        worst = 0.0
        for g in header["goldenSamples"]:
            probs = forward(header, params, base64.b64decode(g["pixels"]))
            if int(probs.argmax()) != g["expectedClass"]:
                print(f"invalid: golden sample predicts {int(probs.argmax())}, expected {g['expectedClass']}", file=sys.stderr)
                return 1
            worst = max(worst, float(abs(probs - g["probabilities"]).max()))
        summary["goldenMaxAbsDiff"] = worst
        if worst > 1e-4:
            print(f"invalid: golden probabilities differ by {worst}", file=sys.stderr)
            return 1
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
