#!/usr/bin/env python3
"""A numpy reference for POST /explain (tests and benchmarks only), written from docs/api.md and
docs/model-format.md: the network's forward pass and its backward pass with respect to the input,
and the four attribution methods.

  explain_reference.py compare HOST:PORT MODEL.loupe IMAGES.u8 N
      Explains the first N 28×28 images of IMAGES.u8 (raw bytes) with the server and with numpy for
      every method (integrated gradients black and blur at 32 steps, saliency, gradient × input,
      occlusion, the logit output, a given target); prints one JSON line {case: max |server − numpy|}
      and exits 1 if any difference exceeds 1e-4.
  explain_reference.py bench MODEL.loupe IMAGES.u8 N
      Prints one JSON line of numpy milliseconds per image: integrated gradients 32 steps, saliency
      (Captum-style: all steps as one batch).
"""
import json
import math
import os
import sys
import time
import urllib.request

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "..", "scripts"))
import read_loupe  # noqa: E402


class Network:
    def __init__(self, path):
        with open(path, "rb") as f:
            header, params, _, _, _ = read_loupe.read(f.read())
        self.header = header
        self.arch = header["architecture"]
        self.scale = header["normalization"]["scale"]
        self.offset = header["normalization"]["offset"]
        p = np.frombuffer(params.tobytes(), dtype="<f4").astype(np.float64)
        table = {t["name"]: t for t in header["tensors"]}

        def tensor(name):
            t = table[name]
            return p[t["offset"]:t["offset"] + math.prod(t["shape"])].reshape(t["shape"])

        self.layers = []
        convs = denses = 0
        for layer in self.arch["layers"]:
            t = layer["type"]
            if t == "conv2d":
                convs += 1
                self.layers.append(("conv", tensor(f"conv{convs}.weight"), tensor(f"conv{convs}.bias"),
                                    layer.get("padding", "valid"), layer.get("activation", "linear")))
            elif t == "dense":
                denses += 1
                self.layers.append(("dense", tensor(f"dense{denses}.weight"), tensor(f"dense{denses}.bias"),
                                    None, layer.get("activation", "linear")))
            elif t == "maxPool2d":
                self.layers.append(("pool", layer.get("pool", 2), None, None, None))
            elif t == "flatten":
                self.layers.append(("flatten", None, None, None, None))
            elif t == "dropout":
                self.layers.append(("dropout", None, None, None, None))
            else:
                raise SystemExit(f"unsupported layer {t}")

    def forward(self, x):
        """x (N, H, W, C) → logits (N, classes); caches what backward needs."""
        cache = []
        for kind, a, b, pad, act in self.layers:
            if kind == "conv":
                k = a.shape[0]
                xin = x
                if pad == "same":
                    lo = (k - 1) // 2
                    x = np.pad(x, ((0, 0), (lo, k - 1 - lo), (lo, k - 1 - lo), (0, 0)))
                oh, ow = x.shape[1] - k + 1, x.shape[2] - k + 1
                y = np.zeros((x.shape[0], oh, ow, a.shape[3]))
                for di in range(k):
                    for dj in range(k):
                        y += x[:, di:di + oh, dj:dj + ow, :] @ a[di, dj]
                y += b
                cache.append((xin.shape, pad, k, y))
                x = np.maximum(y, 0) if act == "relu" else y
            elif kind == "dense":
                y = x @ a + b
                cache.append((None, None, None, y))
                x = np.maximum(y, 0) if act == "relu" else y
            elif kind == "pool":
                q = a
                n, h, w, c = x.shape
                ph, pw = h // q, w // q
                win = x[:, :ph * q, :pw * q, :].reshape(n, ph, q, pw, q, c).transpose(0, 1, 3, 5, 2, 4).reshape(n, ph, pw, c, q * q)
                first = win.argmax(axis=-1)  # the first maximum, as the engine
                cache.append((x.shape, first, None, None))
                x = win.max(axis=-1)
            elif kind == "flatten":
                cache.append((x.shape, None, None, None))
                x = x.reshape(x.shape[0], -1)
            else:
                cache.append(None)
        self.cache = cache
        return x

    def backward(self, dlogits):
        """∂/∂input given ∂/∂logits (the last layer's pre-softmax output)."""
        d = dlogits
        for (kind, a, b, pad, act), c in zip(reversed(self.layers), reversed(self.cache)):
            if kind == "conv":
                shape, pad, k, pre = c
                if act == "relu":
                    d = d * (pre > 0)
                lo = (k - 1) // 2 if pad == "same" else 0
                n, h, w, ch = shape
                ph, pw = h + (k - 1 if pad == "same" else 0), w + (k - 1 if pad == "same" else 0)
                dx = np.zeros((n, ph, pw, ch))
                oh, ow = d.shape[1], d.shape[2]
                for di in range(k):
                    for dj in range(k):
                        dx[:, di:di + oh, dj:dj + ow, :] += d @ a[di, dj].T
                d = dx[:, lo:lo + h, lo:lo + w, :]
            elif kind == "dense":
                pre = c[3]
                if act == "relu":
                    d = d * (pre > 0)
                d = d @ a.T
            elif kind == "pool":
                shape, first = c[0], c[1]
                q = a
                n, h, w, ch = shape
                ph, pw = h // q, w // q
                onehot = (np.arange(q * q) == first[..., None]) * d[..., None]
                dx = np.zeros(shape)
                dx[:, :ph * q, :pw * q, :] = onehot.reshape(n, ph, pw, ch, q, q).transpose(0, 1, 4, 2, 5, 3).reshape(n, ph * q, pw * q, ch)
                d = dx
            elif kind == "flatten":
                d = d.reshape(c[0])
        return d

    def gradients(self, x, target, output):
        z = self.forward(x)
        e = np.exp(z - z.max(axis=1, keepdims=True))
        p = e / e.sum(axis=1, keepdims=True)
        n, classes = z.shape
        onehot = np.zeros((n, classes))
        onehot[:, target] = 1
        dz = onehot if output == "logit" else p[:, target:target + 1] * (onehot - p)
        return p, z, self.backward(dz)

    def blur(self, x, sigma):
        r = max(1, math.ceil(3 * sigma))
        k = np.array([math.exp(-(i * i) / (2 * sigma * sigma)) for i in range(-r, r + 1)])
        k /= k.sum()
        h, w = x.shape[0], x.shape[1]
        rows = np.zeros_like(x)
        for i in range(-r, r + 1):
            rows += k[i + r] * x[:, np.clip(np.arange(w) + i, 0, w - 1), :]
        out = np.zeros_like(x)
        for i in range(-r, r + 1):
            out += k[i + r] * rows[np.clip(np.arange(h) + i, 0, h - 1), :, :]
        return out

    def integrated(self, x, base, t, output, steps):
        """(x − x′) ⊙ ∫₀¹ ∇score(x′ + α(x − x′)) dα by the adaptive composite midpoint rule of docs/api.md: n₀ equal
        intervals (⌈steps/4⌉, one more when steps − n₀ is odd), then rounds that cut the ⌈steps/16⌉ intervals whose
        midpoint estimate w·∇score(mid)·(x − x′) misses score(hi) − score(lo) most (ties: lower index) in three, the
        middle third keeping its gradient, until `steps` gradients are spent."""
        d = x - base

        def score(alphas):
            z = self.forward(base[None] + np.asarray(alphas)[:, None, None, None] * d[None])
            if output == "logit":
                return z[:, t]
            e = np.exp(z - z.max(axis=1, keepdims=True))
            return (e / e.sum(axis=1, keepdims=True))[:, t]

        rows, dots = [], []

        def grad(alphas):
            _, _, g = self.gradients(base[None] + np.asarray(alphas)[:, None, None, None] * d[None], t, output)
            for gi in g:
                rows.append(gi)
                dots.append(float((gi * d).sum()))

        n0 = max(1, (steps + 3) // 4)
        if (steps - n0) % 2:
            n0 += 1
        lo = [k / n0 for k in range(n0)]
        hi = [(k + 1) / n0 for k in range(n0)]
        hi[-1] = 1.0
        edge = score(lo + [1.0])
        s_lo, s_hi, row = list(edge[:n0]), list(edge[1:]), list(range(n0))
        grad([(a + b) / 2 for a, b in zip(lo, hi)])
        used, per_round = n0, max(1, (steps + 15) // 16)
        while used + 2 <= steps:
            splits = min(per_round, (steps - used) // 2)
            miss = [abs((hi[k] - lo[k]) * dots[row[k]] - (s_hi[k] - s_lo[k])) for k in range(len(lo))]
            chosen = sorted(range(len(lo)), key=lambda k: (-miss[k], k))[:splits]
            edges, mids = [], []
            for k in chosen:
                w3 = (hi[k] - lo[k]) / 3
                edges += [lo[k] + w3, lo[k] + 2 * w3]
                mids += [lo[k] + w3 / 2, hi[k] - w3 / 2]
            new = score(edges)
            first = len(dots)
            grad(mids)
            for j, k in enumerate(chosen):
                a, c, e1, e2 = lo[k], hi[k], edges[2 * j], edges[2 * j + 1]
                lo.append(a); hi.append(e1); s_lo.append(s_lo[k]); s_hi.append(new[2 * j]); row.append(first + 2 * j)
                lo.append(e2); hi.append(c); s_lo.append(new[2 * j + 1]); s_hi.append(s_hi[k]); row.append(first + 2 * j + 1)
                lo[k], hi[k], s_lo[k], s_hi[k] = e1, e2, new[2 * j], new[2 * j + 1]
            used += 2 * splits
        total = sum((hi[k] - lo[k]) * rows[row[k]] for k in range(len(lo)))
        return total * d

    def explain(self, pixels, method="integrated_gradients", target=None, output="probability", steps=32,
                baseline="black", window=4, stride=2):
        shape = self.arch["inputShape"]
        x = np.frombuffer(pixels, dtype=np.uint8).astype(np.float64).reshape(shape) * self.scale + self.offset
        p, z, g = self.gradients(x[None], 0, output)
        t = int(p[0].argmax()) if target is None else target
        score = lambda p, z, i: (z if output == "logit" else p)[i, t]
        if method in ("saliency", "gradient_x_input"):
            p, z, g = self.gradients(x[None], t, output)
            m = np.abs(g[0]) if method == "saliency" else x * g[0]
            return t, p[0], m
        if method == "integrated_gradients":
            base = np.full(x.shape, self.offset) if baseline == "black" else self.blur(x, max(1.0, max(shape[0], shape[1]) / 7))
            return t, self.gradients(x[None], t, output)[0][0], self.integrated(x, base, t, output, steps)
        if method == "occlusion":
            h, w, c = shape
            origins = [(y, xx) for y in range(0, h - window + 1, stride) for xx in range(0, w - window + 1, stride)]
            batch = np.repeat(x[None], len(origins) + 1, axis=0)
            for i, (y, xx) in enumerate(origins):
                batch[i, y:y + window, xx:xx + window, :] = self.offset
            z = self.forward(batch)
            e = np.exp(z - z.max(axis=1, keepdims=True))
            p = e / e.sum(axis=1, keepdims=True)
            s = z if output == "logit" else p
            total, covered = np.zeros((h, w)), np.zeros((h, w))
            for i, (y, xx) in enumerate(origins):
                total[y:y + window, xx:xx + window] += s[-1, t] - s[i, t]
                covered[y:y + window, xx:xx + window] += 1
            m = np.where(covered > 0, total / np.maximum(covered, 1), 0)[:, :, None].repeat(c, axis=2)
            return t, p[-1], m
        raise SystemExit(f"unknown method {method}")


CASES = [
    ("ig_black", {"method": "integrated_gradients"}),
    ("ig_blur", {"method": "integrated_gradients", "baseline": "blur"}),
    ("ig_logit_16", {"method": "integrated_gradients", "output": "logit", "steps": 16}),
    ("saliency", {"method": "saliency"}),
    ("saliency_target3", {"method": "saliency", "target": 3}),
    ("gradient_x_input", {"method": "gradient_x_input"}),
    ("occlusion", {"method": "occlusion", "window": 5, "stride": 3}),
]


def compare(host, model_path, images_path, n):
    net = Network(model_path)
    data = open(images_path, "rb").read()
    worst = {}
    for i in range(n):
        pixels = data[i * 784:(i + 1) * 784]
        for name, params in CASES:
            query = "&".join(f"{k}={v}" for k, v in params.items())
            req = urllib.request.Request(f"http://{host}/explain?{query}", data=pixels,
                                         headers={"Content-Type": "application/octet-stream"})
            with urllib.request.urlopen(req) as r:
                body = json.loads(r.read())
            e = body["explanations"][0]
            served = np.array(e["attributions"], dtype=np.float64).reshape(28, 28)
            t, p, m = net.explain(pixels, **params)
            assert e["class"] == t, f"{name} image {i}: class {e['class']} vs numpy {t}"
            diff = float(np.abs(served - m.reshape(28, 28)).max())
            diff = max(diff, abs(e["probability"] - float(p[t])))
            worst[name] = max(worst.get(name, 0.0), diff)
    print(json.dumps(worst))
    return 0 if all(v <= 1e-4 for v in worst.values()) else 1


def bench(model_path, images_path, n):
    net = Network(model_path)
    data = open(images_path, "rb").read()
    out = {}
    for name, params in [("integrated_gradients_32", {"method": "integrated_gradients", "steps": 32}), ("saliency", {"method": "saliency"})]:
        net.explain(data[:784], **params)
        start = time.perf_counter()
        for i in range(n):
            net.explain(data[i * 784:(i + 1) * 784], **params)
        out[name + "_ms_per_image"] = (time.perf_counter() - start) / n * 1000
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    a = sys.argv[1:]
    if a and a[0] == "compare" and len(a) == 5:
        sys.exit(compare(a[1], a[2], a[3], int(a[4])))
    if a and a[0] == "bench" and len(a) == 4:
        sys.exit(bench(a[1], a[2], int(a[3])))
    print(__doc__)
    sys.exit(2)
