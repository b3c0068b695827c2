//! Percentile calibration (onnxruntime `HistogramCalibrater(method="percentile")`).

use super::histogram::{Collector, HistogramCollection, OrtHistogram, check_bins};
use super::{RangeEstimator, invalid, not_observed};
use crate::error::Result;

/// The range that keeps `percentile` % of the mass, from onnxruntime's histogram.
///
/// Use for activations with rare outliers that MinMax would let set the scale.
/// * symmetric (onnxruntime's default): histogram of `|x|`; `t = edges[searchsorted(cdf,
///   p / 100)]`, range `(-t, t)`;
/// * asymmetric: histogram of `x` over `±th`; `c = (100 - p) / 200`, range
///   `(edges[searchsorted(cdf, c)], edges[searchsorted(cdf, 1 - c)])`.
///
/// Both clip each end to the observed data range, so a "symmetric" result can be asymmetric.
/// The cdf is `cumsum(counts / total)` in f64, `searchsorted` the first index with
/// `cdf[i] >= v`.
#[derive(Debug, Clone)]
pub struct Percentile {
    percentile: f64,
    symmetric: bool,
    collector: Collector,
}

impl Percentile {
    /// onnxruntime's defaults: 2048 bins, 99.999 %, symmetric.
    pub fn onnxruntime_default() -> Self {
        Percentile {
            percentile: 99.999,
            symmetric: true,
            collector: Collector::new(2048, true),
        }
    }

    /// A custom percentile calibrator.
    ///
    /// # Errors
    /// [`crate::Error::InvalidConfig`] for a percentile outside (0, 100], or a bin count
    /// outside `[1, MAX_HISTOGRAM_BINS]` ([`super::MAX_HISTOGRAM_BINS`]).
    pub fn new(percentile: f64, bins: usize, symmetric: bool) -> Result<Self> {
        if !(percentile > 0.0 && percentile <= 100.0) {
            return Err(invalid("percentile", percentile, "must be in (0, 100]"));
        }
        check_bins("num_bins", bins)?;
        Ok(Percentile {
            percentile,
            symmetric,
            collector: Collector::new(bins, symmetric),
        })
    }

    /// The same calibrator collecting in `mode` ([`HistogramCollection`]).
    pub fn with_collection(mut self, mode: HistogramCollection) -> Self {
        self.collector.mode = mode;
        self
    }

    /// The collected histogram, if any batch was seen (in [`HistogramCollection::PerCall`]
    /// mode, as of the last ended call).
    pub fn histogram(&self) -> Option<&OrtHistogram> {
        self.collector.committed.as_ref()
    }
}

fn searchsorted_left(cdf: &[f64], v: f64) -> usize {
    cdf.partition_point(|&c| c < v)
}

impl RangeEstimator for Percentile {
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
        let total = h.counts.iter().sum::<u64>() as f64;
        let mut acc = 0.0f64;
        let cdf: Vec<f64> = h
            .counts
            .iter()
            .map(|&c| {
                acc += c as f64 / total;
                acc
            })
            .collect();
        let (lo, hi) = if self.symmetric {
            let t = h.edges[searchsorted_left(&cdf, self.percentile / 100.0)];
            (-t, t)
        } else {
            let cut = (100.0 - self.percentile) / 200.0;
            (
                h.edges[searchsorted_left(&cdf, cut)],
                h.edges[searchsorted_left(&cdf, 1.0 - cut)],
            )
        };
        Ok(h.clip_to_data(lo, hi))
    }
}
