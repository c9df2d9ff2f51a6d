//! The stem rewrite: a stride-2 convolution on the network input becomes a stride-1 convolution
//! on a "space-to-depth" input, where every 2x2 block of pixels is folded into 4x the channels.
//!
//! ResNet's stem (7x7/2 on 3 channels) is the worst layer for the tuned kernels: 3 channels fill
//! 3/4 of a vec4 step, and each of the 49 kernel taps runs a single step with its own bounds
//! masks. After the rewrite it is a 4x4/1 convolution on 12 channels (3 full vec4 steps per tap,
//! 16 taps, no padding), the same arithmetic with zero weights for the taps past 7x7. The session
//! applies [`SpaceToDepth::apply`] to the input on the host as it uploads it.

use super::{Graph, Op, Shape};
use crate::tensor::Tensor;

/// How the input is folded: zero padding first, then 2x2 blocks into channels
/// (new channel = c * 4 + dy * 2 + dx).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpaceToDepth {
    /// The input shape the caller provides.
    pub original: Shape,
    /// Zero rows added above the input before folding (the stem's top padding).
    pub pad_top: usize,
    /// Zero columns added left of the input before folding.
    pub pad_left: usize,
    /// The folded shape: (4C, Hp/2, Wp/2).
    pub folded: Shape,
}

impl SpaceToDepth {
    /// Folds `batch` NCHW images of the original shape.
    pub fn apply(&self, x: &[f32], batch: usize) -> Vec<f32> {
        let [c, h, w] = self.original;
        let [fc, fh, fw] = self.folded;
        let mut out = vec![0.0f32; batch * fc * fh * fw];
        for n in 0..batch {
            for ch in 0..c {
                for y in 0..h {
                    let py = y + self.pad_top;
                    for xx in 0..w {
                        let px = xx + self.pad_left;
                        let src = ((n * c + ch) * h + y) * w + xx;
                        let Some(&v) = x.get(src) else {
                            return out;
                        };
                        let oc = ch * 4 + (py % 2) * 2 + px % 2;
                        out[((n * fc + oc) * fh + py / 2) * fw + px / 2] = v;
                    }
                }
            }
        }
        out
    }
}

/// Rewrites `g` in place if its input feeds exactly one node, a stride-2 convolution of few
/// channels; returns how the input must be folded to match.
pub fn fold_stem(g: &mut Graph) -> Option<SpaceToDepth> {
    let readers: Vec<usize> = (1..g.nodes.len())
        .filter(|&i| g.nodes[i].inputs.contains(&0))
        .collect();
    let &[stem] = readers.as_slice() else {
        return None;
    };
    if g.output == 0 || g.taps.values().any(|&v| v == 0) {
        return None;
    }
    let node = &g.nodes[stem];
    let Op::Conv(conv) = &node.op else {
        return None;
    };
    let [c, h, w] = g.input_shape();
    let [kh, kw] = conv.kernel();
    if conv.stride != [2, 2] || node.inputs.len() != 1 || c > 16 || kh < 2 || kw < 2 {
        return None;
    }
    let [_, oh, ow] = node.shape;
    let (fkh, fkw) = (kh.div_ceil(2), kw.div_ceil(2));
    // Folded size so that a stride-1 fkh x fkw window gives the same oh x ow outputs.
    let (fh, fw) = (oh - 1 + fkh, ow - 1 + fkw);
    let (pad_top, pad_left) = (conv.pad[0], conv.pad[1]);
    if 2 * fh < h + pad_top || 2 * fw < w + pad_left {
        return None;
    }
    let oc = conv.out_channels();
    let mut weight = vec![0.0f32; oc * 4 * c * fkh * fkw];
    for o in 0..oc {
        for ch in 0..c {
            for ky in 0..kh {
                for kx in 0..kw {
                    let fc = ch * 4 + (ky % 2) * 2 + kx % 2;
                    weight[((o * 4 * c + fc) * fkh + ky / 2) * fkw + kx / 2] =
                        conv.weight.data[((o * c + ch) * kh + ky) * kw + kx];
                }
            }
        }
    }
    let weight = Tensor::new(vec![oc, 4 * c, fkh, fkw], weight).ok()?;
    let s2d = SpaceToDepth {
        original: [c, h, w],
        pad_top,
        pad_left,
        folded: [4 * c, fh, fw],
    };
    g.nodes[0].shape = s2d.folded;
    // The folded weights replace the stem's; bias and ReLU stay as they are.
    if let Op::Conv(conv) = &mut g.nodes[stem].op {
        conv.weight = weight;
        conv.stride = [1, 1];
        conv.pad = [0; 4];
    }
    Some(s2d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::Conv;
    use crate::reference::run_graph;
    use crate::tensor::SplitMix64;

    #[test]
    fn folded_stem_computes_the_same() {
        let mut rng = SplitMix64(9);
        for (c, h, w, k, pad) in [(3, 23, 21, 7, 3), (1, 8, 9, 3, 1), (2, 10, 10, 4, 0)] {
            let mut g = Graph::new([c, h, w]);
            let conv = Conv {
                weight: Tensor::new(vec![5, c, k, k], rng.normal_vec(5 * c * k * k, 0.3)).unwrap(),
                bias: Some(rng.normal_vec(5, 0.1)),
                stride: [2, 2],
                pad: [pad; 4],
                relu: true,
            };
            let y = g.conv("stem", 0, conv).unwrap();
            g.relu("after", y);
            let mut folded = g.clone();
            let s2d = fold_stem(&mut folded).expect("foldable");
            let x = rng.normal_vec(2 * c * h * w, 1.0);
            let want = run_graph(&g, &x, 2).swap_remove(g.output);
            let got = run_graph(&folded, &s2d.apply(&x, 2), 2).swap_remove(folded.output);
            let err = crate::tensor::max_abs_diff(&want, &got);
            assert!(err < 1e-5, "{c}x{h}x{w} k{k} p{pad}: {err}");
        }
    }
}
