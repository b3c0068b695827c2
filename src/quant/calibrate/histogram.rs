//! onnxruntime's `HistogramCollector`: the histogram that Percentile, Entropy and MSE read.
//!
//! Two collection modes, as in `onnxruntime/quantization/calibrate.py`:
//! * `collect_value` (entropy; percentile when not symmetric): per batch `th = max(|min|,
//!   |max|)` and `histogram(x, bins, range=(-th, th))`; a later batch with a larger `th`
//!   widens the histogram by whole old-stride bins on both sides and adds the old counts
//!   into the centre;
//! * `collect_absolute_value` (percentile when symmetric): `histogram(|x|, bins)` over numpy's
//!   default range `[min|x|, max|x|]`; later batches append edges with `np.arange` of the
//!   old width and re-bin against the extended edges.
//!
//! Edges follow numpy's float32 arithmetic (`linspace`: `start + i * f32(delta / n)`, the last
//! edge set to `stop`; `arange`: `start + i * f32((start + w) - start)`), and a value falls in
//! bin `i` when `edges[i] <= x < edges[i + 1]` (the last bin closed), which is what numpy's
//! `histogram` computes after its edge corrections. Values outside the edges are dropped.

use super::min_max;
use crate::error::{Error, Result};

/// The most bins a histogram may grow to: 65,536, 32 times the default 2048. onnxruntime grows
/// without bound: a first batch spanning a tiny range followed by a huge value would ask
/// `np.arange` for ~10^38 edges, and the entropy search is quadratic in the bin count (at this
/// cap about 2^31 steps). Growth past it is a typed error instead.
pub const MAX_HISTOGRAM_BINS: usize = 1 << 16;

fn too_many_bins(bins: f64) -> Error {
    Error::Unsupported(format!(
        "the histogram would grow to {bins:e} bins (at most {MAX_HISTOGRAM_BINS}): the first batch spans a far smaller range than a later one; calibrate with a representative first batch or more bins"
    ))
}

/// A histogram with its f32 edges and the data range seen.
#[derive(Debug, Clone, PartialEq)]
pub struct OrtHistogram {
    /// Counts per bin.
    pub counts: Vec<u64>,
    /// `counts.len() + 1` ascending edges.
    pub edges: Vec<f32>,
    /// Smallest value seen.
    pub min: f32,
    /// Largest value seen.
    pub max: f32,
    /// The symmetric threshold (`collect_value` mode only).
    pub threshold: f32,
}

/// numpy `linspace(start, stop, n + 1)` in float32.
pub fn linspace_f32(start: f32, stop: f32, bins: usize) -> Vec<f32> {
    let step = (stop - start) / bins as f32;
    let mut edges: Vec<f32> = if step == 0.0 {
        (0..=bins)
            .map(|i| (i as f32 / bins as f32) * (stop - start) + start)
            .collect()
    } else {
        (0..=bins).map(|i| i as f32 * step + start).collect()
    };
    edges[bins] = stop;
    edges
}

/// Adds the values to `counts` over `edges` (bins half-open, the last closed).
pub fn bin_values(counts: &mut [u64], edges: &[f32], values: impl Iterator<Item = f32>) {
    let first = edges[0];
    let last = edges[edges.len() - 1];
    let nbins = counts.len();
    for x in values {
        if !(x >= first && x <= last) {
            continue;
        }
        // The number of edges <= x, minus one, is the bin; the last edge belongs to the last bin.
        let bin = edges.partition_point(|&e| e <= x) - 1;
        counts[bin.min(nbins - 1)] += 1;
    }
}

fn histogram_over(values: &[f32], bins: usize, lo: f32, hi: f32) -> Result<(Vec<u64>, Vec<f32>)> {
    // numpy widens an empty range by 0.5 each side.
    let (lo, hi) = if lo == hi {
        (lo - 0.5, hi + 0.5)
    } else {
        (lo, hi)
    };
    // A width beyond f32 (e.g. ±1.7e38) makes every edge infinite; numpy refuses such a
    // range too ("range parameter must be finite").
    if !(hi - lo).is_finite() {
        return Err(Error::Unsupported(format!(
            "histogram range [{lo:e}, {hi:e}] is wider than f32 can represent"
        )));
    }
    let edges = linspace_f32(lo, hi, bins);
    let mut counts = vec![0u64; bins];
    bin_values(&mut counts, &edges, values.iter().copied());
    Ok((counts, edges))
}

/// numpy's float32 floor division (`npy_divmodf`).
fn floor_divide_f32(a: f32, b: f32) -> f32 {
    let modulo = a % b;
    let mut div = (a - modulo) / b;
    if modulo != 0.0 && ((b < 0.0) != (modulo < 0.0)) {
        div -= 1.0;
    }
    if div == 0.0 {
        return 0.0f32.copysign(a / b);
    }
    let mut floordiv = div.floor();
    if div - floordiv > 0.5 {
        floordiv += 1.0;
    }
    floordiv
}

impl OrtHistogram {
    /// `collect_value`: folds one batch into `state` (created on the first batch). On error
    /// `state` is unchanged.
    ///
    /// # Errors
    /// [`Error::Unsupported`] when the histogram would exceed [`MAX_HISTOGRAM_BINS`] or its
    /// range is wider than f32.
    pub fn collect_value(
        state: &mut Option<OrtHistogram>,
        values: &[f32],
        bins: usize,
    ) -> Result<()> {
        let (lo, hi) = min_max(values);
        let th = lo.abs().max(hi.abs());
        let next = match state.as_ref() {
            None => {
                let (counts, edges) = histogram_over(values, bins, -th, th)?;
                OrtHistogram {
                    counts,
                    edges,
                    min: lo,
                    max: hi,
                    threshold: th,
                }
            }
            Some(old) => Self::merge_value(old, values, lo, hi, th)?,
        };
        *state = Some(next);
        Ok(())
    }

    /// onnxruntime `merge_histogram`: the old histogram and one batch as a new histogram.
    fn merge_value(
        old: &OrtHistogram,
        values: &[f32],
        lo: f32,
        hi: f32,
        th: f32,
    ) -> Result<OrtHistogram> {
        let (min, max) = (old.min.min(lo), old.max.max(hi));
        let old_bins = old.counts.len();
        // (bins, threshold, offset of the old counts in the new histogram)
        let (bins, threshold, offset) = if th <= old.threshold {
            (old_bins, old.threshold, 0)
        } else if old.threshold == 0.0 {
            (old_bins, th, 0)
        } else {
            let old_stride = 2.0 * old.threshold / old_bins as f32;
            let half_f = floor_divide_f32(th - old.threshold, old_stride) + 1.0;
            let new_bins_f = old_bins as f64 + 2.0 * f64::from(half_f);
            // Also refuses NaN or infinite counts.
            if new_bins_f.is_nan() || new_bins_f > MAX_HISTOGRAM_BINS as f64 {
                return Err(too_many_bins(new_bins_f));
            }
            let half = half_f as usize;
            (
                old_bins + 2 * half,
                half as f32 * old_stride + old.threshold,
                half,
            )
        };
        let (mut counts, edges) = histogram_over(values, bins, -threshold, threshold)?;
        counts[offset..offset + old_bins]
            .iter_mut()
            .zip(&old.counts)
            .for_each(|(a, b)| *a += b);
        // onnxruntime keeps the old edges when the threshold did not grow.
        let edges = if th <= old.threshold {
            old.edges.clone()
        } else {
            edges
        };
        Ok(OrtHistogram {
            counts,
            edges,
            min,
            max,
            threshold,
        })
    }

    /// `collect_absolute_value`: folds one batch of `|x|` into `state`. On error `state` is
    /// unchanged.
    ///
    /// # Errors
    /// [`Error::Unsupported`] when the histogram would exceed [`MAX_HISTOGRAM_BINS`] or its
    /// range is wider than f32.
    pub fn collect_absolute_value(
        state: &mut Option<OrtHistogram>,
        values: &[f32],
        bins: usize,
    ) -> Result<()> {
        let (lo, hi) = min_max(values);
        let abs: Vec<f32> = values.iter().map(|v| v.abs()).collect();
        let (alo, ahi) = min_max(&abs);
        let Some(old) = state.as_ref() else {
            let (counts, edges) = histogram_over(&abs, bins, alo, ahi)?;
            *state = Some(OrtHistogram {
                counts,
                edges,
                min: lo,
                max: hi,
                threshold: 0.0,
            });
            return Ok(());
        };
        let mut edges = old.edges.clone();
        let last = edges[edges.len() - 1];
        if ahi > last {
            // np.arange(last + width, amax + width, width) in float32.
            let width = edges[1] - edges[0];
            let start = last + width;
            let stop = ahi + width;
            let len_f = ((stop - start) / width).ceil().max(0.0);
            let grown = f64::from(len_f) + edges.len() as f64;
            if grown.is_nan() || grown > MAX_HISTOGRAM_BINS as f64 {
                return Err(too_many_bins(grown));
            }
            let len = len_f as usize;
            if len > 0 {
                let delta = (start + width) - start;
                edges.push(start);
                for i in 1..len {
                    edges.push(start + i as f32 * delta);
                }
            }
        }
        let mut counts = vec![0u64; edges.len() - 1];
        bin_values(&mut counts, &edges, abs.iter().copied());
        counts
            .iter_mut()
            .zip(&old.counts)
            .for_each(|(a, b)| *a += b);
        let next = OrtHistogram {
            counts,
            edges,
            min: old.min.min(lo),
            max: old.max.max(hi),
            threshold: 0.0,
        };
        *state = Some(next);
        Ok(())
    }

    /// Clips a candidate range to the observed data range, as onnxruntime finishes.
    pub fn clip_to_data(&self, lo: f32, hi: f32) -> (f32, f32) {
        (
            if lo < self.min { self.min } else { lo },
            if hi > self.max { self.max } else { hi },
        )
    }
}
