// The channel-blocked layout (src/layout.rs): [image][channel block][pixel] vec4s, one vec4 =
// 4 channels of one pixel. The index of block `c4` of pixel `pixel` of image `n`, for a shape of
// `blocks` channel blocks and `hw` pixels.
fn blocked_index(n: u32, c4: u32, blocks: u32, hw: u32, pixel: u32) -> u32 {
    return (n * blocks + c4) * hw + pixel;
}
