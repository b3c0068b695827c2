// dot4I8Packed over packed word pairs: the end-to-end smoke kernel.
// CPU twin: src/reference/dot.rs `dot4_i8_packed`.

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
