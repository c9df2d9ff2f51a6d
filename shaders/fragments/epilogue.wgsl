// include: relu
// The convolution epilogue of one output vec4 (4 channels of one pixel, bias already added):
// + the residual at the same index (flag HAS_RESIDUAL), then ReLU (flag RELU), stored at `index`
// of `output`. A kernel that composes it declares `residual` and `output` bindings.
fn epilogue(index: u32, acc: vec4<f32>, flags: u32) {
    var v = acc;
    if ((flags & HAS_RESIDUAL) != 0u) {
        v += residual[index];
    }
    if ((flags & RELU) != 0u) {
        v = relu4(v);
    }
    output[index] = v;
}
