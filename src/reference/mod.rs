//! A plain, obviously-correct CPU implementation of every op, used to check the GPU kernels.
//! Layout NCHW; sums accumulate in f64 so the reference is the more accurate side of a comparison.

pub mod backward;
pub mod train;

use crate::graph::{BatchNorm, Conv, Graph, Linear, MaxPool, Op, Shape};

/// ReLU that keeps NaN (the engine's rule, as in PyTorch: a NaN input gives a NaN output;
/// `f64::max` would drop it).
fn relu64(v: f64) -> f64 {
    if v.is_nan() { v } else { v.max(0.0) }
}

/// max that keeps NaN, as PyTorch's max pool does.
fn max_nan(a: f32, b: f32) -> f32 {
    if a.is_nan() || b.is_nan() {
        f32::NAN
    } else {
        a.max(b)
    }
}

/// Convolution with the fused epilogue: + bias, + residual, then ReLU.
pub fn conv2d(
    x: &[f32],
    batch: usize,
    in_shape: Shape,
    conv: &Conv,
    residual: Option<&[f32]>,
    out_shape: Shape,
) -> Vec<f32> {
    let [ic, ih, iw] = in_shape;
    let [oc, oh, ow] = out_shape;
    let [kh, kw] = conv.kernel();
    let [sh, sw] = conv.stride;
    let (pt, pl) = (conv.pad[0] as isize, conv.pad[1] as isize);
    let w = &conv.weight.data;
    let mut out = vec![0.0f32; batch * oc * oh * ow];
    for n in 0..batch {
        for o in 0..oc {
            for y in 0..oh {
                for xo in 0..ow {
                    let mut acc = conv.bias.as_ref().map_or(0.0, |b| b[o] as f64);
                    for c in 0..ic {
                        for ky in 0..kh {
                            let iy = (y * sh + ky) as isize - pt;
                            if iy < 0 || iy >= ih as isize {
                                continue;
                            }
                            for kx in 0..kw {
                                let ix = (xo * sw + kx) as isize - pl;
                                if ix < 0 || ix >= iw as isize {
                                    continue;
                                }
                                let xv = x[((n * ic + c) * ih + iy as usize) * iw + ix as usize];
                                let wv = w[((o * ic + c) * kh + ky) * kw + kx];
                                acc += xv as f64 * wv as f64;
                            }
                        }
                    }
                    let i = ((n * oc + o) * oh + y) * ow + xo;
                    if let Some(r) = residual {
                        acc += r[i] as f64;
                    }
                    out[i] = if conv.relu { relu64(acc) } else { acc } as f32;
                }
            }
        }
    }
    out
}

pub fn batch_norm(x: &[f32], batch: usize, shape: Shape, bn: &BatchNorm) -> Vec<f32> {
    let [c, h, w] = shape;
    let mut out = x.to_vec();
    for n in 0..batch {
        for ch in 0..c {
            let inv = 1.0 / (bn.var[ch] as f64 + bn.eps as f64).sqrt();
            for v in &mut out[(n * c + ch) * h * w..][..h * w] {
                let y = (*v as f64 - bn.mean[ch] as f64) * inv * bn.gamma[ch] as f64
                    + bn.beta[ch] as f64;
                *v = if bn.relu { relu64(y) } else { y } as f32;
            }
        }
    }
    out
}

pub fn relu(x: &[f32]) -> Vec<f32> {
    x.iter().map(|&v| relu64(v as f64) as f32).collect()
}

pub fn max_pool(
    x: &[f32],
    batch: usize,
    in_shape: Shape,
    pool: &MaxPool,
    out_shape: Shape,
) -> Vec<f32> {
    let [c, ih, iw] = in_shape;
    let [_, oh, ow] = out_shape;
    let mut out = vec![0.0f32; batch * c * oh * ow];
    for nc in 0..batch * c {
        for y in 0..oh {
            for xo in 0..ow {
                let mut m = f32::NEG_INFINITY;
                for ky in 0..pool.kernel[0] {
                    for kx in 0..pool.kernel[1] {
                        let iy = (y * pool.stride[0] + ky) as isize - pool.pad[0] as isize;
                        let ix = (xo * pool.stride[1] + kx) as isize - pool.pad[1] as isize;
                        if iy >= 0 && ix >= 0 && (iy as usize) < ih && (ix as usize) < iw {
                            m = max_nan(m, x[(nc * ih + iy as usize) * iw + ix as usize]);
                        }
                    }
                }
                out[(nc * oh + y) * ow + xo] = m;
            }
        }
    }
    out
}

pub fn global_avg_pool(x: &[f32], batch: usize, shape: Shape) -> Vec<f32> {
    let [c, h, w] = shape;
    (0..batch * c)
        .map(|nc| {
            (x[nc * h * w..][..h * w]
                .iter()
                .map(|&v| v as f64)
                .sum::<f64>()
                / (h * w) as f64) as f32
        })
        .collect()
}

pub fn shortcut_a(
    x: &[f32],
    batch: usize,
    in_shape: Shape,
    stride: usize,
    pad_before: usize,
    out_shape: Shape,
) -> Vec<f32> {
    let [ic, ih, iw] = in_shape;
    let [oc, oh, ow] = out_shape;
    let mut out = vec![0.0f32; batch * oc * oh * ow];
    for n in 0..batch {
        for c in 0..ic {
            for y in 0..oh {
                for xo in 0..ow {
                    out[((n * oc + c + pad_before) * oh + y) * ow + xo] =
                        x[((n * ic + c) * ih + y * stride) * iw + xo * stride];
                }
            }
        }
    }
    out
}

pub fn add(a: &[f32], b: &[f32], relu: bool) -> Vec<f32> {
    a.iter()
        .zip(b)
        .map(|(x, y)| {
            if relu {
                relu64((x + y) as f64) as f32
            } else {
                x + y
            }
        })
        .collect()
}

pub fn linear(x: &[f32], batch: usize, lin: &Linear) -> Vec<f32> {
    let [out, inp] = [lin.weight.shape[0], lin.weight.shape[1]];
    let mut y = vec![0.0f32; batch * out];
    for n in 0..batch {
        for o in 0..out {
            let mut acc = lin.bias.as_ref().map_or(0.0, |b| b[o] as f64);
            for i in 0..inp {
                acc += x[n * inp + i] as f64 * lin.weight.data[o * inp + i] as f64;
            }
            y[n * out + o] = acc as f32;
        }
    }
    y
}

pub fn softmax(x: &[f32], batch: usize) -> Vec<f32> {
    let row = x.len() / batch;
    x.chunks(row)
        .flat_map(|r| {
            let m = r.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)) as f64;
            let e: Vec<f64> = r.iter().map(|&v| (v as f64 - m).exp()).collect();
            let s: f64 = e.iter().sum();
            e.into_iter().map(move |v| (v / s) as f32)
        })
        .collect()
}

/// Runs a whole graph on the CPU and returns every value (index = node id).
pub fn run_graph(g: &Graph, input: &[f32], batch: usize) -> Vec<Vec<f32>> {
    let mut values: Vec<Vec<f32>> = Vec::with_capacity(g.nodes.len());
    for node in &g.nodes {
        let inp = |k: usize| &values[node.inputs[k]];
        let in_shape = |k: usize| g.shape(node.inputs[k]);
        let v = match &node.op {
            Op::Input => input.to_vec(),
            Op::Conv(c) => conv2d(
                inp(0),
                batch,
                in_shape(0),
                c,
                node.inputs.get(1).map(|&r| values[r].as_slice()),
                node.shape,
            ),
            Op::BatchNorm(bn) => batch_norm(inp(0), batch, node.shape, bn),
            Op::Relu => relu(inp(0)),
            Op::MaxPool(p) => max_pool(inp(0), batch, in_shape(0), p, node.shape),
            Op::GlobalAvgPool => global_avg_pool(inp(0), batch, in_shape(0)),
            Op::ShortcutA { stride, pad_before } => {
                shortcut_a(inp(0), batch, in_shape(0), *stride, *pad_before, node.shape)
            }
            Op::Add { relu } => add(inp(0), inp(1), *relu),
            Op::Linear(l) => linear(inp(0), batch, l),
            Op::Softmax => softmax(inp(0), batch),
        };
        values.push(v);
    }
    values
}
