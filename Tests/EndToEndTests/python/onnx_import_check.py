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
  onnx_import_check.py goldens DIR NAME=MODEL.loupe …
                                        the golden samples `loupe import` wrote into MODEL.loupe
                                        (the imported network's own outputs) against ONNX Runtime
                                        on DIR/NAME.onnx for the same pixels — logits stay logits

Models (random seeded weights, 10 classes):
  pytorch   28x28x1 NCHW input, Conv (pads 1, 3x3) + Relu, MaxPool 2, Conv (no pads) + Relu, MaxPool 2,
            Flatten, Gemm transB=1 + Relu, Dropout, Gemm transB=1, Softmax  (torch.onnx.export)
  tf2onnx   28x28x1 NHWC input, Transpose [0,3,1,2], Conv + Relu, MaxPool, Transpose [0,2,3,1],
            Reshape [-1, n], MatMul + Add + Relu, MatMul + Add, Softmax
  batchnorm 28x28x1 NCHW, Conv + BatchNormalization + Relu, MaxPool, Flatten, Gemm (alpha, beta), Softmax
  strided   28x28x1 NCHW, PyTorch-style strided/padded CNN: Conv stride 2 pads 1 + LeakyRelu, Conv
            pads [1,0,1,0] + Relu, MaxPool 3x3 stride 2 pads 1, AveragePool 2 stride 1, Flatten,
            Gemm transB=1 + Sigmoid, Gemm transB=1, Softmax
  cifar_bn  32x32x3 NCHW BatchNorm CNN: Conv 3x3 pads 1 + BatchNormalization + Relu, MaxPool 2,
            Conv stride 2 auto_pad SAME_UPPER + BatchNormalization + Clip(0, 6), Conv 1x1 + Tanh,
            GlobalAveragePool, Flatten, Gemm transB=1, Softmax
  logits    pytorch without the final Softmax (the graph ends in logits)
  nonsquare 24x40x3 NCHW, non-square everything: Conv 3x5 strides [1,2] pads [1,2,1,2] + Relu,
            depthwise Conv (group 12) 3x3 strides [2,1] asymmetric pads [0,1,1,0] + BatchNormalization
            + Clip(0, 6), MaxPool 2x3 strides [2,1], AveragePool 3x1 strides [1,2] pads [1,0,0,0],
            Conv 1x1 + Tanh, Flatten, Gemm transB=1 (logits)
  tf_depthwise 20x20x3 NHWC (tf2onnx): Transpose, depthwise Conv (group 3) 5x3 strides [2,1]
            SAME_UPPER + Relu, Conv 1x1 + Relu, MaxPool 3x2 strides [3,2], Transpose, Reshape,
            MatMul + Add, Softmax
  mlp       28x28x1 NCHW PyTorch MLP: Flatten first, Gemm transB=1 + Relu, Gemm transB=1, Softmax
            (the network starts with Flatten: its input goes straight to a dense layer)
  grouped   pytorch with its second Conv grouped: group 2, weights [16, 4, 3, 3] (8 → 16 channels)
  grouped_bn 16x16x3 NCHW grouped CNN ending in logits: Conv 3x3 pads 1 + Relu, grouped Conv (group 4,
            12 → 24, weights [24, 3, 3, 3]) 3x3 stride 2 pads [1, 0, 1, 1] + BatchNormalization + Relu,
            grouped Conv with a depth multiplier (group 24, 24 → 48, weights [48, 1, 3, 1]) pads [1, 0, 1, 0]
            + Clip(0, 6), GlobalAveragePool, Flatten, Gemm transB=1
Bad ones (import must refuse with a message): selu (unsupported operator),
dilated (Conv dilations [2, 2]), external (weights in an external data file).

  onnx_import_check.py malformed DIR    writes files that break the ONNX spec (not checked by
                                        onnx.checker, as a broken exporter or a damaged copy would):
  missing_init   a Gemm weight that is neither an initializer nor a graph input
  wrong_shape    a Gemm weight of 100 inputs where the flattened tensor has 576
  raw_short      raw_data 4 bytes short of the tensor's dims
  count_mismatch float_data with 7 values for dims [8]
  channels       a first Conv with weights for 3 input channels on a 1-channel image
  group_weights  the second Conv given group 2 while its weights stay [16, 8, 3, 3] (group 1's)
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


def bn(prefix, n):
    """BatchNormalization initializers <prefix>g, b, m, v for n channels (variance ≥ 0.5)."""
    return [numpy_helper.from_array((1 + w(n)).astype(np.float32), prefix + "g"), numpy_helper.from_array(w(n), prefix + "b"),
            numpy_helper.from_array(w(n), prefix + "m"), numpy_helper.from_array((0.5 + np.abs(w(n))).astype(np.float32), prefix + "v")]


def pytorch(path, softmax=True, extra=None, group=1, dilation=1):
    side = (14 - 2 * dilation) // 2   # after conv2 (3×3, dilation d) and the second 2×2 max pool
    inits = [numpy_helper.from_array(w(8, 1, 3, 3), "c1w"), numpy_helper.from_array(w(8), "c1b"),
             numpy_helper.from_array(w(16, 8, 3, 3), "c2w"), numpy_helper.from_array(w(16), "c2b"),
             numpy_helper.from_array(w(32, 16 * side * side, scale=0.05), "f1w"), numpy_helper.from_array(w(32), "f1b"),
             numpy_helper.from_array(w(10, 32), "f2w"), numpy_helper.from_array(w(10), "f2b")]
    if group != 1:
        inits[2] = numpy_helper.from_array(w(16, 8 // group, 3, 3), "c2w")
    nodes = [helper.make_node("Conv", ["x", "c1w", "c1b"], ["c1"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], name="conv1"),
             helper.make_node("Relu", ["c1"], ["r1"]),
             helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Conv", ["p1", "c2w", "c2b"], ["c2"], kernel_shape=[3, 3], group=group, name="conv2",
                              **({"dilations": [dilation, dilation]} if dilation != 1 else {})),
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


def strided(path):
    # 28 → conv s2 p1 → 14 → conv pads [1,0,1,0] → 14×12 → maxpool 3 s2 p1 → 7×6 → avgpool 2 s1 → 6×5
    inits = [numpy_helper.from_array(w(8, 1, 3, 3), "c1w"), numpy_helper.from_array(w(8), "c1b"),
             numpy_helper.from_array(w(16, 8, 3, 3), "c2w"), numpy_helper.from_array(w(16), "c2b"),
             numpy_helper.from_array(w(24, 16 * 6 * 5, scale=0.05), "f1w"), numpy_helper.from_array(w(24), "f1b"),
             numpy_helper.from_array(w(10, 24), "f2w"), numpy_helper.from_array(w(10), "f2b")]
    nodes = [helper.make_node("Conv", ["x", "c1w", "c1b"], ["c1"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], name="conv1"),
             helper.make_node("LeakyRelu", ["c1"], ["a1"], alpha=0.1),
             helper.make_node("Conv", ["a1", "c2w", "c2b"], ["c2"], kernel_shape=[3, 3], pads=[1, 0, 1, 0], name="conv2"),
             helper.make_node("Relu", ["c2"], ["a2"]),
             helper.make_node("MaxPool", ["a2"], ["p1"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
             helper.make_node("AveragePool", ["p1"], ["p2"], kernel_shape=[2, 2], strides=[1, 1]),
             helper.make_node("Flatten", ["p2"], ["f"], axis=1),
             helper.make_node("Gemm", ["f", "f1w", "f1b"], ["g1"], transB=1),
             helper.make_node("Sigmoid", ["g1"], ["s1"]),
             helper.make_node("Gemm", ["s1", "f2w", "f2b"], ["logits"], transB=1),
             helper.make_node("Softmax", ["logits"], ["probs"], axis=1)]
    graph = helper.make_graph(nodes, "pytorch_strided",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 1, 28, 28])],
                              [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["batch", 10])], inits)
    save(helper.make_model(graph, producer_name="pytorch"), path)


def cifar_bn(path, softmax=True):
    # 32×32×3 → conv p1 → 32 → maxpool 2 → 16 → conv s2 SAME_UPPER → 8 → conv 1×1 → 8 → global avg → 32
    inits = ([numpy_helper.from_array(w(16, 3, 3, 3), "c1w"), numpy_helper.from_array(w(16), "c1b")] + bn("bn1", 16)
             + [numpy_helper.from_array(w(32, 16, 3, 3, scale=0.1), "c2w")] + bn("bn2", 32)
             + [numpy_helper.from_array(w(32, 32, 1, 1), "c3w"), numpy_helper.from_array(w(32), "c3b"),
                numpy_helper.from_array(np.array(0, dtype=np.float32), "lo"), numpy_helper.from_array(np.array(6, dtype=np.float32), "hi"),
                numpy_helper.from_array(w(10, 32, scale=0.5), "fw"), numpy_helper.from_array(w(10), "fb")])
    nodes = [helper.make_node("Conv", ["x", "c1w", "c1b"], ["c1"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
             helper.make_node("BatchNormalization", ["c1", "bn1g", "bn1b", "bn1m", "bn1v"], ["n1"]),
             helper.make_node("Relu", ["n1"], ["r1"]),
             helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Conv", ["p1", "c2w"], ["c2"], kernel_shape=[3, 3], strides=[2, 2], auto_pad="SAME_UPPER"),
             helper.make_node("BatchNormalization", ["c2", "bn2g", "bn2b", "bn2m", "bn2v"], ["n2"], epsilon=1e-3),
             helper.make_node("Clip", ["n2", "lo", "hi"], ["r2"]),
             helper.make_node("Conv", ["r2", "c3w", "c3b"], ["c3"], kernel_shape=[1, 1]),
             helper.make_node("Tanh", ["c3"], ["t3"]),
             helper.make_node("GlobalAveragePool", ["t3"], ["gap"]),
             helper.make_node("Flatten", ["gap"], ["f"], axis=1),
             helper.make_node("Gemm", ["f", "fw", "fb"], ["logits"], transB=1)]
    if softmax:
        nodes.append(helper.make_node("Softmax", ["logits"], ["probs"], axis=1))
    graph = helper.make_graph(nodes, "cifar_bn",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 32, 32])],
                              [helper.make_tensor_value_info("probs" if softmax else "logits", TensorProto.FLOAT, ["N", 10])], inits)
    save(helper.make_model(graph, producer_name="pytorch"), path)


def nonsquare(path):
    # 3×24×40 → conv 3×5 s(1,2) p[1,2,1,2] → 12×24×20 → depthwise 3×3 s(2,1) p[0,1,1,0] → 12×12×19
    # → maxpool 2×3 s(2,1) → 12×6×17 → avgpool 3×1 s(1,2) p[1,0,0,0] → 12×5×9 → conv 1×1 → 16×5×9 = 720
    inits = ([numpy_helper.from_array(w(12, 3, 3, 5), "c1w"), numpy_helper.from_array(w(12), "c1b"),
              numpy_helper.from_array(w(12, 1, 3, 3, scale=0.5), "dww"), numpy_helper.from_array(w(12), "dwb")] + bn("bn", 12)
             + [numpy_helper.from_array(np.array(0, dtype=np.float32), "lo"), numpy_helper.from_array(np.array(6, dtype=np.float32), "hi"),
                numpy_helper.from_array(w(16, 12, 1, 1), "c3w"), numpy_helper.from_array(w(16), "c3b"),
                numpy_helper.from_array(w(10, 720, scale=0.05), "fw"), numpy_helper.from_array(w(10), "fb")])
    nodes = [helper.make_node("Conv", ["x", "c1w", "c1b"], ["c1"], kernel_shape=[3, 5], strides=[1, 2], pads=[1, 2, 1, 2], name="wide"),
             helper.make_node("Relu", ["c1"], ["r1"]),
             helper.make_node("Conv", ["r1", "dww", "dwb"], ["dw"], kernel_shape=[3, 3], strides=[2, 1], pads=[0, 1, 1, 0], group=12,
                              name="depthwise"),
             helper.make_node("BatchNormalization", ["dw", "bng", "bnb", "bnm", "bnv"], ["n"]),
             helper.make_node("Clip", ["n", "lo", "hi"], ["r2"]),
             helper.make_node("MaxPool", ["r2"], ["p1"], kernel_shape=[2, 3], strides=[2, 1]),
             helper.make_node("AveragePool", ["p1"], ["p2"], kernel_shape=[3, 1], strides=[1, 2], pads=[1, 0, 0, 0]),
             helper.make_node("Conv", ["p2", "c3w", "c3b"], ["c3"], kernel_shape=[1, 1]),
             helper.make_node("Tanh", ["c3"], ["t3"]),
             helper.make_node("Flatten", ["t3"], ["f"], axis=1),
             helper.make_node("Gemm", ["f", "fw", "fb"], ["logits"], transB=1)]
    graph = helper.make_graph(nodes, "nonsquare",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 24, 40])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 10])], inits)
    save(helper.make_model(graph, producer_name="pytorch"), path)


def tf_depthwise(path):
    # 20×20×3 NHWC → depthwise 5×3 s(2,1) SAME_UPPER → 3×10×20 → conv 1×1 → 8×10×20 → maxpool 3×2 s(3,2) → 8×3×10 = 240
    inits = [numpy_helper.from_array(w(3, 1, 5, 3, scale=0.5), "dww"), numpy_helper.from_array(w(3), "dwb"),
             numpy_helper.from_array(w(8, 3, 1, 1), "pw"), numpy_helper.from_array(w(8), "pb"),
             numpy_helper.from_array(np.array([-1, 240], dtype=np.int64), "shape"),
             numpy_helper.from_array(w(240, 10, scale=0.1), "m"), numpy_helper.from_array(w(10), "a")]
    nodes = [helper.make_node("Transpose", ["input_1"], ["t1"], perm=[0, 3, 1, 2]),
             helper.make_node("Conv", ["t1", "dww", "dwb"], ["dw"], kernel_shape=[5, 3], strides=[2, 1], auto_pad="SAME_UPPER", group=3),
             helper.make_node("Relu", ["dw"], ["r1"]),
             helper.make_node("Conv", ["r1", "pw", "pb"], ["c"], kernel_shape=[1, 1]),
             helper.make_node("Relu", ["c"], ["r2"]),
             helper.make_node("MaxPool", ["r2"], ["p"], kernel_shape=[3, 2], strides=[3, 2]),
             helper.make_node("Transpose", ["p"], ["t2"], perm=[0, 2, 3, 1]),
             helper.make_node("Reshape", ["t2", "shape"], ["flat"]),
             helper.make_node("MatMul", ["flat", "m"], ["mm"]),
             helper.make_node("Add", ["mm", "a"], ["ad"]),
             helper.make_node("Softmax", ["ad"], ["dense"])]
    graph = helper.make_graph(nodes, "tf2onnx_depthwise",
                              [helper.make_tensor_value_info("input_1", TensorProto.FLOAT, ["unk__0", 20, 20, 3])],
                              [helper.make_tensor_value_info("dense", TensorProto.FLOAT, ["unk__1", 10])], inits)
    save(helper.make_model(graph, producer_name="tf2onnx"), path)


def grouped_bn(path):
    # 3×16×16 → conv 3×3 p1 → 12×16×16 → grouped (4) 3×3 s2 p[1,0,1,1] → 24×8×8 → grouped (24, ×2) 3×1 p[1,0,1,0] → 48×8×8
    # → global average → 48 → Gemm → 10 logits
    inits = ([numpy_helper.from_array(w(12, 3, 3, 3), "c1w"), numpy_helper.from_array(w(12), "c1b"),
              numpy_helper.from_array(w(24, 3, 3, 3, scale=0.3), "g1w"), numpy_helper.from_array(w(24), "g1b")] + bn("bn", 24)
             + [numpy_helper.from_array(w(48, 1, 3, 1, scale=0.5), "g2w"), numpy_helper.from_array(w(48), "g2b"),
                numpy_helper.from_array(np.array(0, dtype=np.float32), "lo"), numpy_helper.from_array(np.array(6, dtype=np.float32), "hi"),
                numpy_helper.from_array(w(10, 48, scale=0.3), "fw"), numpy_helper.from_array(w(10), "fb")])
    nodes = [helper.make_node("Conv", ["x", "c1w", "c1b"], ["c1"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], name="stem"),
             helper.make_node("Relu", ["c1"], ["r1"]),
             helper.make_node("Conv", ["r1", "g1w", "g1b"], ["g1"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 0, 1, 1], group=4,
                              name="grouped"),
             helper.make_node("BatchNormalization", ["g1", "bng", "bnb", "bnm", "bnv"], ["n"]),
             helper.make_node("Relu", ["n"], ["r2"]),
             helper.make_node("Conv", ["r2", "g2w", "g2b"], ["g2"], kernel_shape=[3, 1], pads=[1, 0, 1, 0], group=24, name="multiplier"),
             helper.make_node("Clip", ["g2", "lo", "hi"], ["r3"]),
             helper.make_node("GlobalAveragePool", ["r3"], ["gp"]),
             helper.make_node("Flatten", ["gp"], ["f"], axis=1),
             helper.make_node("Gemm", ["f", "fw", "fb"], ["logits"], transB=1)]
    graph = helper.make_graph(nodes, "grouped_bn",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 16, 16])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 10])], inits)
    save(helper.make_model(graph, producer_name="pytorch"), path)


def external(path):
    batchnorm(path)
    m = onnx.load(path)
    onnx.save_model(m, path, save_as_external_data=True, all_tensors_to_one_file=True, location="weights.bin",
                    size_threshold=0)


# Served and compared through KServe v2 under the graphs' own tensor names and input layouts: 28×28×1 and
# 32×32×3 graphs, ending in Softmax or in logits (v2 returns logits as they are).
GOOD = ["pytorch", "tf2onnx", "batchnorm", "strided", "cifar_bn", "logits", "cifar_logits", "nonsquare", "tf_depthwise", "grouped",
        "grouped_bn", "mlp"]


def mlp(path):
    inits = [numpy_helper.from_array(w(64, 784, scale=0.05), "f1w"), numpy_helper.from_array(w(64), "f1b"),
             numpy_helper.from_array(w(10, 64), "f2w"), numpy_helper.from_array(w(10), "f2b")]
    nodes = [helper.make_node("Flatten", ["x"], ["f"], axis=1),
             helper.make_node("Gemm", ["f", "f1w", "f1b"], ["g1"], transB=1),
             helper.make_node("Relu", ["g1"], ["r1"]),
             helper.make_node("Gemm", ["r1", "f2w", "f2b"], ["logits"], transB=1),
             helper.make_node("Softmax", ["logits"], ["probs"], axis=1)]
    graph = helper.make_graph(nodes, "pytorch_mlp",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 1, 28, 28])],
                              [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["batch", 10])], inits)
    save(helper.make_model(graph, producer_name="pytorch"), path)


def build(d):
    os.makedirs(d, exist_ok=True)
    pytorch(os.path.join(d, "pytorch.onnx"))
    tf2onnx(os.path.join(d, "tf2onnx.onnx"))
    batchnorm(os.path.join(d, "batchnorm.onnx"))
    strided(os.path.join(d, "strided.onnx"))
    cifar_bn(os.path.join(d, "cifar_bn.onnx"))
    cifar_bn(os.path.join(d, "cifar_logits.onnx"), softmax=False)
    pytorch(os.path.join(d, "logits.onnx"), softmax=False)
    pytorch(os.path.join(d, "selu.onnx"), extra="Selu")
    pytorch(os.path.join(d, "grouped.onnx"), group=2)
    pytorch(os.path.join(d, "dilated.onnx"), dilation=2)
    nonsquare(os.path.join(d, "nonsquare.onnx"))
    tf_depthwise(os.path.join(d, "tf_depthwise.onnx"))
    os.makedirs(os.path.join(d, "ext"), exist_ok=True)
    external(os.path.join(d, "ext", "external.onnx"))
    grouped_bn(os.path.join(d, "grouped_bn.onnx"))
    mlp(os.path.join(d, "mlp.onnx"))
    print(json.dumps({"built": GOOD + ["selu", "dilated", "ext/external"]}))


def layout(sess):
    """(nhwc, H, W, C) of a session's image input: NHWC when the last dimension is 1 or 3."""
    dims = sess.get_inputs()[0].shape[1:]
    if dims[-1] in (1, 3):
        return True, dims[0], dims[1], dims[2]
    return False, dims[1], dims[2], dims[0]


def feed(sess, x):
    """x (N, H, W, C) → the session's input layout."""
    nhwc = layout(sess)[0]
    return {sess.get_inputs()[0].name: x if nhwc else np.ascontiguousarray(x.transpose(0, 3, 1, 2))}


def malformed(d):
    """The pytorch-pattern model, broken in one place each, saved without onnx.checker."""
    os.makedirs(d, exist_ok=True)
    good = os.path.join(d, "good.onnx")
    pytorch(good)

    def write(name, edit):
        m = onnx.load(good)
        edit(m.graph)
        onnx.save(m, os.path.join(d, name + ".onnx"))

    def init(g, name):
        return next(t for t in g.initializer if t.name == name)

    def drop_f2w(g):
        g.initializer.remove(init(g, "f2w"))

    def narrow_f1w(g):
        init(g, "f1w").CopyFrom(numpy_helper.from_array(w(32, 100), "f1w"))

    def short_raw(g):
        t = init(g, "c1b")
        t.raw_data = t.raw_data[:-4]

    def count_mismatch(g):
        t = init(g, "c1b")
        t.ClearField("raw_data")
        t.float_data.extend([0.5] * 7)

    def rgb_weights(g):
        init(g, "c1w").CopyFrom(numpy_helper.from_array(w(8, 3, 3, 3), "c1w"))

    def group_without_weights(g):
        next(n for n in g.node if n.name == "conv2").attribute.append(helper.make_attribute("group", 2))

    names = {"missing_init": drop_f2w, "wrong_shape": narrow_f1w, "raw_short": short_raw,
             "count_mismatch": count_mismatch, "channels": rgb_weights, "group_weights": group_without_weights}
    for name, edit in names.items():
        write(name, edit)
    print(json.dumps({"built": list(names)}))


def compare(url, d):
    import onnxruntime as ort
    import tritonclient.http as httpclient
    client = httpclient.InferenceServerClient(url=url)
    assert client.is_server_ready(), "server not ready"
    result = {}
    for i, name in enumerate(GOOD):
        sess = ort.InferenceSession(os.path.join(d, name + ".onnx"), providers=["CPUExecutionProvider"])
        _, h, wd, c = layout(sess)
        pixels = np.random.default_rng(11).integers(0, 256, size=(16, h, wd, c), dtype=np.uint8)
        x = pixels.astype(np.float32) / 255.0
        graph_in, graph_out = sess.get_inputs()[0], sess.get_outputs()[0]
        expected = sess.run(None, feed(sess, x))[0]
        # Written as for Triton: the metadata names the graph's tensors and shape, and the request uses them
        # with the data in the graph's own layout (NCHW for the PyTorch-style graphs).
        meta = client.get_model_metadata(name)
        names_match = (meta["inputs"][0]["name"] == graph_in.name and meta["outputs"][0]["name"] == graph_out.name
                       and meta["inputs"][0]["shape"][1:] == list(graph_in.shape[1:]))
        data = feed(sess, x)[graph_in.name]
        inp = httpclient.InferInput(graph_in.name, list(data.shape), "FP32")
        inp.set_data_from_numpy(data, binary_data=i % 2 == 0)
        out = httpclient.InferRequestedOutput(graph_out.name, binary_data=i % 2 == 1)
        got = client.infer(name, [inp], outputs=[out]).as_numpy(graph_out.name)
        diff = float(np.abs(got - expected).max())
        result[name] = {"max_abs_diff": diff, "same_top1": bool((got.argmax(1) == expected.argmax(1)).all()),
                        "names_match": names_match, "metadata": meta["inputs"] + meta["outputs"]}
    print(json.dumps(result))


def png_rgb(pixels):
    """An 8-bit RGB PNG of an (H, W, 3) uint8 array (no filter)."""
    import struct
    import zlib
    h, w, _ = pixels.shape
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
    raw = b"".join(b"\x00" + pixels[r].tobytes() for r in range(h))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def rgb_pixels(h, wd, c):
    return np.random.default_rng(3).integers(0, 256, size=(h, wd, c), dtype=np.uint8)


def write_png(d, name, path):
    """Writes the image predict_png sends, for `loupe predict`."""
    import onnxruntime as ort
    sess = ort.InferenceSession(os.path.join(d, name + ".onnx"), providers=["CPUExecutionProvider"])
    _, h, wd, c = layout(sess)
    with open(path, "wb") as f:
        f.write(png_rgb(rgb_pixels(h, wd, c)))


def write_idx(d, name, out):
    """A 64-image test split of the graph's input shape (rank-4 IDX for colour) labelled with ONNX Runtime's
    top-1, the first 8 labels shifted by one: `loupe evaluate` must report 56/64 = 0.8750."""
    import struct
    import onnxruntime as ort
    sess = ort.InferenceSession(os.path.join(d, name + ".onnx"), providers=["CPUExecutionProvider"])
    _, h, wd, c = layout(sess)
    n = 64
    x = np.random.default_rng(7).integers(0, 256, size=(n, h, wd, c), dtype=np.uint8)
    y = sess.run(None, feed(sess, x.astype(np.float32) / 255.0))[0].argmax(1).astype(np.uint8)
    y[:8] = (y[:8] + 1) % 10
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "t10k-images-idx4-ubyte"), "wb") as f:
        f.write(struct.pack(">BBBBIIII", 0, 0, 8, 4, n, h, wd, c) + x.tobytes())
    with open(os.path.join(out, "t10k-labels-idx1-ubyte"), "wb") as f:
        f.write(struct.pack(">BBBBI", 0, 0, 8, 1, n) + y.tobytes())


def predict_png(url, d, name):
    """POST /predict?model=NAME with a 32×32 RGB PNG; the probabilities are ONNX
    Runtime's softmaxed logits and sum to 1."""
    import urllib.request
    import onnxruntime as ort
    sess = ort.InferenceSession(os.path.join(d, name + ".onnx"), providers=["CPUExecutionProvider"])
    _, h, wd, c = layout(sess)
    pixels = rgb_pixels(h, wd, c)
    logits = sess.run(None, feed(sess, pixels[None].astype(np.float32) / 255.0))[0][0].astype(np.float64)
    e = np.exp(logits - logits.max())
    expected = e / e.sum()
    req = urllib.request.Request("http://%s/predict?model=%s" % (url, name), data=png_rgb(pixels),
                                 headers={"Content-Type": "image/png"})
    body = json.loads(urllib.request.urlopen(req, timeout=30).read())
    got = np.array(body["predictions"][0]["probabilities"], dtype=np.float64)
    print(json.dumps({"sum": float(got.sum()), "max_abs_diff": float(np.abs(got - expected).max()),
                      "class": body["predictions"][0]["class"], "expected_class": int(expected.argmax())}))


def exported(url, pairs):
    import onnxruntime as ort
    import tritonclient.http as httpclient
    client = httpclient.InferenceServerClient(url=url)
    result = {}
    for pair in pairs:
        name, path = pair.split("=", 1)
        onnx.checker.check_model(onnx.load(path), full_check=True)
        sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        _, h, wd, c = layout(sess)
        x = np.random.default_rng(5).integers(0, 256, size=(16, h, wd, c)).astype(np.float32) / 255.0
        expected = sess.run(None, {"input": x})[0]
        # The served file's own tensor names (the imported graph's, or Loupe's "input"/"probabilities");
        # "input" with flat NHWC values is accepted by every served model.
        out_name = client.get_model_metadata(name)["outputs"][0]["name"]
        inp = httpclient.InferInput("input", [16, h * wd * c], "FP32")
        inp.set_data_from_numpy(x.reshape(16, h * wd * c), binary_data=False)
        out = httpclient.InferRequestedOutput(out_name, binary_data=False)
        got = client.infer(name, [inp], outputs=[out]).as_numpy(out_name)
        result[name] = {"max_abs_diff": float(np.abs(got - expected).max()), "same_top1": bool((got.argmax(1) == expected.argmax(1)).all())}
    print(json.dumps(result))


def goldens(d, pairs):
    import base64
    import importlib.util
    import onnxruntime as ort
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..")
    spec = importlib.util.spec_from_file_location("read_loupe", os.path.join(root, "scripts", "read_loupe.py"))
    reader = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(reader)
    result = {}
    for pair in pairs:
        name, path = pair.split("=", 1)
        with open(path, "rb") as f:
            header = reader.read(f.read())[0]
        sess = ort.InferenceSession(os.path.join(d, name + ".onnx"), providers=["CPUExecutionProvider"])
        _, h, wd, c = layout(sess)
        norm = header["normalization"]
        samples = header["goldenSamples"]
        pixels = np.stack([np.frombuffer(base64.b64decode(g["pixels"]), dtype=np.uint8) for g in samples])
        x = (pixels.astype(np.float32) * np.float32(norm["scale"]) + np.float32(norm["offset"])).reshape(len(samples), h, wd, c)
        expected = sess.run(None, feed(sess, x))[0]
        recorded = np.array([g["probabilities"] for g in samples], dtype=np.float32)
        result[name] = {"max_abs_diff": float(np.abs(recorded - expected).max()),
                        "same_top1": bool((recorded.argmax(1) == expected.argmax(1)).all()),
                        "sums_to_one": bool(np.allclose(recorded.sum(1), 1, atol=1e-4)), "samples": len(samples)}
    print(json.dumps(result))


if __name__ == "__main__":
    if sys.argv[1] == "build":
        build(sys.argv[2])
    elif sys.argv[1] == "malformed":
        malformed(sys.argv[2])
    elif sys.argv[1] == "compare":
        compare(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "write_png":
        write_png(sys.argv[2], sys.argv[3], sys.argv[4])
    elif sys.argv[1] == "write_idx":
        write_idx(sys.argv[2], sys.argv[3], sys.argv[4])
    elif sys.argv[1] == "predict_png":
        predict_png(sys.argv[2], sys.argv[3], sys.argv[4])
    elif sys.argv[1] == "goldens":
        goldens(sys.argv[2], sys.argv[3:])
    else:
        exported(sys.argv[2], sys.argv[3:])
