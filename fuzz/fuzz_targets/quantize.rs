//! Quantize/dequantize under valid params and chosen values: the result lies in the range,
//! NaN follows the convention, order is preserved, a value inside the range comes back within
//! half a step, and the tensor reference (per tensor and per axis) equals the scalar one.
//!
//! The input is structured (derived with `arbitrary`) and every field is mapped onto its valid
//! range, so no run is thrown away: the scale is always a positive normal f32, the zero point
//! always lies in the range, and the values are chosen near quantization steps and ties (where
//! conventions differ) as well as from raw bit patterns (NaN, ±Inf, subnormals, huge values).
#![no_main]

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use wgpu_quant::quant::convention::NanPolicy;
use wgpu_quant::quant::scalar::{dequantize_value, quantize_value};
use wgpu_quant::reference::quantize::{dequantize, from_storage_byte, quantize};
use wgpu_quant::{Convention, QType, QuantParams};

/// A positive normal f32: biased exponent in [1, 254], any mantissa.
#[derive(Arbitrary, Debug, Clone, Copy)]
struct Scale {
    exponent: u8,
    mantissa: u32,
}

impl Scale {
    fn value(self) -> f32 {
        let e = 1 + u32::from(self.exponent) % 254;
        f32::from_bits((e << 23) | (self.mantissa & 0x007f_ffff))
    }
}

/// One input value.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum Value {
    /// Any bit pattern (NaN, ±Inf, subnormals, huge values).
    Bits(u32),
    /// `(step + 1/2) * scale`, a tie of the division, nudged by `nudge` ulps.
    Tie { step: i16, nudge: i8 },
    /// `(step + fraction / 2^16) * scale`.
    Near { step: i16, fraction: u16 },
}

impl Value {
    fn value(self, scale: f32) -> f32 {
        match self {
            Value::Bits(b) => f32::from_bits(b),
            Value::Tie { step, nudge } => {
                let x = (f32::from(step) + 0.5) * scale;
                nudge_ulps(x, i32::from(nudge) % 4)
            }
            Value::Near { step, fraction } => {
                (f32::from(step) + f32::from(fraction) / 65536.0) * scale
            }
        }
    }
}

fn nudge_ulps(x: f32, n: i32) -> f32 {
    if !x.is_finite() || n == 0 {
        return x;
    }
    let mut v = x;
    for _ in 0..n.unsigned_abs() {
        v = if n > 0 { v.next_up() } else { v.next_down() };
    }
    v
}

#[derive(Arbitrary, Debug)]
struct Input {
    convention: u8,
    unsigned: bool,
    narrow: bool,
    scales: [Scale; 3],
    /// Mapped onto `[qmin, qmax]`.
    zero_points: [u16; 3],
    /// Channels for the per-axis check: 1 to 3.
    channels: u8,
    values: Vec<Value>,
}

fuzz_target!(|input: Input| {
    let convention = Convention::ALL[usize::from(input.convention) % Convention::ALL.len()];
    let qtype = if input.unsigned { QType::U8 } else { QType::I8 };
    let range = if input.narrow && qtype == QType::I8 {
        qtype.narrow_range()
    } else {
        qtype.full_range()
    };
    let (qmin, qmax) = (range.qmin(), range.qmax());
    let span = (qmax - qmin + 1) as u16;
    let scales: Vec<f32> = input.scales.iter().map(|s| s.value()).collect();
    let zps: Vec<i32> = input
        .zero_points
        .iter()
        .map(|&z| qmin + i32::from(z % span))
        .collect();
    let (scale, zp) = (scales[0], zps[0]);
    let params = QuantParams::per_tensor(scale, zp, range).expect("mapped params are valid");
    let xs: Vec<f32> = input
        .values
        .iter()
        .take(64)
        .map(|v| v.value(scale))
        .collect();

    let qs: Vec<i32> = xs
        .iter()
        .map(|&x| quantize_value(convention, x, scale, zp, qmin, qmax))
        .collect();
    for (&x, &qx) in xs.iter().zip(&qs) {
        assert!((qmin..=qmax).contains(&qx));
        if x.is_nan() {
            let want = match convention.nan_policy() {
                NanPolicy::ToQmin => qmin,
                NanPolicy::ToZeroPoint => zp,
            };
            assert_eq!(qx, want);
            continue;
        }
        // (q - zp) * s is one correctly rounded product; a huge scale overflows it to ±Inf,
        // the right IEEE result, so the half-step check applies to finite results only.
        let back = dequantize_value(qx, scale, zp);
        if qx > qmin && qx < qmax && x.is_finite() && back.is_finite() {
            let bound = f64::from(scale) * 0.5 * (1.0 + 1e-5) + f64::from(x.abs()) * 1e-6;
            assert!(
                (f64::from(back) - f64::from(x)).abs() <= bound,
                "{convention:?} {x} -> {qx} -> {back}"
            );
        }
    }
    // Monotone: x <= y gives q(x) <= q(y), over every ordered pair of non-NaN values.
    for (i, (&x, &qx)) in xs.iter().zip(&qs).enumerate() {
        for (&y, &qy) in xs[i + 1..].iter().zip(&qs[i + 1..]) {
            if x.is_nan() || y.is_nan() {
                continue;
            }
            if x <= y {
                assert!(qx <= qy, "{convention:?}: {x} -> {qx} but {y} -> {qy}");
            } else {
                assert!(qx >= qy, "{convention:?}: {x} -> {qx} but {y} -> {qy}");
            }
        }
    }
    // The tensor reference equals the scalar one, per tensor.
    let tensor = quantize(convention, &xs, &[xs.len()], &params).unwrap();
    assert_eq!(tensor.len(), xs.len());
    for (&b, &q) in tensor.iter().zip(&qs) {
        assert_eq!(from_storage_byte(b, qtype), q);
    }
    let back = dequantize(&tensor, &[xs.len()], &params).unwrap();
    for (&b, &q) in back.iter().zip(&qs) {
        assert_eq!(b.to_bits(), dequantize_value(q, scale, zp).to_bits());
    }
    // Per axis along the first of two dimensions: element i belongs to channel i / inner.
    let channels = 1 + usize::from(input.channels) % 3;
    let inner = xs.len() / channels;
    if inner > 0 {
        let n = channels * inner;
        let axis_params = QuantParams::per_axis(
            0,
            scales[..channels].to_vec(),
            zps[..channels].to_vec(),
            range,
        )
        .expect("mapped params are valid");
        let per_axis = quantize(convention, &xs[..n], &[channels, inner], &axis_params).unwrap();
        assert_eq!(per_axis.len(), n);
        for (i, &b) in per_axis.iter().enumerate() {
            let c = i / inner;
            let want = quantize_value(convention, xs[i], scales[c], zps[c], qmin, qmax);
            assert_eq!(
                from_storage_byte(b, qtype),
                want,
                "element {i}, channel {c}"
            );
        }
    }
});
