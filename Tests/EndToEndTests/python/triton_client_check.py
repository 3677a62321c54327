#!/usr/bin/env python3
"""Drives `loupe serve` with the official KServe v2 client (tritonclient[http]).

Usage: triton_client_check.py HOST:PORT MODEL PIXELS_FILE
PIXELS_FILE holds N*784 raw bytes (N Fashion-MNIST test images). Prints one JSON object with
the probabilities it got; exits non-zero with a message on any failure.
"""
import json
import sys

import numpy as np
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException


def main():
    url, model, pixels_path = sys.argv[1:4]
    raw = np.fromfile(pixels_path, dtype=np.uint8)
    n = raw.size // 784
    images = raw.reshape(n, 28, 28, 1)
    client = httpclient.InferenceServerClient(url=url)

    assert client.is_server_live(), "server not live"
    assert client.is_server_ready(), "server not ready"
    server = client.get_server_metadata()
    assert server["name"] == "loupe", server
    meta = client.get_model_metadata(model)
    assert meta["name"] == model and meta["inputs"][0]["name"] == "input", meta
    assert meta["outputs"][0]["shape"] == [-1, 10], meta
    assert client.is_model_ready(model), "model not ready"
    assert not client.is_model_ready("no-such-model"), "unknown model reported ready"

    # FP32, model-ready values (pixels / 255), shape [N, 28, 28, 1], JSON tensor data.
    x = images.astype(np.float32) / 255.0
    inp = httpclient.InferInput("input", list(x.shape), "FP32")
    inp.set_data_from_numpy(x, binary_data=False)
    out = httpclient.InferRequestedOutput("probabilities", binary_data=False)
    result = client.infer(model, [inp], outputs=[out], request_id="tc-1")
    probs = result.as_numpy("probabilities")
    assert probs.shape == (n, 10), probs.shape
    assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-4), probs.sum(axis=1)

    # UINT8 pixels, shape [N, 784].
    inp8 = httpclient.InferInput("input", [n, 784], "UINT8")
    inp8.set_data_from_numpy(raw.reshape(n, 784), binary_data=False)
    probs8 = client.infer(model, [inp8], outputs=[out]).as_numpy("probabilities")
    assert np.allclose(probs8, probs, atol=1e-5), "UINT8 and FP32 inputs disagree"

    # Compressed request bodies, as the client sends them with request_compression_algorithm.
    for algorithm in ("gzip", "deflate"):
        compressed = client.infer(model, [inp], outputs=[out], request_compression_algorithm=algorithm).as_numpy("probabilities")
        assert np.allclose(compressed, probs, atol=1e-6), f"{algorithm} request body gave other answers"

    # Classification extension: top 3 as BYTES "score:index:label".
    cls_out = httpclient.InferRequestedOutput("probabilities", binary_data=False, class_count=3)
    classes = client.infer(model, [inp], outputs=[cls_out]).as_numpy("probabilities")
    assert classes.shape == (n, 3), classes.shape
    first = classes[0][0].decode() if isinstance(classes[0][0], bytes) else str(classes[0][0])
    score, index, label = first.split(":", 2)
    assert int(index) == int(np.argmax(probs[0])), (first, probs[0])
    assert abs(float(score) - float(probs[0].max())) < 1e-5

    # The client's defaults: binary tensor data in both directions (set_data_from_numpy(x),
    # InferRequestedOutput(name)), for FP32, UINT8 and FP16 inputs, and with no outputs named.
    binp = httpclient.InferInput("input", list(x.shape), "FP32")
    binp.set_data_from_numpy(x)
    default = client.infer(model, [binp], outputs=[httpclient.InferRequestedOutput("probabilities")]).as_numpy("probabilities")
    assert np.allclose(default, probs, atol=1e-6), "binary FP32 disagrees with JSON"
    assert np.allclose(client.infer(model, [binp]).as_numpy("probabilities"), probs, atol=1e-6), "no outputs named"
    bin8 = httpclient.InferInput("input", [n, 784], "UINT8")
    bin8.set_data_from_numpy(raw.reshape(n, 784))
    assert np.allclose(client.infer(model, [bin8], outputs=[httpclient.InferRequestedOutput("probabilities")]).as_numpy("probabilities"), probs, atol=1e-5)
    bin16 = httpclient.InferInput("input", list(x.shape), "FP16")
    bin16.set_data_from_numpy(x.astype(np.float16))
    half = client.infer(model, [bin16], outputs=[httpclient.InferRequestedOutput("probabilities")]).as_numpy("probabilities")
    assert np.allclose(half, probs, atol=1e-2) and (half.argmax(1) == probs.argmax(1)).all(), "FP16 input disagrees"
    # Classification with binary output (BYTES elements, length-prefixed).
    bcls = client.infer(model, [binp], outputs=[httpclient.InferRequestedOutput("probabilities", class_count=3)]).as_numpy("probabilities")
    assert bcls.shape == (n, 3), bcls.shape
    bfirst = bcls[0][0].decode() if isinstance(bcls[0][0], bytes) else str(bcls[0][0])
    assert bfirst == first, (bfirst, first)

    print(json.dumps({"ok": True, "n": n, "probabilities": probs.tolist(), "classification": [c.decode() if isinstance(c, bytes) else str(c) for c in classes.reshape(-1)]}))


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # noqa: BLE001 - report every failure the same way
        print(json.dumps({"ok": False, "error": f"{type(e).__name__}: {e}"}))
        sys.exit(1)
