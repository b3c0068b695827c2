//! MSE calibration: the symmetric clipping threshold that minimises the expected squared
//! quantization error over the data's histogram.

use super::histogram::{Collector, HistogramCollection, check_bins};
use super::{RangeEstimator, invalid, not_observed};
use crate::error::Result;

/// The clip `amax` minimising `Σ count · (center - fake_quant(center, amax))²` over the bin
/// centers of a histogram of `|x|` (NVIDIA `pytorch-quantization`'s `_compute_amax_mse`, the
/// MSE calibrator of TensorRT's toolkit).
///
/// Use for weights or activations with outliers when the error itself is what matters.
/// Candidates are the bin centers from `start_bin` on (default 128 of 2048); fake
/// quantization is `clamp(rne(x · bound / amax), -bound, bound) · amax / bound` with
/// `bound = 127`, or 255 when every observed value is non-negative (then the range is
/// `[0, amax]`). The first minimum wins. The histogram is onnxruntime's absolute-value
/// histogram, so it grows across batches the same way.
#[derive(Debug, Clone)]
pub struct Mse {
    start_bin: usize,
    collector: Collector,
}

impl Mse {
    /// 2048 bins, candidates from bin 128.
    pub fn default_config() -> Self {
        Mse {
            start_bin: 128,
            collector: Collector::new(2048, true),
        }
    }

    /// A custom configuration.
    ///
    /// # Errors
    /// [`crate::Error::InvalidConfig`] for a bin count outside `[1, MAX_HISTOGRAM_BINS]`
    /// ([`super::MAX_HISTOGRAM_BINS`]) or `start_bin >= bins`.
    pub fn new(bins: usize, start_bin: usize) -> Result<Self> {
        check_bins("num_bins", bins)?;
        if start_bin >= bins {
            return Err(invalid(
                "start_bin",
                start_bin,
                &format!("must be below num_bins = {bins}"),
            ));
        }
        Ok(Mse {
            start_bin,
            collector: Collector::new(bins, true),
        })
    }

    /// The same calibrator collecting in `mode` ([`HistogramCollection`]).
    pub fn with_collection(mut self, mode: HistogramCollection) -> Self {
        self.collector.mode = mode;
        self
    }
}

impl RangeEstimator for Mse {
    fn update(&mut self, values: &[f32]) -> Result<()> {
        self.collector.update(values)
    }

    fn check_update(&self, values: &[f32]) -> Result<()> {
        self.collector.check(values)
    }

    fn end_call(&mut self) {
        self.collector.end_call();
    }

    fn range(&self) -> Result<(f32, f32)> {
        let h = self.collector.current()?.ok_or_else(not_observed)?;
        let unsigned = h.min >= 0.0;
        let bound = if unsigned { 255.0 } else { 127.0 };
        let centers: Vec<f64> = h
            .edges
            .windows(2)
            .map(|e| (f64::from(e[0]) + f64::from(e[1])) / 2.0)
            .collect();
        let mut best: Option<(f64, f64)> = None;
        for &amax in centers
            .iter()
            .skip(self.start_bin.min(centers.len().saturating_sub(1)))
        {
            if amax <= 0.0 {
                continue;
            }
            let scale = bound / amax;
            let mse: f64 = centers
                .iter()
                .zip(&h.counts)
                .map(|(&c, &n)| {
                    let q = (c * scale).round_ties_even().clamp(-bound, bound) / scale;
                    (q - c) * (q - c) * n as f64
                })
                .sum();
            if best.is_none_or(|(m, _)| mse < m) {
                best = Some((mse, amax));
            }
        }
        // All candidate centers are zero only when every value is zero.
        let amax = best.map_or(0.0, |(_, a)| a) as f32;
        Ok(if unsigned { (0.0, amax) } else { (-amax, amax) })
    }
}
