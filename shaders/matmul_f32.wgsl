// FP32 GEMM baseline Y[M, N] = clamp(A[M, K] x W[N, K]^T (+ bias), lo, hi), with the same
// register blocking as the int8 kernel so the comparison is honest. Not a bit-exact path: it
// is held to the written bound of src/reference/matmul_f32.rs (any summation order, fused or
// not; the clamp after the sum only shrinks the error).
// A is plain row-major (row stride K). The rows of W are padded with zeros to a multiple of 4
// on upload. Operands are read through `loads` as u32 words holding f32 bits: 16-byte loads
// when K % 4 == 0 (rows of whole vec4s), one float per load otherwise, where the last,
// partial group of each row of A is read element by element and completed with zeros (no
// read past a row: the next row's Inf times a zero weight would be NaN).
// TILE_M x 4 outputs per invocation: GEMM 4 x 4 in 8 x 8 workgroups, GEMV (M <= 3) 1 x 4 in
// 64 x 1 workgroups, as the int8 kernel.
#import loads

// Twin: src/gpu/matmul_f32.rs `MatmulF32Uniforms`.
struct MatmulF32Uniforms {
    m: u32,
    n: u32,
    k: u32,
    // Floats per (padded) row of W.
    w_stride: u32,
    // Full output width and this dispatch's first column (weights split along N).
    n_total: u32,
    col_offset: u32,
    // The activation clamp [lo, hi]; -Inf and +Inf when there is none.
    lo: f32,
    hi: f32,
    // Activations and outputs above the binding limit are split along M; each part is bound
    // from an aligned offset and these are the floats left over before its first row.
    a_offset: u32,
    out_offset: u32,
    pad0: u32,
    pad1: u32,
}

@group(0) @binding(0) var<uniform> uniforms: MatmulF32Uniforms;
// Bindings 1 (a) and 2 (w) come from `loads`.
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

// Four floats of A or W from float index `i` (a multiple of 4 with 16-byte loads).
fn a4(i: u32) -> vec4<f32> {
    return bitcast<vec4<f32>>(load4_a(i));
}

fn w4(i: u32) -> vec4<f32> {
    return bitcast<vec4<f32>>(load4_w(i));
}

// The last `count` (1 to 3) floats of a row of A from float index `i`, then zeros.
fn a_tail(i: u32, count: u32) -> vec4<f32> {
    var v = vec4<f32>(bitcast<f32>(load_a(i)), 0.0, 0.0, 0.0);
    if count > 1u {
        v.y = bitcast<f32>(load_a(i + 1u));
    }
    if count > 2u {
        v.z = bitcast<f32>(load_a(i + 2u));
    }
    return v;
}

// 4 consecutive floats of 4 rows of W, one row per column: x * y = 4 dot products.
fn w_block(w_base: array<u32, 4>, e: u32) -> mat4x4<f32> {
    return mat4x4<f32>(w4(w_base[0] + e), w4(w_base[1] + e), w4(w_base[2] + e), w4(w_base[3] + e));
}

@compute @workgroup_size(WORKGROUP_X, WORKGROUP_Y)
fn matmul_f32(@builtin(global_invocation_id) gid: vec3<u32>) {
    let col0 = gid.x * 4u;
    let row0 = gid.y * TILE_M;
    let m = uniforms.m;
    let n = uniforms.n;
    if row0 >= m || col0 >= n {
        return;
    }
    let k = uniforms.k;
    let full = k / 4u;
    let tail = k % 4u;
    var a_base: array<u32, TILE_M>;
    var w_base: array<u32, 4>;
    for (var i = 0u; i < TILE_M; i++) {
        a_base[i] = uniforms.a_offset + min(row0 + i, m - 1u) * k;
    }
    for (var j = 0u; j < 4u; j++) {
        w_base[j] = min(col0 + j, n - 1u) * uniforms.w_stride;
    }
    var acc: array<vec4<f32>, TILE_M>;
    if TILE_M == 4u {
        // The 4 x 4 block unrolled into named registers, as in the int8 kernel.
        var c00 = 0.0; var c01 = 0.0; var c02 = 0.0; var c03 = 0.0;
        var c10 = 0.0; var c11 = 0.0; var c12 = 0.0; var c13 = 0.0;
        var c20 = 0.0; var c21 = 0.0; var c22 = 0.0; var c23 = 0.0;
        var c30 = 0.0; var c31 = 0.0; var c32 = 0.0; var c33 = 0.0;
        for (var word = 0u; word < full; word++) {
            let e = word * 4u;
            let x0 = a4(a_base[0] + e);
            let x1 = a4(a_base[min(1u, TILE_M - 1u)] + e);
            let x2 = a4(a_base[min(2u, TILE_M - 1u)] + e);
            let x3 = a4(a_base[min(3u, TILE_M - 1u)] + e);
            let y0 = w4(w_base[0] + e);
            let y1 = w4(w_base[1] + e);
            let y2 = w4(w_base[2] + e);
            let y3 = w4(w_base[3] + e);
            c00 += dot(x0, y0); c01 += dot(x0, y1); c02 += dot(x0, y2); c03 += dot(x0, y3);
            c10 += dot(x1, y0); c11 += dot(x1, y1); c12 += dot(x1, y2); c13 += dot(x1, y3);
            c20 += dot(x2, y0); c21 += dot(x2, y1); c22 += dot(x2, y2); c23 += dot(x2, y3);
            c30 += dot(x3, y0); c31 += dot(x3, y1); c32 += dot(x3, y2); c33 += dot(x3, y3);
        }
        // The partial last group, with scalar loads only.
        var t0 = vec4<f32>(0.0);
        var t1 = vec4<f32>(0.0);
        var t2 = vec4<f32>(0.0);
        var t3 = vec4<f32>(0.0);
        if tail != 0u {
            let e = full * 4u;
            let y = w_block(w_base, e);
            t0 = a_tail(a_base[0] + e, tail) * y;
            t1 = a_tail(a_base[min(1u, TILE_M - 1u)] + e, tail) * y;
            t2 = a_tail(a_base[min(2u, TILE_M - 1u)] + e, tail) * y;
            t3 = a_tail(a_base[min(3u, TILE_M - 1u)] + e, tail) * y;
        }
        acc[0] = vec4<f32>(c00, c01, c02, c03) + t0;
        acc[min(1u, TILE_M - 1u)] = vec4<f32>(c10, c11, c12, c13) + t1;
        acc[min(2u, TILE_M - 1u)] = vec4<f32>(c20, c21, c22, c23) + t2;
        acc[min(3u, TILE_M - 1u)] = vec4<f32>(c30, c31, c32, c33) + t3;
    } else {
        for (var word = 0u; word < full; word++) {
            let e = word * 4u;
            let y = w_block(w_base, e);
            for (var i = 0u; i < TILE_M; i++) {
                acc[i] += a4(a_base[i] + e) * y;
            }
        }
        if tail != 0u {
            let e = full * 4u;
            let y = w_block(w_base, e);
            for (var i = 0u; i < TILE_M; i++) {
                acc[i] += a_tail(a_base[i] + e, tail) * y;
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
            // The clamp with select: NaN fails both comparisons and passes through.
            v = select(v, uniforms.lo, v < uniforms.lo);
            v = select(v, uniforms.hi, v > uniforms.hi);
            out[uniforms.out_offset + r * uniforms.n_total + uniforms.col_offset + c] = v;
        }
    }
}
