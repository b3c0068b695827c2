//! Entropy (KL divergence) calibration: TensorRT's algorithm as onnxruntime ports it
//! (`HistogramCalibrater.get_entropy_threshold`).

use super::histogram::{Collector, HistogramCollection, OrtHistogram, check_bins};
use super::{RangeEstimator, invalid, not_observed};
use crate::error::{Error, Result};

/// The threshold whose quantized distribution is closest, in KL divergence, to the data's.
///
/// Use for activations when the shape of the distribution matters more than its extremes.
/// For each candidate `i` in `nq/2 ..= nb/2` the histogram (of `x` over `±th`) is sliced to
/// `[zero - i, zero + i + 1)`; the outliers are folded into the end bins (`p`), the slice is
/// merged into `nq` bins and expanded back over its non-zero bins with the per-bin mean
/// truncated to an integer (`q`); both are smoothed (eps = 1e-4, in f32 as onnxruntime does)
/// and the candidate with the smallest KL divergence wins (the first on ties); the range is
/// then clipped to the data.
///
/// The divergence itself is computed in f64 from the f32-smoothed distributions; onnxruntime
/// computes it in f32 with numpy's `log`, so two candidates whose divergences agree to f32
/// precision may be ordered differently.
#[derive(Debug, Clone)]
pub struct Entropy {
    quantized_bins: usize,
    collector: Collector,
}

impl Entropy {
    /// The TensorRT-like setting: 2048 bins, 128 quantized bins.
    pub fn tensorrt_default() -> Self {
        Entropy {
            quantized_bins: 128,
            collector: Collector::new(2048, false),
        }
    }

    /// A custom configuration (onnxruntime's own defaults are 128/128, which leaves a single
    /// candidate: the whole range).
    ///
    /// # Errors
    /// [`crate::Error::InvalidConfig`] for zero bins, more than [`super::MAX_HISTOGRAM_BINS`]
    /// bins, or `quantized_bins > bins`.
    pub fn new(bins: usize, quantized_bins: usize) -> Result<Self> {
        if bins == 0 || quantized_bins == 0 {
            return Err(invalid(
                "num_bins / num_quantized_bins",
                format!("{bins} / {quantized_bins}"),
                "must be at least 1",
            ));
        }
        check_bins("num_bins", bins)?;
        if quantized_bins > bins {
            return Err(invalid(
                "num_quantized_bins",
                quantized_bins,
                &format!("must not exceed num_bins = {bins}"),
            ));
        }
        Ok(Entropy {
            quantized_bins,
            collector: Collector::new(bins, false),
        })
    }

    /// The same calibrator collecting in `mode` ([`HistogramCollection`]).
    pub fn with_collection(mut self, mode: HistogramCollection) -> Self {
        self.collector.mode = mode;
        self
    }
}

/// onnxruntime `smooth_distribution` in f32; `None` when every entry is zero.
fn smooth_distribution(p: &[i64]) -> Option<Vec<f32>> {
    let eps = 0.0001f64;
    let n_zeros = p.iter().filter(|&&v| v == 0).count();
    let n_nonzeros = p.len() - n_zeros;
    if n_nonzeros == 0 {
        return None;
    }
    let eps1 = eps * n_zeros as f64 / n_nonzeros as f64;
    let (add_zero, add_nonzero) = (eps as f32, (-eps1) as f32);
    Some(
        p.iter()
            .map(|&v| {
                let (z, nz) = if v == 0 { (1.0f32, 0.0f32) } else { (0.0, 1.0) };
                v as f32 + (add_zero * z + add_nonzero * nz)
            })
            .collect(),
    )
}

/// KL(p || q) of two positive unnormalised distributions.
fn kl_divergence(p: &[f32], q: &[f32]) -> f64 {
    let sp: f64 = p.iter().map(|&v| f64::from(v)).sum();
    let sq: f64 = q.iter().map(|&v| f64::from(v)).sum();
    p.iter()
        .zip(q)
        .map(|(&a, &b)| {
            let (a, b) = (f64::from(a) / sp, f64::from(b) / sq);
            if a > 0.0 && b > 0.0 {
                a * (a / b).ln()
            } else if a == 0.0 && b >= 0.0 {
                0.0
            } else {
                f64::INFINITY
            }
        })
        .sum()
}

/// The entropy threshold of a histogram (`get_entropy_threshold`).
#[expect(
    clippy::needless_range_loop,
    reason = "index loops mirror onnxruntime's get_entropy_threshold line for line"
)]
///
/// # Errors
/// [`Error::InvalidConfig`] for `quantized_bins` of 0 or above the histogram's bin count;
/// [`Error::LengthMismatch`] when the histogram's edges are not one more than its counts.
pub fn entropy_threshold(h: &OrtHistogram, quantized_bins: usize) -> Result<(f32, f32)> {
    if h.edges.len() != h.counts.len() + 1 {
        return Err(Error::LengthMismatch {
            what: "histogram edges".into(),
            got: h.edges.len(),
            expected: h.counts.len() + 1,
        });
    }
    if quantized_bins == 0 || quantized_bins > h.counts.len() {
        return Err(invalid(
            "num_quantized_bins",
            quantized_bins,
            &format!("must be in [1, {}] (the histogram's bins)", h.counts.len()),
        ));
    }
    let hist: Vec<i64> = h.counts.iter().map(|&c| c as i64).collect();
    // Prefix sums: every sum over a bin range below is exact in i64, so taking it as a
    // difference of prefixes gives the same integers in O(1).
    let mut prefix = Vec::with_capacity(hist.len() + 1);
    prefix.push(0i64);
    for &c in &hist {
        prefix.push(prefix[prefix.len() - 1] + c);
    }
    let range_sum = |a: usize, b: usize| prefix[b] - prefix[a];
    let num_bins = hist.len();
    let zero = num_bins / 2;
    let half_q = quantized_bins / 2;
    let mut best: Option<(f64, (f32, f32))> = None;
    for i in half_q..=zero {
        let start = zero - i;
        let end = (zero + i + 1).min(num_bins);
        let candidate = (h.edges[start], h.edges[end]);
        let sliced = &hist[start..end];
        let mut p = sliced.to_vec();
        let last = p.len() - 1;
        p[0] += range_sum(0, start);
        p[last] += range_sum(end, num_bins);
        let merged = sliced.len() / quantized_bins;
        let mut quantized = vec![0i64; quantized_bins];
        for (index, qb) in quantized.iter_mut().enumerate() {
            *qb = range_sum(start + index * merged, start + (index + 1) * merged);
        }
        quantized[quantized_bins - 1] += range_sum(start + quantized_bins * merged, end);
        let mut q = vec![0i64; p.len()];
        for index in 0..quantized_bins {
            let (s, e) = (index * merged, (index + 1) * merged);
            let norm = p[s..e].iter().filter(|&&v| v != 0).count();
            if norm != 0 {
                let value = (quantized[index] as f64 / norm as f64) as i64;
                q[s..e].iter_mut().for_each(|v| *v = value);
            }
        }
        // onnxruntime stores each divergence as f32 before its argmin.
        let kl = match (smooth_distribution(&p), smooth_distribution(&q)) {
            (Some(ps), Some(qs)) => f64::from(kl_divergence(&ps, &qs) as f32),
            _ => f64::INFINITY,
        };
        // The first minimum wins, as np.argmin; an all-infinite sweep keeps the first.
        if best.is_none_or(|(b, _)| kl < b) {
            best = Some((kl, candidate));
        }
    }
    // half_q <= zero because quantized_bins <= num_bins, so there is a candidate.
    let (lo, hi) = best.map_or((h.min, h.max), |(_, c)| c);
    Ok(h.clip_to_data(lo, hi))
}

impl RangeEstimator for Entropy {
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
        entropy_threshold(&h, self.quantized_bins.min(h.counts.len()))
    }
}
