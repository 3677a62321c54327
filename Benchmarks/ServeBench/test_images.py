#!/usr/bin/env python3
"""Writes the first N Fashion-MNIST test images as 8-bit gray 28x28 PNGs (OUT/png/00.png ...) and as
one N x 784 raw body (OUT/batchN.bin), the inputs of the serve benchmarks.
Usage: test_images.py OUT [N=64]"""
import gzip, os, struct, sys, zlib

out = sys.argv[1]
n = int(sys.argv[2]) if len(sys.argv) > 2 else 64
os.makedirs(f'{out}/png', exist_ok=True)
raw = gzip.open('/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz').read()[16:16 + n * 784]

def chunk(t, d):
    return struct.pack('>I', len(d)) + t + d + struct.pack('>I', zlib.crc32(t + d) & 0xffffffff)

for i in range(n):
    px = raw[i * 784:(i + 1) * 784]
    rows = b''.join(b'\x00' + px[r * 28:(r + 1) * 28] for r in range(28))
    png = (b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', 28, 28, 8, 0, 0, 0, 0))
           + chunk(b'IDAT', zlib.compress(rows, 9)) + chunk(b'IEND', b''))
    open(f'{out}/png/{i:02d}.png', 'wb').write(png)
open(f'{out}/batch{n}.bin', 'wb').write(raw)
