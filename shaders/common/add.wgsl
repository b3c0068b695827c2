// Correctly rounded a + b for finite a, b >= +0, on bit patterns (no flush to zero).
// CPU twin: src/quant/add.rs `add_nonneg_f32_exact_bits` (same operations, same order).

fn add_nonneg_f32_exact_bits(a: u32, b: u32) -> u32 {
    let big = max(a, b);
    let small = min(a, b);
    let exp_big = big >> 23u;
    let exp_small = small >> 23u;
    let mant_big = ((big & 0x007fffffu) | select(0u, 0x00800000u, exp_big != 0u)) << 3u;
    var mant_small = ((small & 0x007fffffu) | select(0u, 0x00800000u, exp_small != 0u)) << 3u;
    var exponent = max(exp_big, 1u);
    let distance = exponent - max(exp_small, 1u);
    if distance >= 27u {
        mant_small = select(0u, 1u, mant_small != 0u);
    } else if distance > 0u {
        let lost = mant_small & ((1u << distance) - 1u);
        mant_small = (mant_small >> distance) | select(0u, 1u, lost != 0u);
    }
    var sum = mant_big + mant_small;
    if sum >= (1u << 27u) {
        sum = (sum >> 1u) | (sum & 1u);
        exponent += 1u;
    }
    let guard = sum & 7u;
    sum = sum >> 3u;
    if guard > 4u || (guard == 4u && (sum & 1u) == 1u) {
        sum += 1u;
    }
    return min(((exponent - 1u) << 23u) + sum, 0x7f800000u);
}
