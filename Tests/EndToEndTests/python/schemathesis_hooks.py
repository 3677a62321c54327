"""Schemathesis hooks for `loupe serve`: how to generate the bodies OpenAPI cannot describe.

OpenAPI 3.0 can say an `image/png` body is binary, not that it is a 28×28 PNG; so the fuzzer is
told how to make the images the schemas mean (random pixels, every bit depth the decoders take) —
the same for JPEG (baseline and progressive, with Pillow), PGM, raw N×784 bytes, and the base64 (`format: byte`) images inside JSON. Loaded with
SCHEMATHESIS_HOOKS=schemathesis_hooks (PYTHONPATH set to this folder).

Nor can it say that a JSON instance or a v2 tensor holds H·W·C values of the model's shape: the
schemas describe any served shape (the model's comes from its metadata), so a valid (positive) case's
instances and tensors are fitted to the served model's shape here — LOUPE_INPUT_SHAPE "H,W,C"
(default the shipped model's 28,28,1) — keeping the values and the nesting the schema drew.
Nor can it say which query parameters go together: /explain takes `steps` and `baseline` only with
method=integrated_gradients and `window`/`stride` only with method=occlusion (a 400 otherwise), so a
positive case keeps only the parameters of the method it drew. And /feedback takes either
{request_id, label} or {instances, labels} with one class label (0…9 for the shipped model) per image:
a positive case is made one of the two from what was drawn (an unknown request_id is a documented 404).
Negative cases are left as drawn.
"""
import base64
import io
import itertools
import os
import struct
import zlib

import schemathesis
from hypothesis import strategies as st
from PIL import Image

H, W, C = (int(v) for v in os.environ.get("LOUPE_INPUT_SHAPE", "28,28,1").split(","))
SIDE = H   # the images below are square: the served model must be H × H for them
assert H == W and C == 1, "the image strategies draw one-channel square images"
pixels = st.binary(min_size=SIDE * SIDE, max_size=SIDE * SIDE)


def png(data: bytes, depth: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
    if depth == 16:
        rows = [b"\x00" + b"".join(bytes([v, v]) for v in data[r * SIDE:(r + 1) * SIDE]) for r in range(SIDE)]
    else:
        rows = [b"\x00" + data[r * SIDE:(r + 1) * SIDE] for r in range(SIDE)]
    header = struct.pack(">IIBBBBB", SIDE, SIDE, depth, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"".join(rows))) + chunk(b"IEND", b"")


def pgm(data: bytes) -> bytes:
    return b"P5\n%d %d\n255\n" % (SIDE, SIDE) + data


def jpeg(data: bytes, quality: int, progressive: bool) -> bytes:
    out = io.BytesIO()
    Image.frombytes("L", (SIDE, SIDE), data).save(out, "JPEG", quality=quality, progressive=progressive)
    return out.getvalue()


def webp(data: bytes, lossless: bool) -> bytes:
    out = io.BytesIO()
    Image.frombytes("L", (SIDE, SIDE), data).save(out, "WEBP", lossless=lossless, quality=80)
    return out.getvalue()


png_images = st.builds(png, pixels, st.sampled_from([8, 16]))
webp_images = st.builds(webp, pixels, st.booleans())
jpeg_images = st.builds(jpeg, pixels, st.integers(min_value=30, max_value=95), st.booleans())
pgm_images = st.builds(pgm, pixels)

schemathesis.openapi.media_type("image/png", png_images)
schemathesis.openapi.media_type("image/jpeg", jpeg_images)
schemathesis.openapi.media_type("image/webp", webp_images)
schemathesis.openapi.media_type("image/x-portable-graymap", pgm_images)
schemathesis.openapi.media_type("application/octet-stream",
                                st.integers(min_value=1, max_value=4).flatmap(
                                    lambda n: st.binary(min_size=n * SIDE * SIDE, max_size=n * SIDE * SIDE)))
# Multipart file parts are `format: binary` strings: images too.
schemathesis.openapi.format("binary", st.one_of(png_images, jpeg_images, webp_images, pgm_images))
schemathesis.openapi.format("byte", st.one_of(png_images, jpeg_images, webp_images, pgm_images).map(lambda b: base64.b64encode(b).decode()))


def _values(x):
    """The numbers of a nested list, in order."""
    if isinstance(x, list):
        for v in x:
            yield from _values(v)
    elif isinstance(x, (int, float)) and not isinstance(x, bool):
        yield x


def _depth(x):
    return 1 + _depth(x[0]) if isinstance(x, list) and x else 0


def _fit(x, count):
    """`count` numbers: the drawn ones repeated (0 when none were drawn)."""
    drawn = list(_values(x)) or [0]
    return list(itertools.islice(itertools.cycle(drawn), count))


def _instance(x):
    """A drawn instance fitted to H×W×C in its own nesting (flat, rows, rows of pixels); b64 images as drawn."""
    if not isinstance(x, list):
        return x
    flat = _fit(x, H * W * C)
    if _depth(x) == 1:
        return flat
    if _depth(x) == 2 and C == 1:
        return [flat[r * W:(r + 1) * W] for r in range(H)]
    return [[flat[(r * W + c) * C:(r * W + c + 1) * C] for c in range(W)] for r in range(H)]


def _tensor(t):
    """A drawn v2 input fitted to one image: [1, H·W·C], [1, H, W] (C = 1) or [1, H, W, C] as the drawn rank asks."""
    if not isinstance(t, dict) or not isinstance(t.get("shape"), list):
        return t
    rank = len(t["shape"])
    shape = [1, H * W * C] if rank == 2 else [1, H, W] if rank == 3 and C == 1 else [1, H, W, C]
    return {**t, "shape": shape, "data": _fit(t.get("data"), H * W * C)}


@schemathesis.hook
def map_case(context, case):
    meta = getattr(case, "meta", None)
    positive = meta is not None and meta.generation.mode.is_positive
    body = case.body
    path = case.operation.path
    if positive and path.endswith("explain") and isinstance(case.query, dict):
        method = case.query.get("method", "integrated_gradients")
        own = {"integrated_gradients": {"steps", "baseline"}, "occlusion": {"window", "stride"}}.get(method, set())
        for key in ("steps", "baseline", "window", "stride"):
            if key not in own:
                case.query.pop(key, None)
    if positive and path.endswith("feedback") and isinstance(body, dict):
        def label(v):
            return v % 10 if isinstance(v, int) and not isinstance(v, bool) else 0
        if isinstance(body.get("request_id"), str):
            case.body = body = {"request_id": body["request_id"], "label": label(body.get("label"))}
        else:
            drawn = body.get("instances") if isinstance(body.get("instances"), list) and body.get("instances") else [[0]]
            drawn = [x if isinstance(x, list) else [0] for x in drawn]   # fitted to the model's shape below
            labels = body.get("labels") if isinstance(body.get("labels"), list) else []
            case.body = body = {"instances": drawn, "labels": [label(labels[i] if i < len(labels) else 0) for i in range(len(drawn))]}
    if positive and isinstance(body, dict):
        for key in ("instances", "inputs"):
            items = body.get(key)
            if isinstance(items, list):
                body[key] = [_tensor(i) if isinstance(i, dict) and "shape" in i else _instance(i) for i in items]
    return case
