// FP32 GEMM baseline Y[M, N] = clamp(A[M, K] x W[N, K]^T (+ bias), lo, hi). Not a bit-exact
// path: it is held to the written bound of src/reference/matmul_f32.rs (any summation order,
// fused or not; the clamp after the sum only shrinks the error). Each output is one chain of
// `fma` over k = 0, 1, .., K-1 in order (the padded zeros add exact zeros), then + bias.
// A is plain row-major (row stride K). The rows of W are padded with zeros to a multiple of 4
// on upload. Operands are read through `loads` as u32 words holding f32 bits: 16-byte loads
// when K % 4 == 0 (rows of whole vec4s), one float per load otherwise, where the last,
// partial group of each row of A is read element by element and completed with zeros (no
// read past a row: the next row's Inf times a zero weight would be NaN).
//
// Each invocation computes TILE_M x 8 outputs held in registers, reading 4 k at a time with
// vec4 loads: 8 x 8 in 8 x 8 workgroups (a 64 x 64 output tile) for GEMM, 1 x 8 in 64 x 1
// workgroups for GEMV (M <= 3, bound by reading W). No workgroup memory: on lavapipe (each
// invocation a SIMD lane, every per-lane load a gather) staging the same 64 x 64 tile in
// workgroup memory measured no faster than the old 4 x 4 kernel, against ~2x for this one.
// On a discrete GPU, staging A and W tiles in workgroup memory is the usual next step.
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

// Four k of four rows of W, transposed: `t[e]` holds element e of each row.
fn w_block(base: vec4<u32>, e: u32) -> mat4x4<f32> {
    return transpose(mat4x4<f32>(w4(base.x + e), w4(base.y + e), w4(base.z + e), w4(base.w + e)));
}

// acc[j] += x[0] * w_j[0], then x[1] * w_j[1], .. (one fma chain per output, k in order).
fn outer(x: vec4<f32>, t: mat4x4<f32>, acc: vec4<f32>) -> vec4<f32> {
    let s0 = fma(vec4<f32>(x.x), t[0], acc);
    let s1 = fma(vec4<f32>(x.y), t[1], s0);
    let s2 = fma(vec4<f32>(x.z), t[2], s1);
    return fma(vec4<f32>(x.w), t[3], s2);
}

// Output (r, c0 .. c0 + 3) from the accumulators: bias, clamp, and only the columns < n.
fn store4(r: u32, c0: u32, v: vec4<f32>) {
    let m = uniforms.m;
    let n = uniforms.n;
    if r >= m {
        return;
    }
    for (var j = 0u; j < 4u; j++) {
        let c = c0 + j;
        if c >= n {
            break;
        }
        var y = v[j];
        if HAS_BIAS {
            y += bias[c];
        }
        // The clamp with select: NaN fails both comparisons and passes through.
        y = select(y, uniforms.lo, y < uniforms.lo);
        y = select(y, uniforms.hi, y > uniforms.hi);
        out[uniforms.out_offset + r * uniforms.n_total + uniforms.col_offset + c] = y;
    }
}

@compute @workgroup_size(WORKGROUP_X, WORKGROUP_Y)
fn matmul_f32(@builtin(global_invocation_id) gid: vec3<u32>) {
    let col0 = gid.x * 8u;
    let row0 = gid.y * TILE_M;
    let m = uniforms.m;
    let n = uniforms.n;
    if row0 >= m || col0 >= n {
        return;
    }
    let k = uniforms.k;
    let full = k / 4u;
    let tail = k % 4u;
    // Rows and columns past the edge repeat the last one (their outputs are not stored).
    let stride = uniforms.w_stride;
    let wa = vec4<u32>(min(col0 + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(n - 1u))) * stride;
    let wb = vec4<u32>(min(col0 + vec4<u32>(4u, 5u, 6u, 7u), vec4<u32>(n - 1u))) * stride;
    var a_base: array<u32, 8>;
    for (var i = 0u; i < 8u; i++) {
        a_base[i] = uniforms.a_offset + min(row0 + min(i, TILE_M - 1u), m - 1u) * k;
    }
    if TILE_M == 1u {
        // GEMV: one row, 8 columns; bound by reading W.
        var r0a = vec4<f32>(0.0);
        var r0b = vec4<f32>(0.0);
        let base0 = a_base[0];
        for (var word = 0u; word < full; word++) {
            let e = word * 4u;
            let lo = w_block(wa, e);
            let hi = w_block(wb, e);
            let x0 = a4(base0 + e);
            r0a = outer(x0, lo, r0a);
            r0b = outer(x0, hi, r0b);
        }
        // The partial last group, with scalar loads of A only.
        if tail != 0u {
            let e = full * 4u;
            let lo = w_block(wa, e);
            let hi = w_block(wb, e);
            let x0 = a_tail(base0 + e, tail);
            r0a = outer(x0, lo, r0a);
            r0b = outer(x0, hi, r0b);
        }
        store4(row0, col0, r0a);
        store4(row0, col0 + 4u, r0b);
        return;
    }
    // GEMM: 8 rows x 8 columns, the rows' bases in named registers.
    let base0 = a_base[0];
    let base1 = a_base[1];
    let base2 = a_base[2];
    let base3 = a_base[3];
    let base4 = a_base[4];
    let base5 = a_base[5];
    let base6 = a_base[6];
    let base7 = a_base[7];
    var r0a = vec4<f32>(0.0);
    var r0b = vec4<f32>(0.0);
    var r1a = vec4<f32>(0.0);
    var r1b = vec4<f32>(0.0);
    var r2a = vec4<f32>(0.0);
    var r2b = vec4<f32>(0.0);
    var r3a = vec4<f32>(0.0);
    var r3b = vec4<f32>(0.0);
    var r4a = vec4<f32>(0.0);
    var r4b = vec4<f32>(0.0);
    var r5a = vec4<f32>(0.0);
    var r5b = vec4<f32>(0.0);
    var r6a = vec4<f32>(0.0);
    var r6b = vec4<f32>(0.0);
    var r7a = vec4<f32>(0.0);
    var r7b = vec4<f32>(0.0);
    for (var word = 0u; word < full; word++) {
        let e = word * 4u;
        let y0 = w4(wa.x + e);
        let y1 = w4(wa.y + e);
        let y2 = w4(wa.z + e);
        let y3 = w4(wa.w + e);
        let y4 = w4(wb.x + e);
        let y5 = w4(wb.y + e);
        let y6 = w4(wb.z + e);
        let y7 = w4(wb.w + e);
        let x0 = a4(base0 + e);
        let x1 = a4(base1 + e);
        let x2 = a4(base2 + e);
        let x3 = a4(base3 + e);
        let x4 = a4(base4 + e);
        let x5 = a4(base5 + e);
        let x6 = a4(base6 + e);
        let x7 = a4(base7 + e);
        r0a.x = fma(x0.w, y0.w, fma(x0.z, y0.z, fma(x0.y, y0.y, fma(x0.x, y0.x, r0a.x))));
        r0a.y = fma(x0.w, y1.w, fma(x0.z, y1.z, fma(x0.y, y1.y, fma(x0.x, y1.x, r0a.y))));
        r0a.z = fma(x0.w, y2.w, fma(x0.z, y2.z, fma(x0.y, y2.y, fma(x0.x, y2.x, r0a.z))));
        r0a.w = fma(x0.w, y3.w, fma(x0.z, y3.z, fma(x0.y, y3.y, fma(x0.x, y3.x, r0a.w))));
        r0b.x = fma(x0.w, y4.w, fma(x0.z, y4.z, fma(x0.y, y4.y, fma(x0.x, y4.x, r0b.x))));
        r0b.y = fma(x0.w, y5.w, fma(x0.z, y5.z, fma(x0.y, y5.y, fma(x0.x, y5.x, r0b.y))));
        r0b.z = fma(x0.w, y6.w, fma(x0.z, y6.z, fma(x0.y, y6.y, fma(x0.x, y6.x, r0b.z))));
        r0b.w = fma(x0.w, y7.w, fma(x0.z, y7.z, fma(x0.y, y7.y, fma(x0.x, y7.x, r0b.w))));
        r1a.x = fma(x1.w, y0.w, fma(x1.z, y0.z, fma(x1.y, y0.y, fma(x1.x, y0.x, r1a.x))));
        r1a.y = fma(x1.w, y1.w, fma(x1.z, y1.z, fma(x1.y, y1.y, fma(x1.x, y1.x, r1a.y))));
        r1a.z = fma(x1.w, y2.w, fma(x1.z, y2.z, fma(x1.y, y2.y, fma(x1.x, y2.x, r1a.z))));
        r1a.w = fma(x1.w, y3.w, fma(x1.z, y3.z, fma(x1.y, y3.y, fma(x1.x, y3.x, r1a.w))));
        r1b.x = fma(x1.w, y4.w, fma(x1.z, y4.z, fma(x1.y, y4.y, fma(x1.x, y4.x, r1b.x))));
        r1b.y = fma(x1.w, y5.w, fma(x1.z, y5.z, fma(x1.y, y5.y, fma(x1.x, y5.x, r1b.y))));
        r1b.z = fma(x1.w, y6.w, fma(x1.z, y6.z, fma(x1.y, y6.y, fma(x1.x, y6.x, r1b.z))));
        r1b.w = fma(x1.w, y7.w, fma(x1.z, y7.z, fma(x1.y, y7.y, fma(x1.x, y7.x, r1b.w))));
        r2a.x = fma(x2.w, y0.w, fma(x2.z, y0.z, fma(x2.y, y0.y, fma(x2.x, y0.x, r2a.x))));
        r2a.y = fma(x2.w, y1.w, fma(x2.z, y1.z, fma(x2.y, y1.y, fma(x2.x, y1.x, r2a.y))));
        r2a.z = fma(x2.w, y2.w, fma(x2.z, y2.z, fma(x2.y, y2.y, fma(x2.x, y2.x, r2a.z))));
        r2a.w = fma(x2.w, y3.w, fma(x2.z, y3.z, fma(x2.y, y3.y, fma(x2.x, y3.x, r2a.w))));
        r2b.x = fma(x2.w, y4.w, fma(x2.z, y4.z, fma(x2.y, y4.y, fma(x2.x, y4.x, r2b.x))));
        r2b.y = fma(x2.w, y5.w, fma(x2.z, y5.z, fma(x2.y, y5.y, fma(x2.x, y5.x, r2b.y))));
        r2b.z = fma(x2.w, y6.w, fma(x2.z, y6.z, fma(x2.y, y6.y, fma(x2.x, y6.x, r2b.z))));
        r2b.w = fma(x2.w, y7.w, fma(x2.z, y7.z, fma(x2.y, y7.y, fma(x2.x, y7.x, r2b.w))));
        r3a.x = fma(x3.w, y0.w, fma(x3.z, y0.z, fma(x3.y, y0.y, fma(x3.x, y0.x, r3a.x))));
        r3a.y = fma(x3.w, y1.w, fma(x3.z, y1.z, fma(x3.y, y1.y, fma(x3.x, y1.x, r3a.y))));
        r3a.z = fma(x3.w, y2.w, fma(x3.z, y2.z, fma(x3.y, y2.y, fma(x3.x, y2.x, r3a.z))));
        r3a.w = fma(x3.w, y3.w, fma(x3.z, y3.z, fma(x3.y, y3.y, fma(x3.x, y3.x, r3a.w))));
        r3b.x = fma(x3.w, y4.w, fma(x3.z, y4.z, fma(x3.y, y4.y, fma(x3.x, y4.x, r3b.x))));
        r3b.y = fma(x3.w, y5.w, fma(x3.z, y5.z, fma(x3.y, y5.y, fma(x3.x, y5.x, r3b.y))));
        r3b.z = fma(x3.w, y6.w, fma(x3.z, y6.z, fma(x3.y, y6.y, fma(x3.x, y6.x, r3b.z))));
        r3b.w = fma(x3.w, y7.w, fma(x3.z, y7.z, fma(x3.y, y7.y, fma(x3.x, y7.x, r3b.w))));
        r4a.x = fma(x4.w, y0.w, fma(x4.z, y0.z, fma(x4.y, y0.y, fma(x4.x, y0.x, r4a.x))));
        r4a.y = fma(x4.w, y1.w, fma(x4.z, y1.z, fma(x4.y, y1.y, fma(x4.x, y1.x, r4a.y))));
        r4a.z = fma(x4.w, y2.w, fma(x4.z, y2.z, fma(x4.y, y2.y, fma(x4.x, y2.x, r4a.z))));
        r4a.w = fma(x4.w, y3.w, fma(x4.z, y3.z, fma(x4.y, y3.y, fma(x4.x, y3.x, r4a.w))));
        r4b.x = fma(x4.w, y4.w, fma(x4.z, y4.z, fma(x4.y, y4.y, fma(x4.x, y4.x, r4b.x))));
        r4b.y = fma(x4.w, y5.w, fma(x4.z, y5.z, fma(x4.y, y5.y, fma(x4.x, y5.x, r4b.y))));
        r4b.z = fma(x4.w, y6.w, fma(x4.z, y6.z, fma(x4.y, y6.y, fma(x4.x, y6.x, r4b.z))));
        r4b.w = fma(x4.w, y7.w, fma(x4.z, y7.z, fma(x4.y, y7.y, fma(x4.x, y7.x, r4b.w))));
        r5a.x = fma(x5.w, y0.w, fma(x5.z, y0.z, fma(x5.y, y0.y, fma(x5.x, y0.x, r5a.x))));
        r5a.y = fma(x5.w, y1.w, fma(x5.z, y1.z, fma(x5.y, y1.y, fma(x5.x, y1.x, r5a.y))));
        r5a.z = fma(x5.w, y2.w, fma(x5.z, y2.z, fma(x5.y, y2.y, fma(x5.x, y2.x, r5a.z))));
        r5a.w = fma(x5.w, y3.w, fma(x5.z, y3.z, fma(x5.y, y3.y, fma(x5.x, y3.x, r5a.w))));
        r5b.x = fma(x5.w, y4.w, fma(x5.z, y4.z, fma(x5.y, y4.y, fma(x5.x, y4.x, r5b.x))));
        r5b.y = fma(x5.w, y5.w, fma(x5.z, y5.z, fma(x5.y, y5.y, fma(x5.x, y5.x, r5b.y))));
        r5b.z = fma(x5.w, y6.w, fma(x5.z, y6.z, fma(x5.y, y6.y, fma(x5.x, y6.x, r5b.z))));
        r5b.w = fma(x5.w, y7.w, fma(x5.z, y7.z, fma(x5.y, y7.y, fma(x5.x, y7.x, r5b.w))));
        r6a.x = fma(x6.w, y0.w, fma(x6.z, y0.z, fma(x6.y, y0.y, fma(x6.x, y0.x, r6a.x))));
        r6a.y = fma(x6.w, y1.w, fma(x6.z, y1.z, fma(x6.y, y1.y, fma(x6.x, y1.x, r6a.y))));
        r6a.z = fma(x6.w, y2.w, fma(x6.z, y2.z, fma(x6.y, y2.y, fma(x6.x, y2.x, r6a.z))));
        r6a.w = fma(x6.w, y3.w, fma(x6.z, y3.z, fma(x6.y, y3.y, fma(x6.x, y3.x, r6a.w))));
        r6b.x = fma(x6.w, y4.w, fma(x6.z, y4.z, fma(x6.y, y4.y, fma(x6.x, y4.x, r6b.x))));
        r6b.y = fma(x6.w, y5.w, fma(x6.z, y5.z, fma(x6.y, y5.y, fma(x6.x, y5.x, r6b.y))));
        r6b.z = fma(x6.w, y6.w, fma(x6.z, y6.z, fma(x6.y, y6.y, fma(x6.x, y6.x, r6b.z))));
        r6b.w = fma(x6.w, y7.w, fma(x6.z, y7.z, fma(x6.y, y7.y, fma(x6.x, y7.x, r6b.w))));
        r7a.x = fma(x7.w, y0.w, fma(x7.z, y0.z, fma(x7.y, y0.y, fma(x7.x, y0.x, r7a.x))));
        r7a.y = fma(x7.w, y1.w, fma(x7.z, y1.z, fma(x7.y, y1.y, fma(x7.x, y1.x, r7a.y))));
        r7a.z = fma(x7.w, y2.w, fma(x7.z, y2.z, fma(x7.y, y2.y, fma(x7.x, y2.x, r7a.z))));
        r7a.w = fma(x7.w, y3.w, fma(x7.z, y3.z, fma(x7.y, y3.y, fma(x7.x, y3.x, r7a.w))));
        r7b.x = fma(x7.w, y4.w, fma(x7.z, y4.z, fma(x7.y, y4.y, fma(x7.x, y4.x, r7b.x))));
        r7b.y = fma(x7.w, y5.w, fma(x7.z, y5.z, fma(x7.y, y5.y, fma(x7.x, y5.x, r7b.y))));
        r7b.z = fma(x7.w, y6.w, fma(x7.z, y6.z, fma(x7.y, y6.y, fma(x7.x, y6.x, r7b.z))));
        r7b.w = fma(x7.w, y7.w, fma(x7.z, y7.z, fma(x7.y, y7.y, fma(x7.x, y7.x, r7b.w))));
    }
    // The partial last group, with scalar loads of A only.
    if tail != 0u {
        let e = full * 4u;
        let lo = w_block(wa, e);
        let hi = w_block(wb, e);
        let x0 = a_tail(base0 + e, tail);
        let x1 = a_tail(base1 + e, tail);
        let x2 = a_tail(base2 + e, tail);
        let x3 = a_tail(base3 + e, tail);
        let x4 = a_tail(base4 + e, tail);
        let x5 = a_tail(base5 + e, tail);
        let x6 = a_tail(base6 + e, tail);
        let x7 = a_tail(base7 + e, tail);
        r0a = outer(x0, lo, r0a);
        r0b = outer(x0, hi, r0b);
        r1a = outer(x1, lo, r1a);
        r1b = outer(x1, hi, r1b);
        r2a = outer(x2, lo, r2a);
        r2b = outer(x2, hi, r2b);
        r3a = outer(x3, lo, r3a);
        r3b = outer(x3, hi, r3b);
        r4a = outer(x4, lo, r4a);
        r4b = outer(x4, hi, r4b);
        r5a = outer(x5, lo, r5a);
        r5b = outer(x5, hi, r5b);
        r6a = outer(x6, lo, r6a);
        r6b = outer(x6, hi, r6b);
        r7a = outer(x7, lo, r7a);
        r7b = outer(x7, hi, r7b);
    }
    store4(row0 + 0u, col0, r0a);
    store4(row0 + 0u, col0 + 4u, r0b);
    store4(row0 + 1u, col0, r1a);
    store4(row0 + 1u, col0 + 4u, r1b);
    store4(row0 + 2u, col0, r2a);
    store4(row0 + 2u, col0 + 4u, r2b);
    store4(row0 + 3u, col0, r3a);
    store4(row0 + 3u, col0 + 4u, r3b);
    store4(row0 + 4u, col0, r4a);
    store4(row0 + 4u, col0 + 4u, r4b);
    store4(row0 + 5u, col0, r5a);
    store4(row0 + 5u, col0 + 4u, r5b);
    store4(row0 + 6u, col0, r6a);
    store4(row0 + 6u, col0 + 4u, r6b);
    store4(row0 + 7u, col0, r7a);
    store4(row0 + 7u, col0 + 4u, r7b);
}
