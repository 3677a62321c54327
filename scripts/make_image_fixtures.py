#!/usr/bin/env python3
"""Writes the PNG/PGM test fixtures in Tests/LoupeDataTests/Fixtures/images.

Every PNG is encoded by hand here (zlib + CRC, all five filter types cycled by row, Adam7 when
asked), so each colour type / bit depth / transparency / interlace combination exists. Next to
each `NAME.png` goes `NAME.expected.pgm`: the 8-bit gray image Loupe must decode, computed with
the conversion docs and ImageDecoder document (BT.601 luma on stored values, samples rescaled to
0..255, alpha composited over black, rounding half away from zero).

When Pillow is installed, each PNG is also decoded with Pillow and the expected gray recomputed
from Pillow's samples, so the hand-written encoder is checked by an independent decoder.

Usage: python3 scripts/make_image_fixtures.py [OUTDIR]
"""
import math
import os
import struct
import sys
import zlib

W, H = 13, 11   # odd sizes: partial Adam7 passes and sub-byte row padding


def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def filter_row(ftype, row, prev, bpp):
    out = bytearray()
    for i, x in enumerate(row):
        a = row[i - bpp] if i >= bpp else 0
        b = prev[i]
        c = prev[i - bpp] if i >= bpp else 0
        pred = [0, a, b, (a + b) // 2, paeth(a, b, c)][ftype]
        out.append((x - pred) & 0xFF)
    return bytes(out)


def pack_row(samples, depth):
    """samples: flat list of channel samples for one row."""
    if depth == 8:
        return bytes(samples)
    if depth == 16:
        return b"".join(struct.pack(">H", s) for s in samples)
    out = bytearray()
    acc, nbits = 0, 0
    for s in samples:
        acc = (acc << depth) | s
        nbits += depth
        if nbits == 8:
            out.append(acc)
            acc, nbits = 0, 0
    if nbits:
        out.append(acc << (8 - nbits))
    return bytes(out)


CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def encode_png(pixels, color_type, depth, interlace=False, plte=None, trns=None, row_filter=None):
    """pixels: H rows of W tuples of channel samples."""
    ch = CHANNELS[color_type]
    bpp = max(1, ch * depth // 8)
    passes = ADAM7 if interlace else [(0, 0, 1, 1)]
    raw = bytearray()
    rowno = 0
    for (x0, y0, dx, dy) in passes:
        xs = list(range(x0, W, dx))
        ys = list(range(y0, H, dy))
        if not xs or not ys:
            continue
        prev = bytes(len(pack_row([0] * (len(xs) * ch), depth)))
        for y in ys:
            row = pack_row([s for x in xs for s in pixels[y][x]], depth)
            ftype = rowno % 5 if row_filter is None else row_filter
            raw.append(ftype)
            raw += filter_row(ftype, row, prev, bpp)
            prev = row
            rowno += 1
    ihdr = struct.pack(">IIBBBBB", W, H, depth, color_type, 0, 0, 1 if interlace else 0)
    out = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
    out += chunk(b"tEXt", b"Comment\x00loupe fixture")  # an ancillary chunk to skip
    if plte is not None:
        out += chunk(b"PLTE", b"".join(bytes(c) for c in plte))
    if trns is not None:
        out += chunk(b"tRNS", trns)
    z = zlib.compress(bytes(raw), 9)
    half = len(z) // 2   # two IDAT chunks
    out += chunk(b"IDAT", z[:half]) + chunk(b"IDAT", z[half:]) + chunk(b"IEND", b"")
    return out


def to_byte(v):
    return min(255, max(0, int(math.floor(v * 255 + 0.5))))


def luma(r, g, b):
    return 0.299 * r + 0.587 * g + 0.114 * b


def expected_gray(pixels, color_type, depth, plte=None, trns=None):
    m = float((1 << depth) - 1)
    key = None
    if trns is not None and color_type in (0, 2):
        key = [struct.unpack(">H", trns[i:i + 2])[0] for i in range(0, len(trns), 2)]
    out = bytearray()
    for row in pixels:
        for px in row:
            if color_type == 0:
                out.append(0 if key == [px[0]] else to_byte(px[0] / m))
            elif color_type == 2:
                out.append(0 if key == list(px) else to_byte(luma(*px) / m))
            elif color_type == 3:
                r, g, b = plte[px[0]]
                a = trns[px[0]] / 255.0 if trns is not None and px[0] < len(trns) else 1.0
                out.append(to_byte(luma(r, g, b) / 255 * a))
            elif color_type == 4:
                out.append(to_byte(px[0] / m * px[1] / m))
            else:
                out.append(to_byte(luma(px[0], px[1], px[2]) / m * px[3] / m))
    return bytes(out)


def pattern(color_type, depth, seed):
    """Deterministic samples using the whole range, including 0 and the maximum."""
    m = (1 << depth) - 1
    ch = CHANNELS[color_type]
    state = seed * 2654435761 % 2**32 or 1
    rows = []
    for y in range(H):
        row = []
        for x in range(W):
            px = []
            for c in range(ch):
                state = (state * 1103515245 + 12345) % 2**31
                if (x + y + c) % 7 == 0:
                    v = m
                elif (x * 3 + y + c) % 11 == 0:
                    v = 0
                else:
                    v = (state >> 7) % (m + 1)
                px.append(v)
            row.append(tuple(px))
        rows.append(row)
    return rows


def pgm(width, height, data, maxval=255):
    return b"P5\n%d %d\n%d\n" % (width, height, maxval) + data


def pillow_check(path, px, color_type, depth):
    """Decode with Pillow and compare its samples with the ones encoded: an independent check
    of the hand-written encoder (filters, bit packing, Adam7). None when Pillow is missing."""
    try:
        from PIL import Image
    except ImportError:
        return None
    im = Image.open(path)
    im.load()
    data = list(im.get_flattened_data() if hasattr(im, "get_flattened_data") else im.getdata())
    m = (1 << depth) - 1
    want = []
    for row in px:
        for p in row:
            if im.mode == "P":
                want.append(p[0])
            elif im.mode in ("1", "L"):
                want.append(p[0] * 255 // m)
            elif im.mode.startswith("I"):
                want.append(p[0])
            elif depth == 16:
                q = (p[0], p[0], p[0], p[1]) if color_type == 4 and im.mode == "RGBA" else p
                want.append(tuple(v >> 8 for v in q))
            else:
                want.append(tuple(p))
    got = [tuple(v) if isinstance(v, tuple) else v for v in data]
    if im.mode == "1":
        got = [255 if v else 0 for v in got]
    return got == want


def main():
    outdir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "Tests", "LoupeDataTests", "Fixtures", "images")
    os.makedirs(outdir, exist_ok=True)
    cases = []
    for depth in (1, 2, 4, 8, 16):
        cases.append((f"gray{depth}", 0, depth, False, None))
    cases += [("gray1_adam7", 0, 1, True, None), ("gray16_adam7", 0, 16, True, None), ("gray8_adam7", 0, 8, True, None)]
    cases += [("gray8_trns", 0, 8, False, "trns"), ("gray2_trns", 0, 2, False, "trns")]
    cases += [("rgb8", 2, 8, False, None), ("rgb16", 2, 16, False, None), ("rgb8_adam7", 2, 8, True, None),
              ("rgb8_trns", 2, 8, False, "trns"), ("rgb16_trns", 2, 16, False, "trns")]
    for depth in (1, 2, 4, 8):
        cases.append((f"palette{depth}", 3, depth, False, None))
    cases += [("palette4_trns", 3, 4, False, "trns"), ("palette8_trns_adam7", 3, 8, True, "trns"), ("palette2_adam7", 3, 2, True, None)]
    cases += [("gray_alpha8", 4, 8, False, None), ("gray_alpha16", 4, 16, False, None), ("gray_alpha8_adam7", 4, 8, True, None)]
    cases += [("rgba8", 6, 8, False, None), ("rgba16", 6, 16, False, None), ("rgba8_adam7", 6, 8, True, None), ("rgba16_adam7", 6, 16, True, None)]

    checked = 0
    for i, (name, ct, depth, interlace, extra) in enumerate(cases):
        px = pattern(ct, depth, i + 1)
        plte = trns = None
        if ct == 3:
            n = 1 << depth
            plte = [((k * 97) % 256, (k * 57 + 30) % 256, (k * 23 + 200) % 256) for k in range(n)]
            plte[0] = (0, 0, 0)
            plte[-1] = (255, 255, 255)
            if extra == "trns":
                trns = bytes((k * 41) % 256 for k in range(max(1, n // 2)))   # shorter than PLTE: the rest opaque
        elif extra == "trns":
            key = px[2][3]
            trns = b"".join(struct.pack(">H", s) for s in key)
        data = encode_png(px, ct, depth, interlace, plte, trns)
        path = os.path.join(outdir, name + ".png")
        with open(path, "wb") as f:
            f.write(data)
        expected = expected_gray(px, ct, depth, plte, trns)
        with open(os.path.join(outdir, name + ".expected.pgm"), "wb") as f:
            f.write(pgm(W, H, expected))
        check = pillow_check(path, px, ct, depth)
        if check is not None:
            assert check, f"{name}: Pillow decodes different samples than were encoded"
            checked += 1

    # Files written by Pillow's own encoder (its filter choices, zlib settings and chunk
    # layout), when Pillow is installed; expected gray from the samples Pillow was given.
    pillow_count = 0
    try:
        from PIL import Image
    except ImportError:
        Image = None
    if Image is not None:
        rgba = pattern(6, 8, 101)
        flat = [p for row in rgba for p in row]
        def save(name, im, expected, **kw):
            im.save(os.path.join(outdir, name + ".png"), **kw)
            with open(os.path.join(outdir, name + ".expected.pgm"), "wb") as f:
                f.write(pgm(W, H, bytes(expected)))
        im = Image.new("RGBA", (W, H)); im.putdata(flat)
        save("pillow_rgba", im, [to_byte(luma(r, g, b) / 255 * a / 255) for (r, g, b, a) in flat], optimize=True)
        im = Image.new("RGB", (W, H)); im.putdata([p[:3] for p in flat])
        save("pillow_rgb", im, [to_byte(luma(r, g, b) / 255) for (r, g, b, a) in flat], compress_level=1)
        gray = [p[0] for p in flat]
        im = Image.new("L", (W, H)); im.putdata(gray)
        save("pillow_gray", im, gray, optimize=True)
        im = Image.new("LA", (W, H)); im.putdata([(p[0], p[3]) for p in flat])
        save("pillow_gray_alpha", im, [to_byte(p[0] / 255 * p[3] / 255) for p in flat])
        im = Image.new("1", (W, H)); im.putdata([255 if p[0] > 127 else 0 for p in flat])
        save("pillow_bilevel", im, [255 if p[0] > 127 else 0 for p in flat])
        pal = Image.new("RGB", (W, H)); pal.putdata([p[:3] for p in flat])
        pim = pal.quantize(colors=16)
        colors = pim.getpalette()
        idx = list(pim.get_flattened_data() if hasattr(pim, "get_flattened_data") else pim.getdata())
        save("pillow_palette", pim, [to_byte(luma(colors[3 * i], colors[3 * i + 1], colors[3 * i + 2]) / 255) for i in idx])
        g16 = [(p[0] << 8) | p[1] for p in flat]
        im = Image.new("I;16", (W, H)); im.putdata(g16)
        save("pillow_gray16", im, [to_byte(v / 65535) for v in g16])
        pillow_count = 7

    # PGM fixtures: P5 8-bit, P5 16-bit, P2 with comments, and their expected 8-bit values.
    vals = [(x * 37 + y * 11) % 256 for y in range(H) for x in range(W)]
    with open(os.path.join(outdir, "p5_8bit.pgm"), "wb") as f:
        f.write(b"P5\n# a comment\n%d %d\n255\n" % (W, H) + bytes(vals))
    vals16 = [(v * 257 + (v % 3) * 100) % 65536 for v in vals]
    with open(os.path.join(outdir, "p5_16bit.pgm"), "wb") as f:
        f.write(b"P5 %d %d 65535\n" % (W, H) + b"".join(struct.pack(">H", v) for v in vals16))
    with open(os.path.join(outdir, "p5_16bit.expected.pgm"), "wb") as f:
        f.write(pgm(W, H, bytes((v * 255 + 65535 // 2) // 65535 for v in vals16)))
    vals15 = [v % 16 for v in vals]
    body = "\n".join(" ".join(str(vals15[y * W + x]) for x in range(W)) for y in range(H))
    with open(os.path.join(outdir, "p2_maxval15.pgm"), "w") as f:
        f.write(f"P2\n# ASCII, maxval 15\n{W} {H}\n15\n{body}\n")
    with open(os.path.join(outdir, "p2_maxval15.expected.pgm"), "wb") as f:
        f.write(pgm(W, H, bytes((v * 255 + 15 // 2) // 15 for v in vals15)))
    print(f"wrote {len(cases)} hand-encoded PNG fixtures, {pillow_count} written by Pillow, and 3 PGM fixtures to {outdir}; {checked} cross-checked with Pillow")


if __name__ == "__main__":
    main()
