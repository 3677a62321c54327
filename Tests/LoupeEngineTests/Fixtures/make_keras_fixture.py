#!/usr/bin/env python3
"""Converts the Keras anchor into a compact fixture for KerasParityTests (run once; outputs are committed).

Inputs (from ../shared/anchors/ml, produced by train_keras.py / infer_keras.py):
  weights_keras.npz      conv_w (3,3,1,32) HWIO, conv_b, d1_w (5408,128) rows in (h,w,c) order, d1_b, d2_w (128,10), d2_b
  keras_ref_outputs.npz  x (1000,28,28,1) = test images / 255, probs (1000,10) = Keras softmax
Outputs (raw little-endian, no headers):
  keras_weights.f32   693,962 float32 in the engine's slot order: conv1.weight, conv1.bias, dense1.weight,
                      dense1.bias, dense2.weight, dense2.bias (Keras layouts are the engine's, so no transposes)
  keras_images.u8     N×784 uint8 pixels (x·255, exact)
  keras_probs.f32     N×10 Keras softmax probabilities
  keras_logits.f32    N×10 logits from a float64 numpy forward pass; its softmax matches Keras's to 1e-6,
                      which is checked here, so these are Keras's logits to float32 precision.
Usage: python3 make_keras_fixture.py [ANCHOR_DIR] [N]
"""
import os, sys
import numpy as np

src = sys.argv[1] if len(sys.argv) > 1 else "/work/shared/anchors/ml"
n = int(sys.argv[2]) if len(sys.argv) > 2 else 32
out = os.path.dirname(os.path.abspath(__file__))

w = np.load(os.path.join(src, "weights_keras.npz"))
ref = np.load(os.path.join(src, "keras_ref_outputs.npz"))
order = ["conv_w", "conv_b", "d1_w", "d1_b", "d2_w", "d2_b"]
flat = np.concatenate([w[k].astype("<f4").ravel() for k in order])
assert flat.size == 693_962, flat.size

x = ref["x"][:n].astype(np.float64)
pixels = np.rint(x * 255).astype(np.uint8)
assert np.array_equal(pixels.astype(np.float32) / np.float32(255), ref["x"][:n]), "images are not k/255"

# float64 forward pass in the engine's layout (NHWC, valid conv, 2x2 max pool, (h,w,c) flatten)
W = {k: w[k].astype(np.float64) for k in order}
img = pixels.astype(np.float64)[..., 0] / 255.0
conv = np.zeros((n, 26, 26, 32))
for kh in range(3):
    for kw in range(3):
        conv += img[:, kh:kh + 26, kw:kw + 26, None] * W["conv_w"][kh, kw, 0][None, None, None, :]
conv = np.maximum(conv + W["conv_b"], 0)
pooled = conv.reshape(n, 13, 2, 13, 2, 32).max(axis=(2, 4)).reshape(n, 5408)
hidden = np.maximum(pooled @ W["d1_w"] + W["d1_b"], 0)
logits = hidden @ W["d2_w"] + W["d2_b"]
e = np.exp(logits - logits.max(1, keepdims=True))
probs64 = e / e.sum(1, keepdims=True)
diff = np.abs(probs64 - ref["probs"][:n]).max()
assert diff < 1e-5, diff

flat.tofile(os.path.join(out, "keras_weights.f32"))
pixels.reshape(n, 784).tofile(os.path.join(out, "keras_images.u8"))
ref["probs"][:n].astype("<f4").tofile(os.path.join(out, "keras_probs.f32"))
logits.astype("<f4").tofile(os.path.join(out, "keras_logits.f32"))
print(f"wrote {n} images; float64 forward vs Keras softmax max |diff| = {diff:.2e}")
