// Winograd F(2x2, 3x3), step 1 of 3: the input transform V = B^T d B of every 4x4 input patch
// (stride 2, so patches overlap by 2), for 3x3 stride-1 convolutions (src/ops/conv/winograd.rs).
// One invocation per (image, channel block, 2x2 output tile); a vec4 holds 4 channels, and the
// transform is the same on each. V is written as 16 "images" (one per position pos = 4 * row +
// column of the 4x4 transform), each [in_c4][tiles] with the tiles of the whole batch in a row, so
// that step 2 is a batch of 16 plain 1x1 products.
//   B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]

// include: flat_index

struct WinogradInputParams {
    batch: u32,
    in_c4: u32,
    in_h: u32,
    in_w: u32,
    tiles_h: u32,
    tiles_w: u32,
    pad_top: u32,
    pad_left: u32,
}

@group(0) @binding(0) var<storage, read> input: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> v: array<vec4<f32>>;
@group(0) @binding(2) var<uniform> p: WinogradInputParams;

// Input pixel (y, x) of one channel block plane, 0 outside the image.
fn ld(plane: u32, y: i32, x: i32) -> vec4<f32> {
    let inside = y >= 0 && x >= 0 && y < i32(p.in_h) && x < i32(p.in_w);
    let at = plane + select(0u, u32(y) * p.in_w + u32(x), inside);
    return select(vec4<f32>(0.0), input[at], inside);
}

@compute @workgroup_size(WORKGROUP)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = flat_index(gid, groups);
    let per_image = p.tiles_h * p.tiles_w;
    if (i >= p.batch * p.in_c4 * per_image) {
        return;
    }
    let tile = i % per_image;
    let c4 = (i / per_image) % p.in_c4;
    let n = i / (per_image * p.in_c4);
    let y0 = i32(tile / p.tiles_w * 2u) - i32(p.pad_top);
    let x0 = i32(tile % p.tiles_w * 2u) - i32(p.pad_left);
    let plane = (n * p.in_c4 + c4) * p.in_h * p.in_w;
    let d00 = ld(plane, y0 + 0, x0 + 0);
    let d01 = ld(plane, y0 + 0, x0 + 1);
    let d02 = ld(plane, y0 + 0, x0 + 2);
    let d03 = ld(plane, y0 + 0, x0 + 3);
    let d10 = ld(plane, y0 + 1, x0 + 0);
    let d11 = ld(plane, y0 + 1, x0 + 1);
    let d12 = ld(plane, y0 + 1, x0 + 2);
    let d13 = ld(plane, y0 + 1, x0 + 3);
    let d20 = ld(plane, y0 + 2, x0 + 0);
    let d21 = ld(plane, y0 + 2, x0 + 1);
    let d22 = ld(plane, y0 + 2, x0 + 2);
    let d23 = ld(plane, y0 + 2, x0 + 3);
    let d30 = ld(plane, y0 + 3, x0 + 0);
    let d31 = ld(plane, y0 + 3, x0 + 1);
    let d32 = ld(plane, y0 + 3, x0 + 2);
    let d33 = ld(plane, y0 + 3, x0 + 3);
    // Columns: t = B^T d.
    let t00 = d00 - d20;
    let t10 = d10 + d20;
    let t20 = d20 - d10;
    let t30 = d10 - d30;
    let t01 = d01 - d21;
    let t11 = d11 + d21;
    let t21 = d21 - d11;
    let t31 = d11 - d31;
    let t02 = d02 - d22;
    let t12 = d12 + d22;
    let t22 = d22 - d12;
    let t32 = d12 - d32;
    let t03 = d03 - d23;
    let t13 = d13 + d23;
    let t23 = d23 - d13;
    let t33 = d13 - d33;
    // Rows: V = t B, stored at position 4 * row + column.
    let tiles = p.batch * per_image;
    let g = n * per_image + tile;
    let stride = p.in_c4 * tiles;
    let at = c4 * tiles + g;
    v[at + 0u * stride] = t00 - t02;
    v[at + 1u * stride] = t01 + t02;
    v[at + 2u * stride] = t02 - t01;
    v[at + 3u * stride] = t01 - t03;
    v[at + 4u * stride] = t10 - t12;
    v[at + 5u * stride] = t11 + t12;
    v[at + 6u * stride] = t12 - t11;
    v[at + 7u * stride] = t11 - t13;
    v[at + 8u * stride] = t20 - t22;
    v[at + 9u * stride] = t21 + t22;
    v[at + 10u * stride] = t22 - t21;
    v[at + 11u * stride] = t21 - t23;
    v[at + 12u * stride] = t30 - t32;
    v[at + 13u * stride] = t31 + t32;
    v[at + 14u * stride] = t32 - t31;
    v[at + 15u * stride] = t31 - t33;
}
