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

/// The most bins a histogram may have or grow to: 16,384, 8 times the default 2048.
/// onnxruntime grows without bound: a first batch spanning a tiny range followed by a huge
/// value would ask `np.arange` for ~10^38 edges. And the entropy search is quadratic in the
/// bin count (`bins / 2` candidates of up to `bins` entries each, with a logarithm per entry):
/// about a second at this cap in a release build, minutes at 65,536 (found by fuzzing).
/// Growth past the cap is a typed error ([`Error::Calibration`]) instead, and a configured bin
/// count above it is refused when the calibrator is built. With the default 2048 bins, a
/// later batch may reach about 8 times the first batch's absolute maximum.
pub const MAX_HISTOGRAM_BINS: usize = 1 << 14;

fn too_many_bins(bins: f64) -> Error {
    Error::Calibration {
        what: "histogram bins".into(),
        value: format!("{bins:e}"),
        reason: format!(
            "the histogram would grow past {MAX_HISTOGRAM_BINS} bins (the cap keeps memory and the entropy search, quadratic in bins, bounded): the first batch spans a far smaller range than a later one; calibrate with a representative first batch, or collect per call"
        ),
    }
}

/// Refuses a configured bin count above [`MAX_HISTOGRAM_BINS`] or of zero.
pub(crate) fn check_bins(what: &str, bins: usize) -> Result<()> {
    if bins == 0 || bins > MAX_HISTOGRAM_BINS {
        return Err(super::invalid(
            what,
            bins,
            &format!(
                "must be in [1, {MAX_HISTOGRAM_BINS}]: memory and the threshold searches (quadratic in bins) grow with it, and a histogram never grows past the cap"
            ),
        ));
    }
    Ok(())
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

/// numpy `linspace(start, stop, n + 1)` in float32 (`[stop]` for zero bins).
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
///
/// # Errors
/// [`Error::LengthMismatch`] unless `edges` has `counts.len() + 1` entries, and
/// [`Error::EmptyInput`] when there are no bins.
pub fn bin_values(
    counts: &mut [u64],
    edges: &[f32],
    values: impl Iterator<Item = f32>,
) -> Result<()> {
    if counts.is_empty() {
        return Err(Error::EmptyInput {
            what: "histogram bins".into(),
        });
    }
    if edges.len() != counts.len() + 1 {
        return Err(Error::LengthMismatch {
            what: "histogram edges".into(),
            got: edges.len(),
            expected: counts.len() + 1,
        });
    }
    let first = edges[0];
    let last = edges[edges.len() - 1];
    let nbins = counts.len();
    for x in values {
        if !(x >= first && x <= last) {
            continue;
        }
        // The number of edges <= x, minus one, is the bin; the last edge belongs to the last bin.
        let bin = edges.partition_point(|&e| e <= x).saturating_sub(1);
        counts[bin.min(nbins - 1)] += 1;
    }
    Ok(())
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
        return Err(Error::Calibration {
            what: "histogram range".into(),
            value: format!("[{lo:e}, {hi:e}]"),
            reason: "its width is beyond f32 (numpy refuses it too: the range must be finite)"
                .into(),
        });
    }
    let edges = linspace_f32(lo, hi, bins);
    let mut counts = vec![0u64; bins];
    bin_values(&mut counts, &edges, values.iter().copied())?;
    Ok((counts, edges))
}

/// Refuses zero bins, no values, and non-finite values (the observers check these first;
/// the public helpers must not panic or loop on them either).
fn check_input(values: &[f32], bins: usize) -> Result<()> {
    if bins == 0 {
        return Err(Error::EmptyInput {
            what: "histogram bins (0 requested)".into(),
        });
    }
    if values.is_empty() {
        return Err(Error::EmptyInput {
            what: "histogram values".into(),
        });
    }
    crate::error::check_finite("histogram values", values)
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
    /// [`Error::Calibration`] when the histogram would exceed [`MAX_HISTOGRAM_BINS`] or its
    /// range is wider than f32; [`Error::EmptyInput`] for zero bins or no values; on error
    /// `state` is unchanged.
    pub fn collect_value(
        state: &mut Option<OrtHistogram>,
        values: &[f32],
        bins: usize,
    ) -> Result<()> {
        check_input(values, bins)?;
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
    /// [`Error::Calibration`] when the histogram would exceed [`MAX_HISTOGRAM_BINS`] or its
    /// range is wider than f32; [`Error::EmptyInput`] for zero bins or no values; on error
    /// `state` is unchanged.
    pub fn collect_absolute_value(
        state: &mut Option<OrtHistogram>,
        values: &[f32],
        bins: usize,
    ) -> Result<()> {
        check_input(values, bins)?;
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
        bin_values(&mut counts, &edges, abs.iter().copied())?;
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

/// How a histogram calibrator ([`super::Percentile`], [`super::Entropy`], [`super::Mse`])
/// folds batches into its histogram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum HistogramCollection {
    /// Every `observe()` is one histogram update (merged into the histogram so far). The
    /// crate's default.
    #[default]
    PerObserve,
    /// onnxruntime's `collect_data`: the batches of one calibration call are flattened into
    /// one array and folded in as one histogram update when the call ends
    /// ([`super::Observer::end_call`]). The histogram of a call therefore depends on the
    /// whole call's range, not on the order of its batches, and matches onnxruntime given
    /// the same calls. Until `end_call`, the pending batches count as if the call ended now.
    /// The call's values are kept until it ends (onnxruntime keeps them too).
    PerCall,
}

/// The histogram state of one calibrator under a [`HistogramCollection`] mode.
#[derive(Debug, Clone)]
pub(crate) struct Collector {
    pub(crate) mode: HistogramCollection,
    /// `collect_absolute_value` (true) or `collect_value`.
    absolute: bool,
    pub(crate) bins: usize,
    /// The histogram after the last completed update (per-call: the last ended call).
    pub(crate) committed: Option<OrtHistogram>,
    /// Per-call mode: the values of the current call, and their range.
    pending: Vec<f32>,
    pending_range: Option<(f32, f32)>,
}

impl Collector {
    pub(crate) fn new(bins: usize, absolute: bool) -> Self {
        Collector {
            mode: HistogramCollection::PerObserve,
            absolute,
            bins,
            committed: None,
            pending: Vec::new(),
            pending_range: None,
        }
    }

    fn collect(&self, state: &mut Option<OrtHistogram>, values: &[f32]) -> Result<()> {
        if self.absolute {
            OrtHistogram::collect_absolute_value(state, values, self.bins)
        } else {
            OrtHistogram::collect_value(state, values, self.bins)
        }
    }

    /// Whether folding `values` in would succeed. A collection fails only through the data's
    /// min and max (bin growth, range width), so folding `[min, max]` into a copy of the
    /// histogram decides it at the cost of one copy.
    pub(crate) fn check(&self, values: &[f32]) -> Result<()> {
        check_input(values, self.bins)?;
        let (mut lo, mut hi) = min_max(values);
        if self.mode == HistogramCollection::PerCall {
            if let Some((a, b)) = self.pending_range {
                lo = lo.min(a);
                hi = hi.max(b);
            }
        }
        let mut probe = self.committed.clone();
        self.collect(&mut probe, &[lo, hi])
    }

    pub(crate) fn update(&mut self, values: &[f32]) -> Result<()> {
        match self.mode {
            HistogramCollection::PerObserve => {
                let mut state = self.committed.take();
                let result = self.collect(&mut state, values);
                self.committed = state;
                result
            }
            HistogramCollection::PerCall => {
                self.check(values)?;
                let (lo, hi) = min_max(values);
                self.pending_range = Some(match self.pending_range {
                    None => (lo, hi),
                    Some((a, b)) => (a.min(lo), b.max(hi)),
                });
                self.pending.extend_from_slice(values);
                Ok(())
            }
        }
    }

    /// The histogram as of now (per-call: with the pending call folded in).
    pub(crate) fn current(&self) -> Result<Option<std::borrow::Cow<'_, OrtHistogram>>> {
        if self.pending.is_empty() {
            return Ok(self.committed.as_ref().map(std::borrow::Cow::Borrowed));
        }
        let mut state = self.committed.clone();
        self.collect(&mut state, &self.pending)?;
        Ok(state.map(std::borrow::Cow::Owned))
    }

    pub(crate) fn end_call(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let mut state = self.committed.clone();
        // `update` checked the call's range, so this succeeds; were it to fail, the call stays
        // pending and `current` reports the error.
        if self.collect(&mut state, &self.pending).is_ok() {
            self.committed = state;
            self.pending.clear();
            self.pending_range = None;
        }
    }
}
