//! The exact i32 accumulator bound.
//!
//! The true accumulator of output channel `n` is
//! `Σ_k (a[m,k] - za) * (w[n,k] - zw[n]) + bias[n]`. Each factor ranges over its storage
//! type's full range minus its zero point, so each term lies between the smallest and the
//! largest of the four corner products, and the sum over K between K times those plus the
//! bias. The kernels accumulate in wrapping i32; when this true range fits in i32 the wrapped
//! result equals the exact one (arithmetic mod 2^32), whatever the intermediate terms do.

use crate::error::{Error, Result};
use crate::quant::qtype::QType;

/// The smallest and largest value `Σ_k (a - za)(w - zw) + bias` can take over all data.
pub fn accumulator_range(
    k: usize,
    a_type: QType,
    a_zero_point: i32,
    w_type: QType,
    w_zero_point: i32,
    bias: i32,
) -> (i128, i128) {
    let (a_lo, a_hi) = a_type.storage_range();
    let (w_lo, w_hi) = w_type.storage_range();
    let da = [
        i128::from(a_lo - a_zero_point),
        i128::from(a_hi - a_zero_point),
    ];
    let dw = [
        i128::from(w_lo - w_zero_point),
        i128::from(w_hi - w_zero_point),
    ];
    let corners = [da[0] * dw[0], da[0] * dw[1], da[1] * dw[0], da[1] * dw[1]];
    let lo = corners.into_iter().fold(i128::MAX, i128::min);
    let hi = corners.into_iter().fold(i128::MIN, i128::max);
    let k = k as i128;
    (k * lo + i128::from(bias), k * hi + i128::from(bias))
}

/// Checks every output channel's accumulator range against i32.
///
/// `w_zero_points` and `bias` have one entry per channel, or one for all (per tensor);
/// `bias` may be empty (no bias).
///
/// # Errors
/// [`Error::LengthMismatch`] when `w_zero_points` has neither 1 nor `n` entries or `bias`
/// has neither 0, 1 nor `n`; [`Error::AccumulatorOverflow`] naming the first channel whose
/// range leaves i32.
pub fn check_accumulator_bound(
    k: usize,
    n: usize,
    a_type: QType,
    a_zero_point: i32,
    w_type: QType,
    w_zero_points: &[i32],
    bias: &[i32],
) -> Result<()> {
    if w_zero_points.len() != 1 && w_zero_points.len() != n {
        return Err(Error::LengthMismatch {
            what: "weight zero points (1 or one per output channel)".into(),
            got: w_zero_points.len(),
            expected: n,
        });
    }
    if bias.len() > 1 && bias.len() != n {
        return Err(Error::LengthMismatch {
            what: "bias (none, 1 or one per output channel)".into(),
            got: bias.len(),
            expected: n,
        });
    }
    for channel in 0..n {
        let zw = w_zero_points[if w_zero_points.len() == 1 { 0 } else { channel }];
        let b = match bias.len() {
            0 => 0,
            1 => bias[0],
            _ => bias[channel],
        };
        let (min, max) = accumulator_range(k, a_type, a_zero_point, w_type, zw, b);
        if min < i128::from(i32::MIN) || max > i128::from(i32::MAX) {
            return Err(Error::AccumulatorOverflow {
                k,
                channel,
                min,
                max,
            });
        }
    }
    Ok(())
}

/// The largest K for which `accumulator_range` fits i32 with the given types, zero points
/// and bias (0 when even K = 0 does not fit, which only a bias cannot cause).
pub fn max_depth(
    a_type: QType,
    a_zero_point: i32,
    w_type: QType,
    w_zero_point: i32,
    bias: i32,
) -> usize {
    let (lo, hi) = accumulator_range(1, a_type, a_zero_point, w_type, w_zero_point, 0);
    let room_hi = i128::from(i32::MAX) - i128::from(bias);
    let room_lo = i128::from(bias) - i128::from(i32::MIN);
    let by_hi = if hi > 0 { room_hi / hi } else { i128::MAX };
    let by_lo = if lo < 0 { room_lo / -lo } else { i128::MAX };
    by_hi.min(by_lo).clamp(0, usize::MAX as i128) as usize
}
