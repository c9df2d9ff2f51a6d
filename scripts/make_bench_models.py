#!/usr/bin/env python3
"""Makes the ONNX models that web/tests/bench-ort.mjs runs in both engines (ours and ONNX Runtime
Web): one .onnx file a network, read as it is by both, so the weights and the graph are the same.

    python3 scripts/make_bench_models.py [OUT_DIR] [--only resnet20,resnet18,resnet50]
    # default OUT_DIR: target/bench-models (ignored by git: ResNet-50 is 100 MB)

Needs Python 3.10+ with `pip install numpy onnx` (no torch, no ONNX Runtime). For each network it
writes NAME.onnx, NAME.input.npy (one N(0,1) image, shape (1, 3, H, W), float32) and
NAME.logits.npy (a float32 NumPy forward pass of that image, shape (1, classes)).

The graphs follow the paper and torchvision, opset 13, batch dimension symbolic ("N"):
- resnet20: CIFAR ResNet-20 (3x32x32, 10 classes), option-A shortcuts written as the reference
  fixtures write them: Slice(axes [2,3], steps [2,2]) then Pad(constant 0) adding planes/4 zero
  channels on each side;
- resnet18: torchvision ResNet-18 (3x224x224, 1000 classes), projection shortcuts where the
  shape changes;
- resnet50: torchvision ResNet-50 v1.5 (stride on the 3x3 of the bottleneck), projections at the
  first block of each stage.
Every Conv has no bias and is followed by an explicit BatchNormalization (eps 1e-5): each engine
folds it its own way.

Weights are random (seeded, reproducible): convs He-normal, BN gamma ~U(.5, 1.5) (U(.1, .3) on
the last BN of each residual branch, so identity sums stay O(1) through 16 bottlenecks), beta
~N(0, .1), fc ~U(+-1/sqrt(in)), fc bias ~N(0, .1). The running statistics are calibrated: each
BN's running mean and variance are that channel's mean and variance over the input image's
pixels, as a trained network's would be over its data, so that every activation and the logits
are O(1) and an absolute logit difference of 1e-3 means something. The calibration pass is also
the NumPy reference written to NAME.logits.npy.
"""

import argparse
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EPS = 1e-5
NETS = {
    # name: (input hw, classes, seed)
    "resnet20": (32, 10, 20),
    "resnet18": (224, 1000, 18),
    "resnet50": (224, 1000, 50),
}


def conv2d(x, w, stride, pad):
    """float32 NCHW convolution by im2col (batch 1 is all this script needs)."""
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    oh = (h + 2 * pad - kh) // stride + 1
    ow = (wd + 2 * pad - kw) // stride + 1
    s = xp.strides
    cols = np.lib.stride_tricks.as_strided(
        xp, (n, c, kh, kw, oh, ow), (s[0], s[1], s[2], s[3], s[2] * stride, s[3] * stride))
    cols = cols.transpose(0, 4, 5, 1, 2, 3).reshape(n * oh * ow, c * kh * kw)
    out = cols @ w.reshape(o, -1).T
    return np.ascontiguousarray(out.reshape(n, oh, ow, o).transpose(0, 3, 1, 2))


def max_pool(x):
    n, c, h, wd = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)), constant_values=-np.inf)
    oh, ow = (h - 1) // 2 + 1, (wd - 1) // 2 + 1
    out = np.full((n, c, oh, ow), -np.inf, dtype=x.dtype)
    for dy in range(3):
        for dx in range(3):
            out = np.maximum(out, xp[:, :, dy:dy + 2 * oh:2, dx:dx + 2 * ow:2])
    return out


class Builder:
    """Builds the ONNX graph and, alongside, runs it in NumPy to calibrate the BN statistics."""

    def __init__(self, seed, x):
        self.rng = np.random.default_rng(seed)
        self.nodes, self.inits = [], {}
        self.x = x  # the NumPy value of the current tensor

    def init(self, name, a):
        self.inits[name] = a.astype(np.float32) if a.dtype.kind == "f" else a
        return name

    def conv_bn(self, src, val, name, bn, cin, cout, k, stride, pad, relu, last=False):
        fan_in = cin * k * k
        w = self.rng.normal(0, np.sqrt(2 / fan_in), (cout, cin, k, k)).astype(np.float32)
        y = conv2d(val, w, stride, pad)
        mean = y.mean(axis=(0, 2, 3)).astype(np.float32)
        var = y.var(axis=(0, 2, 3)).astype(np.float32)
        lo, hi = (0.1, 0.3) if last else (0.5, 1.5)
        gamma = self.rng.uniform(lo, hi, cout).astype(np.float32)
        beta = self.rng.normal(0, 0.1, cout).astype(np.float32)
        r = lambda a: a.reshape(1, -1, 1, 1)
        z = (y - r(mean)) / np.sqrt(r(var) + np.float32(EPS)) * r(gamma) + r(beta)
        z = z.astype(np.float32)
        self.init(f"{name}.weight", w)
        for s, a in (("weight", gamma), ("bias", beta), ("running_mean", mean), ("running_var", var)):
            self.init(f"{bn}.{s}", a)
        self.nodes.append(helper.make_node("Conv", [src, f"{name}.weight"], [f"{name}.out"],
                                           kernel_shape=[k, k], strides=[stride] * 2,
                                           pads=[pad] * 4, name=name))
        self.nodes.append(helper.make_node(
            "BatchNormalization",
            [f"{name}.out"] + [f"{bn}.{s}" for s in ("weight", "bias", "running_mean", "running_var")],
            [f"{bn}.out"], epsilon=EPS, name=bn))
        out = f"{bn}.out"
        if relu:
            self.nodes.append(helper.make_node("Relu", [out], [f"{bn}.relu"]))
            out, z = f"{bn}.relu", np.maximum(z, 0)
        return out, z

    def add_relu(self, name, a, av, b, bv):
        self.nodes.append(helper.make_node("Add", [a, b], [f"{name}.add"]))
        self.nodes.append(helper.make_node("Relu", [f"{name}.add"], [f"{name}.relu"]))
        return f"{name}.relu", np.maximum(av + bv, 0)

    def option_a(self, name, src, val, cin, cout):
        """Identity shortcut across a stride-2 stage change: subsample, zero-pad channels."""
        big = np.iinfo(np.int64).max
        ins = [src]
        for part, v in (("starts", [0, 0]), ("ends", [big, big]), ("axes", [2, 3]), ("steps", [2, 2])):
            ins.append(self.init(f"{name}.slice_{part}", np.array(v, dtype=np.int64)))
        self.nodes.append(helper.make_node("Slice", ins, [f"{name}.subsample"]))
        extra = (cout - cin) // 2
        pads = self.init(f"{name}.pads", np.array([0, extra, 0, 0, 0, extra, 0, 0], dtype=np.int64))
        self.nodes.append(helper.make_node("Pad", [f"{name}.subsample", pads], [f"{name}.shortcut"],
                                           mode="constant"))
        sub = val[:, :, ::2, ::2]
        return f"{name}.shortcut", np.pad(sub, ((0, 0), (extra, extra), (0, 0), (0, 0)))

    def head(self, src, val, cin, classes):
        bound = 1 / np.sqrt(cin)
        w = self.rng.uniform(-bound, bound, (classes, cin)).astype(np.float32)
        b = self.rng.normal(0, 0.1, classes).astype(np.float32)
        self.init("fc.weight", w)
        self.init("fc.bias", b)
        self.nodes.append(helper.make_node("GlobalAveragePool", [src], ["pool"]))
        self.nodes.append(helper.make_node("Flatten", ["pool"], ["flat"], axis=1))
        self.nodes.append(helper.make_node("Gemm", ["flat", "fc.weight", "fc.bias"], ["logits"],
                                           transB=1))
        pooled = val.mean(axis=(2, 3), dtype=np.float64).astype(np.float32)
        return pooled @ w.T + b


def resnet20(g, x):
    t, v = g.conv_bn("input", x, "conv1", "bn1", 3, 16, 3, 1, 1, True)
    cin = 16
    for s, width in enumerate([16, 32, 64]):
        for i in range(3):
            p = f"layer{s + 1}.{i}"
            stride = 2 if s > 0 and i == 0 else 1
            y, yv = g.conv_bn(t, v, f"{p}.conv1", f"{p}.bn1", cin, width, 3, stride, 1, True)
            y, yv = g.conv_bn(y, yv, f"{p}.conv2", f"{p}.bn2", width, width, 3, 1, 1, False, True)
            sc, scv = g.option_a(p, t, v, cin, width) if stride != 1 else (t, v)
            t, v = g.add_relu(p, y, yv, sc, scv)
            cin = width
    return t, v, cin


def stem(g, x):
    t, v = g.conv_bn("input", x, "conv1", "bn1", 3, 64, 7, 2, 3, True)
    g.nodes.append(helper.make_node("MaxPool", [t], ["maxpool"], kernel_shape=[3, 3],
                                    strides=[2, 2], pads=[1, 1, 1, 1]))
    return "maxpool", max_pool(v)


def resnet18(g, x):
    t, v = stem(g, x)
    cin = 64
    for s, width in enumerate([64, 128, 256, 512]):
        for i in range(2):
            p = f"layer{s + 1}.{i}"
            stride = 2 if s > 0 and i == 0 else 1
            y, yv = g.conv_bn(t, v, f"{p}.conv1", f"{p}.bn1", cin, width, 3, stride, 1, True)
            y, yv = g.conv_bn(y, yv, f"{p}.conv2", f"{p}.bn2", width, width, 3, 1, 1, False, True)
            if stride != 1 or cin != width:
                sc, scv = g.conv_bn(t, v, f"{p}.downsample.0", f"{p}.downsample.1", cin, width, 1,
                                    stride, 0, False)
            else:
                sc, scv = t, v
            t, v = g.add_relu(p, y, yv, sc, scv)
            cin = width
    return t, v, cin


def resnet50(g, x):
    t, v = stem(g, x)
    cin = 64
    for s, (width, blocks) in enumerate(zip([64, 128, 256, 512], [3, 4, 6, 3])):
        for i in range(blocks):
            p = f"layer{s + 1}.{i}"
            stride = 2 if s > 0 and i == 0 else 1
            out = width * 4
            y, yv = g.conv_bn(t, v, f"{p}.conv1", f"{p}.bn1", cin, width, 1, 1, 0, True)
            y, yv = g.conv_bn(y, yv, f"{p}.conv2", f"{p}.bn2", width, width, 3, stride, 1, True)
            y, yv = g.conv_bn(y, yv, f"{p}.conv3", f"{p}.bn3", width, out, 1, 1, 0, False, True)
            if stride != 1 or cin != out:
                sc, scv = g.conv_bn(t, v, f"{p}.downsample.0", f"{p}.downsample.1", cin, out, 1,
                                    stride, 0, False)
            else:
                sc, scv = t, v
            t, v = g.add_relu(p, y, yv, sc, scv)
            cin = out
    return t, v, cin


def make(name, out_dir):
    hw, classes, seed = NETS[name]
    x = np.random.default_rng(seed + 1000).standard_normal((1, 3, hw, hw)).astype(np.float32)
    g = Builder(seed, x)
    t, v, cin = {"resnet20": resnet20, "resnet18": resnet18, "resnet50": resnet50}[name](g, x)
    logits = g.head(t, v, cin, classes).astype(np.float32)
    graph = helper.make_graph(
        g.nodes, f"{name}_bench",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, hw, hw])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", classes])],
        [numpy_helper.from_array(a, n) for n, a in g.inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)],
                              producer_name="scripts/make_bench_models.py")
    model.ir_version = 8
    onnx.checker.check_model(model)
    path = os.path.join(out_dir, f"{name}.onnx")
    with open(path, "wb") as f:
        f.write(model.SerializeToString())
    np.save(os.path.join(out_dir, f"{name}.input.npy"), x)
    np.save(os.path.join(out_dir, f"{name}.logits.npy"), logits)
    params = sum(a.size for n, a in g.inits.items() if a.dtype == np.float32)
    print(f"{path}: {os.path.getsize(path) / 1e6:.1f} MB, {len(g.nodes)} nodes, {params} floats; "
          f"logits |max| {np.abs(logits).max():.3f}, std {logits.std():.3f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out_dir", nargs="?", default=os.path.join(ROOT, "target", "bench-models"))
    ap.add_argument("--only", default=",".join(NETS), help="comma-separated: " + ",".join(NETS))
    args = ap.parse_args()
    os.makedirs(args.out_dir, exist_ok=True)
    for name in args.only.split(","):
        if name not in NETS:
            sys.exit(f"make_bench_models.py: unknown network '{name}' (know {', '.join(NETS)})")
        make(name, args.out_dir)


if __name__ == "__main__":
    main()
