"""Schemathesis hooks for `loupe serve`: how to generate the bodies OpenAPI cannot describe.

OpenAPI 3.0 can say an `image/png` body is binary, not that it is a 28×28 PNG; so the fuzzer is
told how to make the images the schemas mean (random pixels, every bit depth the decoders take) —
the same for JPEG (baseline and progressive, with Pillow), PGM, raw N×784 bytes, and the base64 (`format: byte`) images inside JSON. Loaded with
SCHEMATHESIS_HOOKS=schemathesis_hooks (PYTHONPATH set to this folder).
"""
import base64
import io
import struct
import zlib

import schemathesis
from hypothesis import strategies as st
from PIL import Image

SIDE = 28
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


png_images = st.builds(png, pixels, st.sampled_from([8, 16]))
jpeg_images = st.builds(jpeg, pixels, st.integers(min_value=30, max_value=95), st.booleans())
pgm_images = st.builds(pgm, pixels)

schemathesis.openapi.media_type("image/png", png_images)
schemathesis.openapi.media_type("image/jpeg", jpeg_images)
schemathesis.openapi.media_type("image/x-portable-graymap", pgm_images)
schemathesis.openapi.media_type("application/octet-stream",
                                st.integers(min_value=1, max_value=4).flatmap(
                                    lambda n: st.binary(min_size=n * SIDE * SIDE, max_size=n * SIDE * SIDE)))
# Multipart file parts are `format: binary` strings: images too.
schemathesis.openapi.format("binary", st.one_of(png_images, jpeg_images, pgm_images))
schemathesis.openapi.format("byte", st.one_of(png_images, jpeg_images, pgm_images).map(lambda b: base64.b64encode(b).decode()))
