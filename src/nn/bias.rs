//! Bias and weight-scale helpers of the quantized linear layer: the f32 bias quantized into
//! the accumulator scale `s_a·s_w[c]` as onnxruntime and TFLite do, the weight scales widened
//! so a bias fits i32, and the floor that keeps a dynamic layer's scale products normal.

use crate::error::{Error, Result};
use crate::quant::params::QuantParams;
use crate::quant::scalar::round_half_to_even;

/// `rne(b / f32(s_a * s_w[c]))` per channel, refusing what does not fit i32 (onnxruntime's
/// `quantize_bias_static`, TFLite's bias quantization).
///
/// # Errors
/// [`Error::InvalidScale`] when a product is not normal; [`Error::BiasOverflow`].
pub fn quantize_bias(bias: &[f32], input: &QuantParams, weights: &QuantParams) -> Result<Vec<i32>> {
    crate::error::check_finite("bias", bias)?;
    let s_a = input.scale(0);
    bias.iter()
        .enumerate()
        .map(|(c, &b)| {
            let scale = s_a * weights.scale(c);
            crate::error::check_scale(|| format!("bias scale s_a * s_w[{c}]"), scale)?;
            let quotient = b / scale;
            let rounded = round_half_to_even(quotient);
            // i32::MAX is not an f32; 2^31 is the first value out of range.
            if !(-2_147_483_648.0..2_147_483_648.0).contains(&rounded) {
                return Err(Error::BiasOverflow {
                    channel: c,
                    bias: b,
                    scale,
                    quotient,
                });
            }
            Ok(rounded as i32)
        })
        .collect()
}

/// onnxruntime's `_adjust_weight_scale_for_int32_bias`: where `s_a * s_w[c]` is so small
/// that the i32 bias would overflow, the weight scale grows until the bias's absolute maximum
/// fits with a margin (`1.0001 · 2 · absmax / (2^32 - 2)`, all in f64), so a dead channel with
/// near-zero weights and a live bias stays representable. Other channels are unchanged.
///
/// # Errors
/// [`Error::NonFiniteInput`] for the bias; params errors.
pub fn widen_weight_scales_for_bias(
    weights: &QuantParams,
    input: &QuantParams,
    bias: &[f32],
) -> Result<QuantParams> {
    crate::error::check_finite("bias", bias)?;
    let absmax = bias.iter().fold(0.0f64, |m, &b| m.max(f64::from(b).abs()));
    let qrange = f64::from(i32::MAX) - f64::from(i32::MIN + 1);
    let smallest = 1.0001 * (2.0 * absmax) / qrange;
    let s_a = f64::from(input.scale(0));
    let mut changed = false;
    let scales: Vec<f32> = weights
        .scales()
        .iter()
        .map(|&s_w| {
            let candidate = s_a * f64::from(s_w);
            if candidate < smallest && candidate > 0.0 {
                changed = true;
                (f64::from(s_w) * (smallest / candidate)) as f32
            } else {
                s_w
            }
        })
        .collect();
    if !changed {
        return Ok(weights.clone());
    }
    weights.with_scales(scales)
}

/// The smallest weight scale a dynamic layer uses: `2^-103`. A dynamic row's scale is at
/// least `2^-23` (the per-token floor), so `s_a[m] * s_w[n]` stays a normal f32 (at least
/// `2^-126`), which the reference requires and a GPU that flushes subnormals reproduces. Only
/// dead channels (weights below about `1e-29`) are affected.
pub const DYNAMIC_WEIGHT_SCALE_FLOOR: f32 = 9.860_761e-32; // 2^-103

/// The params with every scale raised to at least `floor` (zero points unchanged).
///
/// # Errors
/// Params errors.
pub fn floor_weight_scales(weights: &QuantParams, floor: f32) -> Result<QuantParams> {
    if weights.scales().iter().all(|&s| s >= floor) {
        return Ok(weights.clone());
    }
    weights.with_scales(weights.scales().iter().map(|&s| s.max(floor)).collect())
}
