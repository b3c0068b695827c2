//! MinMax and moving-average MinMax.

use super::{RangeEstimator, invalid, min_max, not_observed, numpy_pairwise_sum_f32};
use crate::error::Result;

/// Running min/max over all batches (torch `MinMaxObserver`, onnxruntime `MinMaxCalibrater`).
///
/// Use for weights (per channel, the crate's default) and for activations without outliers.
///
/// With [`MinMax::symmetric`], the range is onnxruntime's `symmetric=True` one:
/// `(-a, a)` with `a = max(|min|, |max|)` over everything observed.
#[derive(Debug, Clone, Default)]
pub struct MinMax {
    range: Option<(f32, f32)>,
    symmetric: bool,
}

impl MinMax {
    /// A fresh estimator (the observed range as is).
    pub fn new() -> Self {
        Self::default()
    }

    /// A fresh symmetric estimator: range `±max(|min|, |max|)` (onnxruntime's
    /// `MinMaxCalibrater(symmetric=True)`).
    pub fn symmetric() -> Self {
        MinMax {
            range: None,
            symmetric: true,
        }
    }
}

impl RangeEstimator for MinMax {
    fn check_update(&self, _values: &[f32]) -> Result<()> {
        Ok(()) // an update cannot fail
    }
    fn update(&mut self, values: &[f32]) -> Result<()> {
        let (lo, hi) = min_max(values);
        self.range = Some(match self.range {
            None => (lo, hi),
            Some((a, b)) => (a.min(lo), b.max(hi)),
        });
        Ok(())
    }
    fn range(&self) -> Result<(f32, f32)> {
        let (lo, hi) = self.range.ok_or_else(not_observed)?;
        if self.symmetric {
            let a = lo.abs().max(hi.abs());
            return Ok((-a, a));
        }
        Ok((lo, hi))
    }
}

/// Which moving average.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MovingAverageKind {
    /// torch `MovingAverageMinMaxObserver`: the first batch sets min/max, then
    /// `min += c * (batch_min - min)` in f32 (same for max).
    TorchEma,
    /// onnxruntime `MinMaxCalibrater(moving_average=True)`: within one calibration call the
    /// f32 mean (numpy pairwise sum, then divide) of the per-batch mins and maxes; across calls
    /// the EMA `old + c * (new - old)`. With `symmetric`, each call's range becomes `±max(|min|,
    /// |max|)` before merging, as onnxruntime does.
    OrtMean {
        /// onnxruntime's `symmetric` calibration option.
        symmetric: bool,
    },
}

/// Moving-average MinMax. Use for activations over many batches, where a running min/max
/// would be set by one outlier batch.
#[derive(Debug, Clone)]
pub struct MovingAverageMinMax {
    kind: MovingAverageKind,
    averaging_constant: f32,
    range: Option<(f32, f32)>,
    call_mins: Vec<f32>,
    call_maxs: Vec<f32>,
}

impl MovingAverageMinMax {
    /// torch's EMA with `averaging_constant` (torch default 0.01).
    ///
    /// # Errors
    /// [`crate::Error::InvalidConfig`] unless `0 < c <= 1`.
    pub fn torch(averaging_constant: f32) -> Result<Self> {
        Self::build(MovingAverageKind::TorchEma, averaging_constant)
    }

    /// onnxruntime's per-call mean with EMA `averaging_constant` across calls (default 0.01).
    ///
    /// # Errors
    /// [`crate::Error::InvalidConfig`] unless `0 < c <= 1`.
    pub fn onnxruntime(averaging_constant: f32, symmetric: bool) -> Result<Self> {
        Self::build(MovingAverageKind::OrtMean { symmetric }, averaging_constant)
    }

    fn build(kind: MovingAverageKind, c: f32) -> Result<Self> {
        if !(c > 0.0 && c <= 1.0) {
            return Err(invalid("averaging_constant", c, "must be in (0, 1]"));
        }
        Ok(MovingAverageMinMax {
            kind,
            averaging_constant: c,
            range: None,
            call_mins: Vec::new(),
            call_maxs: Vec::new(),
        })
    }

    fn ema(&self, old: (f32, f32), new: (f32, f32)) -> (f32, f32) {
        let c = self.averaging_constant;
        (old.0 + c * (new.0 - old.0), old.1 + c * (new.1 - old.1))
    }

    /// The range of the pending onnxruntime call merged into the running range.
    fn merged_ort(&self, symmetric: bool) -> Option<(f32, f32)> {
        if self.call_mins.is_empty() {
            return self.range;
        }
        let n = self.call_mins.len() as f32;
        let mut call = (
            numpy_pairwise_sum_f32(&self.call_mins) / n,
            numpy_pairwise_sum_f32(&self.call_maxs) / n,
        );
        if symmetric {
            let a = call.0.abs().max(call.1.abs());
            call = (-a, a);
        }
        Some(match self.range {
            None => call,
            Some(old) => self.ema(old, call),
        })
    }
}

/// The f32 averages overflow for values near ±`f32::MAX` (the frameworks' own arithmetic
/// gives ±Inf, then NaN); the update that would do so is refused and changes nothing.
fn overflowed(range: (f32, f32)) -> crate::Error {
    crate::Error::Calibration {
        what: "moving-average range".into(),
        value: format!("[{:e}, {:e}]", range.0, range.1),
        reason: "the f32 average overflows (values near ±3.4e38); torch and onnxruntime would produce ±Inf or NaN here".into(),
    }
}

impl RangeEstimator for MovingAverageMinMax {
    fn check_update(&self, values: &[f32]) -> Result<()> {
        let batch = min_max(values);
        match self.kind {
            MovingAverageKind::TorchEma => {
                if let Some(old) = self.range {
                    let next = self.ema(old, batch);
                    if !(next.0.is_finite() && next.1.is_finite()) {
                        return Err(overflowed(next));
                    }
                }
                Ok(())
            }
            MovingAverageKind::OrtMean { .. } => self.clone().update(values),
        }
    }

    fn update(&mut self, values: &[f32]) -> Result<()> {
        let batch = min_max(values);
        match self.kind {
            MovingAverageKind::TorchEma => {
                let next = match self.range {
                    None => batch,
                    Some(old) => self.ema(old, batch),
                };
                if !(next.0.is_finite() && next.1.is_finite()) {
                    return Err(overflowed(next));
                }
                self.range = Some(next);
            }
            MovingAverageKind::OrtMean { symmetric } => {
                self.call_mins.push(batch.0);
                self.call_maxs.push(batch.1);
                // The call's mean and its EMA with the running range stay finite, or the batch
                // is refused (so `end_call`, which cannot fail, never stores ±Inf or NaN).
                if let Some(next) = self.merged_ort(symmetric) {
                    if !(next.0.is_finite() && next.1.is_finite()) {
                        self.call_mins.pop();
                        self.call_maxs.pop();
                        return Err(overflowed(next));
                    }
                }
            }
        }
        Ok(())
    }

    fn range(&self) -> Result<(f32, f32)> {
        match self.kind {
            MovingAverageKind::TorchEma => self.range,
            MovingAverageKind::OrtMean { symmetric } => self.merged_ort(symmetric),
        }
        .ok_or_else(not_observed)
    }

    fn end_call(&mut self) {
        if let MovingAverageKind::OrtMean { symmetric } = self.kind {
            self.range = self.merged_ort(symmetric);
            self.call_mins.clear();
            self.call_maxs.clear();
        }
    }
}
