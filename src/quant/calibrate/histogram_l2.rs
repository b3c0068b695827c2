//! torch `HistogramObserver`: a histogram over [min, max] and the L2 range search.

use super::{RangeEstimator, invalid, min_max, not_observed};
use crate::error::Result;

/// The range minimising an L2 estimate of quantization error over a histogram (torch
/// `HistogramObserver`, after caffe2's `NormMinimization::NonlinearQuantizationParamsSearch`).
///
/// Use for activations with heavy tails. Per tensor, as in torch (an [`super::Observer`]
/// clones it per channel if asked).
///
/// * Collection: the first batch sets `[min, max]` and a `bins`-bin histogram; a later batch
///   that widens the range re-bins the old histogram into the new range by upsampling each
///   bin 16× to its midpoints (torch's `_upscale_histogram`) and adds the batch's histogram.
/// * Search (`_non_linear_param_search`): quantile bounds move inward in steps of 1e-5, moving
///   whichever side has more mass to cut; each new `[start_bin, end_bin]` is scored by the L2
///   error of quantizing its uniform density into `dst_nbins = 256` levels; the search stops at
///   the first increase. The range is `min + bw·start`, `min + bw·(end + 1)`.
///
/// The algorithm is torch's; the search arithmetic is f64 (torch mixes f32 tensors and
/// Python floats, and its vectorised `linspace` rounds per SIMD lane), so the chosen bins can
/// differ from torch's where two candidates score equal to within f32 rounding. The final
/// range is computed in f32 as torch does: `bw = f32(f32(max - min) / bins)`,
/// `new_min = f32(min + f32(bw * start))`, `new_max = f32(min + f32(bw * (end + 1)))`
/// (the f64 form differs by an ulp, e.g. on symmetric qint8). Where `max - min` overflows
/// f32 (torch would give ±Inf or NaN), the f64 form is used instead, rounded once to f32.
#[derive(Debug, Clone)]
pub struct HistogramL2 {
    bins: usize,
    dst_nbins: usize,
    upsample_rate: usize,
    histogram: Vec<f64>,
    range: Option<(f32, f32)>,
}

impl HistogramL2 {
    /// torch's defaults: 2048 bins, 8-bit destination.
    pub fn torch_default() -> Self {
        HistogramL2 {
            bins: 2048,
            dst_nbins: 256,
            upsample_rate: 16,
            histogram: Vec::new(),
            range: None,
        }
    }

    /// The most bins [`HistogramL2::new`] accepts: 8,192, 4 times torch's default. The L2
    /// search scores up to `bins` candidate ranges at `O(bins)` each, so its time grows with
    /// the square of the bin count (well under a second at this cap in a release build).
    pub const MAX_BINS: usize = 1 << 13;

    /// A custom bin count.
    ///
    /// # Errors
    /// [`crate::Error::InvalidConfig`] for a bin count outside `[1, MAX_BINS]`.
    pub fn new(bins: usize) -> Result<Self> {
        if bins == 0 || bins > Self::MAX_BINS {
            return Err(invalid(
                "bins",
                bins,
                &format!(
                    "must be in [1, {}]: the L2 search is quadratic in the bin count",
                    Self::MAX_BINS
                ),
            ));
        }
        Ok(HistogramL2 {
            bins,
            ..Self::torch_default()
        })
    }

    /// `torch.histc(values, bins, lo, hi)`: `pos = trunc((x - lo) * bins / (hi - lo))`, the
    /// right edge in the last bin, values outside dropped; an empty range widens by ±1.
    fn histc(
        &self,
        values: impl Iterator<Item = f64>,
        weights: Option<&[f64]>,
        lo: f64,
        hi: f64,
    ) -> Vec<f64> {
        let (lo, hi) = if lo == hi {
            (lo - 1.0, hi + 1.0)
        } else {
            (lo, hi)
        };
        let mut out = vec![0.0f64; self.bins];
        for (i, x) in values.enumerate() {
            if !(x >= lo && x <= hi) {
                continue;
            }
            let pos = (((x - lo) * self.bins as f64) / (hi - lo)) as usize;
            out[pos.min(self.bins - 1)] += weights.map_or(1.0, |w| w[i]);
        }
        out
    }

    /// torch `_upscale_histogram`: the old histogram over `[old_lo, old_hi]` expressed in the
    /// bins of `[new_lo, new_hi]`.
    fn upscale(&self, old: &[f64], old_lo: f64, old_hi: f64, new_lo: f64, new_hi: f64) -> Vec<f64> {
        let fine = self.bins * self.upsample_rate;
        let bin_size = (old_hi - old_lo) / fine as f64;
        let mut out = vec![0.0f64; self.bins];
        let width = (new_hi - new_lo) / self.bins as f64;
        for j in 0..fine {
            let mid = old_lo + (old_hi - old_lo) * j as f64 / fine as f64 + 0.5 * bin_size;
            let bucket = ((mid - new_lo) / width).floor();
            let bucket = bucket.clamp(0.0, (self.bins - 1) as f64) as usize;
            out[bucket] += old[j / self.upsample_rate] / self.upsample_rate as f64;
        }
        out
    }

    /// torch `_compute_quantization_error` for `[start, end]`.
    fn quantization_error(&self, bin_width: f64, start: usize, end: usize) -> f64 {
        let dst_width = bin_width * (end - start + 1) as f64 / self.dst_nbins as f64;
        if dst_width == 0.0 {
            return 0.0;
        }
        let last = (self.dst_nbins - 1) as f64;
        let norm = |b: f64, e: f64, density: f64| density * (e * e * e - b * b * b) / 3.0;
        let mut total = 0.0;
        for (i, &count) in self.histogram.iter().enumerate() {
            let begin = (i as f64 - start as f64) * bin_width;
            let end_ = begin + bin_width;
            let dst_begin = (begin / dst_width).floor().clamp(0.0, last);
            let dst_end = (end_ / dst_width).floor().clamp(0.0, last);
            let density = count / bin_width;
            let begin_center = (dst_begin + 0.5) * dst_width;
            let end_center = dst_end * dst_width + dst_width / 2.0;
            total += norm(begin - begin_center, dst_width / 2.0, density);
            total += (dst_end - dst_begin - 1.0) * norm(-dst_width / 2.0, dst_width / 2.0, density);
            total += norm(-dst_width / 2.0, end_ - end_center, density);
        }
        total
    }

    /// The chosen `[start_bin, end_bin]`.
    fn search(&self, lo: f64, hi: f64) -> (usize, usize) {
        let bin_width = (hi - lo) / self.bins as f64;
        let total: f64 = self.histogram.iter().sum();
        let mut c_sum = Vec::with_capacity(self.bins);
        let mut acc = 0.0;
        for &h in &self.histogram {
            acc += h;
            c_sum.push(acc);
        }
        let step = 1e-5;
        let (mut alpha, mut beta) = (0.0f64, 1.0f64);
        let (mut start, mut end) = (0usize, self.bins - 1);
        let mut norm_min = f64::INFINITY;
        while alpha < beta {
            let next_alpha = alpha + step;
            let next_beta = beta - step;
            let (mut l, mut r) = (start, end);
            while l < end && c_sum[l] < next_alpha * total {
                l += 1;
            }
            while r > start && c_sum[r] > next_beta * total {
                r -= 1;
            }
            let (mut next_start, mut next_end) = (start, end);
            if l - start > end - r {
                next_start = l;
                alpha = next_alpha;
            } else {
                next_end = r;
                beta = next_beta;
            }
            if next_start == start && next_end == end {
                continue;
            }
            let norm = self.quantization_error(bin_width, next_start, next_end);
            if norm > norm_min {
                break;
            }
            norm_min = norm;
            start = next_start;
            end = next_end;
        }
        (start, end)
    }

    /// torch's final step in f32 (see the type's doc), with the f64 fallback for a width
    /// beyond f32.
    fn final_range(&self, lo: f32, hi: f32, start: usize, end: usize) -> (f32, f32) {
        let bw = (hi - lo) / self.bins as f32;
        let new_min = lo + bw * start as f32;
        let new_max = lo + bw * (end + 1) as f32;
        if new_min.is_finite() && new_max.is_finite() {
            return (new_min, new_max);
        }
        let (lo, hi) = (f64::from(lo), f64::from(hi));
        let bw = (hi - lo) / self.bins as f64;
        (
            (lo + bw * start as f64) as f32,
            (lo + bw * (end + 1) as f64) as f32,
        )
    }
}

impl RangeEstimator for HistogramL2 {
    fn check_update(&self, _values: &[f32]) -> Result<()> {
        Ok(()) // an update cannot fail
    }

    fn update(&mut self, values: &[f32]) -> Result<()> {
        let (lo, hi) = min_max(values);
        let as_f64 = || values.iter().map(|&v| f64::from(v));
        match self.range {
            None => {
                self.histogram = self.histc(as_f64(), None, f64::from(lo), f64::from(hi));
                self.range = Some((lo, hi));
            }
            Some((cur_lo, cur_hi)) => {
                let (new_lo, new_hi) = (cur_lo.min(lo), cur_hi.max(hi));
                let (nl, nh) = (f64::from(new_lo), f64::from(new_hi));
                let update = self.histc(as_f64(), None, nl, nh);
                let old = if new_lo == cur_lo && new_hi == cur_hi {
                    std::mem::take(&mut self.histogram)
                } else if cur_lo == cur_hi {
                    let mass: f64 = self.histogram.iter().sum();
                    self.histc(std::iter::once(f64::from(cur_lo)), Some(&[mass]), nl, nh)
                } else {
                    self.upscale(
                        &self.histogram,
                        f64::from(cur_lo),
                        f64::from(cur_hi),
                        nl,
                        nh,
                    )
                };
                self.histogram = update.iter().zip(&old).map(|(a, b)| a + b).collect();
                self.range = Some((new_lo, new_hi));
            }
        }
        Ok(())
    }

    fn range(&self) -> Result<(f32, f32)> {
        let (lo, hi) = self.range.ok_or_else(not_observed)?;
        if lo == hi {
            return Ok((lo, hi));
        }
        let (start, end) = self.search(f64::from(lo), f64::from(hi));
        Ok(self.final_range(lo, hi, start, end))
    }
}
