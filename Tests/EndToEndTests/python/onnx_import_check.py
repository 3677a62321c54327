#!/usr/bin/env python3
"""ONNX models in the patterns the mainstream exporters emit, for `loupe import` (issue 11).

  onnx_import_check.py build DIR        writes the models below into DIR
  onnx_import_check.py compare URL DIR  runs each good model in ONNX Runtime and through
                                        `loupe serve` (KServe v2 infer, tritonclient) on the same
                                        seeded inputs; prints JSON with the max abs difference
  onnx_import_check.py exported URL NAME=FILE.onnx …
                                        files `loupe export` wrote: onnx.checker (full_check) must
                                        accept them, and ONNX Runtime's outputs are compared with
                                        the served model NAME's

Models (random seeded weights, 28x28x1 inputs, 10 classes, ending in Softmax):
  pytorch   NCHW input, Conv (pads 1, 3x3) + Relu, MaxPool 2, Conv (no pads) + Relu, MaxPool 2,
            Flatten, Gemm transB=1 + Relu, Dropout, Gemm transB=1, Softmax  (torch.onnx.export)
  tf2onnx   NHWC input, Transpose [0,3,1,2], Conv + Relu, MaxPool, Transpose [0,2,3,1],
            Reshape [-1, n], MatMul + Add + Relu, MatMul + Add, Softmax
  batchnorm NCHW, Conv + BatchNormalization + Relu, MaxPool, Flatten, Gemm (alpha, beta), Softmax
Bad ones (import must refuse with a message): sigmoid (unsupported operator), strided (Conv
stride 2), external (weights in an external data file), logits (no final Softmax).
"""
import json
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

rng = np.random.default_rng(7)


def w(*shape, scale=0.2):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def save(model, path):
    model.opset_import[0].version = 17
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, path)


def pytorch(path, softmax=True, conv_stride=1, extra=None):
    inits = [numpy_helper.from_array(w(8, 1, 3, 3), "c1w"), numpy_helper.from_array(w(8), "c1b"),
             numpy_helper.from_array(w(16, 8, 3, 3), "c2w"), numpy_helper.from_array(w(16), "c2b"),
             numpy_helper.from_array(w(32, 16 * 6 * 6, scale=0.05), "f1w"), numpy_helper.from_array(w(32), "f1b"),
             numpy_helper.from_array(w(10, 32), "f2w"), numpy_helper.from_array(w(10), "f2b")]
    nodes = [helper.make_node("Conv", ["x", "c1w", "c1b"], ["c1"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[conv_stride, conv_stride], name="conv1"),
             helper.make_node("Relu", ["c1"], ["r1"]),
             helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Conv", ["p1", "c2w", "c2b"], ["c2"], kernel_shape=[3, 3], name="conv2"),
             helper.make_node("Relu", ["c2"], ["r2"]),
             helper.make_node("MaxPool", ["r2"], ["p2"], kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Flatten", ["p2"], ["f"], axis=1),
             helper.make_node("Gemm", ["f", "f1w", "f1b"], ["g1"], transB=1),
             helper.make_node("Relu", ["g1"], ["r3"]),
             helper.make_node("Dropout", ["r3"], ["d"]),
             helper.make_node("Gemm", ["d", "f2w", "f2b"], ["logits"], transB=1)]
    out = "logits"
    if extra:
        nodes.insert(2, helper.make_node(extra, ["r1"], ["s1"], name="odd"))
        nodes[3].input[0] = "s1"
    if softmax:
        nodes.append(helper.make_node("Softmax", ["logits"], ["probs"], axis=1))
        out = "probs"
    if conv_stride != 1:
        # stride 2 halves 28 → 14 → pool 7 → conv 5 → pool 2: shrink the dense layer to match
        inits[4] = numpy_helper.from_array(w(32, 16 * 2 * 2, scale=0.05), "f1w")
    graph = helper.make_graph(nodes, "pytorch_style",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 1, 28, 28])],
                              [helper.make_tensor_value_info(out, TensorProto.FLOAT, ["batch", 10])], inits)
    save(helper.make_model(graph, producer_name="pytorch"), path)


def tf2onnx(path):
    inits = [numpy_helper.from_array(w(6, 1, 5, 5), "cw"), numpy_helper.from_array(w(6), "cb"),
             numpy_helper.from_array(np.array([-1, 12 * 12 * 6], dtype=np.int64), "shape"),
             numpy_helper.from_array(w(12 * 12 * 6, 24, scale=0.05), "m1"), numpy_helper.from_array(w(24), "a1"),
             numpy_helper.from_array(w(24, 10), "m2"), numpy_helper.from_array(w(10), "a2")]
    nodes = [helper.make_node("Transpose", ["input_1"], ["t1"], perm=[0, 3, 1, 2]),
             helper.make_node("Conv", ["t1", "cw", "cb"], ["c"], kernel_shape=[5, 5], auto_pad="VALID"),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Transpose", ["p"], ["t2"], perm=[0, 2, 3, 1]),
             helper.make_node("Reshape", ["t2", "shape"], ["flat"]),
             helper.make_node("MatMul", ["flat", "m1"], ["mm1"]),
             helper.make_node("Add", ["mm1", "a1"], ["ad1"]),
             helper.make_node("Relu", ["ad1"], ["r2"]),
             helper.make_node("MatMul", ["r2", "m2"], ["mm2"]),
             helper.make_node("Add", ["mm2", "a2"], ["ad2"]),
             helper.make_node("Softmax", ["ad2"], ["dense_1"])]
    graph = helper.make_graph(nodes, "tf2onnx_style",
                              [helper.make_tensor_value_info("input_1", TensorProto.FLOAT, ["unk__0", 28, 28, 1])],
                              [helper.make_tensor_value_info("dense_1", TensorProto.FLOAT, ["unk__1", 10])], inits)
    save(helper.make_model(graph, producer_name="tf2onnx"), path)


def batchnorm(path):
    inits = [numpy_helper.from_array(w(12, 1, 3, 3), "cw"),
             numpy_helper.from_array((1 + w(12)).astype(np.float32), "gamma"), numpy_helper.from_array(w(12), "beta"),
             numpy_helper.from_array(w(12), "mean"), numpy_helper.from_array((0.5 + np.abs(w(12))).astype(np.float32), "var"),
             numpy_helper.from_array(w(13 * 13 * 12, 10, scale=0.05), "gw"), numpy_helper.from_array(w(10), "gb")]
    nodes = [helper.make_node("Conv", ["x", "cw"], ["c"], kernel_shape=[3, 3]),
             helper.make_node("BatchNormalization", ["c", "gamma", "beta", "mean", "var"], ["bn"], epsilon=1e-3),
             helper.make_node("Relu", ["bn"], ["r"]),
             helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Flatten", ["p"], ["f"]),
             helper.make_node("Gemm", ["f", "gw", "gb"], ["g"], alpha=0.5, beta=2.0),
             helper.make_node("Softmax", ["g"], ["y"], axis=-1)]
    graph = helper.make_graph(nodes, "bn_style",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 1, 28, 28])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 10])], inits)
    save(helper.make_model(graph, producer_name="bn"), path)


def external(path):
    batchnorm(path)
    m = onnx.load(path)
    onnx.save_model(m, path, save_as_external_data=True, all_tensors_to_one_file=True, location="weights.bin",
                    size_threshold=0)


GOOD = ["pytorch", "tf2onnx", "batchnorm"]


def build(d):
    os.makedirs(d, exist_ok=True)
    pytorch(os.path.join(d, "pytorch.onnx"))
    tf2onnx(os.path.join(d, "tf2onnx.onnx"))
    batchnorm(os.path.join(d, "batchnorm.onnx"))
    pytorch(os.path.join(d, "sigmoid.onnx"), extra="Sigmoid")
    pytorch(os.path.join(d, "strided.onnx"), conv_stride=2)
    pytorch(os.path.join(d, "logits.onnx"), softmax=False)
    os.makedirs(os.path.join(d, "ext"), exist_ok=True)
    external(os.path.join(d, "ext", "external.onnx"))
    print(json.dumps({"built": GOOD + ["sigmoid", "strided", "logits", "ext/external"]}))


def compare(url, d):
    import onnxruntime as ort
    import tritonclient.http as httpclient
    client = httpclient.InferenceServerClient(url=url)
    assert client.is_server_ready(), "server not ready"
    pixels = np.random.default_rng(11).integers(0, 256, size=(16, 28, 28), dtype=np.uint8)
    x = pixels.astype(np.float32) / 255.0
    result = {}
    for name in GOOD:
        sess = ort.InferenceSession(os.path.join(d, name + ".onnx"), providers=["CPUExecutionProvider"])
        feed_name = sess.get_inputs()[0].name
        layout_nhwc = sess.get_inputs()[0].shape[-1] == 1
        feed = x.reshape(16, 28, 28, 1) if layout_nhwc else x.reshape(16, 1, 28, 28)
        expected = sess.run(None, {feed_name: feed})[0]
        inp = httpclient.InferInput("input", [16, 28, 28, 1], "FP32")
        inp.set_data_from_numpy(x.reshape(16, 28, 28, 1), binary_data=False)
        out = httpclient.InferRequestedOutput("probabilities", binary_data=False)
        got = client.infer(name, [inp], outputs=[out]).as_numpy("probabilities")
        diff = float(np.abs(got - expected).max())
        result[name] = {"max_abs_diff": diff, "same_top1": bool((got.argmax(1) == expected.argmax(1)).all())}
    print(json.dumps(result))


def exported(url, pairs):
    import onnxruntime as ort
    import tritonclient.http as httpclient
    client = httpclient.InferenceServerClient(url=url)
    x = np.random.default_rng(5).integers(0, 256, size=(16, 28, 28, 1)).astype(np.float32) / 255.0
    result = {}
    for pair in pairs:
        name, path = pair.split("=", 1)
        onnx.checker.check_model(onnx.load(path), full_check=True)
        sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        expected = sess.run(None, {"input": x})[0]
        inp = httpclient.InferInput("input", [16, 28, 28, 1], "FP32")
        inp.set_data_from_numpy(x, binary_data=False)
        out = httpclient.InferRequestedOutput("probabilities", binary_data=False)
        got = client.infer(name, [inp], outputs=[out]).as_numpy("probabilities")
        result[name] = {"max_abs_diff": float(np.abs(got - expected).max()), "same_top1": bool((got.argmax(1) == expected.argmax(1)).all())}
    print(json.dumps(result))


if __name__ == "__main__":
    if sys.argv[1] == "build":
        build(sys.argv[2])
    elif sys.argv[1] == "compare":
        compare(sys.argv[2], sys.argv[3])
    else:
        exported(sys.argv[2], sys.argv[3:])
