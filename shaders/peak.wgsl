// Adapter peak microkernels: long dependent chains of f32 fma and of dot4I8Packed, eight
// independent chains per invocation so pipelined units stay busy. Not a bit-exact path:
// these measure throughput only and their results are merely written out so the work
// cannot be eliminated.

@group(0) @binding(0) var<storage, read> seed: array<u32>;
@group(0) @binding(1) var<storage, read_write> sink: array<u32>;

const ITERATIONS: u32 = 256u;

@compute @workgroup_size(64)
fn peak_f32_fma(@builtin(global_invocation_id) gid: vec3<u32>) {
    let s = f32(seed[0] + gid.x) * 1e-7;
    let m = 0.999 + f32(seed[1]) * 1e-9;
    var a = array<f32, 8>(s, s + 1.0, s + 2.0, s + 3.0, s + 4.0, s + 5.0, s + 6.0, s + 7.0);
    for (var i = 0u; i < ITERATIONS; i++) {
        for (var c = 0u; c < 8u; c++) {
            a[c] = fma(a[c], m, 0.5);
        }
    }
    var total = 0.0;
    for (var c = 0u; c < 8u; c++) {
        total += a[c];
    }
    sink[gid.x] = bitcast<u32>(total);
}

@compute @workgroup_size(64)
fn peak_dot4_i8(@builtin(global_invocation_id) gid: vec3<u32>) {
    let b = seed[1] | 0x01010101u;
    let s = i32(seed[0] + gid.x);
    var a = array<i32, 8>(s, s + 1, s + 2, s + 3, s + 4, s + 5, s + 6, s + 7);
    for (var i = 0u; i < ITERATIONS; i++) {
        for (var c = 0u; c < 8u; c++) {
            a[c] = dot4I8Packed(bitcast<u32>(a[c]), b) + a[c];
        }
    }
    var total = 0;
    for (var c = 0u; c < 8u; c++) {
        total += a[c];
    }
    sink[gid.x] = bitcast<u32>(total);
}
