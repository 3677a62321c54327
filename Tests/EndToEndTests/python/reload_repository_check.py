#!/usr/bin/env python3
"""Drives Loupe's model repository extension with the official client (tritonclient[http]).

Usage: reload_repository_check.py HOST:PORT MODEL TOKEN
Expects MODEL to be served with versions 1 and 2 on disk (2 served under the latest policy).
Prints one JSON object; exits non-zero with a message on any failure.
"""
import json
import sys

import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException


def expect_error(call, fragment):
    try:
        call()
    except InferenceServerException as e:
        assert fragment in str(e).lower(), f"expected '{fragment}' in: {e}"
        return str(e)
    raise AssertionError(f"no error (expected '{fragment}')")


def main():
    url, model, token = sys.argv[1:4]
    auth = {"Authorization": f"Bearer {token}"}
    client = httpclient.InferenceServerClient(url=url)

    expect_error(lambda: client.get_model_repository_index(), "bearer")
    index = client.get_model_repository_index(headers=auth)
    entries = {(e["name"], e["version"]): e for e in index}
    assert entries[(model, "2")]["state"] == "READY", index
    assert entries[(model, "1")]["state"] == "UNAVAILABLE", index

    client.unload_model(model, headers=auth)
    assert not client.is_model_ready(model), "ready after unload"
    assert not client.is_server_ready(), "server ready with its only model unloaded"
    states = {e["version"]: e["state"] for e in client.get_model_repository_index(headers=auth) if e["name"] == model}
    assert set(states.values()) == {"UNLOADED"}, states

    client.load_model(model, headers=auth)
    assert client.is_model_ready(model), "not ready after load"
    assert client.is_model_ready(model, model_version="2"), "version 2 not ready after load"
    assert client.is_server_ready(), "server not ready after load"

    missing = expect_error(lambda: client.load_model("no-such-model", headers=auth), "not in the repository")
    override = expect_error(lambda: client.load_model(model, headers=auth, config=json.dumps({"max_batch_size": 8})), "not supported")
    print(json.dumps({"ok": True, "index": index, "missing": missing, "override": override}))


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # noqa: BLE001 - report every failure the same way
        print(json.dumps({"ok": False, "error": f"{type(e).__name__}: {e}"}))
        sys.exit(1)
