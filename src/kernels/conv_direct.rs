//! The direct convolutions: WGSL generated per tile shape.
//!
//! One kernel family, implicit GEMM on the channel-blocked layout (see `layout`): an invocation
//! accumulates `tm` output channels x `px` output pixels in registers, looping over
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
//!   image, for Winograd's 16 transform positions (see `ops::conv::winograd`).
//! - `split` (split-K): workgroup row z sums only `split_c4` input channel blocks (of every
//!   window position) and writes its raw partial sums, no bias, no epilogue, to plane z of the
//!   output; shaders/split_reduce.wgsl adds the planes up and applies bias and epilogue. For
//!   layers whose output has too few tiles to fill a GPU, and for layers whose K loop would pass
//!   the loop budget of an invocation (Mesa's llvmpipe stops a shader's loops after 65,535
//!   iterations in all, silently: see `plan::LOOP_BUDGET`).
//!
//! Bindings: input 0, weight 1, bias 2, residual 3, output 4, params 5; split kernels have no
//! bias or residual: input 0, weight 1, output (the partial sums) 2, params 3.
//!
//! Weights are packed by `ops::conv::direct::pack_tiled` as `[tile][kernel_h][kernel_w][in_c4][4][tm]`
//! floats: the `tm` x 4 block of one step is `tm` consecutive vec4s, and a tile's weights are
//! contiguous.
//!
//! Precision (`source`'s second argument): `F32` as above. `F16` (needs SHADER_F16) stores the
//! same packed weights as f16 (half the bytes), converts each loaded input vec4 to f16, and
//! multiplies and accumulates in f16; the accumulators become f32 for the epilogue, so bias,
//! residual, ReLU and the stored activations stay f32 and every other kernel is unchanged. The
//! subgroup variant broadcasts the weights as packed u32 pairs (two f16 each), not as f16:
//! 16-bit subgroup operations need Vulkan's shaderSubgroupExtendedTypes, which wgpu does not
//! enable; each lane unpacks them after the broadcast.

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
    /// Split-K: partial sums over a range of input channels (never with `batched`).
    pub split: bool,
}

impl ConvTile {
    /// A plain tile: `tm` channels x `px` pixels, no variant.
    pub const fn new(tm: u32, px: u32) -> Self {
        Self {
            tm,
            px,
            pointwise: false,
            subgroup8: false,
            batched: false,
            split: false,
        }
    }

    /// Invocations that share one channel tile and split its pixels: a subgroup, or a workgroup.
    pub fn group(&self) -> u32 {
        if self.subgroup8 { 8 } else { super::WORKGROUP }
    }

    /// Output pixels covered by one tile.
    pub fn tile_pixels(&self) -> u32 {
        self.group() * self.px
    }

    /// The pipeline label, e.g. `conv_kxk_sg8_32x4` or `conv_1x1_16x4_split`.
    pub fn name(&self) -> String {
        format!(
            "conv_{}{}_{}x{}{}",
            if self.batched {
                "gemm16"
            } else if self.pointwise {
                "1x1"
            } else {
                "kxk"
            },
            if self.subgroup8 { "_sg8" } else { "" },
            self.tm,
            self.px,
            if self.split { "_split" } else { "" }
        )
    }

    pub fn is_valid(&self) -> bool {
        let unit = if self.subgroup8 { 8 } else { 4 };
        self.tm >= unit
            && self.tm.is_multiple_of(unit)
            && self.tm <= 64
            && (1..=8).contains(&self.px)
            && (!self.batched || self.pointwise)
            && !(self.batched && self.split)
    }

    /// Every tile the planner and the tuner choose from (`plan::conv`): channel tiles of 8, 16
    /// and 32, 1, 2 or 4 pixels per invocation, with and without subgroups, for every variant.
    pub fn catalog() -> Vec<ConvTile> {
        let mut out = Vec::new();
        for subgroup8 in [false, true] {
            for (pointwise, batched, split) in [
                (false, false, false),
                (true, false, false),
                (true, true, false),
                (false, false, true),
                (true, false, true),
            ] {
                for tm in [8, 16, 32] {
                    for px in [1, 2, 4] {
                        out.push(ConvTile {
                            tm,
                            px,
                            pointwise,
                            subgroup8,
                            batched,
                            split,
                        });
                    }
                }
            }
        }
        out
    }
}

/// The name of one variant in one precision (the pipeline's label; f16 ones end in `_f16`).
pub fn kernel_name(t: ConvTile, precision: Precision) -> String {
    match precision {
        Precision::F32 => t.name(),
        Precision::F16 => format!("{}_f16", t.name()),
    }
}

/// The WGSL body of one variant in one precision (before `kernels::compose`).
pub fn source(t: ConvTile, precision: Precision) -> String {
    assert!(t.is_valid(), "invalid conv tile {t:?}");
    let (tm, px, g) = (t.tm as usize, t.px as usize, t.group());
    let q = tm / 4;
    let f16 = precision == Precision::F16;
    // The type of the products and accumulators.
    let ty = if f16 { "f16" } else { "f32" };
    let mut s = String::new();
    let w = &mut s;
    macro_rules! emit { ($($a:tt)*) => { writeln!(w, $($a)*).expect("writing to a String") } }
    if f16 {
        emit!("enable f16;");
    }
    emit!(
        "// Generated by src/kernels/conv_direct.rs: {} ({} output channels x {} pixels per invocation, {}{}{}{}).",
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
        },
        if t.split {
            ", split-K partial sums"
        } else {
            ""
        }
    );
    emit!("// include: layout");
    if !t.split {
        emit!("// include: epilogue");
    }
    emit!("{PARAMS_WGSL}");
    // Packed weights: f32 vec4s; f16 vec4s; or, to broadcast them across a subgroup as 32-bit
    // values, the same f16 bytes seen as u32 pairs.
    let weight_type = match (f16, t.subgroup8) {
        (false, _) => "vec4<f32>",
        (true, false) => "vec4<f16>",
        (true, true) => "vec2<u32>",
    };
    emit!("@group(0) @binding(0) var<storage, read> input: array<vec4<f32>>;");
    emit!("@group(0) @binding(1) var<storage, read> weight: array<{weight_type}>;");
    if t.split {
        emit!("@group(0) @binding(2) var<storage, read_write> output: array<vec4<f32>>;");
        emit!("@group(0) @binding(3) var<uniform> p: ConvDirectParams;");
    } else {
        emit!("@group(0) @binding(2) var<storage, read> bias: array<vec4<f32>>;");
        emit!("@group(0) @binding(3) var<storage, read> residual: array<vec4<f32>>;");
        emit!("@group(0) @binding(4) var<storage, read_write> output: array<vec4<f32>>;");
        emit!("@group(0) @binding(5) var<uniform> p: ConvDirectParams;");
    }
    if f16 && t.subgroup8 {
        emit!("");
        emit!("// 4 f16 weights packed in two u32 (component 0 in the low half).");
        emit!("fn unpack_f16x4(u: vec2<u32>) -> vec4<f16> {{");
        emit!("    return vec4<f16>(vec4<f32>(unpack2x16float(u.x), unpack2x16float(u.y)));");
        emit!("}}");
    }
    emit!("");
    if t.split {
        emit!(
            "// One output vec4's partial sum (4 channels of one pixel) into plane `split` of the output."
        );
        emit!("fn store(ok: bool, n: u32, pixel: u32, oc4: u32, acc: vec4<f32>, split: u32) {{");
        emit!("    if (ok && oc4 < p.out_c4) {{");
        emit!(
            "        output[split * p.split_stride + blocked_index(n, oc4, p.out_c4, p.out_hw, pixel)] = acc;"
        );
        emit!("    }}");
        emit!("}}");
    } else {
        emit!("// One output vec4 (4 channels of one pixel, bias added) through the epilogue.");
        emit!("fn store(ok: bool, n: u32, pixel: u32, oc4: u32, acc: vec4<f32>) {{");
        emit!("    if (ok && oc4 < p.out_c4) {{");
        emit!("        epilogue(blocked_index(n, oc4, p.out_c4, p.out_hw, pixel), acc, p.flags);");
        emit!("    }}");
        emit!("}}");
    }
    emit!("");
    emit!("@compute @workgroup_size(WORKGROUP)");
    if t.subgroup8 {
        emit!(
            "fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,"
        );
        emit!(
            "        @builtin(subgroup_id) sg: u32, @builtin(subgroup_invocation_id) lane: u32) {{"
        );
        emit!("    let t = (wg.x + wg.y * groups.x) * 8u + sg;");
    } else {
        emit!(
            "fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,"
        );
        emit!("        @builtin(local_invocation_index) lane: u32) {{");
        emit!("    let t = wg.x + wg.y * groups.x;");
    }
    if t.batched {
        emit!(
            "    // Tile t: pixel tile tn (fastest) of channel tile tmi of image (weight set) img."
        );
        emit!("    let tn = t % p.tiles_n;");
        emit!("    let live = t / (p.tiles_n * p.tiles_m) < p.images;");
        emit!("    let tmi = (t / p.tiles_n) % p.tiles_m;");
        emit!("    let img = min(t / (p.tiles_n * p.tiles_m), p.images - 1u);");
    } else {
        emit!(
            "    // Tile t: pixel tile tn (fastest) of channel tile tmi; pixels run across the batch."
        );
        emit!("    let tn = t % p.tiles_n;");
        emit!("    let live = t / p.tiles_n < p.tiles_m;");
        emit!("    let tmi = min(t / p.tiles_n, p.tiles_m - 1u);");
    }
    // The input channel blocks this invocation sums over: all, or the split's range.
    let (c_first, c_last) = if t.split {
        emit!(
            "    // Split z sums input channel blocks [c_begin, c_end) of every window position."
        );
        emit!("    let split = wg.z;");
        emit!("    let c_begin = split * p.split_c4;");
        emit!("    let c_end = min(c_begin + p.split_c4, p.in_c4);");
        ("c_begin", "c_end")
    } else {
        ("0u", "p.in_c4")
    };
    for i in 0..px {
        emit!("    let g{i} = (tn * {px}u + {i}u) * {g}u + lane;");
        emit!("    let gc{i} = min(g{i}, p.pixels - 1u);");
        if t.batched {
            emit!("    let n{i} = img;");
        } else {
            emit!("    let n{i} = gc{i} / p.out_hw;");
        }
        emit!("    let q{i} = gc{i} % p.out_hw;");
        emit!("    let iy{i} = i32(q{i} / p.out_w * p.stride_h) - i32(p.pad_top);");
        emit!("    let ix{i} = i32(q{i} % p.out_w * p.stride_w) - i32(p.pad_left);");
        if t.split {
            emit!("    let base{i} = (n{i} * p.in_c4 + c_begin) * p.in_hw;");
        } else {
            emit!("    let base{i} = n{i} * p.in_c4 * p.in_hw;");
        }
    }
    for qq in 0..q {
        for i in 0..px {
            emit!("    var a{qq}_{i} = vec4<{ty}>(0.0);");
        }
    }
    let weight_tile = if t.batched {
        "(img * p.tiles_m + tmi)"
    } else {
        "tmi"
    };
    let lane = if t.subgroup8 { " + lane" } else { "" };
    // The vec4 index of the weights of step (window position kk, channel block c) is
    // (kk * in_c4 + c) * tm past the tile's first.
    emit!("    let w_tile = {weight_tile} * p.tile_stride{lane};");
    let ind = if t.pointwise { "    " } else { "        " };
    if t.pointwise {
        emit!("    var wi = w_tile + {c_first} * {tm}u;");
        for i in 0..px {
            emit!("    var o{i} = base{i} + u32(iy{i}) * p.in_w + u32(ix{i});");
        }
    } else {
        if !t.split {
            // Without a split the steps run in packing order: one running index.
            emit!("    var wi = w_tile;");
        }
        emit!("    for (var ky = 0; ky < i32(p.kernel_h); ky++) {{");
        emit!("    for (var kx = 0; kx < i32(p.kernel_w); kx++) {{");
        if t.split {
            emit!(
                "        var wi = w_tile + ((u32(ky) * p.kernel_w + u32(kx)) * p.in_c4 + c_begin) * {tm}u;"
            );
        }
        for i in 0..px {
            emit!("        let y{i} = iy{i} + ky;");
            emit!("        let x{i} = ix{i} + kx;");
            emit!(
                "        let v{i} = y{i} >= 0 && x{i} >= 0 && y{i} < i32(p.in_h) && x{i} < i32(p.in_w);"
            );
            emit!("        var o{i} = base{i} + select(0u, u32(y{i}) * p.in_w + u32(x{i}), v{i});");
        }
    }
    emit!("{ind}for (var c = {c_first}; c < {c_last}; c++) {{");
    if t.subgroup8 {
        for j in 0..tm / 8 {
            emit!("{ind}    let w{j} = weight[wi + {}u];", j * 8);
        }
    }
    for i in 0..px {
        let load = if t.pointwise {
            format!("input[o{i}]")
        } else {
            format!("select(vec4<f32>(0.0), input[o{i}], v{i})")
        };
        if f16 {
            emit!("{ind}    let x{i} = vec4<f16>({load});");
        } else {
            emit!("{ind}    let x{i} = {load};");
        }
        emit!("{ind}    o{i} += p.in_hw;");
    }
    for kk in 0..4 {
        let comp = ["x", "y", "z", "w"][kk];
        for qq in 0..q {
            // vec4 number v of the step's tm vec4s holds input channel kk, output channels 4qq..4qq+3
            let v = kk * q + qq;
            if t.subgroup8 && f16 {
                emit!(
                    "{ind}    let b{kk}_{qq} = unpack_f16x4(subgroupBroadcast(w{}, {}u));",
                    v / 8,
                    v % 8
                );
            } else if t.subgroup8 {
                emit!(
                    "{ind}    let b{kk}_{qq} = subgroupBroadcast(w{}, {}u);",
                    v / 8,
                    v % 8
                );
            } else {
                emit!("{ind}    let b{kk}_{qq} = weight[wi + {v}u];");
            }
            for i in 0..px {
                emit!("{ind}    a{qq}_{i} = fma(b{kk}_{qq}, vec4<{ty}>(x{i}.{comp}), a{qq}_{i});");
            }
        }
    }
    emit!("{ind}    wi += {tm}u;");
    emit!("{ind}}}");
    if !t.pointwise {
        emit!("    }}");
        emit!("    }}");
    }
    if t.subgroup8 && !t.split {
        emit!(
            "    // The tile's {q} bias vec4s: loaded once by the first lanes, broadcast to all."
        );
        emit!(
            "    let bias_lane = bias[tmi * {q}u + min(lane, {}u)];",
            q - 1
        );
    }
    for qq in 0..q {
        if !t.split {
            if t.subgroup8 {
                emit!("    let bias{qq} = subgroupBroadcast(bias_lane, {qq}u);");
            } else {
                emit!("    let bias{qq} = bias[tmi * {q}u + {qq}u];");
            }
        }
        for i in 0..px {
            let acc = if f16 {
                format!("vec4<f32>(a{qq}_{i})")
            } else {
                format!("a{qq}_{i}")
            };
            if t.split {
                emit!(
                    "    store(live && g{i} < p.pixels, n{i}, q{i}, tmi * {q}u + {qq}u, {acc}, split);"
                );
            } else {
                emit!(
                    "    store(live && g{i} < p.pixels, n{i}, q{i}, tmi * {q}u + {qq}u, {acc} + bias{qq});"
                );
            }
        }
    }
    emit!("}}");
    s
}

const PARAMS_WGSL: &str = "struct ConvDirectParams {
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
    split_c4: u32,
    split_stride: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_tiles_are_valid_and_distinct() {
        let all = ConvTile::catalog();
        assert!(all.iter().all(ConvTile::is_valid));
        let names: std::collections::BTreeSet<String> = all.iter().map(|t| t.name()).collect();
        assert_eq!(names.len(), all.len());
    }
}
