// Scalar quantize, specialised by host-injected constants:
//   SCALE_OP: 0 = f32(x / s) (exact division), 1 = f32(x * inv_s)
//   ROUND_MODE: 0 = half to even, 1 = half away from zero
//   NAN_TO_QMIN: true = NaN -> qmin, false = NaN -> zp
// CPU twin: src/quant/scalar.rs `quantize_value` (same order: scale, clamp, round, + zp).
#import common/divide

fn is_nan_bits(bits: u32) -> bool {
    return (bits & 0x7fffffffu) > 0x7f800000u;
}

// trunc(v) plus one step away from zero when the (exact) fraction is at least a half.
// Not floor(v + 0.5): for v = 0.5 - 2^-25 that sum rounds up to 1.0.
fn round_half_away_from_zero(v: f32) -> f32 {
    let whole = trunc(v);
    let fraction = v - whole;
    return whole + select(0.0, sign(v), abs(fraction) >= 0.5);
}

// ±2^24 with the sign of `bits`: beyond every clamp bound (|qmin - zp|, |qmax - zp| <= 510),
// so it clamps exactly as an infinity or any larger value would.
fn saturated_bits(bits: u32) -> u32 {
    return (bits & 0x80000000u) | 0x4b800000u;
}

// x_bits: the input's bit pattern (read as u32 so no f32 register can flush or
// canonicalise it before the exact division).
// No float operation here sees an infinity or overflows (WGSL §15.7.2 lets an implementation
// assume neither): an infinite quotient (x = ±Inf, or x / s past f32) is replaced on its bits
// by ±2^24, and so is x * inv_s when the exponents alone show |x * inv_s| >= 2^24 (then the
// product is not computed). Both clamp to the same bound as the reference's infinity. NaN
// takes the same road and is overridden by the bit test at the end.
fn quantize_value(x_bits: u32, scale_bits: u32, inv_scale: f32, zp: i32, qmin: i32, qmax: i32) -> i32 {
    var scaled: f32;
    if SCALE_OP == 0u {
        let q_bits = div_f32_exact_bits(x_bits, scale_bits);
        scaled = bitcast<f32>(select(q_bits, saturated_bits(q_bits), (q_bits & 0x7fffffffu) >= 0x7f800000u));
    } else {
        // x = ±Inf or NaN (ex = 255) saturates by its sign. Otherwise |x| >= 2^(ex - 127) and
        // inv_s >= 2^(ei - 127) (both normal when ex + ei >= 278), so ex + ei >= 278 means
        // |x * inv_s| >= 2^24; below that the product is under 2^25, finite.
        let ex = (x_bits >> 23u) & 0xffu;
        let ei = (bitcast<u32>(inv_scale) >> 23u) & 0xffu;
        if ex == 0xffu || ex + ei >= 278u {
            scaled = bitcast<f32>(saturated_bits(x_bits));
        } else {
            scaled = bitcast<f32>(x_bits) * inv_scale;
        }
    }
    let lo = f32(qmin - zp);
    let hi = f32(qmax - zp);
    var clamped = select(scaled, lo, scaled < lo);
    clamped = select(clamped, hi, clamped > hi);
    var rounded: f32;
    if ROUND_MODE == 0u {
        rounded = round(clamped);
    } else {
        rounded = round_half_away_from_zero(clamped);
    }
    let q = i32(rounded) + zp;
    if is_nan_bits(x_bits) {
        return select(zp, qmin, NAN_TO_QMIN);
    }
    return q;
}
