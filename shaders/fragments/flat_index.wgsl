// The flat invocation index of a dispatch of WORKGROUP-wide workgroups that spills into y past
// the adapter's per-dimension limit (the host side is gpu::dispatch::workgroups).
fn flat_index(gid: vec3<u32>, groups: vec3<u32>) -> u32 {
    return gid.x + gid.y * groups.x * WORKGROUP;
}
