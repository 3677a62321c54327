#!/usr/bin/env python3
"""Drives `loupe serve` with the KServe Python SDK's v2 REST client, with its defaults.

Usage: kserve_sdk_check.py BASE_URL MODEL PIXELS_FILE
PIXELS_FILE holds N*784 raw bytes. Checks liveness, readiness (server and model) and one v2 infer;
prints one JSON object with the probabilities; exits non-zero with a message on any failure.
"""
import asyncio
import json
import sys

import numpy as np
from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig


async def main():
    base, model, pixels_path = sys.argv[1:4]
    raw = np.fromfile(pixels_path, dtype=np.uint8)
    n = raw.size // 784
    x = (raw.reshape(n, 28, 28, 1).astype(np.float32) / 255.0)
    client = InferenceRESTClient(RESTConfig(protocol="v2"))
    try:
        live = await client.is_server_live(base)
        ready = await client.is_server_ready(base)
        model_ready = await client.is_model_ready(base, model)
        assert live is True, f"is_server_live returned {live!r}"
        assert ready is True, f"is_server_ready returned {ready!r}"
        assert model_ready is True, f"is_model_ready returned {model_ready!r}"
        inp = InferInput(name="input", shape=list(x.shape), datatype="FP32")
        inp.set_data_from_numpy(x)   # the SDK's default encoding
        response = await client.infer(base, InferRequest(model_name=model, infer_inputs=[inp]), model_name=model)
        out = response.outputs[0]
        probs = np.asarray(out.data, dtype=np.float32).reshape(out.shape)
        assert probs.shape == (n, 10), probs.shape
        print(json.dumps({"ok": True, "n": n, "live": live, "ready": ready, "probabilities": probs.tolist()}))
    finally:
        await client.close()


if __name__ == "__main__":
    asyncio.run(main())
