#!/usr/bin/env python3
"""Drives `loupe serve` as TF Serving REST clients do (requests, TF Serving's JSON formats) and with
the KServe Python SDK's v1 REST client.

Usage: v1_rest_check.py BASE_URL MODEL PIXELS_FILE
PIXELS_FILE holds N*784 raw bytes. Sends the same images as 784 numbers, 28×28, 28×28×1, base64 PNG,
row and columnar format, through both paths; all must give the same probabilities. Prints one JSON
object with them; exits non-zero on any failure.
"""
import asyncio
import base64
import json
import struct
import sys
import zlib

import numpy as np
import requests
from kserve import InferenceRESTClient, RESTConfig


def png(image):
    """A gray 8-bit PNG of a 28×28 uint8 image."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    rows = b"".join(b"\x00" + image[r].tobytes() for r in range(image.shape[0]))
    header = struct.pack(">IIBBBBB", image.shape[1], image.shape[0], 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def post(url, body):
    r = requests.post(url, data=json.dumps(body), headers={"Content-Type": "application/json"}, timeout=30)
    return r.status_code, r.json()


async def kserve_v1(base, model, instances):
    client = InferenceRESTClient(RESTConfig(protocol="v1"))
    try:
        live = await client.is_server_live(base)
        ready = await client.is_model_ready(base, model)
        assert live is True, f"is_server_live returned {live!r}"
        assert ready is True, f"is_model_ready returned {ready!r}"
        result = await client.infer(base, {"instances": instances}, model_name=model)
        return result["predictions"]
    finally:
        await client.close()


def main():
    base, model, pixels_path = sys.argv[1:4]
    raw = np.fromfile(pixels_path, dtype=np.uint8)
    n = raw.size // 784
    images = raw.reshape(n, 28, 28)

    status = requests.get(f"{base}/v1/models/{model}", timeout=30)
    assert status.status_code == 200, status.text
    assert status.json()["model_version_status"] == [
        {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}], status.json()
    assert requests.get(f"{base}/v1/models/{model}/versions/1", timeout=30).status_code == 200

    flat = [img.reshape(784).tolist() for img in images]
    rows = [img.tolist() for img in images]
    channels = [img.reshape(28, 28, 1).tolist() for img in images]
    b64 = [{"b64": base64.b64encode(png(img)).decode()} for img in images]
    answers = []
    for instances in (flat, rows, channels, b64):
        code, body = post(f"{base}/v1/models/{model}:predict", {"instances": instances})
        assert code == 200, body
        answers.append(body["predictions"])
    code, body = post(f"{base}/v1/models/{model}/versions/1:predict", {"signature_name": "serving_default", "inputs": rows})
    assert code == 200, body
    answers.append(body["outputs"])
    answers.append(asyncio.run(kserve_v1(base, model, flat)))
    first = np.asarray(answers[0], dtype=np.float32)
    assert first.shape == (n, 10), first.shape
    assert np.allclose(first.sum(axis=1), 1, atol=1e-4), first.sum(axis=1)
    for a in answers[1:]:
        assert np.array_equal(np.asarray(a, dtype=np.float32), first), (a, answers[0])

    # TF Serving's error bodies: {"error": "<sentence>"} with the right 4xx.
    for url, body, expected in [
        (f"{base}/v1/models/{model}:predict", {"instances": [[1, 2, 3]]}, 400),
        (f"{base}/v1/models/{model}:predict", {"instances": []}, 400),
        (f"{base}/v1/models/no-such-model:predict", {"instances": flat[:1]}, 404),
        (f"{base}/v1/models/{model}/versions/9:predict", {"instances": flat[:1]}, 404),
    ]:
        code, answer = post(url, body)
        assert code == expected and isinstance(answer.get("error"), str) and answer["error"], (url, body, code, answer)
    missing = requests.get(f"{base}/v1/models/no-such-model", timeout=30)
    assert missing.status_code == 404 and "error" in missing.json(), missing.text
    print(json.dumps({"ok": True, "n": n, "probabilities": first.tolist()}))


if __name__ == "__main__":
    main()
