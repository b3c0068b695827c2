//! Calibration observers: they see data batch by batch and produce a real range per tensor
//! or per channel, from which [`QuantParams`] follow under a chosen [`Convention`].
//!
//! | observer | use it for | algorithm |
//! |---|---|---|
//! | [`MinMax`] | weights (the default, per channel), activations without outliers | running min/max |
//! | [`MovingAverageMinMax`] | activations over many batches | torch EMA, or onnxruntime's per-call mean |
//! | [`Percentile`] | activations with rare outliers | onnxruntime histogram percentile |
//! | [`Entropy`] | activations; keeps the distribution's shape | TensorRT KL divergence, onnxruntime's port |
//! | [`HistogramL2`] | activations with heavy tails | torch `HistogramObserver` L2 search |
//! | [`Mse`] | activations and weights with outliers | the symmetric clip minimising expected squared error |
//!
//! Every batch is checked: empty input, NaN and ±Inf are typed errors, and a failed observe
//! changes nothing (every channel is checked before any is updated).
//!
//! Options matching onnxruntime's calibrators: [`MinMax::symmetric`] (`symmetric=True`:
//! `±max(|min|, |max|)`), and for the histogram calibrators (Percentile, Entropy, Mse)
//! [`HistogramCollection::PerCall`], which flattens the batches of one calibration call
//! (ended by [`Observer::end_call`]) into one histogram update as `collect_data` does, instead
//! of the default merge per `observe()`. Histograms have at most [`MAX_HISTOGRAM_BINS`] bins.

mod entropy;
mod histogram;
mod histogram_l2;
mod minmax;
mod mse;
mod percentile;

pub use entropy::{Entropy, entropy_threshold};
pub use histogram::{
    HistogramCollection, MAX_HISTOGRAM_BINS, OrtHistogram, bin_values, linspace_f32,
};
pub use histogram_l2::HistogramL2;
pub use minmax::{MinMax, MovingAverageKind, MovingAverageMinMax};
pub use mse::Mse;
pub use percentile::Percentile;

use crate::error::{Error, Result, check_finite};
use crate::quant::convention::Convention;
use crate::quant::params::{QuantParams, Scheme};

/// The state of one range estimate (one tensor, or one channel of it).
pub trait RangeEstimator: Clone + std::fmt::Debug {
    /// Folds in one batch of finite, non-empty values.
    ///
    /// # Errors
    /// Estimator-specific configuration errors.
    fn update(&mut self, values: &[f32]) -> Result<()>;

    /// The current real range `[min, max]`.
    ///
    /// # Errors
    /// [`Error::EmptyInput`] when nothing has been observed.
    fn range(&self) -> Result<(f32, f32)>;

    /// Checks, without changing anything, that [`RangeEstimator::update`] with `values` would
    /// succeed. [`Observer`] checks every channel before updating any, so a failed per-channel
    /// observe leaves it unchanged. The default updates a clone; the crate's estimators
    /// override it with a check that costs no more than one histogram's size.
    ///
    /// # Errors
    /// The error `update` would return.
    fn check_update(&self, values: &[f32]) -> Result<()> {
        self.clone().update(values)
    }

    /// Marks the end of one calibration call (onnxruntime's `collect_data`); the onnxruntime
    /// moving average and the histogram calibrators in [`HistogramCollection::PerCall`] mode
    /// use it.
    fn end_call(&mut self) {}
}

/// Per tensor, or per channel along an axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Granularity {
    /// One range for the whole tensor.
    PerTensor,
    /// One range per index along `axis`.
    PerChannel {
        /// The channel axis.
        axis: usize,
    },
}

/// A streaming observer: an estimator per tensor or per channel.
#[derive(Debug, Clone)]
pub struct Observer<E: RangeEstimator> {
    granularity: Granularity,
    template: E,
    channels: Vec<E>,
}

impl<E: RangeEstimator> Observer<E> {
    /// A fresh observer that clones `estimator` for each channel.
    pub fn new(estimator: E, granularity: Granularity) -> Self {
        Observer {
            granularity,
            template: estimator,
            channels: Vec::new(),
        }
    }

    /// Per-tensor observer.
    pub fn per_tensor(estimator: E) -> Self {
        Self::new(estimator, Granularity::PerTensor)
    }

    /// Per-channel observer along `axis`.
    pub fn per_channel(estimator: E, axis: usize) -> Self {
        Self::new(estimator, Granularity::PerChannel { axis })
    }

    /// Observes one row-major batch of `shape`.
    ///
    /// A rank-0 shape (`[]`) is a scalar: one element (the empty product), observed per
    /// tensor; per channel it has no axis ([`Error::AxisOutOfRange`] with rank 0). On error the
    /// observer is unchanged: every channel is checked before any is updated.
    ///
    /// # Errors
    /// [`Error::EmptyInput`], [`Error::NonFiniteInput`], [`Error::ShapeMismatch`],
    /// [`Error::SizeOverflow`] (the shape's element count overflows usize),
    /// [`Error::AxisOutOfRange`], [`Error::LengthMismatch`] (the channel count changed
    /// between batches), and estimator errors.
    pub fn observe(&mut self, batch: &[f32], shape: &[usize]) -> Result<()> {
        let expected = element_count("calibration batch", shape)?;
        if expected != batch.len() {
            return Err(Error::ShapeMismatch {
                what: "calibration batch".into(),
                shape: shape.to_vec(),
                expected,
                got: batch.len(),
            });
        }
        if batch.is_empty() {
            return Err(Error::EmptyInput {
                what: "calibration batch".into(),
            });
        }
        check_finite("calibration batch", batch)?;
        match self.granularity {
            Granularity::PerTensor => {
                if self.channels.is_empty() {
                    let mut first = self.template.clone();
                    first.update(batch)?;
                    self.channels.push(first);
                    Ok(())
                } else {
                    self.channels[0].check_update(batch)?;
                    self.channels[0].update(batch)
                }
            }
            Granularity::PerChannel { axis } => {
                let parts = split_channels(batch, shape, axis)?;
                let count = parts.len();
                if !self.channels.is_empty() && self.channels.len() != count {
                    return Err(Error::LengthMismatch {
                        what: format!("channels along axis {axis}"),
                        got: count,
                        expected: self.channels.len(),
                    });
                }
                if self.channels.is_empty() {
                    // A fresh set, committed only when every channel took its values.
                    let mut fresh = vec![self.template.clone(); count];
                    for (estimator, values) in fresh.iter_mut().zip(&parts) {
                        estimator.update(values)?;
                    }
                    self.channels = fresh;
                    return Ok(());
                }
                // Check every channel first, so that a failure changes nothing.
                for (estimator, values) in self.channels.iter().zip(&parts) {
                    estimator.check_update(values)?;
                }
                for (estimator, values) in self.channels.iter_mut().zip(&parts) {
                    estimator.update(values)?;
                }
                Ok(())
            }
        }
    }

    /// Ends one calibration call (see [`RangeEstimator::end_call`]).
    pub fn end_call(&mut self) {
        self.channels.iter_mut().for_each(E::end_call);
    }

    /// The ranges, one per channel (one for per-tensor).
    ///
    /// As in onnxruntime, the percentile and entropy observers finish by clipping their
    /// threshold to the observed data; for data within one histogram bin of zero that can
    /// invert the range (`lo > hi`, e.g. `(6.4e-44, 0)` for a single tiny positive value).
    /// [`Observer::params`] handles it as onnxruntime does: the range is widened to include 0
    /// first, which every convention does anyway.
    ///
    /// # Errors
    /// [`Error::EmptyInput`] when nothing has been observed.
    pub fn ranges(&self) -> Result<Vec<(f32, f32)>> {
        if self.channels.is_empty() {
            return Err(Error::EmptyInput {
                what: "observer (no batch observed)".into(),
            });
        }
        self.channels.iter().map(E::range).collect()
    }

    /// The quantization params of the observed ranges under `convention` and `scheme`.
    ///
    /// # Errors
    /// As [`Observer::ranges`] and [`QuantParams::from_range`].
    pub fn params(&self, convention: Convention, scheme: &Scheme) -> Result<QuantParams> {
        // Widen to include 0 first (each convention's own first step), so a range inverted by
        // onnxruntime's clip-to-data rule gives onnxruntime's params instead of an error.
        let ranges: Vec<(f32, f32)> = self
            .ranges()?
            .into_iter()
            .map(|(lo, hi)| (lo.min(0.0), hi.max(0.0)))
            .collect();
        match self.granularity {
            Granularity::PerTensor => {
                QuantParams::from_range(convention, scheme, ranges[0].0, ranges[0].1)
            }
            Granularity::PerChannel { axis } => {
                let (mins, maxs): (Vec<f32>, Vec<f32>) = ranges.into_iter().unzip();
                QuantParams::from_ranges(convention, scheme, axis, &mins, &maxs)
            }
        }
    }
}

/// The number of elements of `shape` (1 for rank 0), or [`Error::SizeOverflow`].
pub(crate) fn element_count(what: &str, shape: &[usize]) -> Result<usize> {
    shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| Error::SizeOverflow {
            what: format!("{what}: the element count of shape {shape:?} overflows usize"),
        })
}

/// The values of each channel along `axis`, in row-major order (torch's permute-and-flatten).
///
/// # Errors
/// [`Error::AxisOutOfRange`] when `axis >= shape.len()` (so always for rank 0),
/// [`Error::SizeOverflow`] when the shape's element count overflows,
/// [`Error::ShapeMismatch`] when `batch` does not hold that many elements, and
/// [`Error::EmptyDimension`] when the axis has no channels.
pub fn split_channels(batch: &[f32], shape: &[usize], axis: usize) -> Result<Vec<Vec<f32>>> {
    if axis >= shape.len() {
        return Err(Error::AxisOutOfRange {
            axis,
            rank: shape.len(),
        });
    }
    let expected = element_count("split_channels", shape)?;
    if expected != batch.len() {
        return Err(Error::ShapeMismatch {
            what: "split_channels batch".into(),
            shape: shape.to_vec(),
            expected,
            got: batch.len(),
        });
    }
    let count = shape[axis];
    if count == 0 {
        return Err(Error::EmptyDimension {
            what: format!("channels along axis {axis} of shape {shape:?}"),
        });
    }
    // The product fits (checked above), so every partial product does too; with a non-empty
    // batch every dimension is at least 1, and with an empty one the loop never divides.
    let inner: usize = shape[axis + 1..].iter().product();
    let mut out = vec![Vec::with_capacity(batch.len() / count); count];
    for (i, &v) in batch.iter().enumerate() {
        out[(i / inner) % count].push(v);
    }
    Ok(out)
}

/// numpy's pairwise summation of float32 (`add.reduce`), which onnxruntime's mean uses:
/// blocks of fewer than 8 are summed in order, up to 128 with eight accumulators, larger
/// ones split in halves at a multiple of 8.
pub fn numpy_pairwise_sum_f32(a: &[f32]) -> f32 {
    let n = a.len();
    if n < 8 {
        let mut res = 0.0f32;
        for &v in a {
            res += v;
        }
        res
    } else if n <= 128 {
        let mut r = [0.0f32; 8];
        r.copy_from_slice(&a[..8]);
        let mut i = 8;
        while i < n - (n % 8) {
            for j in 0..8 {
                r[j] += a[i + j];
            }
            i += 8;
        }
        let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        while i < n {
            res += a[i];
            i += 1;
        }
        res
    } else {
        let mut n2 = n / 2;
        n2 -= n2 % 8;
        numpy_pairwise_sum_f32(&a[..n2]) + numpy_pairwise_sum_f32(&a[n2..])
    }
}

/// The f32 min and max of a non-empty finite slice.
pub(crate) fn min_max(values: &[f32]) -> (f32, f32) {
    values
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        })
}

pub(crate) fn not_observed() -> Error {
    Error::EmptyInput {
        what: "observer (no batch observed)".into(),
    }
}

pub(crate) fn invalid(what: &str, value: impl std::fmt::Display, reason: &str) -> Error {
    Error::InvalidConfig {
        what: what.into(),
        value: value.to_string(),
        reason: reason.into(),
    }
}

impl Default for MovingAverageMinMax {
    /// torch's `MovingAverageMinMaxObserver` default, averaging constant 0.01.
    fn default() -> Self {
        Self::torch(0.01).expect("0.01 is a valid averaging constant")
    }
}

impl Default for Percentile {
    /// onnxruntime's defaults ([`Percentile::onnxruntime_default`]).
    fn default() -> Self {
        Self::onnxruntime_default()
    }
}

impl Default for Entropy {
    /// The TensorRT setting, 2048 bins and 128 quantized bins ([`Entropy::tensorrt_default`]).
    fn default() -> Self {
        Self::tensorrt_default()
    }
}

impl Default for HistogramL2 {
    /// torch's `HistogramObserver` default, 2048 bins ([`HistogramL2::torch_default`]).
    fn default() -> Self {
        Self::torch_default()
    }
}

impl Default for Mse {
    /// [`Mse::default_config`].
    fn default() -> Self {
        Self::default_config()
    }
}

/// Any of the calibrators, chosen at run time: what the inference API takes where a user
/// picks "the observer" for weights or activations.
///
/// Every variant's `Default` is its common preset; build a configured one with the
/// estimator's own constructor and `.into()`.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Calibrator {
    /// Running min/max.
    MinMax(MinMax),
    /// torch EMA or onnxruntime per-call mean.
    MovingAverage(MovingAverageMinMax),
    /// onnxruntime histogram percentile.
    Percentile(Percentile),
    /// TensorRT KL divergence.
    Entropy(Entropy),
    /// torch `HistogramObserver` L2 search.
    HistogramL2(HistogramL2),
    /// Minimum expected squared error.
    Mse(Mse),
}

impl Default for Calibrator {
    /// MinMax.
    fn default() -> Self {
        Calibrator::MinMax(MinMax::new())
    }
}

impl Calibrator {
    /// A short name for reports.
    pub fn name(&self) -> &'static str {
        match self {
            Calibrator::MinMax(_) => "minmax",
            Calibrator::MovingAverage(_) => "moving-average",
            Calibrator::Percentile(_) => "percentile",
            Calibrator::Entropy(_) => "entropy",
            Calibrator::HistogramL2(_) => "histogram-l2",
            Calibrator::Mse(_) => "mse",
        }
    }
}

macro_rules! calibrator_from {
    ($($variant:ident($ty:ty)),*) => {$(
        impl From<$ty> for Calibrator {
            fn from(e: $ty) -> Self {
                Calibrator::$variant(e)
            }
        }
    )*};
}
calibrator_from!(
    MinMax(MinMax),
    MovingAverage(MovingAverageMinMax),
    Percentile(Percentile),
    Entropy(Entropy),
    HistogramL2(HistogramL2),
    Mse(Mse)
);

impl RangeEstimator for Calibrator {
    fn update(&mut self, values: &[f32]) -> Result<()> {
        match self {
            Calibrator::MinMax(e) => e.update(values),
            Calibrator::MovingAverage(e) => e.update(values),
            Calibrator::Percentile(e) => e.update(values),
            Calibrator::Entropy(e) => e.update(values),
            Calibrator::HistogramL2(e) => e.update(values),
            Calibrator::Mse(e) => e.update(values),
        }
    }
    fn range(&self) -> Result<(f32, f32)> {
        match self {
            Calibrator::MinMax(e) => e.range(),
            Calibrator::MovingAverage(e) => e.range(),
            Calibrator::Percentile(e) => e.range(),
            Calibrator::Entropy(e) => e.range(),
            Calibrator::HistogramL2(e) => e.range(),
            Calibrator::Mse(e) => e.range(),
        }
    }
    fn check_update(&self, values: &[f32]) -> Result<()> {
        match self {
            Calibrator::MinMax(e) => e.check_update(values),
            Calibrator::MovingAverage(e) => e.check_update(values),
            Calibrator::Percentile(e) => e.check_update(values),
            Calibrator::Entropy(e) => e.check_update(values),
            Calibrator::HistogramL2(e) => e.check_update(values),
            Calibrator::Mse(e) => e.check_update(values),
        }
    }
    fn end_call(&mut self) {
        match self {
            Calibrator::MinMax(e) => e.end_call(),
            Calibrator::MovingAverage(e) => e.end_call(),
            Calibrator::Percentile(e) => e.end_call(),
            Calibrator::Entropy(e) => e.end_call(),
            Calibrator::HistogramL2(e) => e.end_call(),
            Calibrator::Mse(e) => e.end_call(),
        }
    }
}
