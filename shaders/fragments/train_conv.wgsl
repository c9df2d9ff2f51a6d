// The geometry of a training convolution, shared by its forward and its two backward kernels
// (the host writes it once per layer: kernels::train::TrainConvParams). `flags` holds ACCUMULATE
// for the input gradient; `chunk`/`chunks` split the weight gradient's sum over pixels.

struct TrainConvParams {
    batch: u32,
    in_c: u32,
    in_h: u32,
    in_w: u32,
    out_c: u32,
    out_h: u32,
    out_w: u32,
    kernel_h: u32,
    kernel_w: u32,
    stride_h: u32,
    stride_w: u32,
    pad_top: u32,
    pad_left: u32,
    weight_offset: u32,
    grad_offset: u32,
    chunk: u32,
    chunks: u32,
    flags: u32,
    _pad0: u32,
    _pad1: u32,
}
