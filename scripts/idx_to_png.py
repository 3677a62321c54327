#!/usr/bin/env python3
"""Writes images of an IDX dataset as 8-bit gray PNG files (standard library only), named
<index>-<label>.png, for trying `loupe predict` or the server's /predict.

    python3 scripts/idx_to_png.py [--data DIR] [--split t10k|train] [--first N] [--indices i,j,...] OUTDIR
"""
import argparse
import gzip
import os
import struct
import zlib

FASHION = ["t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle-boot"]


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    rank = data[3]
    dims = struct.unpack(">" + "I" * rank, data[4:4 + 4 * rank])
    return dims, data[4 + 4 * rank:]


def find(directory, split, kind, rank):
    for sep in ("-", "."):
        for suffix in ("", ".gz"):
            p = os.path.join(directory, f"{split}-{kind}{sep}idx{rank}-ubyte{suffix}")
            if os.path.exists(p):
                return p
    raise SystemExit(f"no {split}-{kind}-idx{rank}-ubyte[.gz] in {directory}")


def png(width, height, pixels):
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
    raw = b"".join(b"\x00" + pixels[y * width:(y + 1) * width] for y in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--split", default="t10k")
    ap.add_argument("--first", type=int, default=10)
    ap.add_argument("--indices", default=None)
    ap.add_argument("outdir")
    a = ap.parse_args()
    (n, rows, cols), images = read_idx(find(a.data, a.split, "images", 3))
    _, labels = read_idx(find(a.data, a.split, "labels", 1))
    names = FASHION if "fashion" in a.data.lower() else [str(i) for i in range(10)]
    indices = [int(i) for i in a.indices.split(",")] if a.indices else range(min(a.first, n))
    os.makedirs(a.outdir, exist_ok=True)
    for i in indices:
        name = os.path.join(a.outdir, f"{i}-{names[labels[i]]}.png")
        with open(name, "wb") as f:
            f.write(png(cols, rows, images[i * rows * cols:(i + 1) * rows * cols]))
        print(name)


if __name__ == "__main__":
    main()
