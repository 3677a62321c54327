#!/usr/bin/env python3
"""ONNX Runtime int8 peer for Loupe's int8 benchmark (docs/performance.md, "Int8").

Quantizes the seed network's ONNX model (default ../shared/anchors/ml/model.onnx, input NHWC
[N, 28, 28, 1] pixels / 255) with onnxruntime.quantization.quantize_static: QDQ format, per-channel
int8 weights, uint8 activations, MinMax calibration on the SAME images `loupe quantize` uses (the first
--calibration training images). Then times fp32 and int8 at batch 1 (median µs) and batch 256
(images/s from the median), 1 and 2 intra-op threads, and measures top-1 accuracy on the 10k test set.

Usage: python3 Benchmarks/Int8/ort_int8.py [--onnx PATH] [--calibration 1000] [--n1 3000] [--n256 100]  -> JSON lines
"""
import argparse, gzip, json, os, sys, tempfile, time

DATA = "/usr/share/datasets/fashion-mnist"


def load_idx(name):
    import numpy as np
    path = os.path.join(DATA, name)
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def main():
    ap = argparse.ArgumentParser()
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--onnx", default=os.path.normpath(os.path.join(here, "../../../shared/anchors/ml/model.onnx")))
    ap.add_argument("--calibration", type=int, default=1000)
    ap.add_argument("--n1", type=int, default=3000)
    ap.add_argument("--n256", type=int, default=100)
    args = ap.parse_args()
    import numpy as np
    import onnxruntime as ort
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)

    xtr = load_idx("train-images-idx3-ubyte.gz").astype(np.float32)[..., None] / 255.0
    xte = load_idx("t10k-images-idx3-ubyte.gz").astype(np.float32)[..., None] / 255.0
    yte = load_idx("t10k-labels-idx1-ubyte.gz").astype(np.int64)
    probe = ort.InferenceSession(args.onnx, providers=["CPUExecutionProvider"])
    input_name = probe.get_inputs()[0].name

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.items = iter([{input_name: xtr[i:i + 1]} for i in range(args.calibration)])

        def get_next(self):
            return next(self.items, None)

    out = os.path.join(tempfile.mkdtemp(), "model.int8.onnx")
    quantize_static(args.onnx, out, Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax)
    for name, path in (("fp32", args.onnx), ("int8", out)):
        for threads in (1, 2):
            so = ort.SessionOptions()
            so.intra_op_num_threads = threads
            so.inter_op_num_threads = 1
            s = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
            if threads == 2:
                probs = np.concatenate([s.run(None, {input_name: xte[i:i + 256]})[0] for i in range(0, len(xte), 256)])
                acc = float((probs.argmax(1) == yte).mean())
                print(json.dumps({"event": "ort_accuracy", "precision": name, "test_accuracy": round(acc, 4),
                                  "file_bytes": os.path.getsize(path)}), flush=True)
            singles = [xte[i:i + 1] for i in range(100)]
            for i in range(300):
                s.run(None, {input_name: singles[i % 100]})
            lat = []
            for i in range(args.n1):
                t0 = time.perf_counter()
                s.run(None, {input_name: singles[i % 100]})
                lat.append(time.perf_counter() - t0)
            b = xte[:256]
            for _ in range(5):
                s.run(None, {input_name: b})
            bl = []
            for _ in range(args.n256):
                t0 = time.perf_counter()
                s.run(None, {input_name: b})
                bl.append(time.perf_counter() - t0)
            print(json.dumps({"event": "ort_infer", "precision": name, "threads": threads, "onnxruntime": ort.__version__,
                              "batch1_median_us": round(float(np.median(lat)) * 1e6, 1),
                              "batch256_img_per_s": round(256 / float(np.median(bl))),
                              "loadavg1": round(os.getloadavg()[0], 2)}), flush=True)


if __name__ == "__main__":
    sys.exit(main())
