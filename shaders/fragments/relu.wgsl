// ReLU and max that keep NaN. `max(x, 0.0)` may give 0 for a NaN lane on some drivers, and WGSL
// lets implementations assume there are no NaNs, so NaN is told apart on its bits (integer
// arithmetic that no floating-point optimisation may touch): a NaN input stays NaN to the
// output, as in PyTorch and ONNX Runtime.
fn is_nan4(v: vec4<f32>) -> vec4<bool> {
    return (bitcast<vec4<u32>>(v) & vec4<u32>(0x7fffffffu)) > vec4<u32>(0x7f800000u);
}

fn relu4(v: vec4<f32>) -> vec4<f32> {
    return select(max(v, vec4<f32>(0.0)), v, is_nan4(v));
}

// max(a, b), NaN if either is NaN.
fn max4(a: vec4<f32>, b: vec4<f32>) -> vec4<f32> {
    return select(max(a, b), a + b, is_nan4(a) | is_nan4(b));
}
