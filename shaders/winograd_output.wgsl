// Winograd F(2x2, 3x3), step 3 of 3: the output transform Y = A^T M A of the 16 products of
// step 2, then + bias and the conv epilogue (+ residual, ReLU; fragments/epilogue.wgsl) on each
// of the tile's 2x2 outputs. One invocation per (image, output channel block, tile). M is 16 "images" [out_c4][tiles].
//   A^T = [1 1 1 0; 0 1 -1 -1]

struct WinogradOutputParams {
    batch: u32,
    out_c4: u32,
    out_h: u32,
    out_w: u32,
    tiles_h: u32,
    tiles_w: u32,
    flags: u32,
    _pad0: u32,
}

// include: flat_index
// include: epilogue

@group(0) @binding(0) var<storage, read> m: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> bias: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> residual: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> output: array<vec4<f32>>;
@group(0) @binding(4) var<uniform> p: WinogradOutputParams;

fn store(plane: u32, y: u32, x: u32, acc: vec4<f32>) {
    if (y >= p.out_h || x >= p.out_w) {
        return;
    }
    epilogue(plane + y * p.out_w + x, acc, p.flags);
}

@compute @workgroup_size(WORKGROUP)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = flat_index(gid, groups);
    let per_image = p.tiles_h * p.tiles_w;
    if (i >= p.batch * p.out_c4 * per_image) {
        return;
    }
    let tile = i % per_image;
    let k4 = (i / per_image) % p.out_c4;
    let n = i / (per_image * p.out_c4);
    let tiles = p.batch * per_image;
    let g = n * per_image + tile;
    let stride = p.out_c4 * tiles;
    let at = k4 * tiles + g;
    let m00 = m[at + 0u * stride];
    let m01 = m[at + 1u * stride];
    let m02 = m[at + 2u * stride];
    let m03 = m[at + 3u * stride];
    let m10 = m[at + 4u * stride];
    let m11 = m[at + 5u * stride];
    let m12 = m[at + 6u * stride];
    let m13 = m[at + 7u * stride];
    let m20 = m[at + 8u * stride];
    let m21 = m[at + 9u * stride];
    let m22 = m[at + 10u * stride];
    let m23 = m[at + 11u * stride];
    let m30 = m[at + 12u * stride];
    let m31 = m[at + 13u * stride];
    let m32 = m[at + 14u * stride];
    let m33 = m[at + 15u * stride];
    // Columns: s = A^T M.
    let s00 = m00 + m10 + m20;
    let s10 = m10 - m20 - m30;
    let s01 = m01 + m11 + m21;
    let s11 = m11 - m21 - m31;
    let s02 = m02 + m12 + m22;
    let s12 = m12 - m22 - m32;
    let s03 = m03 + m13 + m23;
    let s13 = m13 - m23 - m33;
    let b = bias[k4];
    let plane = (n * p.out_c4 + k4) * p.out_h * p.out_w;
    let y = tile / p.tiles_w * 2u;
    let x = tile % p.tiles_w * 2u;
    store(plane, y + 0u, x, s00 + s01 + s02 + b);
    store(plane, y + 0u, x + 1u, s01 - s02 - s03 + b);
    store(plane, y + 1u, x, s10 + s11 + s12 + b);
    store(plane, y + 1u, x + 1u, s11 - s12 - s13 + b);
}
