//! WGSL source of the tuned convolution kernels, generated per tile shape.
//!
//! One kernel family, implicit GEMM on the channel-blocked layout (see `ops::layout`): an
//! invocation accumulates `tm` output channels x `px` output pixels in registers, looping over
//! K = kernel_h x kernel_w x input channel blocks. Per step of 4 input channels it loads one vec4
//! per pixel (4 channels of that pixel) and the `tm` x 4 weights of the step, then does
//! 4 x tm x px multiply-adds. Shapes come in a uniform, so one pipeline serves every layer; only
//! the tile shape and the variant below are baked into the text (registers cannot be indexed, so
//! the accumulators are written out, which WGSL loops and arrays would not let the compiler do).
//!
//! Variants:
//! - `subgroup8`: for adapters whose subgroups are exactly 8 lanes (lavapipe: one SIMD lane per
//!   invocation, AVX). The 8 lanes of a subgroup work on 8 different pixels of the same channel
//!   tile, so they need the same weights: each lane loads 1/8th of a step's weights and
//!   `subgroupBroadcast` hands them to the others. On lavapipe every buffer load is a per-lane
//!   loop, so this cuts the weight loads 8x.
//! - otherwise weights are read straight from memory by every invocation (the right thing on real
//!   GPUs, whose caches broadcast a uniform address).
//! - `pointwise`: 1x1 kernels without padding (any stride): no window loop, no bounds masks.
//! - `batched` (with `pointwise`): a batch of independent 1x1 products with one weight set per
//!   image, for Winograd's 16 transform positions (see `winograd.rs`).
//!
//! Weights are packed by `pack_tiled` as [tile][kernel_h][kernel_w][in_c4][4][tm] floats: the
//! `tm` x 4 block of one step is `tm` consecutive vec4s, and a tile's weights are contiguous.
//!
//! Precision (`source`'s second argument): `F32` as above. `F16` (needs SHADER_F16) stores the
//! same packed weights as f16 (`pack_tiled_f16`, half the bytes), converts each loaded input
//! vec4 to f16, and multiplies and accumulates in f16; the accumulators become f32 for the
//! epilogue, so bias, residual, ReLU and the stored activations stay f32 and every other kernel
//! is unchanged. The subgroup variant broadcasts the weights as packed u32 pairs (two f16 each),
//! not as f16: 16-bit subgroup operations need Vulkan's shaderSubgroupExtendedTypes, which wgpu
//! does not enable; each lane unpacks them after the broadcast.

use crate::precision::Precision;
use std::fmt::Write;

/// The shape of the work of one invocation, and the variant of the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConvTile {
    /// Output channels per tile: a multiple of 8 (subgroup8) or of 4.
    pub tm: u32,
    /// Output pixels per invocation.
    pub px: u32,
    /// 1x1 kernel, no padding.
    pub pointwise: bool,
    /// Share weights across 8-lane subgroups.
    pub subgroup8: bool,
    /// A batch of independent 1x1 products (Winograd's 16 positions): "image" n has its own
    /// weights, and tiles never straddle images. Only with `pointwise`.
    pub batched: bool,
}

impl ConvTile {
    /// Invocations that share one channel tile and split its pixels: a subgroup, or a workgroup.
    pub fn group(&self) -> u32 {
        if self.subgroup8 { 8 } else { 64 }
    }

    /// Output pixels covered by one tile.
    pub fn tile_pixels(&self) -> u32 {
        self.group() * self.px
    }

    pub fn name(&self) -> String {
        format!(
            "conv_{}{}_{}x{}",
            if self.batched {
                "gemm16"
            } else if self.pointwise {
                "1x1"
            } else {
                "kxk"
            },
            if self.subgroup8 { "_sg8" } else { "" },
            self.tm,
            self.px
        )
    }

    pub fn is_valid(&self) -> bool {
        let unit = if self.subgroup8 { 8 } else { 4 };
        self.tm >= unit
            && self.tm.is_multiple_of(unit)
            && self.tm <= 64
            && (1..=8).contains(&self.px)
    }
}

/// Mirrors `Params` in the generated WGSL.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub struct FastConvParams {
    /// batch x out_h x out_w: pixels are numbered across the batch.
    pub pixels: u32,
    pub out_hw: u32,
    pub out_w: u32,
    pub out_c4: u32,
    pub in_c4: u32,
    pub in_h: u32,
    pub in_w: u32,
    pub in_hw: u32,
    pub kernel_h: u32,
    pub kernel_w: u32,
    pub stride_h: u32,
    pub stride_w: u32,
    pub pad_top: u32,
    pub pad_left: u32,
    pub flags: u32,
    pub tiles_m: u32,
    pub tiles_n: u32,
    /// vec4s of packed weights per channel tile.
    pub tile_stride: u32,
    /// Batched kernels: the number of images (weight sets); `pixels` is then per image.
    pub images: u32,
    pub _pad: u32,
}

/// The name of one variant in one precision (the pipeline's label; f16 ones end in `_f16`).
pub fn kernel_name(t: ConvTile, precision: Precision) -> String {
    match precision {
        Precision::F32 => t.name(),
        Precision::F16 => format!("{}_f16", t.name()),
    }
}

/// The WGSL of one variant in one precision.
pub fn source(t: ConvTile, precision: Precision) -> String {
    assert!(t.is_valid(), "invalid conv tile {t:?}");
    let (tm, px, g) = (t.tm as usize, t.px as usize, t.group());
    let q = tm / 4;
    let f16 = precision == Precision::F16;
    // The type of the products and accumulators.
    let ty = if f16 { "f16" } else { "f32" };
    let mut s = String::new();
    let w = &mut s;
    macro_rules! line { ($($a:tt)*) => { writeln!(w, $($a)*).unwrap() } }
    if f16 {
        line!("enable f16;");
    }
    line!(
        "// Generated by src/ops/conv/wgsl.rs: {} ({} output channels x {} pixels per invocation, {}{}{}).",
        kernel_name(t, precision),
        tm,
        px,
        if f16 {
            "f16 weights and arithmetic"
        } else {
            "f32"
        },
        if t.pointwise {
            ", 1x1 without padding"
        } else {
            ""
        },
        if t.subgroup8 {
            ", weights shared across 8-lane subgroups"
        } else {
            ""
        }
    );
    line!("{}", PARAMS_WGSL);
    // Packed weights: f32 vec4s; f16 vec4s; or, to broadcast them across a subgroup as 32-bit
    // values, the same f16 bytes seen as u32 pairs.
    let weight_type = match (f16, t.subgroup8) {
        (false, _) => "vec4<f32>",
        (true, false) => "vec4<f16>",
        (true, true) => "vec2<u32>",
    };
    line!("@group(0) @binding(1) var<storage, read> weight: array<{weight_type}>;");
    if f16 && t.subgroup8 {
        line!("");
        line!("// 4 f16 weights packed in two u32 (component 0 in the low half).");
        line!("fn unpack_f16x4(u: vec2<u32>) -> vec4<f16> {{");
        line!("    return vec4<f16>(vec4<f32>(unpack2x16float(u.x), unpack2x16float(u.y)));");
        line!("}}");
        line!("");
    }
    line!("@compute @workgroup_size(64)");
    if t.subgroup8 {
        line!(
            "fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,"
        );
        line!(
            "        @builtin(subgroup_id) sg: u32, @builtin(subgroup_invocation_id) lane: u32) {{"
        );
        line!("    let t = (wg.x + wg.y * groups.x) * 8u + sg;");
    } else {
        line!(
            "fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,"
        );
        line!("        @builtin(local_invocation_index) lane: u32) {{");
        line!("    let t = wg.x + wg.y * groups.x;");
    }
    if t.batched {
        line!(
            "    // Tile t: pixel tile tn (fastest) of channel tile tmi of image (weight set) img."
        );
        line!("    let tn = t % p.tiles_n;");
        line!("    let live = t / (p.tiles_n * p.tiles_m) < p.images;");
        line!("    let tmi = (t / p.tiles_n) % p.tiles_m;");
        line!("    let img = min(t / (p.tiles_n * p.tiles_m), p.images - 1u);");
    } else {
        line!(
            "    // Tile t: pixel tile tn (fastest) of channel tile tmi; pixels run across the batch."
        );
        line!("    let tn = t % p.tiles_n;");
        line!("    let live = t / p.tiles_n < p.tiles_m;");
        line!("    let tmi = min(t / p.tiles_n, p.tiles_m - 1u);");
    }
    for i in 0..px {
        line!("    let g{i} = (tn * {px}u + {i}u) * {g}u + lane;");
        line!("    let gc{i} = min(g{i}, p.pixels - 1u);");
        if t.batched {
            line!("    let n{i} = img;");
        } else {
            line!("    let n{i} = gc{i} / p.out_hw;");
        }
        line!("    let q{i} = gc{i} % p.out_hw;");
        line!("    let iy{i} = i32(q{i} / p.out_w * p.stride_h) - i32(p.pad_top);");
        line!("    let ix{i} = i32(q{i} % p.out_w * p.stride_w) - i32(p.pad_left);");
        line!("    let base{i} = n{i} * p.in_c4 * p.in_hw;");
    }
    for qq in 0..q {
        for i in 0..px {
            line!("    var a{qq}_{i} = vec4<{ty}>(0.0);");
        }
    }
    let weight_tile = if t.batched {
        "(img * p.tiles_m + tmi)"
    } else {
        "tmi"
    };
    if t.subgroup8 {
        line!("    var wi = {weight_tile} * p.tile_stride + lane;");
    } else {
        line!("    var wi = {weight_tile} * p.tile_stride;");
    }
    let ind = if t.pointwise { "    " } else { "        " };
    if t.pointwise {
        for i in 0..px {
            line!("    var o{i} = base{i} + u32(iy{i}) * p.in_w + u32(ix{i});");
        }
    } else {
        line!("    for (var ky = 0; ky < i32(p.kernel_h); ky++) {{");
        line!("    for (var kx = 0; kx < i32(p.kernel_w); kx++) {{");
        for i in 0..px {
            line!("        let y{i} = iy{i} + ky;");
            line!("        let x{i} = ix{i} + kx;");
            line!(
                "        let v{i} = y{i} >= 0 && x{i} >= 0 && y{i} < i32(p.in_h) && x{i} < i32(p.in_w);"
            );
            line!("        var o{i} = base{i} + select(0u, u32(y{i}) * p.in_w + u32(x{i}), v{i});");
        }
    }
    line!("{ind}for (var c = 0u; c < p.in_c4; c++) {{");
    if t.subgroup8 {
        for j in 0..tm / 8 {
            line!("{ind}    let w{j} = weight[wi + {}u];", j * 8);
        }
    }
    for i in 0..px {
        let load = if t.pointwise {
            format!("input[o{i}]")
        } else {
            format!("select(vec4<f32>(0.0), input[o{i}], v{i})")
        };
        if f16 {
            line!("{ind}    let x{i} = vec4<f16>({load});");
        } else {
            line!("{ind}    let x{i} = {load};");
        }
        line!("{ind}    o{i} += p.in_hw;");
    }
    for kk in 0..4 {
        let comp = ["x", "y", "z", "w"][kk];
        for qq in 0..q {
            // vec4 number v of the step's tm vec4s holds input channel kk, output channels 4qq..4qq+3
            let v = kk * q + qq;
            if t.subgroup8 && f16 {
                line!(
                    "{ind}    let b{kk}_{qq} = unpack_f16x4(subgroupBroadcast(w{}, {}u));",
                    v / 8,
                    v % 8
                );
            } else if t.subgroup8 {
                line!(
                    "{ind}    let b{kk}_{qq} = subgroupBroadcast(w{}, {}u);",
                    v / 8,
                    v % 8
                );
            } else {
                line!("{ind}    let b{kk}_{qq} = weight[wi + {v}u];");
            }
            for i in 0..px {
                line!("{ind}    a{qq}_{i} = fma(b{kk}_{qq}, vec4<{ty}>(x{i}.{comp}), a{qq}_{i});");
            }
        }
    }
    line!("{ind}    wi += {tm}u;");
    line!("{ind}}}");
    if !t.pointwise {
        line!("    }}");
        line!("    }}");
    }
    if t.subgroup8 {
        line!(
            "    // The tile's {q} bias vec4s: loaded once by the first lanes, broadcast to all."
        );
        line!(
            "    let bias_lane = bias[tmi * {q}u + min(lane, {}u)];",
            q - 1
        );
    }
    for qq in 0..q {
        if t.subgroup8 {
            line!("    let bias{qq} = subgroupBroadcast(bias_lane, {qq}u);");
        } else {
            line!("    let bias{qq} = bias[tmi * {q}u + {qq}u];");
        }
        for i in 0..px {
            let acc = if f16 {
                format!("vec4<f32>(a{qq}_{i})")
            } else {
                format!("a{qq}_{i}")
            };
            line!(
                "    store(live && g{i} < p.pixels, n{i}, q{i}, tmi * {q}u + {qq}u, {acc} + bias{qq});"
            );
        }
    }
    line!("}}");
    line!("{}", STORE_WGSL);
    s
}

const PARAMS_WGSL: &str = "
struct Params {
    pixels: u32,
    out_hw: u32,
    out_w: u32,
    out_c4: u32,
    in_c4: u32,
    in_h: u32,
    in_w: u32,
    in_hw: u32,
    kernel_h: u32,
    kernel_w: u32,
    stride_h: u32,
    stride_w: u32,
    pad_top: u32,
    pad_left: u32,
    flags: u32,
    tiles_m: u32,
    tiles_n: u32,
    tile_stride: u32,
    images: u32,
    _pad0: u32,
}

const HAS_RESIDUAL: u32 = 2u;
const RELU: u32 = 4u;

@group(0) @binding(0) var<storage, read> input: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> bias: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> residual: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> output: array<vec4<f32>>;
@group(0) @binding(5) var<uniform> p: Params;
";

const STORE_WGSL: &str = "
// Epilogue for one output vec4 (4 channels of one pixel, bias added): + residual, then ReLU.
fn store(ok: bool, n: u32, pixel: u32, oc4: u32, acc: vec4<f32>) {
    if (!ok || oc4 >= p.out_c4) {
        return;
    }
    let index = (n * p.out_c4 + oc4) * p.out_hw + pixel;
    var v = acc;
    if ((p.flags & HAS_RESIDUAL) != 0u) {
        v += residual[index];
    }
    if ((p.flags & RELU) != 0u) {
        v = max(v, vec4<f32>(0.0));
    }
    output[index] = v;
}";

/// Packs [out_c][in_c][kh][kw] weights for `tile` kernels: [tiles_m][kh][kw][in_c4][4][tm], zero
/// where an output or input channel is padding.
pub fn pack_tiled(weight: &[f32], shape: [usize; 4], tm: usize) -> Vec<f32> {
    let [oc, ic, kh, kw] = shape;
    let ic4 = ic.div_ceil(4);
    let tiles = oc.div_ceil(tm);
    let per_tile = kh * kw * ic4 * 4 * tm;
    let mut out = vec![0.0f32; tiles * per_tile];
    for o in 0..oc {
        for c in 0..ic {
            for y in 0..kh {
                for x in 0..kw {
                    let k = ((y * kw + x) * ic4 + c / 4) * 4 + c % 4;
                    out[(o / tm) * per_tile + k * tm + o % tm] =
                        weight[((o * ic + c) * kh + y) * kw + x];
                }
            }
        }
    }
    out
}

/// [`pack_tiled`] as f16 bit patterns (round to nearest even; beyond f16's range, infinity).
pub fn pack_tiled_f16(weight: &[f32], shape: [usize; 4], tm: usize) -> Vec<u16> {
    to_f16_bits(&pack_tiled(weight, shape, tm))
}

/// f32 values as f16 bit patterns, for buffers the f16 kernels read.
pub fn to_f16_bits(values: &[f32]) -> Vec<u16> {
    values
        .iter()
        .map(|&v| half::f16::from_f32(v).to_bits())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_is_valid_wgsl() {
        for (subgroup8, precision) in [false, true]
            .into_iter()
            .flat_map(|sg| [(sg, Precision::F32), (sg, Precision::F16)])
        {
            for pointwise in [false, true] {
                for (tm, px, batched) in [
                    (8, 1, false),
                    (16, 4, pointwise),
                    (24, 3, false),
                    (32, 2, false),
                ] {
                    let t = ConvTile {
                        tm,
                        px,
                        pointwise,
                        subgroup8,
                        batched,
                    };
                    let name = kernel_name(t, precision);
                    let src = source(t, precision);
                    let module = naga::front::wgsl::parse_str(&src)
                        .unwrap_or_else(|e| panic!("{name}: {}", e.emit_to_string(&src)));
                    naga::valid::Validator::new(
                        naga::valid::ValidationFlags::all(),
                        naga::valid::Capabilities::all(),
                    )
                    .validate(&module)
                    .unwrap_or_else(|e| panic!("{name}: {e:?}"));
                }
            }
        }
    }

    #[test]
    fn f16_weights_are_the_f32_ones_rounded() {
        let w: Vec<f32> = (0..2 * 3 * 3 * 3).map(|i| i as f32 * 0.1 - 2.0).collect();
        let packed = pack_tiled(&w, [2, 3, 3, 3], 8);
        let halves = pack_tiled_f16(&w, [2, 3, 3, 3], 8);
        assert_eq!(packed.len(), halves.len());
        for (&f, &h) in packed.iter().zip(&halves) {
            let back = half::f16::from_bits(h).to_f32();
            assert!((back - f).abs() <= f.abs() * 4.9e-4, "{f} -> {back}");
        }
    }
}
