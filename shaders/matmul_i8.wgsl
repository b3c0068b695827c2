// Int8 GEMM Y[M, N] = epilogue(A[M, K] x W[N, K]^T) with dot4I8Packed and exact i32 sums.
// CPU twin: src/reference/gemm.rs `matmul_i8` (same zero-point algebra and epilogues).
//
// Each invocation computes a TILE_M x 4 block (register blocking). GEMM: TILE_M = 4 in an
// 8 x 8 workgroup (a 32 x 32 tile); GEMV (M <= 3): TILE_M = 1 in a 64 x 1 workgroup, so no
// row load is wasted on rows that do not exist. Rows and columns past M / N load the last valid row (no bounds checks in
// the inner loop) and are not stored. A holds raw storage bytes (U8 is moved into the I8
// domain here by XOR 0x80; its zero padding bytes then read -128, which `a_pad_correction`
// cancels in the row sums); W is stored in the I8 domain at upload, padded with zeros.
//
// Specialised by host-injected constants:
//   EPILOGUE: 0 I32, 1 DequantF32, 2 DequantF16, 3 RequantFloat, 4 fixed single, 5 fixed double,
//     6 DequantRequant (the DequantF32 value, then common/quantize `quantize_value`)
//   A_IS_U8, DYNAMIC_ROWS (row scale x channel scale), PER_ROW_ZERO_POINT, HAS_FLOAT_BIAS
//   FLOAT_CLAMP: the activation of epilogues 1 and 2, as an f32 clamp whose bounds arrive as
//     f32 bits in uniforms.clamp_min / clamp_max
//   SCALE_OP, ROUND_MODE, NAN_TO_QMIN: the quantizer's convention (epilogue 6)
//   ROW_SUMS: accumulate Σa per row (needed only when a weight zero point is not 0 in the
//   I8 domain; symmetric weights skip it)
//   VEC4: 16-byte loads (`loads` maps to loads/vec4), when rows are whole vec4s
//   DOT4_POLYFILL: dot products from unpacked i32 multiply-adds instead of dot4I8Packed
#import common/wide
#import common/pack
#import common/quantize
#import loads

// Twin: src/gpu/gemm.rs `MatmulUniforms`.
struct MatmulUniforms {
    m: u32,
    n: u32,
    k: u32,
    k_words: u32,
    out_zero_point: i32,
    // Integer clamp range; for epilogues 1 and 2 with FLOAT_CLAMP, the f32 bounds' bits.
    clamp_min: i32,
    clamp_max: i32,
    a_pad_correction: i32,
    // The full output width and this dispatch's first column: weights above the binding
    // limit are split along N and each part writes its own column strip.
    n_total: u32,
    col_offset: u32,
    // Activations, outputs and row params above the binding limit are split along M; each
    // part is bound from an aligned offset and these are the words (rows) left over.
    a_word_offset: u32,
    out_word_offset: u32,
    row_offset: u32,
    // Epilogue 6: the output scale's bits and f32(1 / scale) (reciprocal convention).
    out_scale_bits: u32,
    out_inv_scale: f32,
    pad0: u32,
}

// Twin: src/gpu/gemm.rs `ChannelParams`.
struct ChannelParams {
    sum_w: i32,
    zero_point: i32,
    bias: i32,
    shift: i32,
    scale_bits: u32,
    float_bias: f32,
    pad0: u32,
    pad1: u32,
}

// Twin: src/gpu/gemm.rs `RowParams`.
struct RowParams {
    zero_point: i32,
    scale: f32,
}

@group(0) @binding(0) var<uniform> uniforms: MatmulUniforms;
// Bindings 1 (a) and 2 (w) are declared by the imported `loads` (u32 or vec4<u32> words).
@group(0) @binding(3) var<storage, read> channels: array<ChannelParams>;
@group(0) @binding(4) var<storage, read> rows: array<RowParams>;
@group(0) @binding(5) var<storage, read_write> out: array<u32>;

const ONES: u32 = 0x01010101u;

fn row_params(r: u32) -> RowParams {
    return rows[select(0u, uniforms.row_offset + r, PER_ROW_ZERO_POINT || DYNAMIC_ROWS)];
}

// acc + bias with zero points: dot - za·Σw - zw·Σa + K·za·zw + bias (wrapping i32).
fn corrected(dot: i32, sum_a: i32, za: i32, ch: ChannelParams) -> i32 {
    return dot - za * ch.sum_w - ch.zero_point * sum_a + i32(uniforms.k) * za * ch.zero_point + ch.bias;
}

// x, rounded out of the compiler's sight: an XOR of its bits with a runtime zero
// (uniforms.pad0, always 0 from the host). WGSL lets an implementation reassociate
// (§15.7.5), so a product that feeds another multiply goes through here first and keeps its
// own rounding: `f32(acc) * (s_a * s_w)` can then not become `(f32(acc) * s_a) * s_w`.
fn rounded(x: f32) -> f32 {
    return bitcast<f32>(bitcast<u32>(x) ^ uniforms.pad0);
}

fn dequant_value(acc: i32, r: u32, ch: ChannelParams) -> f32 {
    var scale = bitcast<f32>(ch.scale_bits);
    if DYNAMIC_ROWS {
        scale = rounded(row_params(r).scale * scale);
    }
    var v = f32(acc) * scale;
    if HAS_FLOAT_BIAS {
        v = v + ch.float_bias;
    }
    return v;
}

// The activation of a float output: v < lo ? lo : v, then v > hi ? hi : v (selects, never
// float min/max/clamp). Twin: src/reference/gemm.rs `float_clamp`.
fn float_activation(v: f32) -> f32 {
    if FLOAT_CLAMP {
        let lo = bitcast<f32>(uniforms.clamp_min);
        let hi = bitcast<f32>(uniforms.clamp_max);
        var clamped = select(v, lo, v < lo);
        clamped = select(clamped, hi, clamped > hi);
        return clamped;
    }
    return v;
}

// Epilogue 6: the dequantized f32 value quantized with per-tensor output params under the
// convention (exact division or reciprocal multiply, clamp in float, round, + zp).
// Twin: src/reference/gemm.rs `dequant_requant_value`.
fn dequant_requant_value(acc: i32, r: u32, ch: ChannelParams) -> i32 {
    // Rounded before the reciprocal convention's `v * (1 / s_out)` (no reassociation).
    let v = rounded(dequant_value(acc, r, ch));
    return quantize_value(
        bitcast<u32>(v),
        uniforms.out_scale_bits,
        uniforms.out_inv_scale,
        uniforms.out_zero_point,
        uniforms.clamp_min,
        uniforms.clamp_max,
    );
}

// The requantized output value (before the storage byte): float or fixed point.
fn requant_value(acc: i32, ch: ChannelParams) -> i32 {
    let zp = uniforms.out_zero_point;
    if EPILOGUE == 3u {
        let v = f32(acc) * bitcast<f32>(ch.scale_bits);
        let lo = f32(uniforms.clamp_min - zp);
        let hi = f32(uniforms.clamp_max - zp);
        var clamped = select(v, lo, v < lo);
        clamped = select(clamped, hi, clamped > hi);
        return i32(round(clamped)) + zp;
    }
    var scaled: i32;
    if EPILOGUE == 4u {
        scaled = mbqm_single(acc, bitcast<i32>(ch.scale_bits), ch.shift);
    } else {
        scaled = mbqm_double(acc, bitcast<i32>(ch.scale_bits), ch.shift);
    }
    // Saturating zp + scaled, then the clamp: bounding |scaled| by 2^30 first gives the same
    // result, since |zp| <= 255 and the clamp range lies inside [-128, 255].
    let bounded = clamp(scaled, -1073741824, 1073741824);
    return clamp(bounded + zp, uniforms.clamp_min, uniforms.clamp_max);
}

// The packed signed dot product. With DOT4_POLYFILL (the context's self-test found the
// driver's dot4I8Packed wrong, or the caller forced the fallback) the same sum from four
// sign-extended byte products in i32: both are exact, so both give the same bits.
fn dot4(a: u32, b: u32) -> i32 {
    if DOT4_POLYFILL {
        let p0 = (bitcast<i32>(a << 24u) >> 24u) * (bitcast<i32>(b << 24u) >> 24u);
        let p1 = (bitcast<i32>(a << 16u) >> 24u) * (bitcast<i32>(b << 16u) >> 24u);
        let p2 = (bitcast<i32>(a << 8u) >> 24u) * (bitcast<i32>(b << 8u) >> 24u);
        let p3 = (bitcast<i32>(a) >> 24u) * (bitcast<i32>(b) >> 24u);
        return p0 + p1 + p2 + p3;
    }
    return dot4I8Packed(a, b);
}

@compute @workgroup_size(WORKGROUP_X, WORKGROUP_Y)
fn matmul_i8(@builtin(global_invocation_id) gid: vec3<u32>) {
    let col0 = gid.x * 4u;
    let row0 = gid.y * TILE_M;
    let m = uniforms.m;
    let n = uniforms.n;
    if row0 >= m || col0 >= n {
        return;
    }
    let kw = uniforms.k_words;
    var a_base: array<u32, TILE_M>;
    var w_base: array<u32, 4>;
    for (var i = 0u; i < TILE_M; i++) {
        a_base[i] = uniforms.a_word_offset + min(row0 + i, m - 1u) * kw;
    }
    for (var j = 0u; j < 4u; j++) {
        w_base[j] = min(col0 + j, n - 1u) * kw;
    }
    let flip = select(0u, 0x80808080u, A_IS_U8);
    var acc: array<array<i32, 4>, TILE_M>;
    var sum_a: array<i32, TILE_M>;
    if VEC4 && TILE_M == 4u {
        // The 4 x 4 block with 16-byte loads, unrolled by hand into named registers: a
        // compiler may keep small private arrays in memory when indexed in loops.
        var c00 = 0; var c01 = 0; var c02 = 0; var c03 = 0;
        var c10 = 0; var c11 = 0; var c12 = 0; var c13 = 0;
        var c20 = 0; var c21 = 0; var c22 = 0; var c23 = 0;
        var c30 = 0; var c31 = 0; var c32 = 0; var c33 = 0;
        var s0 = 0; var s1 = 0; var s2 = 0; var s3 = 0;
        let f4 = vec4<u32>(flip);
        for (var word = 0u; word < kw; word += 4u) {
            let x0 = load4_a(a_base[0] + word) ^ f4;
            let x1 = load4_a(a_base[min(1u, TILE_M - 1u)] + word) ^ f4;
            let x2 = load4_a(a_base[min(2u, TILE_M - 1u)] + word) ^ f4;
            let x3 = load4_a(a_base[min(3u, TILE_M - 1u)] + word) ^ f4;
            let y0 = load4_w(w_base[0] + word);
            let y1 = load4_w(w_base[1] + word);
            let y2 = load4_w(w_base[2] + word);
            let y3 = load4_w(w_base[3] + word);
            c00 += dot4(x0.x, y0.x) + dot4(x0.y, y0.y) + dot4(x0.z, y0.z) + dot4(x0.w, y0.w);
            c01 += dot4(x0.x, y1.x) + dot4(x0.y, y1.y) + dot4(x0.z, y1.z) + dot4(x0.w, y1.w);
            c02 += dot4(x0.x, y2.x) + dot4(x0.y, y2.y) + dot4(x0.z, y2.z) + dot4(x0.w, y2.w);
            c03 += dot4(x0.x, y3.x) + dot4(x0.y, y3.y) + dot4(x0.z, y3.z) + dot4(x0.w, y3.w);
            c10 += dot4(x1.x, y0.x) + dot4(x1.y, y0.y) + dot4(x1.z, y0.z) + dot4(x1.w, y0.w);
            c11 += dot4(x1.x, y1.x) + dot4(x1.y, y1.y) + dot4(x1.z, y1.z) + dot4(x1.w, y1.w);
            c12 += dot4(x1.x, y2.x) + dot4(x1.y, y2.y) + dot4(x1.z, y2.z) + dot4(x1.w, y2.w);
            c13 += dot4(x1.x, y3.x) + dot4(x1.y, y3.y) + dot4(x1.z, y3.z) + dot4(x1.w, y3.w);
            c20 += dot4(x2.x, y0.x) + dot4(x2.y, y0.y) + dot4(x2.z, y0.z) + dot4(x2.w, y0.w);
            c21 += dot4(x2.x, y1.x) + dot4(x2.y, y1.y) + dot4(x2.z, y1.z) + dot4(x2.w, y1.w);
            c22 += dot4(x2.x, y2.x) + dot4(x2.y, y2.y) + dot4(x2.z, y2.z) + dot4(x2.w, y2.w);
            c23 += dot4(x2.x, y3.x) + dot4(x2.y, y3.y) + dot4(x2.z, y3.z) + dot4(x2.w, y3.w);
            c30 += dot4(x3.x, y0.x) + dot4(x3.y, y0.y) + dot4(x3.z, y0.z) + dot4(x3.w, y0.w);
            c31 += dot4(x3.x, y1.x) + dot4(x3.y, y1.y) + dot4(x3.z, y1.z) + dot4(x3.w, y1.w);
            c32 += dot4(x3.x, y2.x) + dot4(x3.y, y2.y) + dot4(x3.z, y2.z) + dot4(x3.w, y2.w);
            c33 += dot4(x3.x, y3.x) + dot4(x3.y, y3.y) + dot4(x3.z, y3.z) + dot4(x3.w, y3.w);
            if ROW_SUMS {
                s0 += dot4(x0.x, ONES) + dot4(x0.y, ONES) + dot4(x0.z, ONES) + dot4(x0.w, ONES);
                s1 += dot4(x1.x, ONES) + dot4(x1.y, ONES) + dot4(x1.z, ONES) + dot4(x1.w, ONES);
                s2 += dot4(x2.x, ONES) + dot4(x2.y, ONES) + dot4(x2.z, ONES) + dot4(x2.w, ONES);
                s3 += dot4(x3.x, ONES) + dot4(x3.y, ONES) + dot4(x3.z, ONES) + dot4(x3.w, ONES);
            }
        }
        acc[0] = array<i32, 4>(c00, c01, c02, c03);
        acc[min(1u, TILE_M - 1u)] = array<i32, 4>(c10, c11, c12, c13);
        acc[min(2u, TILE_M - 1u)] = array<i32, 4>(c20, c21, c22, c23);
        acc[min(3u, TILE_M - 1u)] = array<i32, 4>(c30, c31, c32, c33);
        sum_a[0] = s0;
        sum_a[min(1u, TILE_M - 1u)] = s1;
        sum_a[min(2u, TILE_M - 1u)] = s2;
        sum_a[min(3u, TILE_M - 1u)] = s3;
    } else if TILE_M == 4u {
        // The 4 x 4 block one word at a time, unrolled: fewer live registers than vec4.
        var c00 = 0; var c01 = 0; var c02 = 0; var c03 = 0;
        var c10 = 0; var c11 = 0; var c12 = 0; var c13 = 0;
        var c20 = 0; var c21 = 0; var c22 = 0; var c23 = 0;
        var c30 = 0; var c31 = 0; var c32 = 0; var c33 = 0;
        var s0 = 0; var s1 = 0; var s2 = 0; var s3 = 0;
        for (var word = 0u; word < kw; word++) {
            let x0 = load_a(a_base[0] + word) ^ flip;
            let x1 = load_a(a_base[min(1u, TILE_M - 1u)] + word) ^ flip;
            let x2 = load_a(a_base[min(2u, TILE_M - 1u)] + word) ^ flip;
            let x3 = load_a(a_base[min(3u, TILE_M - 1u)] + word) ^ flip;
            let y0 = load_w(w_base[0] + word);
            let y1 = load_w(w_base[1] + word);
            let y2 = load_w(w_base[2] + word);
            let y3 = load_w(w_base[3] + word);
            c00 += dot4(x0, y0); c01 += dot4(x0, y1); c02 += dot4(x0, y2); c03 += dot4(x0, y3);
            c10 += dot4(x1, y0); c11 += dot4(x1, y1); c12 += dot4(x1, y2); c13 += dot4(x1, y3);
            c20 += dot4(x2, y0); c21 += dot4(x2, y1); c22 += dot4(x2, y2); c23 += dot4(x2, y3);
            c30 += dot4(x3, y0); c31 += dot4(x3, y1); c32 += dot4(x3, y2); c33 += dot4(x3, y3);
            if ROW_SUMS {
                s0 += dot4(x0, ONES); s1 += dot4(x1, ONES);
                s2 += dot4(x2, ONES); s3 += dot4(x3, ONES);
            }
        }
        acc[0] = array<i32, 4>(c00, c01, c02, c03);
        acc[min(1u, TILE_M - 1u)] = array<i32, 4>(c10, c11, c12, c13);
        acc[min(2u, TILE_M - 1u)] = array<i32, 4>(c20, c21, c22, c23);
        acc[min(3u, TILE_M - 1u)] = array<i32, 4>(c30, c31, c32, c33);
        sum_a[0] = s0;
        sum_a[min(1u, TILE_M - 1u)] = s1;
        sum_a[min(2u, TILE_M - 1u)] = s2;
        sum_a[min(3u, TILE_M - 1u)] = s3;
    } else if VEC4 {
        // Four words (16 elements) per load; rows are whole vec4s.
        for (var word = 0u; word < kw; word += 4u) {
            var av: array<vec4<u32>, TILE_M>;
            var wv: array<vec4<u32>, 4>;
            for (var i = 0u; i < TILE_M; i++) {
                av[i] = load4_a(a_base[i] + word) ^ vec4<u32>(flip);
            }
            for (var j = 0u; j < 4u; j++) {
                wv[j] = load4_w(w_base[j] + word);
            }
            for (var i = 0u; i < TILE_M; i++) {
                let x = av[i];
                if ROW_SUMS {
                    sum_a[i] += dot4(x.x, ONES) + dot4(x.y, ONES) + dot4(x.z, ONES) + dot4(x.w, ONES);
                }
                for (var j = 0u; j < 4u; j++) {
                    let y = wv[j];
                    acc[i][j] += dot4(x.x, y.x) + dot4(x.y, y.y) + dot4(x.z, y.z) + dot4(x.w, y.w);
                }
            }
        }
    } else {
        for (var word = 0u; word < kw; word++) {
            var av: array<u32, TILE_M>;
            var wv: array<u32, 4>;
            for (var i = 0u; i < TILE_M; i++) {
                av[i] = load_a(a_base[i] + word) ^ flip;
            }
            for (var j = 0u; j < 4u; j++) {
                wv[j] = load_w(w_base[j] + word);
            }
            for (var i = 0u; i < TILE_M; i++) {
                if ROW_SUMS {
                    sum_a[i] += dot4(av[i], ONES);
                }
                for (var j = 0u; j < 4u; j++) {
                    acc[i][j] += dot4(av[i], wv[j]);
                }
            }
        }
    }

    for (var i = 0u; i < TILE_M; i++) {
        let r = row0 + i;
        if r >= m {
            break;
        }
        // Raw-domain zero point (static activations keep theirs in rows[0]), moved to I8.
        let za = row_params(r).zero_point - select(0, 128, A_IS_U8);
        let sa = sum_a[i] + uniforms.a_pad_correction;
        var packed = 0u;
        var half_pair = vec2<u32>(0u, 0u);
        for (var j = 0u; j < 4u; j++) {
            let c = col0 + j;
            if c >= n {
                break;
            }
            let ch = channels[c];
            let total = corrected(acc[i][j], sa, za, ch);
            let flat = uniforms.out_word_offset + r * uniforms.n_total + uniforms.col_offset + c;
            if EPILOGUE == 0u {
                out[flat] = bitcast<u32>(total);
            } else if EPILOGUE == 1u {
                out[flat] = bitcast<u32>(float_activation(dequant_value(total, r, ch)));
            } else if EPILOGUE == 2u {
                let h = f32_to_f16_bits(bitcast<u32>(float_activation(dequant_value(total, r, ch))));
                half_pair[j / 2u] |= h << (16u * (j % 2u));
            } else if EPILOGUE == 6u {
                packed |= storage_byte(dequant_requant_value(total, r, ch)) << (8u * j);
            } else {
                packed |= storage_byte(requant_value(total, ch)) << (8u * j);
            }
        }
        // Column strips start at multiples of 4, so words never straddle two dispatches.
        let first = uniforms.col_offset + col0;
        if EPILOGUE == 2u {
            let words = (uniforms.n_total + 1u) / 2u;
            let base = uniforms.out_word_offset + r * words;
            out[base + first / 2u] = half_pair.x;
            if first / 2u + 1u < words {
                out[base + first / 2u + 1u] = half_pair.y;
            }
        } else if EPILOGUE >= 3u {
            out[uniforms.out_word_offset + r * ((uniforms.n_total + 3u) / 4u) + first / 4u] = packed;
        }
    }
}
