//! Quantization parameters and how each convention derives them from a real range.
//!
//! The derivations follow `NUMERICS.md` to the operation: onnxruntime's
//! `compute_scale_zp` (float64 scale), torch's `_calculate_qparams` (float32 ops,
//! eps = 2^-23) and TFLite's symmetric weight / `GetAsymmetricQuantizationParams` rules.

use crate::error::{Error, Result, check_scale};
use crate::quant::convention::Convention;
use crate::quant::qtype::{QRange, QType};

/// Scale and zero point, per tensor or per axis, with the clamp range they apply to.
#[derive(Debug, Clone, PartialEq)]
pub struct QuantParams {
    range: QRange,
    scales: Vec<f32>,
    zero_points: Vec<i32>,
    axis: Option<usize>,
}

impl QuantParams {
    /// Per-tensor parameters.
    ///
    /// # Errors
    /// [`Error::InvalidScale`] unless `scale` is positive, finite and normal;
    /// [`Error::ZeroPointOutOfRange`] unless `zero_point` lies in `range`.
    pub fn per_tensor(scale: f32, zero_point: i32, range: QRange) -> Result<Self> {
        Self::build(range, vec![scale], vec![zero_point], None)
    }

    /// Per-axis parameters: one scale and zero point per index along `axis`.
    ///
    /// # Errors
    /// As [`QuantParams::per_tensor`] for each entry, plus [`Error::LengthMismatch`] when the
    /// two vectors differ in length and [`Error::EmptyInput`] when they are empty.
    pub fn per_axis(
        axis: usize,
        scales: Vec<f32>,
        zero_points: Vec<i32>,
        range: QRange,
    ) -> Result<Self> {
        Self::build(range, scales, zero_points, Some(axis))
    }

    fn build(
        range: QRange,
        scales: Vec<f32>,
        zero_points: Vec<i32>,
        axis: Option<usize>,
    ) -> Result<Self> {
        if scales.is_empty() {
            return Err(Error::EmptyInput {
                what: "scales".into(),
            });
        }
        if scales.len() != zero_points.len() {
            return Err(Error::LengthMismatch {
                what: "zero_points".into(),
                got: zero_points.len(),
                expected: scales.len(),
            });
        }
        for (i, &s) in scales.iter().enumerate() {
            check_scale(|| format!("scale[{i}]"), s)?;
        }
        for (i, &z) in zero_points.iter().enumerate() {
            if !range.contains(z) {
                return Err(Error::ZeroPointOutOfRange {
                    what: format!("zero_point[{i}]"),
                    value: z,
                    qmin: range.qmin(),
                    qmax: range.qmax(),
                });
            }
        }
        Ok(QuantParams {
            range,
            scales,
            zero_points,
            axis,
        })
    }

    /// The clamp range.
    pub fn range(&self) -> QRange {
        self.range
    }
    /// The storage type.
    pub fn qtype(&self) -> QType {
        self.range.qtype()
    }
    /// The quantized axis, `None` for per-tensor.
    pub fn axis(&self) -> Option<usize> {
        self.axis
    }
    /// All scales (one for per-tensor).
    pub fn scales(&self) -> &[f32] {
        &self.scales
    }
    /// All zero points (one for per-tensor).
    pub fn zero_points(&self) -> &[i32] {
        &self.zero_points
    }
    /// Number of channels (1 for per-tensor).
    pub fn channels(&self) -> usize {
        self.scales.len()
    }
    /// The scale of channel `c` (the only scale when per-tensor, whatever `c`).
    ///
    /// Total: for per-axis params and `c >= channels()` it returns NaN, which every consumer
    /// rejects as an invalid scale, instead of panicking. Use [`QuantParams::get`] to tell.
    pub fn scale(&self, c: usize) -> f32 {
        self.get(c).map_or(f32::NAN, |(s, _)| s)
    }
    /// The zero point of channel `c` (the only one when per-tensor, whatever `c`).
    ///
    /// Total: for per-axis params and `c >= channels()` it returns `i32::MIN`, which lies
    /// outside every storage range (so every zero-point check rejects it), instead of
    /// panicking. Use [`QuantParams::get`] to tell.
    pub fn zero_point(&self, c: usize) -> i32 {
        self.get(c).map_or(i32::MIN, |(_, z)| z)
    }
    /// The scale and zero point of channel `c`: entry 0 for per-tensor params whatever `c`,
    /// entry `c` for per-axis ones, `None` past the last channel.
    pub fn get(&self, c: usize) -> Option<(f32, i32)> {
        let i = if self.axis.is_none() { 0 } else { c };
        Some((*self.scales.get(i)?, *self.zero_points.get(i)?))
    }

    /// The same params with other scales (same count, zero points, range and axis), checked
    /// as any params are.
    ///
    /// # Errors
    /// [`Error::LengthMismatch`] for another count; [`Error::InvalidScale`].
    pub fn with_scales(&self, scales: Vec<f32>) -> Result<Self> {
        if scales.len() != self.scales.len() {
            return Err(Error::LengthMismatch {
                what: "scales".into(),
                got: scales.len(),
                expected: self.scales.len(),
            });
        }
        Self::build(self.range, scales, self.zero_points.clone(), self.axis)
    }

    /// Checks these params against a tensor shape: the axis exists and has one entry per index.
    ///
    /// The rank rule (shared by the reference and the GPU ops): a rank-0 shape `[]` is a
    /// scalar of one element; per-tensor params accept it, per-axis params do not (it has no
    /// axis: [`Error::AxisOutOfRange`] with rank 0). Axes are non-negative here; a signed
    /// ONNX-style axis is first mapped by [`normalize_axis`].
    ///
    /// # Errors
    /// [`Error::AxisOutOfRange`] or [`Error::LengthMismatch`].
    pub fn check_shape(&self, shape: &[usize]) -> Result<()> {
        if let Some(axis) = self.axis {
            if axis >= shape.len() {
                return Err(Error::AxisOutOfRange {
                    axis,
                    rank: shape.len(),
                });
            }
            if shape[axis] != self.scales.len() {
                return Err(Error::LengthMismatch {
                    what: format!("per-axis params (channels along axis {axis})"),
                    got: self.scales.len(),
                    expected: shape[axis],
                });
            }
        }
        Ok(())
    }
}

/// Maps a signed axis to an index, as ONNX does: `axis` in `[-rank, rank - 1]`, a negative
/// axis counting from the end (`axis + rank`). The one rule for the reference and the GPU.
///
/// A rank-0 tensor has no axis: every `axis` is out of range for it.
///
/// # Errors
/// [`Error::AxisOutOfRange`] for a non-negative axis `>= rank`; [`Error::InvalidConfig`]
/// naming the signed value and the rank for a negative axis below `-rank`.
pub fn normalize_axis(axis: i64, rank: usize) -> Result<usize> {
    // In i128 both the axis and the rank are exact.
    let (a, r) = (i128::from(axis), rank as i128);
    if (0..r).contains(&a) {
        return Ok(axis as usize); // 0 <= axis < rank
    }
    if a < 0 && a >= -r {
        return Ok((a + r) as usize); // 0 <= axis + rank < rank
    }
    if axis >= 0 {
        return Err(Error::AxisOutOfRange {
            axis: usize::try_from(axis).unwrap_or(usize::MAX),
            rank,
        });
    }
    Err(Error::InvalidConfig {
        what: "axis".into(),
        value: axis.to_string(),
        reason: format!("out of range for a tensor of rank {rank}: must be in [-{rank}, {rank})"),
    })
}

/// How a range becomes parameters: type, symmetry and range reduction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Scheme {
    /// The storage type.
    pub qtype: QType,
    /// Symmetric (zero maps to the centre) or affine.
    pub symmetric: bool,
    /// Use the reduced range (7 bits), for engines whose accumulators need headroom.
    pub reduce_range: bool,
    /// A custom `[qmin, qmax]` (torch's `quant_min`/`quant_max`); `None` uses the convention's.
    pub custom_range: Option<(i32, i32)>,
}

impl Scheme {
    /// Asymmetric with the full range.
    pub const fn affine(qtype: QType) -> Self {
        Scheme {
            qtype,
            symmetric: false,
            reduce_range: false,
            custom_range: None,
        }
    }
    /// Symmetric with the convention's symmetric range.
    pub const fn symmetric(qtype: QType) -> Self {
        Scheme {
            qtype,
            symmetric: true,
            reduce_range: false,
            custom_range: None,
        }
    }
    /// The same scheme with `reduce_range` set.
    pub const fn reduced(mut self) -> Self {
        self.reduce_range = true;
        self
    }
    /// The same scheme with a custom range.
    pub const fn with_range(mut self, qmin: i32, qmax: i32) -> Self {
        self.custom_range = Some((qmin, qmax));
        self
    }

    /// The clamp range this scheme has under `convention`.
    ///
    /// * Onnx (`get_qmin_qmax_for_qType`): u8 [0, 255] or [0, 127] reduced; i8 [-128, 127],
    ///   [-127, 127] symmetric, [-64, 64] reduced.
    /// * PyTorch (`calculate_qmin_qmax`): u8 [0, 255] or [0, 127]; i8 [-128, 127] or [-64, 63];
    ///   a custom range is floor-halved by `reduce_range`.
    /// * TfLite: i8 symmetric [-127, 127] (weights), otherwise the full range; no reduced range.
    ///
    /// # Errors
    /// [`Error::InvalidRange`] for a custom range outside the type, or [`Error::InvalidConfig`]
    /// for a combination the convention does not define.
    pub fn qrange(&self, convention: Convention) -> Result<QRange> {
        let (qmin, qmax) = match (convention, self.custom_range) {
            (Convention::PyTorch, Some((lo, hi))) => {
                if self.reduce_range {
                    (lo.div_euclid(2), hi.div_euclid(2))
                } else {
                    (lo, hi)
                }
            }
            (_, Some((lo, hi))) => {
                if self.reduce_range {
                    return Err(self.invalid("reduce_range with a custom range is torch-only"));
                }
                (lo, hi)
            }
            (Convention::Onnx, None) => match (self.qtype, self.reduce_range, self.symmetric) {
                (QType::U8, false, _) => (0, 255),
                (QType::U8, true, _) => (0, 127),
                (QType::I8, true, _) => (-64, 64),
                (QType::I8, false, true) => (-127, 127),
                (QType::I8, false, false) => (-128, 127),
            },
            (Convention::PyTorch, None) => match (self.qtype, self.reduce_range) {
                (QType::U8, false) => (0, 255),
                (QType::U8, true) => (0, 127),
                (QType::I8, false) => (-128, 127),
                (QType::I8, true) => (-64, 63),
            },
            (Convention::TfLite, None) => {
                if self.reduce_range {
                    return Err(self.invalid("TFLite has no reduced range"));
                }
                match (self.qtype, self.symmetric) {
                    (QType::I8, true) => (-127, 127),
                    (QType::U8, true) => {
                        return Err(self.invalid("TFLite symmetric quantization is int8 only"));
                    }
                    (t, false) => t.storage_range(),
                }
            }
        };
        QRange::new(self.qtype, qmin, qmax)
    }

    fn invalid(&self, reason: &str) -> Error {
        Error::InvalidConfig {
            what: "scheme".into(),
            value: format!("{self:?}"),
            reason: reason.into(),
        }
    }
}

/// torch's observer eps, `torch.finfo(torch.float32).eps` = 2^-23.
pub const TORCH_EPS: f32 = f32::EPSILON;

/// Scale and zero point for one real range `[min, max]` under `convention`.
///
/// The range is first widened to include 0 (every convention does this).
///
/// # Errors
/// [`Error::NonFiniteInput`] for a NaN or infinite bound, [`Error::InvalidConfig`] when
/// `min > max`, and [`Error::InvalidScale`] when the derived scale is not a normal f32
/// (for example a range so wide that `max - min` overflows).
pub fn scale_zero_point(
    convention: Convention,
    scheme: &Scheme,
    min: f32,
    max: f32,
) -> Result<(f32, i32)> {
    crate::error::check_finite("range bounds", &[min, max])?;
    if min > max {
        return Err(Error::InvalidConfig {
            what: "range".into(),
            value: format!("[{min}, {max}]"),
            reason: "min > max".into(),
        });
    }
    let range = scheme.qrange(convention)?;
    let (scale, zp) = match convention {
        Convention::Onnx => onnx_compute_scale_zp(min, max, range, scheme.symmetric),
        Convention::PyTorch => torch_calculate_qparams(min, max, range, scheme),
        Convention::TfLite => tflite_params(min, max, range, scheme.symmetric),
    };
    check_scale(|| format!("scale derived from [{min}, {max}]"), scale)?;
    if !range.contains(zp) {
        return Err(Error::ZeroPointOutOfRange {
            what: format!("zero point derived from [{min}, {max}]"),
            value: zp,
            qmin: range.qmin(),
            qmax: range.qmax(),
        });
    }
    Ok((scale, zp))
}

/// onnxruntime `quant_utils.compute_scale_zp`: float32 range widened to float64, float64
/// scale, zp from the float64 scale with numpy's half-to-even round, then the scale cast to
/// float32.
fn onnx_compute_scale_zp(min: f32, max: f32, range: QRange, symmetric: bool) -> (f32, i32) {
    let (qmin, qmax) = (range.qmin(), range.qmax());
    let mut rmin = min.min(0.0);
    let mut rmax = max.max(0.0);
    if symmetric {
        let absmax = rmin.abs().max(rmax.abs());
        rmin = -absmax;
        rmax = absmax;
    }
    // onnxruntime 1.31 widens both ends before subtracting (NUMERICS.md's "float32
    // subtraction" is an older version's; the golden tests pin 1.31.1).
    let dr = f64::from(rmax) - f64::from(rmin);
    let scale = dr / (f64::from(qmax) - f64::from(qmin));
    if scale < f64::from(f32::MIN_POSITIVE) {
        return (1.0, 0);
    }
    let zp = if symmetric {
        // numpy.round((qmin + qmax) / float32(2)): half to even
        (f64::from(qmin + qmax) / 2.0).round_ties_even() as i32
    } else {
        (f64::from(qmin) - f64::from(rmin) / scale).round_ties_even() as i32
    };
    (scale as f32, zp)
}

/// torch `_ObserverBase._calculate_qparams`, float32 arithmetic throughout.
fn torch_calculate_qparams(min: f32, max: f32, range: QRange, scheme: &Scheme) -> (f32, i32) {
    let (qmin, qmax) = (range.qmin(), range.qmax());
    let min_neg = min.min(0.0);
    let max_pos = max.max(0.0);
    if scheme.symmetric {
        let amax = (-min_neg).max(max_pos);
        let scale = (amax / ((qmax - qmin) as f32 / 2.0)).max(TORCH_EPS);
        let zp = match (scheme.qtype, scheme.custom_range) {
            (QType::I8, _) => 0,
            (QType::U8, Some(_)) => (qmin + qmax).div_euclid(2),
            (QType::U8, None) => 128,
        };
        (scale, zp)
    } else {
        let scale = ((max_pos - min_neg) / (qmax - qmin) as f32).max(TORCH_EPS);
        let zp = qmin - (min_neg / scale).round_ties_even() as i32;
        (scale, zp.clamp(qmin, qmax))
    }
}

/// TFLite: symmetric weights `f32(amax / 127)` (tools/optimize `GetSymmetricScalesFromMaxMin`),
/// asymmetric activations `GetAsymmetricQuantizationParams` (float32, `std::round`).
///
/// TFLite yields scale 0 for an all-zero range, which its own kernels cannot use; we return
/// scale 1.0, zero point 0 there (onnxruntime's rule) so that the params stay valid.
fn tflite_params(min: f32, max: f32, range: QRange, symmetric: bool) -> (f32, i32) {
    let (qmin, qmax) = (range.qmin(), range.qmax());
    if symmetric {
        let amax = min.abs().max(max.abs());
        if amax == 0.0 {
            return (1.0, 0);
        }
        return (amax / qmax as f32, 0);
    }
    let (qmin_f, qmax_f) = (qmin as f32, qmax as f32);
    let min = min.min(0.0);
    let max = max.max(0.0);
    let scale = (max - min) / (qmax_f - qmin_f);
    if scale == 0.0 {
        return (1.0, 0);
    }
    let zero_point_from_min = qmin_f - min / scale;
    let zp = if zero_point_from_min < qmin_f {
        qmin
    } else if zero_point_from_min > qmax_f {
        qmax
    } else {
        zero_point_from_min.round() as i32
    };
    (scale, zp)
}

impl QuantParams {
    /// Per-tensor params from one real range under `convention`.
    ///
    /// # Errors
    /// As [`scale_zero_point`].
    pub fn from_range(convention: Convention, scheme: &Scheme, min: f32, max: f32) -> Result<Self> {
        let (s, z) = scale_zero_point(convention, scheme, min, max)?;
        Self::per_tensor(s, z, scheme.qrange(convention)?)
    }

    /// Per-axis params from one real range per channel under `convention`.
    ///
    /// # Errors
    /// As [`scale_zero_point`] for each channel, plus [`Error::LengthMismatch`] when `mins`
    /// and `maxs` differ in length.
    pub fn from_ranges(
        convention: Convention,
        scheme: &Scheme,
        axis: usize,
        mins: &[f32],
        maxs: &[f32],
    ) -> Result<Self> {
        if mins.len() != maxs.len() {
            return Err(Error::LengthMismatch {
                what: "maxs".into(),
                got: maxs.len(),
                expected: mins.len(),
            });
        }
        let mut scales = Vec::with_capacity(mins.len());
        let mut zps = Vec::with_capacity(mins.len());
        for (&lo, &hi) in mins.iter().zip(maxs) {
            let (s, z) = scale_zero_point(convention, scheme, lo, hi)?;
            scales.push(s);
            zps.push(z);
        }
        Self::per_axis(axis, scales, zps, scheme.qrange(convention)?)
    }
}
