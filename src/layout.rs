//! How activations lie in GPU memory: channel-blocked by 4 ("NC4HW4").
//!
//! An activation of per-image shape (C, H, W) is stored as `[N][ceil(C/4)][H][W][4]` floats: one
//! `vec4<f32>` holds 4 consecutive channels of one pixel. Channels past C (the padding of the last
//! block) are zero, and every kernel keeps them zero. Why: on CPU adapters (lavapipe) each memory
//! access costs one scalar load per lane, so a kernel wants every load to bring 4 useful values;
//! with this layout a convolution's inner loop loads one vec4 per pixel per 4 input channels, and
//! stores one vec4 per pixel per 4 output channels. The graph and the public API stay NCHW; the
//! session converts at its boundaries (input upload, read-back).

use crate::tensor::Shape;

/// Channel blocks of a shape: ceil(C / 4).
pub fn blocks(shape: Shape) -> usize {
    shape[0].div_ceil(4)
}

/// Floats per image in the blocked layout (channels padded to a multiple of 4).
pub fn blocked_len(shape: Shape) -> usize {
    blocks(shape) * 4 * shape[1] * shape[2]
}

/// NCHW -> blocked, for `batch` images (missing trailing images read as zero).
pub fn to_blocked(x: &[f32], batch: usize, shape: Shape) -> Vec<f32> {
    let [c, h, w] = shape;
    let hw = h * w;
    let c4 = blocks(shape);
    let mut out = vec![0.0f32; batch * blocked_len(shape)];
    for n in 0..batch {
        for ch in 0..c {
            let src = (n * c + ch) * hw;
            if src >= x.len() {
                return out;
            }
            let dst = (n * c4 + ch / 4) * hw * 4 + ch % 4;
            for (p, &v) in x[src..(src + hw).min(x.len())].iter().enumerate() {
                out[dst + 4 * p] = v;
            }
        }
    }
    out
}

/// Blocked -> NCHW, for `batch` images.
pub fn from_blocked(x: &[f32], batch: usize, shape: Shape) -> Vec<f32> {
    let [c, h, w] = shape;
    let hw = h * w;
    let c4 = blocks(shape);
    let mut out = vec![0.0f32; batch * c * hw];
    for n in 0..batch {
        for ch in 0..c {
            let src = (n * c4 + ch / 4) * hw * 4 + ch % 4;
            let dst = (n * c + ch) * hw;
            for p in 0..hw {
                out[dst + p] = x[src + 4 * p];
            }
        }
    }
    out
}

/// Pads a per-channel vector to whole blocks of 4 with `fill`.
pub fn pad_channels(v: &[f32], fill: f32) -> Vec<f32> {
    let mut out = v.to_vec();
    out.resize(v.len().div_ceil(4) * 4, fill);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocked_round_trip() {
        let shape = [6, 2, 3];
        let x: Vec<f32> = (0..2 * 36).map(|i| i as f32).collect();
        let b = to_blocked(&x, 2, shape);
        assert_eq!(b.len(), 2 * 8 * 6);
        // channel 5 of image 1, pixel 4 -> block 1, lane 1
        assert_eq!(b[((2 + 1) * 6 + 4) * 4 + 1], x[(6 + 5) * 6 + 4]);
        // padding channels stay zero
        assert_eq!(b[(6 + 4) * 4 + 2], 0.0);
        assert_eq!(from_blocked(&b, 2, shape), x);
    }
}
