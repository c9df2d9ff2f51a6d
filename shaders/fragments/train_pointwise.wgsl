// The params of the training kernels that map values one to one (kernels::train::
// TrainPointwiseParams): the value count and ACCUMULATE / MASK / ADD flags.

struct TrainPointwiseParams {
    len: u32,
    flags: u32,
    _pad0: u32,
    _pad1: u32,
}
