#!/usr/bin/env python3
"""Makes the ResNet-18 reference fixture in tests/fixtures/resnet18/ without committing weights.

The weights (and the test input) come from a seeded generator that src/graph/seeded.rs
implements identically, bit for bit: SplitMix64 per tensor, seeded with seed ^ FNV-1a-64(name),
each value a 24-bit uniform u in [0, 1) and at most two float32 operations on it (see that file
for the exact recipe). From those weights this script computes independent references:

- resnet18.logits_ort.npy: ONNX Runtime (every graph optimisation off) on the seeded input,
  shape (2, 1000) float32;
- resnet18.photos.logits_ort.npy: ONNX Runtime on tests/fixtures/images/photos_224.input.npy;
- resnet18.logits_fp64.npy: a float64 NumPy forward pass (im2col convolutions) on the seeded input;
- resnet18.activations.npz: that pass's per-stage activations (stem after the max pool, layer1..4,
  pool), each as every STEP-th value of the flattened (2, C, H, W) array (at most 4096 values)
  with STEP stored as NAME_step: the stages check without megabytes of data;
- resnet18.graph.onnx: the ONNX graph run above, its initializers in external data files named
  NAME.bin (not committed): tests supply them from the Rust generator, so the ONNX importer is
  checked on the very graph ONNX Runtime ran;
- resnet18.weights.json: per tensor, its shape and a digest (sum of float32 bits * (index + 1)
  mod 2^64) that a test compares with the Rust generator's.

Usage (Python 3.10+; `pip install numpy onnx onnxruntime`):
    python3 scripts/make_resnet18_fixture.py [OUT_DIR]   # default tests/fixtures/resnet18
"""

import json
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

SEED = 18  # RESNET18_FIXTURE_SEED in src/graph/seeded.rs
BATCH = 2
GOLDEN = 0x9E3779B97F4A7C15
MASK = (1 << 64) - 1
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def fnv1a64(name):
    h = 0xCBF29CE484222325
    for b in name.encode():
        h = ((h ^ b) * 0x100000001B3) & MASK
    return h


def uniforms(seed, name, n):
    """The first n uniforms of SplitMix64(seed ^ fnv1a64(name)), as float32 (exact)."""
    with np.errstate(over="ignore"):
        state = np.uint64(seed ^ fnv1a64(name))
        z = np.arange(1, n + 1, dtype=np.uint64) * np.uint64(GOLDEN) + state
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(40)).astype(np.float32) / np.float32(1 << 24)


def symmetric(u, bound):
    return (u * np.float32(2) - np.float32(1)) * np.float32(bound)


def seeded_tensor(seed, name, shape):
    n = int(np.prod(shape))
    u = uniforms(seed, name, n)
    if name.endswith("running_var"):
        v = np.float32(0.5) + np.float32(1) * u
    elif name.endswith("running_mean") or name.endswith(".bias"):
        v = symmetric(u, np.float32(0.1))
    elif len(shape) == 4:
        fan_in = int(np.prod(shape[1:]))
        v = symmetric(u, np.sqrt(np.float32(6) / np.float32(fan_in)))
    elif len(shape) == 2:
        v = symmetric(u, np.float32(1) / np.sqrt(np.float32(shape[1])))
    elif name.startswith("layer") and (".bn2." in name or ".bn3." in name):
        v = np.float32(0.1) + np.float32(0.2) * u
    else:
        v = np.float32(0.5) + np.float32(1) * u
    assert v.dtype == np.float32
    return v.reshape(shape)


def seeded_input(seed, n):
    return symmetric(uniforms(seed, "input", n), np.float32(2))


def digest(a):
    bits = a.reshape(-1).view(np.uint32).astype(np.uint64)
    with np.errstate(over="ignore"):
        return int(np.sum(bits * np.arange(1, bits.size + 1, dtype=np.uint64), dtype=np.uint64))


def resnet18_shapes(classes=1000):
    """torchvision resnet18's tensors (running statistics included, num_batches_tracked not)."""
    shapes = {"conv1.weight": (64, 3, 7, 7)}

    def bn(prefix, c):
        for s in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"{prefix}.{s}"] = (c,)

    bn("bn1", 64)
    in_c = 64
    for s, width in enumerate([64, 128, 256, 512]):
        for i in range(2):
            p = f"layer{s + 1}.{i}"
            stride = 2 if s > 0 and i == 0 else 1
            shapes[f"{p}.conv1.weight"] = (width, in_c, 3, 3)
            bn(f"{p}.bn1", width)
            shapes[f"{p}.conv2.weight"] = (width, width, 3, 3)
            bn(f"{p}.bn2", width)
            if stride != 1 or in_c != width:
                shapes[f"{p}.downsample.0.weight"] = (width, in_c, 1, 1)
                bn(f"{p}.downsample.1", width)
            in_c = width
    shapes["fc.weight"] = (classes, 512)
    shapes["fc.bias"] = (classes,)
    return shapes


# --- ONNX graph (opset 13), run by ONNX Runtime ------------------------------------------------


def onnx_model(w):
    nodes = []
    counter = [0]

    def fresh(tag):
        counter[0] += 1
        return f"{tag}_{counter[0]}"

    def conv_bn(x, conv, bn, stride, pad, relu):
        y = fresh("conv")
        nodes.append(helper.make_node("Conv", [x, f"{conv}.weight"], [y], strides=[stride] * 2,
                                      pads=[pad] * 4, name=conv))
        z = fresh("bn")
        nodes.append(helper.make_node(
            "BatchNormalization",
            [y, f"{bn}.weight", f"{bn}.bias", f"{bn}.running_mean", f"{bn}.running_var"], [z],
            epsilon=1e-5, name=bn))
        if relu:
            r = fresh("relu")
            nodes.append(helper.make_node("Relu", [z], [r]))
            return r
        return z

    x = conv_bn("input", "conv1", "bn1", 2, 3, True)
    pooled = fresh("maxpool")
    nodes.append(helper.make_node("MaxPool", [x], [pooled], kernel_shape=[3, 3], strides=[2, 2],
                                  pads=[1, 1, 1, 1]))
    x = pooled
    in_c = 64
    for s, width in enumerate([64, 128, 256, 512]):
        for i in range(2):
            p = f"layer{s + 1}.{i}"
            stride = 2 if s > 0 and i == 0 else 1
            y = conv_bn(x, f"{p}.conv1", f"{p}.bn1", stride, 1, True)
            y = conv_bn(y, f"{p}.conv2", f"{p}.bn2", 1, 1, False)
            if stride != 1 or in_c != width:
                sc = conv_bn(x, f"{p}.downsample.0", f"{p}.downsample.1", stride, 0, False)
            else:
                sc = x
            added, out = fresh("add"), fresh("relu")
            nodes.append(helper.make_node("Add", [y, sc], [added]))
            nodes.append(helper.make_node("Relu", [added], [out]))
            x = out
            in_c = width
    nodes.append(helper.make_node("GlobalAveragePool", [x], ["pool"]))
    nodes.append(helper.make_node("Flatten", ["pool"], ["flat"], axis=1))
    nodes.append(helper.make_node("Gemm", ["flat", "fc.weight", "fc.bias"], ["logits"], transB=1))
    inits = [numpy_helper.from_array(a, name) for name, a in sorted(w.items())]
    graph = helper.make_graph(
        nodes, "resnet18_seeded",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, 224, 224])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 1000])],
        inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)],
                              producer_name="scripts/make_resnet18_fixture.py")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def run_ort(model, x):
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    return sess.run(["logits"], {"input": x})[0]


def external(model):
    """The same model with every initializer in an external file NAME.bin (offset 0)."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    for t in m.graph.initializer:
        n = len(t.raw_data) if t.raw_data else int(np.prod(t.dims)) * 4
        t.ClearField("raw_data")
        t.ClearField("float_data")
        t.data_location = TensorProto.EXTERNAL
        del t.external_data[:]
        for k, v in (("location", f"{t.name}.bin"), ("offset", "0"), ("length", str(n))):
            e = t.external_data.add()
            e.key, e.value = k, v
    return m


# --- float64 NumPy forward pass ------------------------------------------------------------------


def conv2d(x, w, stride, pad):
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
    return out.reshape(n, oh, ow, o).transpose(0, 3, 1, 2)


def batch_norm(x, w, bn):
    g, b, m, v = (w[f"{bn}.{s}"].astype(np.float64) for s in
                  ("weight", "bias", "running_mean", "running_var"))
    r = lambda a: a.reshape(1, -1, 1, 1)
    return (x - r(m)) / np.sqrt(r(v) + 1e-5) * r(g) + r(b)


def max_pool(x):
    n, c, h, wd = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)), constant_values=-np.inf)
    oh, ow = (h - 1) // 2 + 1, (wd - 1) // 2 + 1
    out = np.full((n, c, oh, ow), -np.inf)
    for dy in range(3):
        for dx in range(3):
            out = np.maximum(out, xp[:, :, dy:dy + 2 * oh:2, dx:dx + 2 * ow:2])
    return out


def forward64(w, x):
    w64 = {k: v.astype(np.float64) for k, v in w.items()}
    relu = lambda a: np.maximum(a, 0)

    def conv_bn(x, conv, bn, stride, pad):
        return batch_norm(conv2d(x, w64[f"{conv}.weight"], stride, pad), w, bn)

    acts = {}
    x = relu(conv_bn(x.astype(np.float64), "conv1", "bn1", 2, 3))
    x = max_pool(x)
    acts["stem"] = x
    in_c = 64
    for s, width in enumerate([64, 128, 256, 512]):
        for i in range(2):
            p = f"layer{s + 1}.{i}"
            stride = 2 if s > 0 and i == 0 else 1
            y = relu(conv_bn(x, f"{p}.conv1", f"{p}.bn1", stride, 1))
            y = conv_bn(y, f"{p}.conv2", f"{p}.bn2", 1, 1)
            if stride != 1 or in_c != width:
                sc = conv_bn(x, f"{p}.downsample.0", f"{p}.downsample.1", stride, 0)
            else:
                sc = x
            x = relu(y + sc)
            in_c = width
        acts[f"layer{s + 1}"] = x
    pool = x.mean(axis=(2, 3))
    acts["pool"] = pool
    logits = pool @ w64["fc.weight"].T + w64["fc.bias"]
    return logits, acts


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "tests/fixtures/resnet18")
    os.makedirs(out, exist_ok=True)
    w = {name: seeded_tensor(SEED, name, shape) for name, shape in resnet18_shapes().items()}
    x = seeded_input(SEED, BATCH * 3 * 224 * 224).reshape(BATCH, 3, 224, 224)
    model = onnx_model(w)
    logits_ort = run_ort(model, x)
    photos = np.load(os.path.join(ROOT, "tests/fixtures/images/photos_224.input.npy"))
    photos_ort = run_ort(model, photos.astype(np.float32))
    logits64, acts = forward64(w, x)
    diff = np.abs(logits_ort.astype(np.float64) - logits64).max()
    print(f"logits: |ORT - float64| max {diff:.2e}, largest |logit| {np.abs(logits64).max():.3f}, "
          f"std {logits64.std():.3f}; photos top-1 {photos_ort.argmax(1)}")
    assert diff < 1e-4, diff
    np.save(os.path.join(out, "resnet18.logits_ort.npy"), logits_ort.astype(np.float32))
    np.save(os.path.join(out, "resnet18.photos.logits_ort.npy"), photos_ort.astype(np.float32))
    np.save(os.path.join(out, "resnet18.logits_fp64.npy"), logits64)
    sampled = {}
    for name, a in acts.items():
        flat = a.astype(np.float32).reshape(-1)
        step = -(-flat.size // 4096)
        sampled[name] = flat[::step]
        sampled[f"{name}_step"] = np.array(step, dtype=np.int64)
        print(f"{name:<7} {tuple(a.shape)}, every {step}th of {flat.size} values, "
              f"|max| {np.abs(flat).max():.3f}")
    np.savez(os.path.join(out, "resnet18.activations.npz"), **sampled)
    with open(os.path.join(out, "resnet18.graph.onnx"), "wb") as f:
        f.write(external(model).SerializeToString())
    weights = {
        "seed": SEED,
        "generator": "src/graph/seeded.rs (SplitMix64 per tensor, seed ^ fnv1a64(name))",
        "digest": "sum over i of float32_bits[i] * (i + 1) mod 2^64, as a decimal string",
        "tensors": {k: {"shape": list(v.shape), "digest": str(digest(v))} for k, v in sorted(w.items())},
        "input": {"shape": [BATCH, 3, 224, 224], "digest": str(digest(x))},
    }
    with open(os.path.join(out, "resnet18.weights.json"), "w") as f:
        json.dump(weights, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
