//! What the conformance suite runs: single-kernel graphs over a shape sweep with edge cases, and
//! whole networks with deterministic weights.

use crate::ArchSpec;
use crate::graph::params::SyntheticParams;
use crate::graph::{BatchNorm, Conv, Graph, Linear, MaxPool};
use crate::precision::Precision;
use crate::tensor::{SplitMix64, Tensor};
use anyhow::Result;

/// One graph to run on the GPU and on the CPU reference.
pub struct Case {
    pub name: String,
    pub graph: Graph,
    pub batch: usize,
    /// Kernel checks run unoptimized (each kernel as written); networks run as users run them.
    pub optimize: bool,
    pub atol: f64,
    pub rtol: f64,
    /// What the convolutions compute in.
    pub precision: Precision,
    /// Make the first input value NaN (the checks that NaN reaches the output).
    pub nan_input: bool,
}

const KERNEL_TOL: (f64, f64) = (1e-4, 5e-4);
const NETWORK_TOL: (f64, f64) = (1e-3, 1e-3);

/// f16's unit roundoff, 2^-11.
pub const F16_UNIT_ROUNDOFF: f64 = 1.0 / 2048.0;

/// Tolerance (atol, rtol) of an f16 convolution whose dot products have `k` terms
/// (in_channels x kernel_h x kernel_w), for outputs of order 1 (inputs N(0, 1), weights of
/// variance 1 / k, as in these cases and tests/f16.rs).
///
/// Rounding inputs and weights to f16 costs about u = 2^-11 relative per product, which averages
/// out over the sum; what grows is the f16 accumulator's rounding at every step, a random walk of
/// k roundings of up to u x |partial sum|: about u sqrt(k / 6) for outputs of unit size, and the
/// largest of 10^4..10^6 outputs lies 4-6 standard deviations out. Measured on lavapipe (max abs
/// error over all outputs, k = 5 to 2304): 2.5e-3 at k = 8, 6.8e-3 at 45, 2.1e-2 at 147 (the 7x7
/// stem on 224x224), 2.6e-2 at 512, 4.7e-2 at 1170, 2.7e-2 at 2304 (Winograd, whose products
/// are 256 terms long): never more than 0.45 of the bound 8u sqrt(k), which leaves room for
/// adapters that round the product before the add (no fused f16 multiply-add). 4u relative
/// covers the bias and residual carried through. It still catches a wrong weight index: tests/f16.rs
/// plants one (one weight vec4 of the 8 per step read from its neighbour) and measures an error
/// of 2.5 against a bound of 0.094.
pub fn f16_conv_tolerance(k: usize) -> (f64, f64) {
    let u = F16_UNIT_ROUNDOFF;
    (8.0 * u * (k as f64).sqrt(), 4.0 * u)
}

/// Tolerance (atol, rtol) of a whole network's logits with f16 convolutions, against the f64
/// reference. Errors compound through the layers (each conv adds its own, and batch-norm-folded
/// weights are rounded once more); measured on lavapipe with the synthetic-weight networks here,
/// whose logits have an RMS of 0.4 to 1.6: 4.1e-4 (ResNet-20), 1.3e-2 and 5.7e-3 (ResNet-18 at
/// 64 and 224 px), 1.9e-2 and 8.6e-3 (ResNet-50), about 1% of the logits' RMS; trained networks
/// (tests/f16.rs): 1.1e-3 (ResNet-20) and 3.8e-3 (ResNet-18) from their float64 logits, 2.2e-2
/// from f32 for the default model on 300 Fashion-MNIST images. The bound, 5e-2 + 1e-2 relative,
/// is 2.5x the worst of these; a wrong convolution moves logits by their own size (~1), which it
/// catches, but an offset as small as the f32 suite's planted +0.01 in one layer may pass.
pub const F16_NETWORK_TOL: (f64, f64) = (5e-2, 1e-2);

/// The longest dot product of any convolution in `graph` (in_channels x kernel_h x kernel_w).
pub fn longest_dot_product(graph: &Graph) -> usize {
    graph
        .nodes
        .iter()
        .filter_map(|n| match &n.op {
            crate::graph::Op::Conv(c) => Some(c.weight.numel() / c.out_channels()),
            _ => None,
        })
        .max()
        .unwrap_or(1)
}

fn kernel_case(name: String, graph: Graph, batch: usize) -> Case {
    Case {
        name,
        graph,
        batch,
        optimize: false,
        atol: KERNEL_TOL.0,
        rtol: KERNEL_TOL.1,
        precision: Precision::F32,
        nan_input: false,
    }
}

/// Kernels whose work per output is longer than some drivers run in one invocation: Mesa's
/// llvmpipe stops a shader's loops after 65,535 iterations in all, silently, so a kernel that
/// loops once per term returns a partial sum there. A global average pool over more than 65,535
/// positions, and a fully connected layer and a convolution with dot products of more than
/// 4 x 65,535 = 262,140 terms (the kernels sum vec4s): on such a driver each is a FAIL unless
/// the engine splits the work.
pub fn long_loop_cases(quick: bool) -> Result<Vec<Case>> {
    let mut rng = SplitMix64(65535);
    let mut cases = Vec::new();
    let side = if quick { 300 } else { 1100 };
    let mut g = Graph::new([4, side, side]);
    g.global_avg_pool("global_avg_pool", 0);
    cases.push(kernel_case(
        format!(
            "global_avg_pool over {} positions (4x{side}x{side})",
            side * side
        ),
        g,
        1,
    ));
    // 16 x 130 x 130 = 270,400 inputs.
    let (inp, out) = ([16, 130, 130], 3);
    let k = inp.iter().product::<usize>();
    let mut g = Graph::new(inp);
    g.linear(
        "linear",
        0,
        Linear {
            weight: Tensor::new(
                vec![out, k],
                rng.normal_vec(out * k, 1.0 / (k as f32).sqrt()),
            )?,
            bias: Some(rng.normal_vec(out, 0.1)),
        },
    )?;
    cases.push(kernel_case(
        format!("linear with K = {k} (16x130x130 -> {out})"),
        g,
        2,
    ));
    // 32768 channels x 3x3 = 294,912 terms a dot product.
    let g = conv_graph(&mut rng, (32768, 4, 3, 3, 3, 1, 1), true, true, false)?;
    cases.push(kernel_case(
        "conv with K = 294912 (32768->4 3x3 k3 p1)".into(),
        g,
        1,
    ));
    Ok(cases)
}

/// A NaN input pixel reaches every logit (as in PyTorch and ONNX Runtime), through the ops
/// that a `max(x, 0)` ReLU or a max pool could turn it into a finite answer on some drivers.
pub fn nan_case() -> Result<Case> {
    let mut rng = SplitMix64(0x7fc0_0000);
    let mut g = Graph::new([3, 12, 12]);
    let x = g.conv(
        "conv",
        0,
        random_conv(&mut rng, 3, 8, [3, 3], 1, [1; 4], true, true),
    )?;
    let x = g.max_pool(
        "max_pool",
        x,
        MaxPool {
            kernel: [3, 3],
            stride: [2, 2],
            pad: [1; 4],
        },
    )?;
    let x = g.relu("relu", x);
    let x = g.global_avg_pool("pool", x);
    g.linear(
        "fc",
        x,
        Linear {
            weight: Tensor::new(vec![5, 8], rng.normal_vec(40, 0.3))?,
            bias: None,
        },
    )?;
    Ok(Case {
        nan_input: true,
        optimize: true,
        ..kernel_case(
            "one NaN pixel gives NaN logits (conv, max pool, ReLU, pool, fc)".into(),
            g,
            2,
        )
    })
}

/// A convolution with random weights scaled by 1/sqrt(fan-in) (so outputs stay near unit size
/// at any depth) and, if `bias`, a random bias. Shared by the suite and the kernel tests.
#[allow(clippy::too_many_arguments)]
pub fn random_conv(
    rng: &mut SplitMix64,
    ic: usize,
    oc: usize,
    kernel: [usize; 2],
    stride: usize,
    pad: [usize; 4],
    bias: bool,
    relu: bool,
) -> Conv {
    let [kh, kw] = kernel;
    let fan_in = (ic * kh * kw) as f32;
    Conv {
        weight: Tensor::new(
            vec![oc, ic, kh, kw],
            rng.normal_vec(oc * ic * kh * kw, 1.0 / fan_in.sqrt()),
        )
        .expect("shape matches"),
        bias: bias.then(|| rng.normal_vec(oc, 0.5)),
        stride: [stride, stride],
        pad,
        relu,
    }
}

/// One square conv `(in_c, out_c, h, w, kernel, stride, pad)`, optionally with a residual input
/// made by a second conv of the same shape, as the conv cases of the sweep are built.
pub fn conv_graph(
    rng: &mut SplitMix64,
    (ic, oc, h, w, k, s, p): (usize, usize, usize, usize, usize, usize, usize),
    bias: bool,
    relu: bool,
    residual: bool,
) -> Result<Graph> {
    let mut g = Graph::new([ic, h, w]);
    let source = residual
        .then(|| {
            let conv = random_conv(rng, ic, oc, [k, k], s, [p; 4], true, false);
            g.conv("residual_source", 0, conv)
        })
        .transpose()?;
    let y = g.conv(
        "conv",
        0,
        random_conv(rng, ic, oc, [k, k], s, [p; 4], bias, relu),
    )?;
    g.nodes[y].inputs.extend(source);
    Ok(g)
}

/// Single-kernel cases. `quick` keeps the sweep but drops the largest shapes.
pub fn kernel_cases(quick: bool, max_binding: u64) -> Result<Vec<Case>> {
    let mut rng = SplitMix64(2024);
    let mut cases = Vec::new();
    // (in_c, out_c, h, w, kernel, stride, pad, batch)
    let mut convs = vec![
        (3, 8, 9, 7, 3, 1, 1, 1),
        (5, 6, 11, 13, 3, 2, 1, 3),
        (17, 9, 5, 5, 1, 1, 0, 1),
        (8, 12, 7, 9, 1, 2, 0, 3),
        (4, 4, 1, 1, 3, 1, 1, 1),
        (33, 65, 10, 10, 3, 1, 1, 3),
        (3, 16, 33, 33, 7, 2, 3, 1),
    ];
    if !quick {
        convs.extend([
            (512, 2048, 1, 1, 1, 1, 0, 3),
            (3, 64, 224, 224, 7, 2, 3, 1),
            (256, 256, 14, 14, 3, 1, 1, 1),
        ]);
    }
    for &(ic, oc, h, w, k, s, p, batch) in &convs {
        for (bias, relu, residual) in [(false, false, false), (true, true, true)] {
            let g = conv_graph(&mut rng, (ic, oc, h, w, k, s, p), bias, relu, residual)?;
            let name = format!(
                "conv {ic}->{oc} {h}x{w} k{k} s{s} p{p} bias={bias} relu={relu} residual={residual} n={batch}"
            );
            cases.push(kernel_case(name, g, batch));
        }
    }
    for &(c, h, w, k, s, p, batch) in &[
        (3, 9, 9, 3, 2, 1, 1),
        (5, 8, 7, 2, 2, 0, 3),
        (4, 13, 11, 3, 2, 1, 3),
        (2, 1, 1, 1, 1, 0, 1),
        (64, 112, 112, 3, 2, 1, 1),
    ] {
        let mut g = Graph::new([c, h, w]);
        g.max_pool(
            "max_pool",
            0,
            MaxPool {
                kernel: [k, k],
                stride: [s, s],
                pad: [p; 4],
            },
        )?;
        cases.push(kernel_case(
            format!("max_pool {c}x{h}x{w} k{k} s{s} p{p} n={batch}"),
            g,
            batch,
        ));
    }
    for &(c, h, w, batch) in &[(5, 7, 7, 3), (3, 1, 1, 1), (2048, 7, 7, 3)] {
        let mut g = Graph::new([c, h, w]);
        g.global_avg_pool("global_avg_pool", 0);
        cases.push(kernel_case(
            format!("global_avg_pool {c}x{h}x{w} n={batch}"),
            g,
            batch,
        ));
    }
    for &(ic, oc, h, w, s, batch) in &[
        (16, 32, 9, 9, 2, 3),
        (3, 7, 6, 5, 2, 1),
        (5, 11, 1, 1, 2, 3),
    ] {
        let mut g = Graph::new([ic, h, w]);
        g.shortcut_a("shortcut_a", 0, s, oc)?;
        cases.push(kernel_case(
            format!("shortcut_a {ic}->{oc} {h}x{w} s{s} n={batch}"),
            g,
            batch,
        ));
    }
    for &(c, h, w, batch) in &[(3, 5, 7, 3), (1, 1, 1, 1), (65, 1, 1, 3)] {
        let mut g = Graph::new([c, h, w]);
        let r = g.relu("relu", 0);
        let copy = g.shortcut_a("copy", 0, 1, c)?;
        g.add("add", r, copy, true)?;
        cases.push(kernel_case(
            format!("relu + add {c}x{h}x{w} n={batch}"),
            g,
            batch,
        ));
    }
    for &(c, h, w, batch) in &[(3, 5, 7, 3), (18, 6, 6, 1)] {
        let bn = BatchNorm {
            gamma: (0..c).map(|_| 0.5 + rng.uniform()).collect(),
            beta: rng.normal_vec(c, 0.1),
            mean: rng.normal_vec(c, 0.1),
            var: (0..c).map(|_| 0.5 + rng.uniform()).collect(),
            eps: 1e-5,
            relu: true,
        };
        let mut g = Graph::new([c, h, w]);
        g.batch_norm("batchnorm", 0, bn)?;
        cases.push(kernel_case(
            format!("batchnorm {c}x{h}x{w} n={batch}"),
            g,
            batch,
        ));
    }
    for &(inp, out, batch) in &[(17, 5, 3), (2048, 1000, 1)] {
        let mut g = Graph::new([inp, 1, 1]);
        let weight = Tensor::new(
            vec![out, inp],
            rng.normal_vec(out * inp, 1.0 / (inp as f32).sqrt()),
        )?;
        g.linear(
            "linear",
            0,
            Linear {
                weight,
                bias: Some(rng.normal_vec(out, 0.1)),
            },
        )?;
        cases.push(kernel_case(
            format!("linear {inp}->{out} n={batch}"),
            g,
            batch,
        ));
    }
    for &(len, batch) in &[(10, 3), (1000, 1)] {
        let mut g = Graph::new([len, 1, 1]);
        g.softmax("softmax", 0);
        cases.push(kernel_case(format!("softmax {len} n={batch}"), g, batch));
    }
    // The largest activation one storage binding allows (capped to keep the suite quick).
    let cap: u64 = if quick { 16 << 20 } else { 256 << 20 };
    let floats = (max_binding.min(cap) / 4) as usize;
    let planes = floats / (64 * 64);
    let mut g = Graph::new([planes, 64, 64]);
    g.relu("relu", 0);
    cases.push(kernel_case(
        format!(
            "relu over the largest binding ({} MB)",
            (planes * 64 * 64 * 4) >> 20
        ),
        g,
        1,
    ));
    Ok(cases)
}

/// Whole networks with deterministic weights, compared with the CPU reference.
pub fn network_cases(quick: bool) -> Result<Vec<Case>> {
    let size = |full: usize| if quick { 64 } else { full };
    let mut cases = Vec::new();
    for (arch, hw, batch) in [
        ("resnet20", 32, 2),
        ("resnet18", size(224), 1),
        ("resnet50", size(224), 1),
    ] {
        let spec = ArchSpec::parse(arch)?;
        let graph = spec.build(
            &mut SyntheticParams::new(42, spec.default_classes()),
            [3, hw, hw],
        )?;
        cases.push(Case {
            name: format!("{arch} {hw}x{hw} n={batch} (synthetic weights)"),
            graph,
            batch,
            optimize: true,
            atol: NETWORK_TOL.0,
            rtol: NETWORK_TOL.1,
            precision: Precision::F32,
            nan_input: false,
        });
    }
    Ok(cases)
}

/// The f16 checks: every convolution case of [`kernel_cases`] (same shapes, weights and inputs;
/// unoptimized, so each runs as one tuned f16 kernel, or as Winograd with its product in f16) and
/// every network of [`network_cases`], with `Precision::F16`, against the same f64 reference.
pub fn f16_cases(quick: bool, max_binding: u64) -> Result<Vec<Case>> {
    let mut cases: Vec<Case> = kernel_cases(quick, max_binding)?
        .into_iter()
        .filter(|c| c.name.starts_with("conv "))
        .collect();
    for c in &mut cases {
        (c.atol, c.rtol) = f16_conv_tolerance(longest_dot_product(&c.graph));
    }
    for mut c in network_cases(quick)? {
        (c.atol, c.rtol) = F16_NETWORK_TOL;
        cases.push(c);
    }
    for c in &mut cases {
        c.precision = Precision::F16;
        c.name = format!("{} in f16", c.name);
    }
    Ok(cases)
}

/// A batch too large for one binding under the adapter's limits: the session must split it.
pub fn split_case(max_binding: u64) -> Case {
    // Per image 64x112x112 floats (ResNet's stem output, 3.2 MB): enough images to exceed one
    // binding by half.
    let per_image = 64 * 112 * 112 * 4u64;
    let batch = (max_binding / per_image) as usize * 3 / 2 + 1;
    let mut g = Graph::new([64, 112, 112]);
    g.max_pool(
        "max_pool",
        0,
        MaxPool {
            kernel: [3, 3],
            stride: [2, 2],
            pad: [1; 4],
        },
    )
    .expect("valid pool");
    kernel_case(
        format!("max_pool over a batch of {batch} split to fit one binding"),
        g,
        batch,
    )
}
