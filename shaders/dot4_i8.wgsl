// dot4I8Packed / dot4U8Packed over packed word pairs: the end-to-end smoke kernel and the
// context's self-test of the packed dot products.
// CPU twins: src/reference/dot.rs `dot4_i8_packed`, src/gpu/dot4.rs `dot4_u8_packed_cpu`.

@group(0) @binding(0) var<storage, read> lhs: array<u32>;
@group(0) @binding(1) var<storage, read> rhs: array<u32>;
@group(0) @binding(2) var<storage, read_write> out: array<i32>;

@compute @workgroup_size(64)
fn dot4_i8(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if i >= arrayLength(&out) {
        return;
    }
    out[i] = dot4I8Packed(lhs[i], rhs[i]);
}

// The unsigned form, its u32 result stored as the same bits.
@compute @workgroup_size(64)
fn dot4_u8(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if i >= arrayLength(&out) {
        return;
    }
    out[i] = bitcast<i32>(dot4U8Packed(lhs[i], rhs[i]));
}
