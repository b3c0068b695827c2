// Int8 GEMM Y[M, N] = epilogue(A[M, K] x W[N, K]^T) with dot4I8Packed and exact i32 sums.
// CPU twin: src/reference/gemm.rs `matmul_i8` (same zero-point algebra and epilogues).
//
// This file holds what every kernel shape shares (bindings, zero-point algebra, epilogues,
// `store_group`); `#import kernel` brings the entry point of the variant's shape (`Tile` in
// src/gpu/pipelines.rs): GEMM register blocks of 4 x 4 or 8 x 8 per invocation in an 8 x 8
// workgroup (matmul_i8/register), the same with A and W tiles staged in workgroup memory
// (matmul_i8/staged*), and for the GEMV (M <= 3) 1 x 4 or 1 x 8 per invocation in a 64 x 1
// workgroup (so no row load is wasted on rows that do not exist) or 4 / 8 columns per
// workgroup with K split across it (matmul_i8/split*). Rows and columns past M / N load the
// last valid row (no bounds checks in the inner loop) and are not stored. A holds raw storage bytes (U8 is moved into the I8
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
//   TILE_M, TILE_N: the register block (`block` maps to matmul_i8/block{TILE_M}x{TILE_N},
//     written out by scripts/gen_matmul_blocks.py, as are the split and staged kernels)
//   INTERLEAVED: split GEMV, adjacent invocations take adjacent words of K (else slices)
//   DOT4_POLYFILL: dot products from unpacked i32 multiply-adds instead of dot4I8Packed
//     (after a failed self-test, or where the autotune found them faster)
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

// The four bytes of a packed word, sign-extended: [b0, b1, b2, b3].
fn unpack_i8(x: u32) -> vec4<i32> {
    return bitcast<vec4<i32>>(vec4<u32>(x) << vec4<u32>(24u, 16u, 8u, 0u)) >> vec4<u32>(24u);
}

// The sum of an unpacked word's four values.
fn hsum(v: vec4<i32>) -> i32 {
    return (v.x + v.y) + (v.z + v.w);
}

// The packed signed dot product of one word pair.
fn dot4(a: u32, b: u32) -> i32 {
    return dot4I8Packed(a, b);
}

// Stores columns cg..cg+3 of row r (those past N are skipped): the sums v and the row's
// activation sum corrected for the zero points, through the epilogue, as i32/f32 words, an
// f16 pair or one packed word. Every kernel shape ends here.
fn store_group(r: u32, cg: u32, v: vec4<i32>, sum_a: i32) {
    let n = uniforms.n;
    // Raw-domain zero point (static activations keep theirs in rows[0]), moved to I8.
    let za = row_params(r).zero_point - select(0, 128, A_IS_U8);
    let sa = sum_a + uniforms.a_pad_correction;
    var packed = 0u;
    var half_pair = vec2<u32>(0u, 0u);
    for (var j = 0u; j < 4u; j++) {
        let c = cg + j;
        if c >= n {
            break;
        }
        let ch = channels[c];
        let total = corrected(v[j], sa, za, ch);
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
    let first = uniforms.col_offset + cg;
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

// The entry point `matmul_i8` of this variant's kernel shape: a register block per
// invocation (matmul_i8/register), a workgroup-memory tile (matmul_i8/staged*) or a GEMV
// split across the workgroup (matmul_i8/split*).
#import kernel
