#!/usr/bin/env python3
"""An independent reader of Loupe's `.loupe` model files, written from docs/model-format.md
alone (Python standard library; numpy only for --check-golden). Format versions 1 (fp32) and
2 (int8, §12; --check-golden then runs the int8 arithmetic of §12).

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
QUANTIZED_VERSION = 2   # §12: int8 weights, quantization header
MAX_HEADER = 16 * 1024 * 1024


class Invalid(Exception):
    pass


def opt(obj, key, default):
    """An optional key (§2): absent and `null` both mean the default."""
    value = obj.get(key)
    return default if value is None else value


def check_schema(header):
    """The required keys of §2–§6 with their JSON types; raises Invalid("invalid header: …")
    naming the first missing or mistyped one. Unknown keys are ignored (§2), `null` counts as
    absent for optional keys and is refused for required ones."""
    def is_int(v):
        return isinstance(v, int) and not isinstance(v, bool)

    def is_number(v):
        return (isinstance(v, (int, float)) and not isinstance(v, bool)) and math.isfinite(v)

    kinds = {
        "object": lambda v: isinstance(v, dict),
        "string": lambda v: isinstance(v, str),
        "int": is_int,
        "number": is_number,
        "[int]": lambda v: isinstance(v, list) and all(is_int(x) for x in v),
        "[number]": lambda v: isinstance(v, list) and all(is_number(x) for x in v),
        "[string]": lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
        "[object]": lambda v: isinstance(v, list) and all(isinstance(x, dict) for x in v),
        # §3 *Sizes*: one integer n (n × n) or [height, width].
        "size": lambda v: is_int(v) or (isinstance(v, list) and len(v) == 2 and all(is_int(x) for x in v)),
    }

    def need(obj, key, kind, where):
        name = f"{where}.{key}" if where else key
        if key not in obj:
            raise Invalid(f"invalid header: missing key '{name}'")
        if obj[key] is None:
            raise Invalid(f"invalid header: '{name}' is null, expected {kind}")
        if not kinds[kind](obj[key]):
            raise Invalid(f"invalid header: '{name}' is not {kind}")
        return obj[key]

    def may(obj, key, kind, where):
        if obj.get(key) is not None and not kinds[kind](obj[key]):
            raise Invalid(f"invalid header: '{where}.{key}' is not {kind}")

    if not isinstance(header, dict):
        raise Invalid("invalid header: not a JSON object")
    arch = need(header, "architecture", "object", "")
    need(arch, "inputShape", "[int]", "architecture")
    for i, layer in enumerate(need(arch, "layers", "[object]", "architecture")):
        where = f"architecture.layers[{i}]"
        t = need(layer, "type", "string", where)
        fields = LAYER_KEYS.get(t)
        if fields is None:
            raise Invalid(f"invalid header: unknown layer type {t!r} at '{where}' "
                          f"(this reader knows {', '.join(LAYER_KEYS)})")
        for key, (kind, required) in fields.items():
            (need if required else may)(layer, key, kind, where)
        for key in ("padding", "activation"):
            allowed = {"padding": ("valid", "same"),
                       "activation": ("linear", "relu", "softmax", "leakyRelu", "sigmoid", "tanh", "clip")}[key]
            if key in fields and opt(layer, key, allowed[0]) not in allowed:
                raise Invalid(f"invalid header: '{where}.{key}' is {layer[key]!r}, expected one of {', '.join(allowed)}")
    need(header, "inputShape", "[int]", "")
    need(header, "labels", "[string]", "")
    norm = need(header, "normalization", "object", "")
    need(norm, "scale", "number", "normalization")
    need(norm, "offset", "number", "normalization")
    need(header, "parameterCount", "int", "")
    for i, t in enumerate(need(header, "tensors", "[object]", "")):
        need(t, "name", "string", f"tensors[{i}]")
        need(t, "offset", "int", f"tensors[{i}]")
        need(t, "shape", "[int]", f"tensors[{i}]")
    training = need(header, "training", "object", "")
    for key, kind in (("dataset", "string"), ("epochs", "int"), ("seed", "int"), ("createdAt", "string"),
                      ("engineVersion", "string")):
        need(training, key, kind, "training")
    for i, g in enumerate(need(header, "goldenSamples", "[object]", "")):
        where = f"goldenSamples[{i}]"
        need(g, "pixels", "string", where)
        need(g, "expectedClass", "int", where)
        need(g, "probabilities", "[number]", where)
        may(g, "label", "int", where)
    may(header, "inputStatistics", "object", "")


# §3: each layer type's keys: (JSON kind, required).
ACTIVATION_KEYS = {"activation": ("string", False), "alpha": ("number", False), "min": ("number", False), "max": ("number", False)}
WINDOW_KEYS = {"stride": ("size", False), "padding": ("string", False), "pads": ("[int]", False)}
LAYER_KEYS = {
    "conv2d": {"filters": ("int", True), "kernel": ("size", True), **WINDOW_KEYS, **ACTIVATION_KEYS},
    "depthwiseConv2d": {"kernel": ("size", True), **WINDOW_KEYS, **ACTIVATION_KEYS},
    "groupedConv2d": {"filters": ("int", True), "groups": ("int", True), "kernel": ("size", True), **WINDOW_KEYS, **ACTIVATION_KEYS},
    "maxPool2d": {"pool": ("size", False), **WINDOW_KEYS},
    "avgPool2d": {"pool": ("size", False), **WINDOW_KEYS},
    "globalAvgPool2d": {},
    "activation": {**ACTIVATION_KEYS, "activation": ("string", True)},
    "flatten": {},
    "dense": {"units": ("int", True), **ACTIVATION_KEYS},
    "dropout": {"rate": ("number", True)},
}


def size(v):
    """§3 *Sizes*: (height, width) of an integer n (n × n) or a [height, width] pair."""
    return (v, v) if isinstance(v, int) else (v[0], v[1])


def window(layer, h, w, k, where):
    """§3 *Windows*: (top, left, bottom, right, OH, OW) of a kH×kW window k = (kH, kW) with the layer's
    strides and padding over an h×w input; raises Invalid(where…) when it does not fit."""
    kh, kw = k
    sh, sw = size(opt(layer, "stride", list(k) if layer["type"] in ("maxPool2d", "avgPool2d") else 1))
    pads = layer.get("pads")
    if min(sh, sw, kh, kw) <= 0:
        raise Invalid(f"{where} needs a positive window and stride")
    if pads is not None:
        if layer.get("padding") is not None:
            raise Invalid(f"{where} gives both padding and pads")
        if len(pads) != 4 or min(pads) < 0:
            raise Invalid(f"{where} has pads {pads}, expected 4 non-negative integers")
        t, l, b, r = pads
    elif opt(layer, "padding", "valid") == "same":
        oh, ow = -(-h // sh), -(-w // sw)
        th, tw = max((oh - 1) * sh + kh - h, 0), max((ow - 1) * sw + kw - w, 0)
        t, b, l, r = th // 2, th - th // 2, tw // 2, tw - tw // 2
    else:
        t = l = b = r = 0
    if max(t, b) >= kh or max(l, r) >= kw:
        raise Invalid(f"{where} has padding {[t, l, b, r]} not smaller than its {kh}×{kw} window")
    if h + t + b < kh or w + l + r < kw:
        raise Invalid(f"{where} has a {kh}×{kw} window that does not fit its {h}×{w} input")
    return t, l, b, r, (h + t + b - kh) // sh + 1, (w + l + r - kw) // sw + 1


def expected_tensors(arch):
    """The tensor table docs/model-format.md §4 derives from an architecture, and the output size.
    Raises Invalid for an architecture the engine cannot build (§3)."""
    shape = list(arch["inputShape"])
    if not shape or any(d <= 0 for d in shape) or len(shape) not in (1, 3):
        raise Invalid(f"invalid header: the architecture is invalid: input shape {shape} is not [H, W, C] or [n]")
    tensors, offset, convs, denses, depthwise, grouped = [], 0, 0, 0, 0, 0

    def add(name, s):
        nonlocal offset
        tensors.append({"name": name, "offset": offset, "shape": s})
        offset += math.prod(s)

    def fail(i, t, why):
        raise Invalid(f"invalid header: the architecture is invalid: layer {i + 1} ({t}) {why}")

    for i, layer in enumerate(arch["layers"]):
        t = layer["type"]
        if t in ("conv2d", "depthwiseConv2d", "groupedConv2d", "maxPool2d", "avgPool2d", "globalAvgPool2d") and len(shape) != 3:
            fail(i, t, f"needs an (H, W, C) input but gets {shape}")
        if t in ("conv2d", "depthwiseConv2d", "groupedConv2d"):
            k = size(layer["kernel"])
            f = layer["filters"] if t != "depthwiseConv2d" else shape[2]
            if min(k) <= 0 or f <= 0:
                fail(i, t, "needs a positive kernel and filter count")
            if t == "conv2d":
                convs += 1
                add(f"conv{convs}.weight", [k[0], k[1], shape[2], f])
                add(f"conv{convs}.bias", [f])
            elif t == "groupedConv2d":
                g = layer["groups"]
                if g < 2 or shape[2] % g or f % g:
                    fail(i, t, f": groups must be at least 2 and divide both the {shape[2]} input channels and the {f} filters, got {g}")
                grouped += 1
                add(f"groupedConv{grouped}.weight", [k[0], k[1], shape[2] // g, f])
                add(f"groupedConv{grouped}.bias", [f])
            else:
                depthwise += 1
                add(f"depthwise{depthwise}.weight", [k[0], k[1], f, 1])
                add(f"depthwise{depthwise}.bias", [f])
            try:
                *_, oh, ow = window(layer, shape[0], shape[1], k, "")
            except Invalid as e:
                fail(i, t, str(e).strip())
            shape = [oh, ow, f]
        elif t in ("maxPool2d", "avgPool2d"):
            p = size(opt(layer, "pool", 2))
            try:
                *_, oh, ow = window(layer, shape[0], shape[1], p, "")
            except Invalid as e:
                fail(i, t, str(e).strip())
            shape = [oh, ow, shape[2]]
        elif t == "globalAvgPool2d":
            shape = [1, 1, shape[2]]
        elif t == "flatten":
            shape = [math.prod(shape)]
        elif t == "dense":
            u = layer["units"]
            if len(shape) != 1:
                fail(i, t, f"needs a flat input but gets {shape}; a flatten layer must come before it")
            if u <= 0:
                fail(i, t, "needs a positive unit count")
            denses += 1
            add(f"dense{denses}.weight", [shape[0], u])
            add(f"dense{denses}.bias", [u])
            shape = [u]
        elif t == "dropout":
            pass
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
    if version not in (VERSION, QUANTIZED_VERSION):
        raise Invalid(f"unsupported version {version}")
    if hlen > MAX_HEADER:
        raise Invalid(f"invalid header: declared length {hlen} bytes exceeds the {MAX_HEADER}-byte limit")
    if len(data) < 16 + hlen:
        raise Invalid(f"truncated: {len(data)} bytes, expected {16 + hlen}")
    d = (16 + hlen + 63) // 64 * 64
    try:
        header = json.loads(data[16:16 + hlen].decode("utf-8"))
        check_schema(header)
    except (ValueError, Invalid) as e:
        if len(data) >= d + 32 and hashlib.sha256(data[:-32]).digest() != data[-32:]:
            raise Invalid("checksum mismatch")
        raise e if isinstance(e, Invalid) else Invalid(f"invalid header: not valid JSON ({e})")
    p = header["parameterCount"]
    if p < 0 or p > (1 << 30) // 4:
        raise Invalid(f"invalid header: parameterCount {p} is out of range")
    quant = opt(header, "quantization", None)
    if (quant is not None) != (version == QUANTIZED_VERSION):
        raise Invalid("invalid header: a quantization header goes with format version 2, and only there")
    storage = None
    if quant is not None:
        storage = stored_tensors(header, quant)
        last = storage[-1] if storage else None
        end = d + ((last["byteOffset"] + last["bytes"] + 3) // 4 * 4 if last else 0)
    else:
        end = d + 4 * p
    if len(data) < end + 32:
        raise Invalid(f"truncated: {len(data)} bytes, expected {end + 32}")
    if len(data) > end + 32:
        raise Invalid(f"trailing bytes: {len(data)} bytes, expected {end + 32}")
    digest = hashlib.sha256(data[:end]).digest()
    if digest != data[end:]:
        raise Invalid("checksum mismatch")
    for i in range(16 + hlen, d):
        if data[i]:
            raise Invalid(f"invalid header: padding byte at offset {i} is not zero")
    arch = header["architecture"]
    if header["inputShape"] != arch["inputShape"]:
        raise Invalid("shape mismatch: inputShape differs from the architecture's")
    tensors, outputs = expected_tensors(arch)
    # §2: readers ignore keys they do not know, in tensor entries too.
    table = [{"name": t["name"], "offset": t["offset"], "shape": t["shape"]} for t in header["tensors"]]
    if sum(math.prod(t["shape"]) for t in tensors) != p:
        raise Invalid(f"shape mismatch: the architecture needs {sum(math.prod(t['shape']) for t in tensors)} parameters, "
                      f"the file holds {p}")
    if table != tensors:
        raise Invalid("shape mismatch: the tensor table is not what the architecture implies")
    if len(header["labels"]) != outputs:
        raise Invalid(f"shape mismatch: {len(header['labels'])} labels for a network with {outputs} outputs")
    inputs = math.prod(arch["inputShape"])
    for i, g in enumerate(header["goldenSamples"]):
        try:
            pixels = base64.b64decode(g["pixels"], validate=True)
        except ValueError:
            raise Invalid(f"invalid header: goldenSamples[{i}].pixels is not valid base64")
        if len(pixels) != inputs or len(g["probabilities"]) != outputs or not 0 <= g["expectedClass"] < outputs:
            raise Invalid(f"shape mismatch: golden sample {i} has {len(pixels)} pixels and {len(g['probabilities'])} "
                          f"probabilities (expected {inputs} and {outputs}), expected class {g['expectedClass']}")
    params = array("f")
    if storage is None:
        params.frombytes(data[d:end])
        if sys.byteorder == "big":
            params.byteswap()
    else:
        # §12: the float view of an int8 tensor is q · weightScales[i mod out] (exact in double, then rounded to float32).
        params.extend([0.0] * p)
        for t in storage:
            base, first, count = d + t["byteOffset"], t["offset"], math.prod(t["shape"])
            if t["scales"] is None:
                params[first:first + count] = array("f", struct.unpack_from(f"<{count}f", data, base))
            else:
                sc, out = t["scales"], len(t["scales"])
                qs = struct.unpack_from(f"<{count}b", data, base)
                params[first:first + count] = array("f", (q * sc[i % out] for i, q in enumerate(qs)))
    return header, params, digest.hex(), hlen, d


def stored_tensors(header, quant):
    """§12: where each tensor of a version-2 file is stored, checked against its dtype and byteOffset."""
    expected, _ = expected_tensors(header["architecture"])
    if not isinstance(quant, dict) or not isinstance(quant.get("layers"), list):
        raise Invalid("invalid header: quantization.layers must be a list")
    scales = {}
    for i, l in enumerate(quant["layers"]):
        for key in ("name", "inputScale", "inputZeroPoint", "weightScales"):
            if key not in l:
                raise Invalid(f"invalid header: missing key 'quantization.layers[{i}].{key}'")
        scales[l["name"] + ".weight"] = [struct.unpack("<f", struct.pack("<f", v))[0] for v in l["weightScales"]]
    if len(header["tensors"]) != len(expected):
        raise Invalid("shape mismatch: the tensor table is not what the architecture implies")
    result, offset = [], 0
    for have, want in zip(header["tensors"], expected):
        if have["name"] != want["name"] or have["shape"] != want["shape"]:
            raise Invalid("shape mismatch: the tensor table is not what the architecture implies")
        sc = scales.get(want["name"])
        if sc is not None and len(sc) != want["shape"][-1]:
            raise Invalid(f"invalid header: {want['name']} has {want['shape'][-1]} output channels but {len(sc)} weight scales")
        dtype = "float32" if sc is None else "int8"
        if opt(have, "dtype", None) != dtype or opt(have, "byteOffset", None) != offset:
            raise Invalid(f"invalid header: tensor '{have['name']}' must be {dtype} at byte {offset} of the data section")
        count = math.prod(want["shape"])
        size = count if sc is not None else 4 * count
        result.append({"name": want["name"], "offset": want["offset"], "shape": want["shape"], "scales": sc,
                       "byteOffset": offset, "bytes": size})
        offset = (offset + size + 3) // 4 * 4
    return result


def forward_int8(header, params, pixels):
    """A quantized network on one UInt8 image, per docs/model-format.md §12 (numpy, binary32 throughout)."""
    import numpy as np
    f32 = np.float32
    arch, quant = header["architecture"], header["quantization"]
    n = header["normalization"]
    x = np.frombuffer(pixels, dtype=np.uint8).astype(f32) * f32(n["scale"]) + f32(n["offset"])
    x = x.reshape(arch["inputShape"])
    table = {t["name"]: t for t in header["tensors"]}
    p = np.frombuffer(params.tobytes(), dtype="<f4")
    layers = quant["layers"]

    def quantize(y, l):
        s = f32(layers[l]["inputScale"])
        inv = f32(1) / s
        return np.clip(np.rint((y * inv).astype(f32)) + f32(layers[l]["inputZeroPoint"]), 0, 255).astype(np.int64)

    q = quantize(x.astype(f32), 0)
    l = 0
    logits = None
    for layer in arch["layers"]:
        t = layer["type"]
        act = opt(layer, "activation", "linear")
        if t in ("conv2d", "dense"):
            lq = layers[l]
            w = p[table[lq["name"] + ".weight"]["offset"]:][:math.prod(table[lq["name"] + ".weight"]["shape"])]
            w = w.reshape(table[lq["name"] + ".weight"]["shape"])
            b = p[table[lq["name"] + ".bias"]["offset"]:][:table[lq["name"] + ".bias"]["shape"][0]]
            sw = np.array(lq["weightScales"], dtype=f32)
            qw = np.clip(np.rint((w / sw).astype(f32)), -127, 127).astype(np.int64)
            z = lq["inputZeroPoint"]
            if t == "conv2d":
                kh, kw = size(layer["kernel"])
                rows, cols = size(opt(layer, "stride", 1))   # (sw is the weight scales here)
                top, left, bottom, right, oh, ow = window(layer, q.shape[0], q.shape[1], (kh, kw), "conv2d")
                xq = np.pad(q - z, ((top, bottom), (left, right), (0, 0)))   # padding cells: q = z
                acc = np.zeros((oh, ow, qw.shape[3]), dtype=np.int64)
                for di in range(kh):
                    for dj in range(kw):
                        acc += xq[di:di + (oh - 1) * rows + 1:rows, dj:dj + (ow - 1) * cols + 1:cols, :] @ qw[di, dj]
            else:
                acc = (q - z) @ qw
            m = (f32(lq["inputScale"]) * sw).astype(f32)
            y = (acc.astype(f32) * m).astype(f32) + b
            if act == "relu":
                y = np.maximum(y, f32(0))
            l += 1
            if l < len(layers):
                q = quantize(y, l)
            else:
                logits = y
        elif t == "maxPool2d":
            r = opt(layer, "pool", 2)
            h, wd = q.shape[0] // r, q.shape[1] // r
            q = q[:h * r, :wd * r, :].reshape(h, r, wd, r, q.shape[2]).max(axis=(1, 3))
        elif t == "flatten":
            q = q.reshape(-1)
    z = logits.astype(np.float64)
    e = np.exp(z - z.max())
    return e / e.sum()


def forward(header, params, pixels):
    """The network on one UInt8 image, per docs/model-format.md §3–4 (numpy)."""
    if opt(header, "quantization", None) is not None:
        return forward_int8(header, params, pixels)
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

    convs = denses = depthwise = grouped = 0
    last = len(arch["layers"]) - 1
    for i, layer in enumerate(arch["layers"]):
        t = layer["type"]
        act = opt(layer, "activation", "linear")
        if t in ("conv2d", "depthwiseConv2d", "groupedConv2d"):
            if t == "conv2d":
                convs += 1
                w, b = tensor(f"conv{convs}.weight"), tensor(f"conv{convs}.bias")
            elif t == "groupedConv2d":
                grouped += 1
                w, b = tensor(f"groupedConv{grouped}.weight"), tensor(f"groupedConv{grouped}.bias")
            else:
                depthwise += 1
                w, b = tensor(f"depthwise{depthwise}.weight"), tensor(f"depthwise{depthwise}.bias")
            (kh, kw), (sh, sw) = size(layer["kernel"]), size(opt(layer, "stride", 1))
            top, left, bottom, right, oh, ow = window(layer, x.shape[0], x.shape[1], (kh, kw), "")
            x = np.pad(x, ((top, bottom), (left, right), (0, 0)))
            y = np.zeros((oh, ow, b.shape[0]), dtype=np.float64)
            for di in range(kh):
                for dj in range(kw):
                    patch = x[di:di + (oh - 1) * sh + 1:sh, dj:dj + (ow - 1) * sw + 1:sw, :].astype(np.float64)
                    if t == "conv2d":
                        y += patch @ w[di, dj].astype(np.float64)
                    elif t == "groupedConv2d":
                        # Group q: input channels [q·C/G, (q+1)·C/G) → filters [q·K/G, (q+1)·K/G); w is (kH, kW, C/G, K).
                        groups, cg = layer["groups"], w.shape[2]
                        kg = b.shape[0] // groups
                        for q in range(groups):
                            y[:, :, q * kg:(q + 1) * kg] += patch[:, :, q * cg:(q + 1) * cg] @ w[di, dj, :, q * kg:(q + 1) * kg].astype(np.float64)
                    else:
                        y += patch * w[di, dj, :, 0].astype(np.float64)
            x = y + b
        elif t in ("maxPool2d", "avgPool2d"):
            qh, qw = size(opt(layer, "pool", 2))
            sh, sw = size(opt(layer, "stride", [qh, qw]))
            top, left, _, _, oh, ow = window(layer, x.shape[0], x.shape[1], (qh, qw), "")
            y = np.zeros((oh, ow, x.shape[2]), dtype=np.float64)
            for i0 in range(oh):
                for j0 in range(ow):
                    # The window's cells inside the image: padding never wins a max and is not counted in a mean.
                    r0, c0 = max(i0 * sh - top, 0), max(j0 * sw - left, 0)
                    r1, c1 = min(i0 * sh - top + qh, x.shape[0]), min(j0 * sw - left + qw, x.shape[1])
                    cells = x[r0:r1, c0:c1, :].astype(np.float64)
                    y[i0, j0] = cells.max(axis=(0, 1)) if t == "maxPool2d" else cells.mean(axis=(0, 1))
            x = y
        elif t == "globalAvgPool2d":
            x = x.astype(np.float64).mean(axis=(0, 1)).reshape(1, 1, -1)
        elif t == "flatten":
            x = x.reshape(-1)
        elif t == "dense":
            denses += 1
            x = x.astype(np.float64) @ tensor(f"dense{denses}.weight").astype(np.float64) + tensor(f"dense{denses}.bias")
        if t in ("conv2d", "depthwiseConv2d", "groupedConv2d", "dense", "activation"):
            if act == "relu":
                x = np.maximum(x, 0)
            elif act == "leakyRelu":
                x = np.where(x > 0, x, opt(layer, "alpha", 0.01) * x)
            elif act == "sigmoid":
                x = 1 / (1 + np.exp(-x))
            elif act == "tanh":
                x = np.tanh(x)
            elif act == "clip":
                x = np.clip(x, opt(layer, "min", 0), opt(layer, "max", 6))
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
        "version": QUANTIZED_VERSION if opt(header, "quantization", None) is not None else VERSION,
        "precision": (opt(header, "quantization", None) or {}).get("precision", "fp32"),
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
        for i, g in enumerate(header["goldenSamples"]):
            probs = forward(header, params, base64.b64decode(g["pixels"]))
            if int(probs.argmax()) != g["expectedClass"]:
                print(f"invalid: golden sample {i} predicts class {int(probs.argmax())}, the file records {g['expectedClass']}",
                      file=sys.stderr)
                return 1
            worst = max(worst, float(abs(probs - g["probabilities"]).max()))
        summary["goldenMaxAbsDiff"] = worst
        if worst > 1e-4:
            print(f"invalid: golden probabilities differ from the recorded ones by {worst}, over the tolerance 1e-4", file=sys.stderr)
            return 1
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
