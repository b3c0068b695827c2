// 64-bit integer helpers from u32 pieces (WGSL has no portable i64), and TFLite's
// fixed-point requantization built on them.
// CPU twins: src/reference/wide.rs (same names and operations).
// A signed 64-bit value is vec2<u32>(low, high), two's complement.

fn mul_u32_wide(a: u32, b: u32) -> vec2<u32> {
    let a_lo = a & 0xffffu;
    let a_hi = a >> 16u;
    let b_lo = b & 0xffffu;
    let b_hi = b >> 16u;
    let ll = a_lo * b_lo;
    let lh = a_lo * b_hi;
    let hl = a_hi * b_lo;
    let hh = a_hi * b_hi;
    let mid = (ll >> 16u) + (lh & 0xffffu) + (hl & 0xffffu);
    return vec2<u32>((ll & 0xffffu) | (mid << 16u), hh + (lh >> 16u) + (hl >> 16u) + (mid >> 16u));
}

fn neg_wide(v: vec2<u32>) -> vec2<u32> {
    let lo = ~v.x + 1u;
    return vec2<u32>(lo, ~v.y + select(0u, 1u, lo == 0u));
}

fn add_wide(a: vec2<u32>, b: vec2<u32>) -> vec2<u32> {
    let lo = a.x + b.x;
    return vec2<u32>(lo, a.y + b.y + select(0u, 1u, lo < a.x));
}

// i64(a) * i64(b) for a signed, b >= 0.
fn mul_i32_by_nonneg(a: i32, b: i32) -> vec2<u32> {
    let magnitude = select(u32(a), ~u32(a) + 1u, a < 0);
    let p = mul_u32_wide(magnitude, u32(b));
    return select(p, neg_wide(p), a < 0);
}

fn is_negative_wide(v: vec2<u32>) -> bool {
    return (v.y & 0x80000000u) != 0u;
}

// Arithmetic shift right by 1 <= t <= 63.
fn shift_right_wide(v: vec2<u32>, t: u32) -> vec2<u32> {
    let sign_word = select(0u, 0xffffffffu, is_negative_wide(v));
    if t < 32u {
        return vec2<u32>((v.x >> t) | (v.y << (32u - t)), u32(i32(v.y) >> t));
    }
    return vec2<u32>(u32(i32(v.y) >> (t - 32u)), sign_word);
}

// The value clamped to i32.
fn saturate_wide(v: vec2<u32>) -> i32 {
    let fits = v.y == select(0u, 0xffffffffu, i32(v.x) < 0);
    if fits {
        return i32(v.x);
    }
    return select(2147483647, -2147483647 - 1, is_negative_wide(v));
}

// 2^e as a wide value, 0 <= e <= 62.
fn power_of_two_wide(e: u32) -> vec2<u32> {
    if e < 32u {
        return vec2<u32>(1u << e, 0u);
    }
    return vec2<u32>(0u, 1u << (e - 32u));
}

// TFLITE_SINGLE_ROUNDING: (x * m0 + 2^(total-1)) >> total, total = 31 - shift, saturated.
fn mbqm_single(x: i32, m0: i32, shift: i32) -> i32 {
    let total = u32(31 - shift);
    let product = add_wide(mul_i32_by_nonneg(x, m0), power_of_two_wide(total - 1u));
    return saturate_wide(shift_right_wide(product, total));
}

// gemmlowp SaturatingRoundingDoublingHighMul(a, b) for b >= 0.
fn srdhm(a: i32, b: i32) -> i32 {
    if a == (-2147483647 - 1) && b == (-2147483647 - 1) {
        return 2147483647;
    }
    let ab = mul_i32_by_nonneg(a, b);
    let nudge = select(vec2<u32>(0x40000000u, 0u), vec2<u32>(0xc0000001u, 0xffffffffu), is_negative_wide(ab));
    var v = add_wide(ab, nudge);
    // C++ '/' truncates toward zero: bias negative values by 2^31 - 1 before the shift.
    if is_negative_wide(v) {
        v = add_wide(v, vec2<u32>(0x7fffffffu, 0u));
    }
    return i32(shift_right_wide(v, 31u).x);
}

// gemmlowp RoundingDivideByPOT(x, e), 0 <= e <= 31: ties away from zero.
fn rdbpot(x: i32, e: u32) -> i32 {
    let mask = i32((1u << e) - 1u);
    let remainder = x & mask;
    let threshold = (mask >> 1u) + select(0, 1, x < 0);
    return (x >> e) + select(0, 1, remainder > threshold);
}

// x * 2^left saturated to i32, 0 <= left.
fn saturating_shift_left(x: i32, left: u32) -> i32 {
    if x == 0 || left == 0u {
        return x;
    }
    if left >= 31u {
        return select(2147483647, -2147483647 - 1, x < 0);
    }
    let limit = 2147483647 >> left;
    let lowest = (-2147483647 - 1) >> left;
    if x > limit {
        return 2147483647;
    }
    if x < lowest {
        return -2147483647 - 1;
    }
    return x << left;
}

// gemmlowp double rounding.
fn mbqm_double(x: i32, m0: i32, shift: i32) -> i32 {
    let left = u32(max(shift, 0));
    let right = u32(max(-shift, 0));
    return rdbpot(srdhm(saturating_shift_left(x, left), m0), right);
}
