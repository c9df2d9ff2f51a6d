// The params of the training fully connected layer and its loss (kernels::train::
// TrainLinearParams): y = x W^T + b with W [out_features, in_features] at `weight_offset` and b at
// `bias_offset` of the flat parameter buffer (the same offsets index the gradient buffer).

struct TrainLinearParams {
    batch: u32,
    in_features: u32,
    out_features: u32,
    weight_offset: u32,
    bias_offset: u32,
    flags: u32,
    _pad0: u32,
    _pad1: u32,
}
