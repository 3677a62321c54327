#!/usr/bin/env python3
"""Drives `loupe serve` with tritonclient.http's statistics and model-configuration calls.

Usage: triton_stats_check.py HOST:PORT MODEL PIXELS_FILE MAX_IMAGES MAX_BATCH
PIXELS_FILE holds N*784 raw bytes. Runs a few inferences with the client's defaults (binary
tensors), one that fails, then checks get_inference_statistics() and get_model_config() against
what was sent and the server's settings. Prints one JSON object; exits non-zero on any failure.
"""
import json
import sys

import numpy as np
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException


def main():
    url, model, pixels_path = sys.argv[1:4]
    max_images, max_batch = int(sys.argv[4]), int(sys.argv[5])
    raw = np.fromfile(pixels_path, dtype=np.uint8)
    n = raw.size // 784
    images = raw.reshape(n, 28, 28, 1)
    client = httpclient.InferenceServerClient(url=url)

    server = client.get_server_metadata()
    for extension in ("statistics", "model_configuration"):
        assert extension in server["extensions"], server

    before = client.get_inference_statistics(model)
    assert [s["name"] for s in before["model_stats"]] == [model], before
    assert before["model_stats"][0]["inference_count"] == 0, before

    # Requests of 1, 2, …: with the client's defaults (binary tensor data both ways).
    sizes = [k for k in (1, 2, n - 3) if k > 0]
    offset = 0
    for k in sizes:
        x = images[offset:offset + k].astype(np.float32) / 255.0
        offset += k
        inp = httpclient.InferInput("input", list(x.shape), "FP32")
        inp.set_data_from_numpy(x)
        result = client.infer(model, [inp], outputs=[httpclient.InferRequestedOutput("probabilities")])
        assert result.as_numpy("probabilities").shape == (k, 10)
    # One request with the wrong shape: refused, counted as a failure of that version.
    bad = httpclient.InferInput("input", [1, 27, 27], "FP32")
    bad.set_data_from_numpy(np.zeros((1, 27, 27), dtype=np.float32))
    try:
        client.infer(model, [bad])
        raise AssertionError("a [1,27,27] input was accepted")
    except InferenceServerException as e:
        assert e.status() == "400", e

    stats = client.get_inference_statistics(model)["model_stats"]
    assert len(stats) == 1, stats
    s = stats[0]
    assert s["name"] == model and s["version"] == "1", s
    assert s["inference_count"] == sum(sizes), s
    assert 1 <= s["execution_count"] <= len(sizes), s
    assert s["last_inference"] > 1_600_000_000_000, s
    i = s["inference_stats"]
    for key in ("success", "queue", "compute_input", "compute_infer", "compute_output"):
        assert i[key]["count"] == len(sizes), (key, i)
    assert i["fail"]["count"] == 1, i
    assert i["success"]["ns"] >= i["compute_infer"]["ns"] > 0, i
    # The version path and the all-models path agree.
    one = client.get_inference_statistics(model, model_version="1")["model_stats"]
    assert one[0]["inference_count"] == s["inference_count"], one
    every = client.get_inference_statistics()["model_stats"]
    assert model in [e["name"] for e in every], every
    try:
        client.get_inference_statistics("no-such-model")
        raise AssertionError("statistics of an unknown model")
    except InferenceServerException as e:
        assert e.status() == "404", e

    config = client.get_model_config(model)
    assert config["name"] == model and config["platform"] == "loupe", config
    assert config["max_batch_size"] == max_images, config
    assert config["input"][0]["name"] == "input" and config["input"][0]["data_type"] == "TYPE_FP32", config
    assert config["input"][0]["dims"] == [28, 28, 1], config
    assert config["output"][0]["name"] == "probabilities" and config["output"][0]["dims"] == [10], config
    assert config["dynamic_batching"]["preferred_batch_size"] == [max_batch], config
    assert client.get_model_config(model, model_version="1")["name"] == model
    print(json.dumps({"ok": True, "inference_count": s["inference_count"], "execution_count": s["execution_count"],
                      "requests": len(sizes)}))


if __name__ == "__main__":
    main()
