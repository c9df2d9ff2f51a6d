//! The backward pass of every op of an unfused ResNet, plus train-mode batch norm, the loss and
//! SGD: the CPU side that the GPU training kernels are checked against. NCHW like the forward
//! reference; every sum accumulates in f64 and is rounded to f32 once, so this is the more
//! accurate side of a comparison. Conventions are PyTorch's (tests/fixtures/training/README.md).

use crate::graph::{Conv, Linear, MaxPool, Shape};

/// The outputs `o` of one axis whose input `o * stride + k - pad` lies inside `0..input` for
/// kernel offset `k`: padding contributes nothing to either gradient.
fn inside(
    k: usize,
    stride: usize,
    pad: usize,
    input: usize,
    output: usize,
) -> std::ops::Range<usize> {
    // o * stride + k >= pad and o * stride + k < input + pad.
    let lo = pad.saturating_sub(k).div_ceil(stride);
    let hi = (input + pad).saturating_sub(k).div_ceil(stride).min(output);
    lo..hi.max(lo)
}

/// Calls `f(x_index, w_index, y_index)` for every pairing of an output pixel with a weight tap
/// whose input pixel lies inside the image: the loop nest both conv gradients share, so they
/// cannot disagree about which pairs exist. Output pixels vary fastest, so one weight tap's
/// updates run along rows of dy and x.
fn for_each_tap(
    batch: usize,
    in_shape: Shape,
    conv: &Conv,
    out_shape: Shape,
    mut f: impl FnMut(usize, usize, usize),
) {
    let [ic, ih, iw] = in_shape;
    let [oc, oh, ow] = out_shape;
    let [kh, kw] = conv.kernel();
    let [sh, sw] = conv.stride;
    let (pt, pl) = (conv.pad[0], conv.pad[1]);
    for n in 0..batch {
        for o in 0..oc {
            for c in 0..ic {
                for ky in 0..kh {
                    for kx in 0..kw {
                        let wi = ((o * ic + c) * kh + ky) * kw + kx;
                        for oy in inside(ky, sh, pt, ih, oh) {
                            let x_row = ((n * ic + c) * ih + oy * sh + ky - pt) * iw;
                            let y_row = ((n * oc + o) * oh + oy) * ow;
                            for ox in inside(kx, sw, pl, iw, ow) {
                                f(x_row + ox * sw + kx - pl, wi, y_row + ox);
                            }
                        }
                    }
                }
            }
        }
    }
}

fn to_f32(v: Vec<f64>) -> Vec<f32> {
    v.into_iter().map(|x| x as f32).collect()
}

/// d loss / d input of a convolution (bias, residual and ReLU are separate nodes when training).
pub fn conv2d_backward_input(
    dy: &[f32],
    batch: usize,
    in_shape: Shape,
    conv: &Conv,
    out_shape: Shape,
) -> Vec<f32> {
    let w = &conv.weight.data;
    let mut dx = vec![0.0f64; batch * in_shape.iter().product::<usize>()];
    for_each_tap(batch, in_shape, conv, out_shape, |xi, wi, yi| {
        dx[xi] += dy[yi] as f64 * w[wi] as f64;
    });
    to_f32(dx)
}

/// d loss / d weight of a convolution, OIHW like `conv.weight`.
pub fn conv2d_backward_weight(
    dy: &[f32],
    x: &[f32],
    batch: usize,
    in_shape: Shape,
    conv: &Conv,
    out_shape: Shape,
) -> Vec<f32> {
    let mut dw = vec![0.0f64; conv.weight.numel()];
    for_each_tap(batch, in_shape, conv, out_shape, |xi, wi, yi| {
        dw[wi] += dy[yi] as f64 * x[xi] as f64;
    });
    to_f32(dw)
}

/// What a train-mode batch norm computes and what its backward needs.
pub struct BatchNormTrain {
    /// The normalised output.
    pub y: Vec<f32>,
    /// Per-channel batch mean over (N, H, W).
    pub mean: Vec<f32>,
    /// Per-channel biased batch variance (what PyTorch normalises with; its running variance
    /// takes the unbiased one, var * M / (M - 1)).
    pub var: Vec<f32>,
}

/// The values of channel `ch` of every image, in order.
fn channel(x: &[f32], batch: usize, shape: Shape, ch: usize) -> impl Iterator<Item = &f32> {
    let [c, h, w] = shape;
    (0..batch).flat_map(move |n| &x[(n * c + ch) * h * w..][..h * w])
}

/// Indices of channel `ch` of every image, in the same order as [`channel`].
fn channel_indices(batch: usize, shape: Shape, ch: usize) -> impl Iterator<Item = usize> {
    let [c, h, w] = shape;
    (0..batch).flat_map(move |n| (n * c + ch) * h * w..(n * c + ch + 1) * h * w)
}

/// Train-mode batch norm: normalises each channel with its batch mean and biased variance over
/// (N, H, W), then scales by gamma and shifts by beta. Two passes (mean, then squared
/// deviations) so the variance does not suffer the cancellation of mean(x^2) - mean(x)^2.
pub fn batch_norm_train(
    x: &[f32],
    batch: usize,
    shape: Shape,
    gamma: &[f32],
    beta: &[f32],
    eps: f32,
) -> BatchNormTrain {
    let m = (batch * shape[1] * shape[2]) as f64;
    let mut y = vec![0.0f32; x.len()];
    let (mut means, mut vars) = (Vec::new(), Vec::new());
    for ch in 0..shape[0] {
        let mean = channel(x, batch, shape, ch).map(|&v| v as f64).sum::<f64>() / m;
        let var = channel(x, batch, shape, ch)
            .map(|&v| (v as f64 - mean).powi(2))
            .sum::<f64>()
            / m;
        let scale = gamma[ch] as f64 / (var + eps as f64).sqrt();
        for i in channel_indices(batch, shape, ch) {
            y[i] = ((x[i] as f64 - mean) * scale + beta[ch] as f64) as f32;
        }
        means.push(mean as f32);
        vars.push(var as f32);
    }
    BatchNormTrain {
        y,
        mean: means,
        var: vars,
    }
}

/// Backward of train-mode batch norm (the batch statistics depend on x too):
/// dx = gamma / sqrt(var + eps) / M * (M dy - sum dy - xhat sum(dy xhat)).
/// Returns (dx, dgamma, dbeta).
#[allow(clippy::too_many_arguments)]
pub fn batch_norm_backward(
    dy: &[f32],
    x: &[f32],
    batch: usize,
    shape: Shape,
    gamma: &[f32],
    mean: &[f32],
    var: &[f32],
    eps: f32,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let m = (batch * shape[1] * shape[2]) as f64;
    let mut dx = vec![0.0f32; x.len()];
    let (mut dgamma, mut dbeta) = (Vec::new(), Vec::new());
    for ch in 0..shape[0] {
        let inv = 1.0 / (var[ch] as f64 + eps as f64).sqrt();
        let xhat = |i: usize| (x[i] as f64 - mean[ch] as f64) * inv;
        let (mut sum_dy, mut sum_dy_xhat) = (0.0f64, 0.0f64);
        for i in channel_indices(batch, shape, ch) {
            sum_dy += dy[i] as f64;
            sum_dy_xhat += dy[i] as f64 * xhat(i);
        }
        let k = gamma[ch] as f64 * inv / m;
        for i in channel_indices(batch, shape, ch) {
            dx[i] = (k * (m * dy[i] as f64 - sum_dy - xhat(i) * sum_dy_xhat)) as f32;
        }
        dgamma.push(sum_dy_xhat as f32);
        dbeta.push(sum_dy as f32);
    }
    (dx, dgamma, dbeta)
}

/// Backward of ReLU from its output `y`: the gradient passes where y > 0 (PyTorch's
/// threshold_backward; a NaN output passes nothing).
pub fn relu_backward(dy: &[f32], y: &[f32]) -> Vec<f32> {
    dy.iter()
        .zip(y)
        .map(|(&d, &v)| if v > 0.0 { d } else { 0.0 })
        .collect()
}

/// The input index that a max-pool window's output came from: the first maximum in row-major
/// window order (PyTorch), a NaN over any number (as the forward propagates it); padding never
/// wins. None for a window that lies wholly in the padding.
fn argmax(
    x: &[f32],
    base: usize,
    ih: usize,
    iw: usize,
    pool: &MaxPool,
    oy: usize,
    ox: usize,
) -> Option<usize> {
    let mut best: Option<usize> = None;
    for ky in 0..pool.kernel[0] {
        let Some(iy) = (oy * pool.stride[0] + ky)
            .checked_sub(pool.pad[0])
            .filter(|&v| v < ih)
        else {
            continue;
        };
        for kx in 0..pool.kernel[1] {
            let Some(ix) = (ox * pool.stride[1] + kx)
                .checked_sub(pool.pad[1])
                .filter(|&v| v < iw)
            else {
                continue;
            };
            let i = base + iy * iw + ix;
            let better = match best {
                None => true,
                Some(b) => !x[b].is_nan() && (x[i] > x[b] || x[i].is_nan()),
            };
            if better {
                best = Some(i);
            }
        }
    }
    best
}

/// Backward of max pooling: each output's gradient goes to the input it was taken from
/// (overlapping windows add up).
pub fn max_pool_backward(
    dy: &[f32],
    x: &[f32],
    batch: usize,
    in_shape: Shape,
    pool: &MaxPool,
    out_shape: Shape,
) -> Vec<f32> {
    let [c, ih, iw] = in_shape;
    let [_, oh, ow] = out_shape;
    let mut dx = vec![0.0f64; x.len()];
    for nc in 0..batch * c {
        for oy in 0..oh {
            for ox in 0..ow {
                if let Some(i) = argmax(x, nc * ih * iw, ih, iw, pool, oy, ox) {
                    dx[i] += dy[(nc * oh + oy) * ow + ox] as f64;
                }
            }
        }
    }
    to_f32(dx)
}

/// Backward of the global average pool: every pixel of a channel gets dy / (H W).
pub fn global_avg_pool_backward(dy: &[f32], batch: usize, in_shape: Shape) -> Vec<f32> {
    let [c, h, w] = in_shape;
    let inv = 1.0 / (h * w) as f64;
    (0..batch * c)
        .flat_map(|nc| std::iter::repeat_n((dy[nc] as f64 * inv) as f32, h * w))
        .collect()
}

/// Backward of the option-A shortcut: the kept pixels get the gradient of the channel they were
/// moved to; the skipped pixels and the zero channels get nothing.
pub fn shortcut_a_backward(
    dy: &[f32],
    batch: usize,
    in_shape: Shape,
    stride: usize,
    pad_before: usize,
    out_shape: Shape,
) -> Vec<f32> {
    let [ic, ih, iw] = in_shape;
    let [oc, oh, ow] = out_shape;
    let mut dx = vec![0.0f32; batch * ic * ih * iw];
    for n in 0..batch {
        for c in 0..ic {
            for y in 0..oh {
                for xo in 0..ow {
                    dx[((n * ic + c) * ih + y * stride) * iw + xo * stride] =
                        dy[((n * oc + c + pad_before) * oh + y) * ow + xo];
                }
            }
        }
    }
    dx
}

/// Backward of a fully connected layer on the flattened input: (dx, dweight [out, in], dbias).
/// dbias is returned even for a layer without a bias (it is the gradient of a zero bias).
pub fn linear_backward(
    dy: &[f32],
    x: &[f32],
    batch: usize,
    lin: &Linear,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let [out, inp] = [lin.weight.shape[0], lin.weight.shape[1]];
    let w = &lin.weight.data;
    let mut dx = vec![0.0f64; batch * inp];
    let mut dw = vec![0.0f64; out * inp];
    let mut db = vec![0.0f64; out];
    for n in 0..batch {
        for o in 0..out {
            let d = dy[n * out + o] as f64;
            db[o] += d;
            for i in 0..inp {
                dx[n * inp + i] += d * w[o * inp + i] as f64;
                dw[o * inp + i] += d * x[n * inp + i] as f64;
            }
        }
    }
    (to_f32(dx), to_f32(dw), to_f32(db))
}

/// Mean softmax cross-entropy over the batch and its gradient (softmax - one_hot) / N.
/// `logits` holds `labels.len()` rows of `classes`.
///
/// # Panics
/// If a label is not below `classes` or the logits are not `labels.len() * classes` values
/// (a caller's bug: the trainers check labels before they get here).
pub fn softmax_cross_entropy(logits: &[f32], labels: &[usize], classes: usize) -> (f32, Vec<f32>) {
    assert_eq!(
        logits.len(),
        labels.len() * classes,
        "logits and labels disagree"
    );
    let n = labels.len() as f64;
    let mut loss = 0.0f64;
    let mut grad = Vec::with_capacity(logits.len());
    for (row, &label) in logits.chunks_exact(classes).zip(labels) {
        assert!(
            label < classes,
            "label {label} is not below {classes} classes"
        );
        // Shifted by the row's max so exp cannot overflow.
        let m = row.iter().fold(f64::NEG_INFINITY, |a, &b| a.max(b as f64));
        let e: Vec<f64> = row.iter().map(|&v| (v as f64 - m).exp()).collect();
        let sum: f64 = e.iter().sum();
        loss += sum.ln() + m - row[label] as f64;
        for (k, &ek) in e.iter().enumerate() {
            let p = ek / sum - if k == label { 1.0 } else { 0.0 };
            grad.push((p / n) as f32);
        }
    }
    ((loss / n) as f32, grad)
}

/// One SGD step with momentum and weight decay, as torch.optim.SGD (no dampening, no Nesterov):
/// g' = g + wd w, v = momentum v + g', w -= lr v. `g` is the raw gradient; `v` starts at zero, so
/// after the first step v = g'. Elementwise in f32 in PyTorch's order (no sum to accumulate), so
/// the result matches torch's rounding rather than being more accurate than it.
pub fn sgd_step(
    w: &mut [f32],
    g: &[f32],
    v: &mut [f32],
    lr: f32,
    momentum: f32,
    weight_decay: f32,
) {
    for ((w, &g), v) in w.iter_mut().zip(g).zip(v.iter_mut()) {
        let g = g + weight_decay * *w;
        *v = momentum * *v + g;
        *w -= lr * *v;
    }
}
