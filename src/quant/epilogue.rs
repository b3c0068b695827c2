//! What happens to an i32 accumulator after the dot products: small composable stages.
//!
//! Every GEMM output is `stage(acc + bias_i32)` where the stage is one of
//! * `I32`: the sum itself;
//! * `DequantF32` / `DequantF16`: `f32(acc) * s_acc[n]` (or `f32(acc) * (s_a[m] * s_w[n])`
//!   with dynamic row scales), then an optional f32 bias, then an optional activation clamp
//!   in float (comparisons, never `min`/`max`), then for F16 one rounding to f16;
//! * `Requant`: scale to the output's integer domain (float multiplier or fixed point),
//!   add the output zero point, and clamp to the activation's integer range;
//! * `DequantRequant`: the f32 value of `DequantF32` (without activation), quantized with
//!   per-tensor output params by the convention's scalar quantizer
//!   ([`quantize_value`]), whose clamp range is the output range intersected with the
//!   activation.
//!
//! The host precomputes everything per channel here, once; the kernels only apply it.

use crate::error::{Error, Result, check_scale};
use crate::quant::convention::Convention;
use crate::quant::fixed_point::{
    FixedPointRounding, QuantizedMultiplier, quantize_multiplier, tflite_per_channel_multiplier,
    tflite_per_tensor_multiplier,
};
use crate::quant::params::QuantParams;
use crate::quant::qtype::QType;
use crate::quant::scalar::quantize_value;

/// A fused activation, applied as a clamp in the output's integer domain.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Activation {
    /// No clamp beyond the output type's range.
    None,
    /// `max(x, 0)`.
    Relu,
    /// `min(max(x, 0), 6)`.
    Relu6,
    /// `min(max(x, -1), 1)` (TFLite `RELU_N1_TO_1`).
    ReluN1To1,
    /// A real-valued clamp `[lo, hi]`, quantized with the output's params.
    Clamp {
        /// Lower real bound.
        lo: f32,
        /// Upper real bound.
        hi: f32,
    },
    /// A clamp given directly in the output's integer domain.
    ClampQuantized {
        /// Lower quantized bound.
        lo: i32,
        /// Upper quantized bound.
        hi: i32,
    },
}

impl Activation {
    /// The real range `[lo, hi]` of this activation on a float output, or `None` when it
    /// clamps nothing. `Relu` is `[0, +Inf]`, `Relu6` `[0, 6]`, `ReluN1To1` `[-1, 1]`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a `Clamp` whose bounds are not finite with `lo <= hi`,
    /// and for `ClampQuantized`, which has no meaning on a float output.
    pub fn float_range(&self) -> Result<Option<(f32, f32)>> {
        Ok(match *self {
            Activation::None => None,
            Activation::Relu => Some((0.0, f32::INFINITY)),
            Activation::Relu6 => Some((0.0, 6.0)),
            Activation::ReluN1To1 => Some((-1.0, 1.0)),
            Activation::Clamp { lo, hi } => {
                if !(lo.is_finite() && hi.is_finite() && lo <= hi) {
                    return Err(Error::InvalidConfig {
                        what: "activation clamp".into(),
                        value: format!("[{lo}, {hi}]"),
                        reason: "bounds must be finite with lo <= hi".into(),
                    });
                }
                Some((lo, hi))
            }
            Activation::ClampQuantized { lo, hi } => {
                return Err(Error::InvalidConfig {
                    what: "activation".into(),
                    value: format!("ClampQuantized {{ lo: {lo}, hi: {hi} }}"),
                    reason: "a quantized clamp has no meaning on a float output".into(),
                });
            }
        })
    }

    /// The integer range `[lo, hi]` of this activation for `out` (per-tensor) under `convention`.
    ///
    /// As TFLite's `CalculateActivationRangeQuantized`: a real bound `f` maps to the
    /// convention's `quantize(f)`, and the range is intersected with the output range.
    ///
    /// # Errors
    /// [`Error::Mismatch`] for per-axis output params; [`Error::InvalidConfig`] for a
    /// non-finite bound or an empty range.
    pub fn quantized_range(&self, convention: Convention, out: &QuantParams) -> Result<(i32, i32)> {
        if out.axis().is_some() {
            return Err(Error::Mismatch(
                "requantized outputs need per-tensor params".into(),
            ));
        }
        let (qmin, qmax) = (out.range().qmin(), out.range().qmax());
        let q = |f: f32| quantize_value(convention, f, out.scale(0), out.zero_point(0), qmin, qmax);
        let real = |lo: f32, hi: f32| -> Result<(i32, i32)> {
            if !(lo.is_finite() && hi.is_finite() && lo <= hi) {
                return Err(Error::InvalidConfig {
                    what: "activation clamp".into(),
                    value: format!("[{lo}, {hi}]"),
                    reason: "bounds must be finite with lo <= hi".into(),
                });
            }
            Ok((q(lo), q(hi)))
        };
        let (lo, hi) = match *self {
            Activation::None => (qmin, qmax),
            Activation::Relu => (q(0.0), qmax),
            Activation::Relu6 => (q(0.0), q(6.0)),
            Activation::ReluN1To1 => (q(-1.0), q(1.0)),
            Activation::Clamp { lo, hi } => real(lo, hi)?,
            Activation::ClampQuantized { lo, hi } => (lo, hi),
        };
        let (lo, hi) = (lo.max(qmin), hi.min(qmax));
        if lo > hi {
            return Err(Error::InvalidConfig {
                what: "activation range".into(),
                value: format!("[{lo}, {hi}]"),
                reason: format!("empty after intersecting with [{qmin}, {qmax}]"),
            });
        }
        Ok((lo, hi))
    }
}

/// How accumulators become f32 values.
#[derive(Debug, Clone, PartialEq)]
pub enum DequantScales {
    /// Static: `f32(acc) * s_acc[n]`, with `s_acc[n] = f32(s_a * s_w[n])` rounded on the host.
    PerChannel(Vec<f32>),
    /// Dynamic per-row activation scales: `f32(acc) * (s_a[m] * s_w[n])`, two f32 multiplies
    /// in that order. The row scales come from the dynamic quantizer at run time.
    PerRowPerChannel {
        /// `s_a[m]`, one per row of A.
        row_scales: Vec<f32>,
        /// `s_w[n]`, one per output channel.
        channel_scales: Vec<f32>,
    },
}

/// The dequantizing stage: `v = f32(acc) * scale`, `v = v + bias` (optional), then the
/// activation as a float clamp: `v = v < lo ? lo : v; v = v > hi ? hi : v` with
/// `(lo, hi)` = [`Activation::float_range`].
#[derive(Debug, Clone, PartialEq)]
pub struct Dequant {
    /// The scales.
    pub scales: DequantScales,
    /// An optional f32 bias added after the scale. Its result is `round(round(x*s) + b)` or
    /// `fma(x, s, b)`: a driver may contract the two (DESIGN.md rule 2). The activation
    /// then applies to whichever of the two the GPU produced.
    pub bias: Option<Vec<f32>>,
    /// The activation, applied in float after the bias ([`Activation::float_range`];
    /// `ClampQuantized` is rejected). `Activation::None` by default.
    pub activation: Activation,
}

impl Dequant {
    /// Static per-channel dequantization from the activation (per-tensor) and weight params.
    ///
    /// # Errors
    /// [`Error::Mismatch`] for per-axis activation params, [`Error::InvalidScale`] when a
    /// product `s_a * s_w[n]` is not normal.
    pub fn per_channel(a: &QuantParams, w: &QuantParams, bias: Option<Vec<f32>>) -> Result<Self> {
        if a.axis().is_some() {
            return Err(Error::Mismatch(
                "static dequantization needs per-tensor activation params".into(),
            ));
        }
        let s_a = a.scale(0);
        let mut s_acc = Vec::with_capacity(w.channels());
        for (n, &s_w) in w.scales().iter().enumerate() {
            let p = s_a * s_w;
            check_scale(|| format!("s_a * s_w[{n}]"), p)?;
            s_acc.push(p);
        }
        Ok(Dequant {
            scales: DequantScales::PerChannel(s_acc),
            bias,
            activation: Activation::None,
        })
    }

    /// The same stage with `activation` applied to its f32 values.
    pub fn with_activation(self, activation: Activation) -> Self {
        Dequant { activation, ..self }
    }
}

/// How accumulators are scaled into the output's integer domain.
#[derive(Debug, Clone, PartialEq)]
pub enum RequantScaling {
    /// `rne(f32(acc) * M[n])` with `M[n] = f32(f32(s_a * s_w[n]) / s_out)` (Onnx, PyTorch).
    Float(Vec<f32>),
    /// `MultiplyByQuantizedMultiplier(acc, m0[n], shift[n])` (TfLite).
    FixedPoint {
        /// One multiplier per channel.
        multipliers: Vec<QuantizedMultiplier>,
        /// Single or double rounding.
        rounding: FixedPointRounding,
    },
}

/// The requantizing stage: scale, add the output zero point, clamp.
#[derive(Debug, Clone, PartialEq)]
pub struct Requant {
    /// The scaling.
    pub scaling: RequantScaling,
    /// Storage type of the output.
    pub out_qtype: QType,
    /// Output zero point.
    pub out_zero_point: i32,
    /// Lowest output value (the output range intersected with the activation).
    pub clamp_min: i32,
    /// Highest output value.
    pub clamp_max: i32,
}

fn check_requant_params(a: &QuantParams, out: &QuantParams) -> Result<()> {
    if a.axis().is_some() || out.axis().is_some() {
        return Err(Error::Mismatch(
            "requantization needs per-tensor activation and output params".into(),
        ));
    }
    Ok(())
}

impl Requant {
    /// The requantizer `convention` uses: float for Onnx and PyTorch, fixed point with single
    /// rounding for TfLite.
    ///
    /// # Errors
    /// As [`Requant::float`] / [`Requant::fixed_point`].
    pub fn for_convention(
        convention: Convention,
        a: &QuantParams,
        w: &QuantParams,
        out: &QuantParams,
        activation: Activation,
    ) -> Result<Self> {
        match convention {
            Convention::Onnx | Convention::PyTorch => {
                Self::float(convention, a, w, out, activation)
            }
            Convention::TfLite => {
                Self::fixed_point(a, w, out, activation, FixedPointRounding::Single)
            }
        }
    }

    /// Float requantization: `M[n] = f32(f32(s_a * s_w[n]) / s_out)` (onnxruntime's
    /// `QLinearMatMul`); the activation bounds are quantized under `convention`.
    ///
    /// # Errors
    /// [`Error::Mismatch`] for per-axis activation or output params; [`Error::InvalidScale`]
    /// when `s_a * s_w[n]` or `M[n]` is not normal; activation errors.
    pub fn float(
        convention: Convention,
        a: &QuantParams,
        w: &QuantParams,
        out: &QuantParams,
        activation: Activation,
    ) -> Result<Self> {
        check_requant_params(a, out)?;
        let (s_a, s_out) = (a.scale(0), out.scale(0));
        let mut m = Vec::with_capacity(w.channels());
        for (n, &s_w) in w.scales().iter().enumerate() {
            let p = s_a * s_w;
            check_scale(|| format!("s_a * s_w[{n}]"), p)?;
            let multiplier = p / s_out;
            check_scale(|| format!("M[{n}] = s_a * s_w[{n}] / s_out"), multiplier)?;
            m.push(multiplier);
        }
        let (clamp_min, clamp_max) = activation.quantized_range(convention, out)?;
        Ok(Requant {
            scaling: RequantScaling::Float(m),
            out_qtype: out.qtype(),
            out_zero_point: out.zero_point(0),
            clamp_min,
            clamp_max,
        })
    }

    /// TFLite fixed-point requantization. Per-tensor weights use
    /// `GetQuantizedConvolutionMultipler` (product rounded to f32), per-channel weights
    /// `PopulateConvolutionQuantizationParams` (all in double); activation bounds use the
    /// TfLite quantizer (`away(f / s)`).
    ///
    /// # Errors
    /// [`Error::Mismatch`] for per-axis activation or output params; [`Error::InvalidScale`]
    /// for a non-normal scale or product; activation errors.
    pub fn fixed_point(
        a: &QuantParams,
        w: &QuantParams,
        out: &QuantParams,
        activation: Activation,
        rounding: FixedPointRounding,
    ) -> Result<Self> {
        check_requant_params(a, out)?;
        let (s_a, s_out) = (a.scale(0), out.scale(0));
        let mut multipliers = Vec::with_capacity(w.channels());
        for &s_w in w.scales() {
            let real = if w.axis().is_none() {
                tflite_per_tensor_multiplier(s_a, s_w, s_out)?
            } else {
                tflite_per_channel_multiplier(s_a, s_w, s_out)?
            };
            multipliers.push(quantize_multiplier(real, rounding)?);
        }
        let (clamp_min, clamp_max) = activation.quantized_range(Convention::TfLite, out)?;
        Ok(Requant {
            scaling: RequantScaling::FixedPoint {
                multipliers,
                rounding,
            },
            out_qtype: out.qtype(),
            out_zero_point: out.zero_point(0),
            clamp_min,
            clamp_max,
        })
    }

    /// Number of channels the scaling covers (1 means broadcast to all).
    pub fn channels(&self) -> usize {
        match &self.scaling {
            RequantScaling::Float(m) => m.len(),
            RequantScaling::FixedPoint { multipliers, .. } => multipliers.len(),
        }
    }
}

/// The smallest output scale [`DequantRequant`] accepts: `2^-125`, the same limit as
/// `crate::gpu::quantize::MIN_RECIPROCAL_SCALE`. With a float bias the dequantized value
/// can be subnormal, and a GPU may flush it to zero; at or above this scale a subnormal
/// `v` has `|v ⊘ s| < 1/2`, so it quantizes as 0 does in every convention, flushed or not.
pub const MIN_DEQUANT_REQUANT_OUT_SCALE: f32 = 2.350_988_7e-38; // 2^-125

/// Dequantize to f32, then quantize again with per-tensor output params: the float path
/// between two int8 layers. Serves a layer fed by the dynamic quantizer (per-row scales)
/// whose output feeds a static int8 layer, and PyTorch fbgemm's form (float bias added
/// after dequantization, before requantization).
///
/// Per element: `v = f32(acc) * scale` exactly as [`Epilogue::DequantF32`] (static or
/// dynamic scales), `v = v + bias` (optional; either member of the rule-2 pair), then
/// `q = quantize_value(convention, v, out_scale, out_zero_point, clamp_min, clamp_max)`:
/// the convention's division (exact routine) or reciprocal multiply, clamp in float, round,
/// `+ zp`. ±Inf from overflow saturates; NaN cannot arise from a finite accumulator, normal
/// scales and a finite bias.
#[derive(Debug, Clone, PartialEq)]
pub struct DequantRequant {
    /// The dequantizing stage. Its activation must be `Activation::None`: the activation
    /// lives in `clamp_min`/`clamp_max`.
    pub dequant: Dequant,
    /// The quantizer's convention (scale op and rounding).
    pub convention: Convention,
    /// Output scale: positive, normal, at least [`MIN_DEQUANT_REQUANT_OUT_SCALE`], and for
    /// `Convention::PyTorch` with a normal reciprocal.
    pub out_scale: f32,
    /// Output zero point.
    pub out_zero_point: i32,
    /// Storage type of the output.
    pub out_qtype: QType,
    /// Lowest output value (the output range intersected with the activation).
    pub clamp_min: i32,
    /// Highest output value.
    pub clamp_max: i32,
}

impl DequantRequant {
    /// The stage for per-tensor output params `out` under `convention`, with the
    /// activation's integer range ([`Activation::quantized_range`]).
    ///
    /// # Errors
    /// [`Error::Mismatch`] for per-axis output params; [`Error::InvalidConfig`] when
    /// `dequant.activation` is not `None`, or for an output scale below
    /// [`MIN_DEQUANT_REQUANT_OUT_SCALE`]; [`Error::InvalidScale`] for an output scale (or,
    /// under PyTorch, its reciprocal) that is not positive and normal; activation errors.
    pub fn new(
        convention: Convention,
        dequant: Dequant,
        out: &QuantParams,
        activation: Activation,
    ) -> Result<Self> {
        if out.axis().is_some() {
            return Err(Error::Mismatch(
                "requantized outputs need per-tensor params".into(),
            ));
        }
        let (clamp_min, clamp_max) = activation.quantized_range(convention, out)?;
        let stage = DequantRequant {
            dequant,
            convention,
            out_scale: out.scale(0),
            out_zero_point: out.zero_point(0),
            out_qtype: out.qtype(),
            clamp_min,
            clamp_max,
        };
        stage.check_output()?;
        Ok(stage)
    }

    /// `f32(1 / out_scale)`, the multiplier of the reciprocal convention (computed exactly).
    pub fn out_inv_scale(&self) -> f32 {
        crate::quant::scalar::reciprocal_scale(self.out_scale)
    }

    /// Checks everything but the dequantizing scales: the activation of `dequant`, the
    /// output scale (and reciprocal), the zero point and the clamp range.
    ///
    /// # Errors
    /// As [`DequantRequant::new`], plus [`Error::InvalidRange`] and
    /// [`Error::ZeroPointOutOfRange`] for hand-built values outside the storage type.
    pub fn check_output(&self) -> Result<()> {
        if self.dequant.activation != Activation::None {
            return Err(Error::InvalidConfig {
                what: "DequantRequant dequant.activation".into(),
                value: format!("{:?}", self.dequant.activation),
                reason: "the activation of a requantized output is its clamp range: pass it to DequantRequant::new".into(),
            });
        }
        check_scale(|| "output scale".into(), self.out_scale)?;
        if self.out_scale < MIN_DEQUANT_REQUANT_OUT_SCALE {
            return Err(Error::InvalidConfig {
                what: "output scale".into(),
                value: format!("{:e}", self.out_scale),
                reason: "below 2^-125: a subnormal dequantized value would quantize differently on a GPU that flushes subnormals".into(),
            });
        }
        if self.convention == Convention::PyTorch {
            check_scale(|| "1 / output scale".into(), self.out_inv_scale())?;
        }
        let (lo, hi) = self.out_qtype.storage_range();
        if self.clamp_min > self.clamp_max || self.clamp_min < lo || self.clamp_max > hi {
            return Err(Error::InvalidRange {
                qtype: self.out_qtype.name(),
                qmin: self.clamp_min,
                qmax: self.clamp_max,
            });
        }
        if !(lo..=hi).contains(&self.out_zero_point) {
            return Err(Error::ZeroPointOutOfRange {
                what: "output zero point".into(),
                value: self.out_zero_point,
                qmin: lo,
                qmax: hi,
            });
        }
        Ok(())
    }
}

/// The output stage of a GEMM.
#[derive(Debug, Clone, PartialEq)]
pub enum Epilogue {
    /// `acc + bias` as i32.
    I32,
    /// f32 output.
    DequantF32(Dequant),
    /// f16 output: the f32 result rounded once to f16 (nearest even).
    DequantF16(Dequant),
    /// Quantized output, packed 4 per `u32` for the next layer.
    Requant(Requant),
    /// Dequantize to f32 (optional f32 bias), then quantize with per-tensor output params;
    /// packed 4 per `u32` like `Requant`.
    DequantRequant(DequantRequant),
}
