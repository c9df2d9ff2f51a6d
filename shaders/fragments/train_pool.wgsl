// The params of the training pools and the option-A shortcut (kernels::train::TrainPoolParams):
// the input and output maps of `planes` = batch x channels (image, channel) pairs, the window,
// and for the shortcut the output's channel count and its zero channels before the input's.

struct TrainPoolParams {
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
    pad_before: u32,
    flags: u32,
    _pad0: u32,
}
