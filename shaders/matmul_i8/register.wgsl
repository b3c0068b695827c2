// The register-blocked kernel of matmul_i8 (imported as `kernel`): each invocation
// computes a TILE_M x TILE_N block over all of K in registers (`block` maps to
// matmul_i8/block{TILE_M}x{TILE_N}), in a WORKGROUP_X x WORKGROUP_Y workgroup. The GEMM's
// 4 x 4 and 8 x 8 blocks, and the GEMV's 1 x 4 (64 x 1 workgroup).
#import block

@compute @workgroup_size(WORKGROUP_X, WORKGROUP_Y)
fn matmul_i8(@builtin(global_invocation_id) gid: vec3<u32>) {
    let col0 = gid.x * TILE_N;
    let row0 = gid.y * TILE_M;
    let m = uniforms.m;
    let n = uniforms.n;
    if row0 >= m || col0 >= n {
        return;
    }
    // The register block, unrolled into named registers by the imported `block`.
    var acc: array<array<i32, TILE_N>, TILE_M>;
    var sum_a: array<i32, TILE_M>;
    accumulate(row0, col0, &acc, &sum_a);

    for (var i = 0u; i < TILE_M; i++) {
        let r = row0 + i;
        if r >= m {
            break;
        }
        for (var g = 0u; g < TILE_N; g += 4u) {
            let cg = col0 + g;
            if cg >= n {
                break;
            }
            let v = vec4<i32>(acc[i][g], acc[i][g + 1u], acc[i][g + 2u], acc[i][g + 3u]);
            store_group(r, cg, v, sum_a[i]);
        }
    }
}
