//! Dynamic (run-time) quantization of activations, per row or per tensor: the CPU twin of
//! `shaders/dynamic_quantize.wgsl`. The kernel derives the same scales and zero points on the
//! GPU, bit for bit, and leaves them in a buffer for the next kernel.
//!
//! Two schemes:
//! * [`DynamicScheme::OnnxLinear`], ONNX `DynamicQuantizeLinear` as onnxruntime computes it
//!   (`GetQuantizationParameter`): `min = min(0, min x)`, `max = max(0, max x)`,
//!   `scale = max == min ? 1 : f32(max - min) / f32(qmax - qmin)`,
//!   `zp = rne(clamp(qmin - f32(min / scale), qmin, qmax))`, then Onnx quantize. The ONNX op
//!   is u8 only; I8 (qmin = -128) applies the same formulas.
//! * [`DynamicScheme::SymmetricPerToken`], LLM-style W8A8: `s = max(f32(absmax / 127),
//!   PER_TOKEN_SCALE_FLOOR)`, `q = clamp(rne(x / s), -127, 127)`, zero point 0.
//!
//! Every division is the exact routine (equal to IEEE `/`). Non-finite inputs do not enter
//! the range reduction (onnxruntime's result is meaningless there: an infinite range gives an
//! infinite scale); they are then quantized by the Onnx rule: ±Inf saturate, NaN → qmin.
//!
//! **A range wider than f32** (values near ±3.4e38, so that `max - min` rounds to +Inf): the
//! width saturates to `f32::MAX` (bits `0x7f7f_ffff`), so the scale stays finite. Precisely,
//! for [`DynamicScheme::OnnxLinear`]:
//! `width = add_nonneg_f32_exact(max, |min|)`; `if width == +Inf { width = f32::MAX }`;
//! `scale = div_f32_exact(width, qmax - qmin)` (= `f32::MAX / 255` = `1.3344e36`, bits
//! `0x7b80_8080`, when saturated). The zero point and the quantized values then follow the
//! usual formulas with that scale: everything stays finite, no NaN. (onnxruntime gives scale
//! +Inf and meaningless outputs there; this is the crate's deliberate deviation, and the
//! only one.) [`DynamicScheme::SymmetricPerToken`] needs no rule: `absmax / 127` is finite
//! for every finite `absmax`.

use crate::error::{Error, Result};
use crate::quant::add::add_nonneg_f32_exact;
use crate::quant::convention::Convention;
use crate::quant::divide::div_f32_exact;
use crate::quant::qtype::QType;
use crate::quant::scalar::{quantize_value, round_half_to_even};
use crate::reference::quantize::to_storage_byte;

/// The smallest per-token scale, so that an all-zero row still has a normal scale
/// (torch's observer eps, 2^-23).
pub const PER_TOKEN_SCALE_FLOOR: f32 = f32::EPSILON;

/// Which dynamic quantization to apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DynamicScheme {
    /// ONNX `DynamicQuantizeLinear` (onnxruntime's rules), asymmetric, in `qtype`'s full range.
    OnnxLinear {
        /// U8 per the ONNX spec; I8 uses the same formulas with [-128, 127].
        qtype: QType,
    },
    /// Symmetric absmax / 127 per token, int8 in [-127, 127], zero point 0.
    SymmetricPerToken,
}

impl DynamicScheme {
    /// The output storage type.
    pub fn qtype(self) -> QType {
        match self {
            DynamicScheme::OnnxLinear { qtype } => qtype,
            DynamicScheme::SymmetricPerToken => QType::I8,
        }
    }
    fn range(self) -> (i32, i32) {
        match self {
            DynamicScheme::OnnxLinear { qtype } => qtype.storage_range(),
            DynamicScheme::SymmetricPerToken => (-127, 127),
        }
    }
}

/// Whether one set of params covers the whole tensor or each row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DynamicGranularity {
    /// One scale and zero point for the tensor.
    PerTensor,
    /// One per row (per token).
    PerRow,
}

/// A dynamically quantized matrix and the params it was quantized with.
#[derive(Debug, Clone, PartialEq)]
pub struct DynamicQuantized {
    /// Storage type of `bytes`.
    pub qtype: QType,
    /// One storage byte per element, row-major.
    pub bytes: Vec<u8>,
    /// One scale per group (one group per tensor or per row).
    pub scales: Vec<f32>,
    /// One zero point per group.
    pub zero_points: Vec<i32>,
}

/// `(min, max)` of the finite values, both 0 when there are none. Compared as values, so
/// -0.0 and 0.0 are equal and the first seen wins, as a sequential reduction would.
pub fn finite_min_max(x: &[f32]) -> (f32, f32) {
    let mut lo = 0.0f32;
    let mut hi = 0.0f32;
    for &v in x.iter().filter(|v| v.is_finite()) {
        if v < lo {
            lo = v;
        }
        if v > hi {
            hi = v;
        }
    }
    (lo, hi)
}

/// The params of one group under `scheme`, from its finite values.
pub fn dynamic_params(scheme: DynamicScheme, x: &[f32]) -> (f32, i32) {
    let (lo, hi) = finite_min_max(x); // already includes 0
    match scheme {
        DynamicScheme::OnnxLinear { qtype } => {
            let (qmin, qmax) = qtype.storage_range();
            // hi - lo = hi + |lo| (hi >= +0 >= lo), summed on bits as the kernel does; a width
            // beyond f32 saturates to f32::MAX (module doc), so the scale stays finite.
            let scale = if hi == lo {
                1.0
            } else {
                let width = add_nonneg_f32_exact(hi, lo.abs());
                let width = if width == f32::INFINITY {
                    f32::MAX
                } else {
                    width
                };
                div_f32_exact(width, (qmax - qmin) as f32)
            };
            let initial = qmin as f32 - div_f32_exact(lo, scale);
            let clamped = if initial < qmin as f32 {
                qmin as f32
            } else if initial > qmax as f32 {
                qmax as f32
            } else {
                initial
            };
            // A NaN `initial` (infinite scale) fails both comparisons; it then becomes qmin.
            let zp = if initial.is_nan() {
                qmin
            } else {
                round_half_to_even(clamped) as i32
            };
            (scale, zp)
        }
        DynamicScheme::SymmetricPerToken => {
            let absmax = if -lo > hi { -lo } else { hi };
            let s = div_f32_exact(absmax, 127.0);
            (
                if s > PER_TOKEN_SCALE_FLOOR {
                    s
                } else {
                    PER_TOKEN_SCALE_FLOOR
                },
                0,
            )
        }
    }
}

/// Dynamically quantizes a row-major `rows × cols` matrix.
///
/// `rows = 0` gives an empty result.
///
/// # Errors
/// [`Error::ShapeMismatch`] when `x.len() != rows * cols`; [`Error::EmptyDimension`] when
/// rows have no columns.
pub fn dynamic_quantize(
    x: &[f32],
    rows: usize,
    cols: usize,
    scheme: DynamicScheme,
    granularity: DynamicGranularity,
) -> Result<DynamicQuantized> {
    crate::quant::pack::check_len("dynamic quantize input", x.len(), rows, cols)?;
    if cols == 0 && rows > 0 {
        return Err(Error::EmptyDimension {
            what: "cols".into(),
        });
    }
    let (qmin, qmax) = scheme.range();
    let groups: Vec<&[f32]> = match granularity {
        DynamicGranularity::PerTensor if rows == 0 => vec![],
        DynamicGranularity::PerTensor => vec![x],
        DynamicGranularity::PerRow => x.chunks(cols.max(1)).take(rows).collect(),
    };
    let mut out = DynamicQuantized {
        qtype: scheme.qtype(),
        bytes: Vec::with_capacity(x.len()),
        scales: Vec::with_capacity(groups.len()),
        zero_points: Vec::with_capacity(groups.len()),
    };
    for group in groups {
        let (scale, zp) = dynamic_params(scheme, group);
        out.scales.push(scale);
        out.zero_points.push(zp);
        out.bytes.extend(group.iter().map(|&v| {
            to_storage_byte(
                quantize_value(Convention::Onnx, v, scale, zp, qmin, qmax),
                scheme.qtype(),
            )
        }));
    }
    Ok(out)
}
