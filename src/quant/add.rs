//! Correctly rounded addition of two non-negative f32 values in integer arithmetic: the CPU
//! twin of `add_nonneg_f32_exact_bits` in `shaders/common/add.wgsl`.
//!
//! Dynamic quantization needs `max - min` with `max >= 0 >= min`, i.e. `max + |min|`. In f32
//! hardware that sum is correctly rounded, but a GPU that flushes subnormals would turn a
//! subnormal operand or result into 0; on bits nothing is flushed. The result equals IEEE
//! `a + b` for all finite non-negative inputs (round to nearest even, overflow to +Inf).

/// `a + b` for finite `a, b >= +0` (sign bits clear), on bit patterns.
pub fn add_nonneg_f32_exact_bits(a: u32, b: u32) -> u32 {
    // Order so that `big >= small`: for non-negative floats the bit order is the value order.
    let (big, small) = if a >= b { (a, b) } else { (b, a) };
    let exp_big = big >> 23;
    let exp_small = small >> 23;
    // Subnormals have exponent field 0 but scale like field 1, without the hidden bit.
    let mant_big = ((big & 0x007f_ffff) | if exp_big != 0 { 0x0080_0000 } else { 0 }) << 3;
    let mut mant_small =
        ((small & 0x007f_ffff) | if exp_small != 0 { 0x0080_0000 } else { 0 }) << 3;
    let mut exponent = exp_big.max(1);
    let distance = exponent - exp_small.max(1);
    if distance >= 27 {
        mant_small = u32::from(mant_small != 0);
    } else if distance > 0 {
        let lost = mant_small & ((1u32 << distance) - 1);
        mant_small = (mant_small >> distance) | u32::from(lost != 0);
    }
    let mut sum = mant_big + mant_small;
    // A carry out of the 24-bit significand (plus 3 guard bits): renormalise, keeping sticky.
    if sum >= 1 << 27 {
        sum = (sum >> 1) | (sum & 1);
        exponent += 1;
    }
    let guard = sum & 7;
    sum >>= 3;
    if guard > 4 || (guard == 4 && (sum & 1) == 1) {
        sum += 1;
    }
    // `sum` carries the hidden bit for a normal result, which adds one to the exponent field;
    // a rounding carry rolls into the exponent as IEEE requires.
    let bits = ((exponent - 1) << 23) + sum;
    bits.min(0x7f80_0000)
}

/// `a + b` for finite non-negative f32 values, computed on bits.
pub fn add_nonneg_f32_exact(a: f32, b: f32) -> f32 {
    f32::from_bits(add_nonneg_f32_exact_bits(a.to_bits(), b.to_bits()))
}
