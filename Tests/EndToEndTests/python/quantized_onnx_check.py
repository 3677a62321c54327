#!/usr/bin/env python3
"""ONNX Runtime runs Loupe's QDQ export of an int8 model over the Fashion-MNIST test set and must give
the same top-1 class as Loupe for every image.

    quantized_onnx_check.py MODEL.onnx LOUPE_TOP1.u8 [DATA_DIR]

LOUPE_TOP1.u8 holds Loupe's predicted class per test image (one byte each, test-file order). Prints a
JSON line; exit 0 when every image agrees, 1 otherwise."""
import gzip, json, os, sys

import numpy as np
import onnx
import onnxruntime as ort


def load(directory, name):
    path = os.path.join(directory, name)
    raw = gzip.open(path).read() if os.path.exists(path) else open(path[:-3], "rb").read()
    nd = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(nd)]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * nd).reshape(dims)


def main(model, top1_path, directory="/usr/share/datasets/fashion-mnist"):
    ops = sorted({n.op_type for n in onnx.load(model).graph.node})
    x = load(directory, "t10k-images-idx3-ubyte.gz").astype(np.float32)[..., None] / 255
    y = load(directory, "t10k-labels-idx1-ubyte.gz")
    s = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    top1 = np.concatenate([s.run(None, {"input": x[i:i + 500]})[0] for i in range(0, len(x), 500)]).argmax(1)
    loupe = np.frombuffer(open(top1_path, "rb").read(), np.uint8)
    disagree = int((top1 != loupe).sum())
    print(json.dumps({"ops": ops, "images": len(x), "disagreements": disagree,
                      "ort_accuracy": float((top1 == y).mean()), "loupe_accuracy": float((loupe == y).mean())}))
    return 0 if disagree == 0 and "QuantizeLinear" in ops and "DequantizeLinear" in ops else 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
