//! Every backward op of src/reference/backward.rs against central finite differences of the
//! forward reference, on small awkward shapes (odd sizes, channels not a multiple of 4, stride 2
//! on odd inputs, asymmetric padding, batch > 1), plus the exact rules finite differences cannot
//! see (max-pool ties, padding, the SGD formula).
//!
//! Each check takes L(x) = sum(r * f(x)) for a fixed random r, so the analytic gradient is the
//! backward op applied to dy = r. Linear ops are differenced with a large step (their central
//! difference is exact but for f32 rounding of the outputs); the others with a small one.

use resnet_wgpu::graph::{Conv, Graph, Linear, MaxPool, Shape};
use resnet_wgpu::reference::{self as fwd, backward as bwd};
use resnet_wgpu::tensor::{SplitMix64, Tensor};

/// Uniform values in [-1, 1).
fn rand(seed: u64, n: usize) -> Vec<f32> {
    let mut rng = SplitMix64(seed);
    (0..n).map(|_| rng.uniform() * 2.0 - 1.0).collect()
}

fn dot(r: &[f32], y: &[f32]) -> f64 {
    assert_eq!(r.len(), y.len());
    r.iter().zip(y).map(|(&a, &b)| a as f64 * b as f64).sum()
}

/// Compares `analytic` with the central difference of dot(r, f(x)) at every element of `x`;
/// each error must be within atol + rtol |analytic|. Returns (max abs error, max abs error / max
/// |analytic|), and prints them so the tolerances below can be read from `--nocapture`.
#[allow(clippy::too_many_arguments)]
fn check_fd(
    what: &str,
    x: &[f32],
    step: f32,
    f: impl Fn(&[f32]) -> Vec<f32>,
    r: &[f32],
    analytic: &[f32],
    atol: f64,
    rtol: f64,
) -> (f64, f64) {
    assert_eq!(x.len(), analytic.len(), "{what}: gradient length");
    let scale = analytic.iter().fold(0.0f64, |m, &g| m.max(g.abs() as f64));
    assert!(scale > 0.0, "{what}: an all-zero gradient checks nothing");
    let mut max_err = 0.0f64;
    for i in 0..x.len() {
        let (mut xp, mut xm) = (x.to_vec(), x.to_vec());
        xp[i] += step;
        xm[i] -= step;
        // The step as stored in f32, so the denominator is exact.
        let h = xp[i] as f64 - xm[i] as f64;
        let fd = (dot(r, &f(&xp)) - dot(r, &f(&xm))) / h;
        let err = (fd - analytic[i] as f64).abs();
        assert!(
            err <= atol + rtol * (analytic[i] as f64).abs(),
            "{what}: element {i}: finite difference {fd}, backward {} (err {err:e})",
            analytic[i]
        );
        max_err = max_err.max(err);
    }
    eprintln!(
        "{what}: max abs err {max_err:.2e}, relative to max |grad| {scale:.2e}: {:.2e}",
        max_err / scale
    );
    (max_err, max_err / scale)
}

/// The output shape the graph builder gives a conv.
fn conv_out(in_shape: Shape, conv: &Conv) -> Shape {
    let mut g = Graph::new(in_shape);
    let v = g.conv("c", 0, conv.clone()).unwrap();
    g.shape(v)
}

fn conv_case(
    seed: u64,
    batch: usize,
    in_shape: Shape,
    oc: usize,
    k: [usize; 2],
    stride: [usize; 2],
    pad: [usize; 4],
) {
    let ic = in_shape[0];
    let wshape = vec![oc, ic, k[0], k[1]];
    let numel = wshape.iter().product();
    let conv = Conv {
        weight: Tensor::new(wshape, rand(seed, numel)).unwrap(),
        bias: None,
        stride,
        pad,
        relu: false,
    };
    let out = conv_out(in_shape, &conv);
    let x = rand(seed + 1, batch * in_shape.iter().product::<usize>());
    let r = rand(seed + 2, batch * out.iter().product::<usize>());
    let what = format!("conv {in_shape:?} k{k:?} s{stride:?} p{pad:?} -> {out:?} x{batch}");
    let dx = bwd::conv2d_backward_input(&r, batch, in_shape, &conv, out);
    let f = |x: &[f32]| fwd::conv2d(x, batch, in_shape, &conv, None, out);
    check_fd(&format!("{what} dx"), &x, 0.5, f, &r, &dx, 1e-5, 1e-5);
    let dw = bwd::conv2d_backward_weight(&r, &x, batch, in_shape, &conv, out);
    let f = |w: &[f32]| {
        let mut c = conv.clone();
        c.weight.data = w.to_vec();
        fwd::conv2d(&x, batch, in_shape, &c, None, out)
    };
    check_fd(
        &format!("{what} dw"),
        &conv.weight.data,
        0.5,
        f,
        &r,
        &dw,
        1e-5,
        1e-5,
    );
}

#[test]
fn conv_gradients_match_finite_differences() {
    // 3x3 same padding; 3 and 5 channels.
    conv_case(10, 2, [3, 7, 7], 5, [3, 3], [1, 1], [1; 4]);
    // 3x3 stride 2 on an odd input (the stage transition).
    conv_case(20, 2, [5, 9, 9], 6, [3, 3], [2, 2], [1; 4]);
    // 1x1 stride 2 projection on an odd input.
    conv_case(30, 3, [6, 7, 7], 3, [1, 1], [2, 2], [0; 4]);
    // 7x7 stride 2 pad 3, the ImageNet stem's shape.
    conv_case(40, 1, [3, 11, 11], 2, [7, 7], [2, 2], [3; 4]);
    // Non-square kernel, unequal strides, asymmetric padding.
    conv_case(50, 2, [2, 6, 5], 3, [2, 3], [2, 1], [1, 0, 2, 1]);
}

#[test]
fn batch_norm_train_gradients_match_finite_differences() {
    let (batch, shape) = (3, [5, 3, 5]);
    let n = batch * 75;
    let x: Vec<f32> = rand(60, n).iter().map(|v| 2.0 * v + 0.3).collect();
    let gamma: Vec<f32> = rand(61, 5).iter().map(|v| 1.0 + 0.5 * v).collect();
    let beta = rand(62, 5);
    let r = rand(63, n);
    let eps = 1e-5;
    let t = bwd::batch_norm_train(&x, batch, shape, &gamma, &beta, eps);
    let (dx, dg, db) = bwd::batch_norm_backward(&r, &x, batch, shape, &gamma, &t.mean, &t.var, eps);
    let y = |x: &[f32], g: &[f32], b: &[f32]| bwd::batch_norm_train(x, batch, shape, g, b, eps).y;
    check_fd(
        "bn dx",
        &x,
        1e-2,
        |v| y(v, &gamma, &beta),
        &r,
        &dx,
        2e-4,
        1e-3,
    );
    check_fd(
        "bn dgamma",
        &gamma,
        1e-2,
        |v| y(&x, v, &beta),
        &r,
        &dg,
        2e-4,
        1e-3,
    );
    check_fd(
        "bn dbeta",
        &beta,
        0.5,
        |v| y(&x, &gamma, v),
        &r,
        &db,
        1e-4,
        1e-5,
    );
}

#[test]
fn batch_norm_train_uses_the_biased_batch_statistics() {
    let (batch, shape) = (2, [3, 2, 3]);
    let x: Vec<f32> = (0..36).map(|i| (i * i % 17) as f32 - 4.0).collect();
    let gamma = [1.5, 0.5, 2.0];
    let beta = [0.1, -0.2, 0.3];
    let t = bwd::batch_norm_train(&x, batch, shape, &gamma, &beta, 1e-5);
    for ch in 0..3 {
        let v: Vec<f64> = (0..batch)
            .flat_map(|n| (0..6).map(move |i| (n * 3 + ch) * 6 + i))
            .map(|i| x[i] as f64)
            .collect();
        let mean = v.iter().sum::<f64>() / 12.0;
        let var = v.iter().map(|a| a * a).sum::<f64>() / 12.0 - mean * mean;
        assert!((t.mean[ch] as f64 - mean).abs() < 1e-6, "mean {ch}");
        assert!(
            (t.var[ch] as f64 - var).abs() < 1e-5 * var,
            "biased var {ch}"
        );
    }
    // The same numbers as inference batch norm given the batch statistics.
    let bn = resnet_wgpu::graph::BatchNorm {
        gamma: gamma.to_vec(),
        beta: beta.to_vec(),
        mean: t.mean.clone(),
        var: t.var.clone(),
        eps: 1e-5,
        relu: false,
    };
    let want = fwd::batch_norm(&x, batch, shape, &bn);
    let err = resnet_wgpu::tensor::max_abs_diff(&t.y, &want);
    assert!(
        err < 1e-5,
        "train-mode y vs inference with batch stats: {err}"
    );
}

#[test]
fn relu_gradient_passes_where_the_output_is_positive() {
    // Away from 0, where ReLU is differentiable.
    let x: Vec<f32> = rand(70, 50)
        .iter()
        .map(|&v| if v.abs() < 0.05 { 0.5 } else { v })
        .collect();
    let r = rand(71, 50);
    let dx = bwd::relu_backward(&r, &fwd::relu(&x));
    check_fd("relu", &x, 1e-2, fwd::relu, &r, &dx, 1e-5, 1e-5);
    assert_eq!(
        bwd::relu_backward(&[1.0, 1.0, 1.0], &[0.0, f32::NAN, 2.0]),
        [0.0, 0.0, 1.0]
    );
}

fn pool_out(in_shape: Shape, pool: MaxPool) -> Shape {
    let mut g = Graph::new(in_shape);
    let v = g.max_pool("p", 0, pool).unwrap();
    g.shape(v)
}

const POOL_3_2_1: MaxPool = MaxPool {
    kernel: [3, 3],
    stride: [2, 2],
    pad: [1, 1, 1, 1],
};

#[test]
fn max_pool_gradient_matches_finite_differences() {
    for (seed, in_shape) in [(80, [3, 9, 9]), (90, [2, 8, 8])] {
        let batch = 2;
        let n = batch * in_shape.iter().product::<usize>();
        // Distinct values 0.01 apart, so a 1e-3 step never changes which one is the max.
        let mut order: Vec<(f32, usize)> = rand(seed, n).into_iter().zip(0..).collect();
        order.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut x = vec![0.0f32; n];
        for (rank, &(_, i)) in order.iter().enumerate() {
            x[i] = rank as f32 * 0.01 - 1.0;
        }
        let out = pool_out(in_shape, POOL_3_2_1);
        let r = rand(seed + 1, batch * out.iter().product::<usize>());
        let dx = bwd::max_pool_backward(&r, &x, batch, in_shape, &POOL_3_2_1, out);
        let f = |x: &[f32]| fwd::max_pool(x, batch, in_shape, &POOL_3_2_1, out);
        check_fd(
            &format!("max pool 3x3/2 p1 {in_shape:?}"),
            &x,
            1e-3,
            f,
            &r,
            &dx,
            1e-5,
            1e-5,
        );
    }
}

#[test]
fn max_pool_ties_go_to_the_first_maximum_and_padding_never_wins() {
    // A constant negative 4x4 map: padding (-inf) loses to -3, and among equal values the first
    // in row-major window order wins: window (0,0) covers rows/cols -1..1 -> pixel (0,0); window
    // (0,1) covers cols 1..3 -> (0,1); (1,0) -> (1,0); (1,1) -> (1,1).
    let x = vec![-3.0f32; 16];
    let out = pool_out([1, 4, 4], POOL_3_2_1);
    assert_eq!(out, [1, 2, 2]);
    let dx = bwd::max_pool_backward(&[1.0, 2.0, 3.0, 4.0], &x, 1, [1, 4, 4], &POOL_3_2_1, out);
    let mut want = vec![0.0f32; 16];
    want[0] = 1.0;
    want[1] = 2.0;
    want[4] = 3.0;
    want[5] = 4.0;
    assert_eq!(dx, want);
    // A tie inside one window, not at its start: the earlier of two equal maxima wins.
    let x = [0.0, 5.0, 1.0, 5.0];
    let pool = MaxPool {
        kernel: [2, 2],
        stride: [2, 2],
        pad: [0; 4],
    };
    let dx = bwd::max_pool_backward(&[1.0], &x, 1, [1, 2, 2], &pool, [1, 1, 1]);
    assert_eq!(dx, [0.0, 1.0, 0.0, 0.0]);
}

#[test]
fn global_avg_pool_gradient_matches_finite_differences() {
    let (batch, shape) = (3, [5, 3, 7]);
    let x = rand(100, batch * 105);
    let r = rand(101, batch * 5);
    let dx = bwd::global_avg_pool_backward(&r, batch, shape);
    let f = |x: &[f32]| fwd::global_avg_pool(x, batch, shape);
    check_fd("global avg pool", &x, 0.5, f, &r, &dx, 1e-6, 1e-5);
}

#[test]
fn shortcut_a_gradient_matches_finite_differences() {
    // 5 channels to 9 with 2 before (so 2 after), stride 2 on an odd 7x7 map; and stride 1.
    for (stride, in_shape) in [(2, [5, 7, 7]), (1, [3, 4, 5])] {
        let mut g = Graph::new(in_shape);
        let v = g
            .shortcut_a_padded("s", 0, stride, 2, in_shape[0] + 4)
            .unwrap();
        let out = g.shape(v);
        let batch = 2;
        let x = rand(110, batch * in_shape.iter().product::<usize>());
        let r = rand(111, batch * out.iter().product::<usize>());
        let dx = bwd::shortcut_a_backward(&r, batch, in_shape, stride, 2, out);
        let f = |x: &[f32]| fwd::shortcut_a(x, batch, in_shape, stride, 2, out);
        check_fd(
            &format!("shortcut A s{stride} {in_shape:?}"),
            &x,
            0.5,
            f,
            &r,
            &dx,
            1e-6,
            1e-6,
        );
    }
}

#[test]
fn linear_gradients_match_finite_differences() {
    let (batch, inp, out) = (3, 24, 7);
    let lin = Linear {
        weight: Tensor::new(vec![out, inp], rand(120, out * inp)).unwrap(),
        bias: Some(rand(121, out)),
    };
    let x = rand(122, batch * inp);
    let r = rand(123, batch * out);
    let (dx, dw, db) = bwd::linear_backward(&r, &x, batch, &lin);
    check_fd(
        "linear dx",
        &x,
        0.5,
        |x| fwd::linear(x, batch, &lin),
        &r,
        &dx,
        1e-5,
        1e-5,
    );
    let with_w = |w: &[f32]| {
        let mut l = lin.clone();
        l.weight.data = w.to_vec();
        fwd::linear(&x, batch, &l)
    };
    check_fd(
        "linear dw",
        &lin.weight.data,
        0.5,
        with_w,
        &r,
        &dw,
        1e-5,
        1e-5,
    );
    let with_b = |b: &[f32]| {
        let mut l = lin.clone();
        l.bias = Some(b.to_vec());
        fwd::linear(&x, batch, &l)
    };
    check_fd(
        "linear db",
        lin.bias.as_ref().unwrap(),
        0.5,
        with_b,
        &r,
        &db,
        1e-5,
        1e-5,
    );
}

#[test]
fn softmax_cross_entropy_matches_finite_differences_and_known_values() {
    let (classes, labels) = (5, [3usize, 0, 4]);
    let logits: Vec<f32> = rand(130, 15).iter().map(|v| 3.0 * v).collect();
    let (_, grad) = bwd::softmax_cross_entropy(&logits, &labels, classes);
    let loss = |z: &[f32]| vec![bwd::softmax_cross_entropy(z, &labels, classes).0];
    check_fd(
        "softmax cross-entropy",
        &logits,
        1e-2,
        loss,
        &[1.0],
        &grad,
        1e-5,
        1e-3,
    );
    // Equal logits: ln(classes), and each row's gradient sums to zero.
    let (l, g) = bwd::softmax_cross_entropy(&[0.0; 10], &[1, 4], 5);
    assert!((l as f64 - 5f64.ln()).abs() < 1e-6, "{l}");
    assert!((g[1] as f64 - (0.2 - 1.0) / 2.0).abs() < 1e-7);
    // Huge logits do not overflow.
    let (l, _) = bwd::softmax_cross_entropy(&[1000.0, 0.0, -1000.0], &[1], 3);
    assert!((l - 1000.0).abs() < 1e-3, "{l}");
}

#[test]
fn sgd_step_is_torch_sgd_with_momentum_and_weight_decay() {
    let (lr, mu, wd) = (0.1f32, 0.9f32, 1e-4f32);
    let mut w = vec![1.0f32, -2.0];
    let mut v = vec![0.0f32; 2];
    let g = [0.5f32, 0.25];
    bwd::sgd_step(&mut w, &g, &mut v, lr, mu, wd);
    // Step 1: v = g + wd w (the buffer starts as the decayed gradient).
    let v1 = [0.5 + 1e-4, 0.25 - 2e-4];
    let w1 = [1.0 - 0.1 * v1[0], -2.0 - 0.1 * v1[1]];
    for i in 0..2 {
        assert!((v[i] as f64 - v1[i]).abs() < 1e-7, "v1[{i}] = {}", v[i]);
        assert!((w[i] as f64 - w1[i]).abs() < 1e-7, "w1[{i}] = {}", w[i]);
    }
    bwd::sgd_step(&mut w, &g, &mut v, lr, mu, wd);
    for i in 0..2 {
        let v2 = 0.9 * v1[i] + g[i] as f64 + 1e-4 * w1[i];
        assert!((v[i] as f64 - v2).abs() < 1e-6, "v2[{i}] = {}", v[i]);
        assert!(
            (w[i] as f64 - (w1[i] - 0.1 * v2)).abs() < 1e-6,
            "w2[{i}] = {}",
            w[i]
        );
    }
}
