//! The three numerics conventions the crate reproduces bit for bit.
//!
//! See `NUMERICS.md` section 5 for where the libraries disagree.

/// Which library's arithmetic to reproduce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Convention {
    /// ONNX / onnxruntime (the default: ONNX is the interchange format).
    ///
    /// * Quantize: `clamp(rne(f32(x / s)), qmin - zp, qmax - zp) + zp`, a true f32 division.
    /// * Requantize in float: `M = f32(f32(s_a * s_w[n]) / s_out)`.
    /// * Params from a range: onnxruntime's `compute_scale_zp` (float64 scale, zp from it).
    /// * NaN quantizes to `qmin` (what onnxruntime does on x86); ±Inf saturate.
    #[default]
    Onnx,
    /// PyTorch (`torch.ao`, fbgemm).
    ///
    /// * Quantize: `clamp(rne(f32(x * f32(1 / s))) + zp, qmin, qmax)`, the reciprocal multiply.
    /// * Requantize in float with the same multiplier as Onnx.
    /// * Params from a range: `_calculate_qparams` (symmetric int8 scale = amax / 127.5, eps = 2^-23).
    /// * NaN quantizes to `zp` (torch's cast of NaN is undefined; we pick the value that
    ///   dequantizes to 0); ±Inf saturate.
    PyTorch,
    /// TensorFlow Lite (reference kernels).
    ///
    /// * Quantize: `clamp(away(f32(x / s)) + zp, qmin, qmax)`, ties away from zero (`TfLiteRound`).
    /// * Requantize in fixed point: `QuantizeMultiplier` + `MultiplyByQuantizedMultiplier`,
    ///   single rounding by default, gemmlowp double rounding on request.
    /// * Params: symmetric weights `s = f32(amax / 127)` in [-127, 127], asymmetric
    ///   activations as `GetAsymmetricQuantizationParams`.
    /// * NaN quantizes to `zp`; ±Inf saturate (the reference kernel's int cast is undefined there).
    TfLite,
}

/// How `x / s` is formed when quantizing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScaleOp {
    /// `f32(x / s)`: a correctly rounded division.
    Divide,
    /// `f32(x * f32(1 / s))`: multiply by the rounded reciprocal.
    MultiplyByReciprocal,
}

/// How the scaled value is rounded to an integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RoundMode {
    /// Round half to even (`nearbyint`, `cvtps`).
    HalfToEven,
    /// Round half away from zero (`std::round`, `TfLiteRound`).
    HalfAwayFromZero,
}

/// What NaN quantizes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NanPolicy {
    /// The range's lowest value.
    ToQmin,
    /// The zero point (dequantizes to 0).
    ToZeroPoint,
}

impl Convention {
    /// All conventions, for exhaustive tests.
    pub const ALL: [Convention; 3] = [Convention::Onnx, Convention::PyTorch, Convention::TfLite];

    /// How this convention forms `x / s`.
    pub const fn scale_op(self) -> ScaleOp {
        match self {
            Convention::Onnx | Convention::TfLite => ScaleOp::Divide,
            Convention::PyTorch => ScaleOp::MultiplyByReciprocal,
        }
    }

    /// How this convention rounds.
    pub const fn round_mode(self) -> RoundMode {
        match self {
            Convention::Onnx | Convention::PyTorch => RoundMode::HalfToEven,
            Convention::TfLite => RoundMode::HalfAwayFromZero,
        }
    }

    /// What NaN quantizes to.
    pub const fn nan_policy(self) -> NanPolicy {
        match self {
            Convention::Onnx => NanPolicy::ToQmin,
            Convention::PyTorch | Convention::TfLite => NanPolicy::ToZeroPoint,
        }
    }
}
