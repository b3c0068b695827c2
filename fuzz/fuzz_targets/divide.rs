//! The exact division and non-negative addition equal IEEE on arbitrary bit patterns.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wgpu_quant::quant::add::add_nonneg_f32_exact_bits;
use wgpu_quant::quant::divide::{CANONICAL_NAN_BITS, div_f32_exact_bits};

fuzz_target!(|data: [u32; 2]| {
    let [a, b] = data;
    let want = f32::from_bits(a) / f32::from_bits(b);
    let got = div_f32_exact_bits(a, b);
    if want.is_nan() {
        assert_eq!(got, CANONICAL_NAN_BITS);
    } else {
        assert_eq!(got, want.to_bits(), "{a:#010x} / {b:#010x}");
    }
    let (x, y) = (a & 0x7fff_ffff, b & 0x7fff_ffff);
    if x < 0x7f80_0000 && y < 0x7f80_0000 {
        let sum = (f32::from_bits(x) + f32::from_bits(y)).to_bits();
        assert_eq!(add_nonneg_f32_exact_bits(x, y), sum, "{x:#010x} + {y:#010x}");
    }
});
