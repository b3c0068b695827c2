// FP32 GEMM baseline Y[M, N] = A[M, K] x W[N, K]^T (+ bias), with the same register
// blocking as the int8 kernel so the comparison is honest. Not a bit-exact path: it is held
// to the written bound of src/reference/matmul_f32.rs (any summation order, fused or not).
// Rows of A and W are padded with zeros to a multiple of 4 floats (vec4 loads).
// TILE_M x 4 outputs per invocation: GEMM 4 x 4 in 8 x 8 workgroups, GEMV (M <= 3) 1 x 4 in
// 64 x 1 workgroups, as the int8 kernel.

// Twin: src/gpu/matmul_f32.rs `MatmulF32Uniforms`.
struct MatmulF32Uniforms {
    m: u32,
    n: u32,
    k_vec4: u32,
    // Full output width and this dispatch's first column (weights split along N).
    n_total: u32,
    col_offset: u32,
    pad0: u32,
    pad1: u32,
    pad2: u32,
}

@group(0) @binding(0) var<uniform> uniforms: MatmulF32Uniforms;
@group(0) @binding(1) var<storage, read> a: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> w: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WORKGROUP_X, WORKGROUP_Y)
fn matmul_f32(@builtin(global_invocation_id) gid: vec3<u32>) {
    let col0 = gid.x * 4u;
    let row0 = gid.y * TILE_M;
    let m = uniforms.m;
    let n = uniforms.n;
    if row0 >= m || col0 >= n {
        return;
    }
    let kv = uniforms.k_vec4;
    var a_base: array<u32, TILE_M>;
    var w_base: array<u32, 4>;
    for (var i = 0u; i < TILE_M; i++) {
        a_base[i] = min(row0 + i, m - 1u) * kv;
    }
    for (var j = 0u; j < 4u; j++) {
        w_base[j] = min(col0 + j, n - 1u) * kv;
    }
    var acc: array<array<f32, 4>, TILE_M>;
    if TILE_M == 4u {
        // The 4 x 4 block unrolled into named registers, as in the int8 kernel.
        var c00 = 0.0; var c01 = 0.0; var c02 = 0.0; var c03 = 0.0;
        var c10 = 0.0; var c11 = 0.0; var c12 = 0.0; var c13 = 0.0;
        var c20 = 0.0; var c21 = 0.0; var c22 = 0.0; var c23 = 0.0;
        var c30 = 0.0; var c31 = 0.0; var c32 = 0.0; var c33 = 0.0;
        for (var word = 0u; word < kv; word++) {
            let x0 = a[a_base[0] + word];
            let x1 = a[a_base[min(1u, TILE_M - 1u)] + word];
            let x2 = a[a_base[min(2u, TILE_M - 1u)] + word];
            let x3 = a[a_base[min(3u, TILE_M - 1u)] + word];
            let y0 = w[w_base[0] + word];
            let y1 = w[w_base[1] + word];
            let y2 = w[w_base[2] + word];
            let y3 = w[w_base[3] + word];
            c00 += dot(x0, y0); c01 += dot(x0, y1); c02 += dot(x0, y2); c03 += dot(x0, y3);
            c10 += dot(x1, y0); c11 += dot(x1, y1); c12 += dot(x1, y2); c13 += dot(x1, y3);
            c20 += dot(x2, y0); c21 += dot(x2, y1); c22 += dot(x2, y2); c23 += dot(x2, y3);
            c30 += dot(x3, y0); c31 += dot(x3, y1); c32 += dot(x3, y2); c33 += dot(x3, y3);
        }
        acc[0] = array<f32, 4>(c00, c01, c02, c03);
        acc[min(1u, TILE_M - 1u)] = array<f32, 4>(c10, c11, c12, c13);
        acc[min(2u, TILE_M - 1u)] = array<f32, 4>(c20, c21, c22, c23);
        acc[min(3u, TILE_M - 1u)] = array<f32, 4>(c30, c31, c32, c33);
    } else {
    for (var word = 0u; word < kv; word++) {
        var av: array<vec4<f32>, TILE_M>;
        var wv: array<vec4<f32>, 4>;
        for (var i = 0u; i < TILE_M; i++) {
            av[i] = a[a_base[i] + word];
        }
        for (var j = 0u; j < 4u; j++) {
            wv[j] = w[w_base[j] + word];
        }
        for (var i = 0u; i < TILE_M; i++) {
            for (var j = 0u; j < 4u; j++) {
                acc[i][j] += dot(av[i], wv[j]);
            }
        }
    }
    }
    for (var i = 0u; i < TILE_M; i++) {
        let r = row0 + i;
        if r >= m {
            break;
        }
        for (var j = 0u; j < 4u; j++) {
            let c = col0 + j;
            if c >= n {
                break;
            }
            var v = acc[i][j];
            if HAS_BIAS {
                v += bias[c];
            }
            out[r * uniforms.n_total + uniforms.col_offset + c] = v;
        }
    }
}
