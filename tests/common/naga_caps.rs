//! The naga validator capabilities of an adapter that can run a kernel: what `Kernel::needs()`
//! asks of wgpu (subgroups, f16) as naga names it, and no more. Shared by tests/shaders.rs and
//! tests/backends.rs so the two check the same thing.

use naga::valid::Capabilities;
use resnet_wgpu::kernels::Kernel;

pub fn capabilities(kernel: Kernel) -> Capabilities {
    let needs = kernel.needs();
    let mut caps = Capabilities::default();
    if needs.contains(wgpu::Features::SUBGROUP) {
        caps |= Capabilities::SUBGROUP;
    }
    if needs.contains(wgpu::Features::SHADER_F16) {
        // unpack2x16float (the subgroup f16 variants) is "f16 in f32", which every native
        // backend with SHADER_F16 has.
        caps |= Capabilities::SHADER_FLOAT16 | Capabilities::SHADER_FLOAT16_IN_FLOAT32;
    }
    caps
}
