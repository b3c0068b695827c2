//! Quantize/dequantize under arbitrary params and f32 bit patterns: the result lies in the
//! range, NaN follows the convention, order is preserved, a value inside the range comes back
//! within half a step, and the tensor reference equals the scalar one.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wgpu_quant::quant::convention::NanPolicy;
use wgpu_quant::quant::scalar::{dequantize_value, quantize_value};
use wgpu_quant::reference::quantize::{from_storage_byte, quantize};
use wgpu_quant::{Convention, QType, QuantParams};

fuzz_target!(|data: (u32, u32, u32, i16, u8)| {
    let (x_bits, y_bits, scale_bits, zp, selector) = data;
    let convention = Convention::ALL[usize::from(selector % 3)];
    let qtype = if selector & 4 == 0 { QType::I8 } else { QType::U8 };
    let range = qtype.full_range();
    let scale = f32::from_bits(scale_bits);
    let zp = i32::from(zp);
    let Ok(params) = QuantParams::per_tensor(scale, zp, range) else {
        return; // invalid params are rejected, which the unit tests cover
    };
    let (qmin, qmax) = (range.qmin(), range.qmax());
    let (x, y) = (f32::from_bits(x_bits), f32::from_bits(y_bits));
    let qx = quantize_value(convention, x, scale, zp, qmin, qmax);
    assert!((qmin..=qmax).contains(&qx));
    if x.is_nan() {
        let want = match convention.nan_policy() {
            NanPolicy::ToQmin => qmin,
            NanPolicy::ToZeroPoint => zp,
        };
        assert_eq!(qx, want);
        return;
    }
    if !y.is_nan() {
        let qy = quantize_value(convention, y, scale, zp, qmin, qmax);
        if x <= y {
            assert!(qx <= qy, "{convention:?}: {x} -> {qx} but {y} -> {qy}");
        }
    }
    // (q - zp) * s is one correctly rounded product; with a huge scale it overflows to ±Inf,
    // which is the right IEEE result, so the half-step check applies to finite results only.
    let back = dequantize_value(qx, scale, zp);
    if qx > qmin && qx < qmax && x.is_finite() && back.is_finite() {
        let bound = f64::from(scale) * 0.5 * (1.0 + 1e-5) + f64::from(x.abs()) * 1e-6;
        assert!((f64::from(back) - f64::from(x)).abs() <= bound, "{convention:?} {x} -> {qx} -> {back}");
    }
    let tensor = quantize(convention, &[x], &[1], &params).unwrap();
    assert_eq!(from_storage_byte(tensor[0], qtype), qx);
});
