//! The int8 GEMM `A[M, K] × W[N, K]^T` with zero points, bias and epilogues: the normative
//! CPU twin of `shaders/matmul_i8.wgsl` and `shaders/gemv_i8.wgsl`.
//!
//! Order of operations (the kernels copy it):
//! 1. both operands enter the I8 domain (U8 bytes XOR 0x80, zero points - 128) and are
//!    packed 4 per word, rows padded with zero bytes;
//! 2. `dot = Σ_words dot4I8Packed(a, w)`, `sum_a[m] = Σ_k a`, `sum_w[n] = Σ_k w` (weights'
//!    sums precomputed once);
//! 3. `acc = dot - za·sum_w[n] - zw[n]·sum_a[m] + K·za·zw[n] + bias[n]`, all wrapping i32,
//!    which equals the exact `Σ (a - za)(w - zw) + bias` because the host has proved that the
//!    exact value fits i32 ([`check_accumulator_bound`]);
//! 4. the epilogue: dequantizing epilogues compute `v = f32(acc) * scale`, `v = v + b`
//!    (optional f32 bias; rule 2 allows the fused `fma` too, see
//!    [`matmul_i8_fused_alternative`]), then either the float activation clamp (f32/f16
//!    outputs) or the convention's quantizer (`DequantRequant`).

use half::f16;

use crate::error::{Error, Result, check_scale};
use crate::quant::epilogue::{
    Dequant, DequantRequant, DequantScales, Epilogue, Requant, RequantScaling,
};
use crate::quant::fixed_point::multiply_by_quantized_multiplier;
use crate::quant::pack::{
    check_len, pack_bytes, pack_i8_domain, to_i8_domain, words_per_row, zero_point_to_i8_domain,
};
use crate::quant::qtype::QType;
use crate::quant::scalar::{quantize_value, round_half_to_even};
use crate::reference::bounds::check_accumulator_bound;
use crate::reference::dot::dot4_i8_packed;
use crate::reference::quantize::to_storage_byte;

/// A quantized row-major matrix operand.
#[derive(Debug, Clone, Copy)]
pub struct QMatrix<'a> {
    /// Storage bytes, `rows * cols` of them.
    pub data: &'a [u8],
    /// Storage type.
    pub qtype: QType,
    /// Rows (M for activations, N for weights).
    pub rows: usize,
    /// Columns (K).
    pub cols: usize,
}

/// The operands of one GEMM.
#[derive(Debug, Clone, Copy)]
pub struct GemmInputs<'a> {
    /// Activations `A[M, K]`.
    pub a: QMatrix<'a>,
    /// Activation zero points: one, or one per row (dynamic per-row quantization).
    pub a_zero_points: &'a [i32],
    /// Weights `W[N, K]`, one row per output channel.
    pub w: QMatrix<'a>,
    /// Weight zero points: one, or one per output channel.
    pub w_zero_points: &'a [i32],
    /// i32 bias: empty, or one per output channel.
    pub bias: &'a [i32],
}

/// A GEMM result.
#[derive(Debug, Clone, PartialEq)]
pub enum GemmOutput {
    /// `[M, N]` i32.
    I32(Vec<i32>),
    /// `[M, N]` f32.
    F32(Vec<f32>),
    /// `[M, N]` f16.
    F16(Vec<f16>),
    /// `[M, N]` storage bytes of `qtype`.
    Quantized {
        /// Storage type.
        qtype: QType,
        /// One byte per element.
        bytes: Vec<u8>,
    },
}

impl GemmOutput {
    /// A quantized output packed 4 per word with rows of N padded to a multiple of 4, the
    /// layout the kernels write and the next layer reads; `None` for other outputs.
    pub fn packed(&self, m: usize, n: usize) -> Option<Vec<u32>> {
        match self {
            GemmOutput::Quantized { bytes, .. } => pack_bytes(bytes, m, n).ok(),
            _ => None,
        }
    }
}

fn per_row_or_one<T: Copy>(v: &[T], i: usize) -> T {
    if v.len() == 1 { v[0] } else { v[i] }
}

fn check_count(what: &str, got: usize, expected: usize, allow_one: bool) -> Result<()> {
    if got == expected || (allow_one && got == 1) {
        Ok(())
    } else {
        Err(Error::LengthMismatch {
            what: what.into(),
            got,
            expected,
        })
    }
}

fn check_zero_points(what: &str, zps: &[i32], qtype: QType) -> Result<()> {
    let (lo, hi) = qtype.storage_range();
    for (i, &z) in zps.iter().enumerate() {
        if !(lo..=hi).contains(&z) {
            return Err(Error::ZeroPointOutOfRange {
                what: format!("{what}[{i}]"),
                value: z,
                qmin: lo,
                qmax: hi,
            });
        }
    }
    Ok(())
}

impl GemmInputs<'_> {
    /// `(M, N, K)`.
    pub fn dims(&self) -> (usize, usize, usize) {
        (self.a.rows, self.w.rows, self.a.cols)
    }

    /// Validates shapes, zero points, bias and the exact accumulator bound.
    ///
    /// M = 0 or N = 0 is a valid empty product; K = 0 is rejected, since a reduction over
    /// nothing is almost always a shape bug.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`], [`Error::DimensionMismatch`] (K of A vs W),
    /// [`Error::EmptyDimension`] (K = 0), [`Error::LengthMismatch`] (zero points, bias),
    /// [`Error::ZeroPointOutOfRange`], [`Error::AccumulatorOverflow`].
    pub fn validate(&self) -> Result<()> {
        let (m, n, k) = self.dims();
        check_len("A", self.a.data.len(), m, self.a.cols)?;
        check_len("W", self.w.data.len(), n, self.w.cols)?;
        if self.w.cols != k {
            return Err(Error::DimensionMismatch {
                what: "K of A vs K of W".into(),
                left: k,
                right: self.w.cols,
            });
        }
        if k == 0 {
            return Err(Error::EmptyDimension { what: "K".into() });
        }
        check_count("a_zero_points", self.a_zero_points.len(), m.max(1), true)?;
        check_count("w_zero_points", self.w_zero_points.len(), n.max(1), true)?;
        if !self.bias.is_empty() {
            check_count("bias", self.bias.len(), n, false)?;
        }
        check_zero_points("a_zero_points", self.a_zero_points, self.a.qtype)?;
        check_zero_points("w_zero_points", self.w_zero_points, self.w.qtype)?;
        // The bound depends on za only through its value: check each distinct one.
        let mut zas = self.a_zero_points.to_vec();
        zas.sort_unstable();
        zas.dedup();
        for za in zas {
            check_accumulator_bound(
                k,
                n,
                self.a.qtype,
                za,
                self.w.qtype,
                self.w_zero_points,
                self.bias,
            )?;
        }
        Ok(())
    }
}

/// The accumulators `acc[m, n] = Σ_k (a - za)(w - zw) + bias[n]`, computed as the kernel does.
///
/// # Errors
/// As [`GemmInputs::validate`].
pub fn matmul_i8_accumulators(inputs: &GemmInputs) -> Result<Vec<i32>> {
    inputs.validate()?;
    let (m, n, k) = inputs.dims();
    let words = words_per_row(k);
    let a_packed = pack_i8_domain(inputs.a.data, inputs.a.qtype, m, k)?;
    let w_packed = pack_i8_domain(inputs.w.data, inputs.w.qtype, n, k)?;
    let row_sum = |data: &[u8], qtype: QType, r: usize| -> i32 {
        data[r * k..(r + 1) * k]
            .iter()
            .map(|&b| i32::from(to_i8_domain(b, qtype)))
            .sum()
    };
    let sum_w: Vec<i32> = (0..n)
        .map(|c| row_sum(inputs.w.data, inputs.w.qtype, c))
        .collect();
    let k_i32 = k as i32;
    // M * N is bounded by the operands' lengths only as a product: check it, and allocate
    // fallibly, so a huge output is a typed error rather than an abort.
    let outputs = m.checked_mul(n).ok_or_else(|| Error::SizeOverflow {
        what: format!("int8 GEMM output: {m} * {n} accumulators"),
    })?;
    let mut acc = Vec::new();
    acc.try_reserve_exact(outputs)
        .map_err(|e| Error::SizeOverflow {
            what: format!("int8 GEMM output: {m} * {n} = {outputs} accumulators: {e}"),
        })?;
    acc.resize(outputs, 0i32);
    for row in 0..m {
        let sum_a = row_sum(inputs.a.data, inputs.a.qtype, row);
        let za = zero_point_to_i8_domain(per_row_or_one(inputs.a_zero_points, row), inputs.a.qtype);
        for col in 0..n {
            let zw =
                zero_point_to_i8_domain(per_row_or_one(inputs.w_zero_points, col), inputs.w.qtype);
            let mut dot = 0i32;
            for word in 0..words {
                dot = dot.wrapping_add(dot4_i8_packed(
                    a_packed[row * words + word],
                    w_packed[col * words + word],
                ));
            }
            let bias = if inputs.bias.is_empty() {
                0
            } else {
                inputs.bias[col]
            };
            acc[row * n + col] = dot
                .wrapping_sub(za.wrapping_mul(sum_w[col]))
                .wrapping_sub(zw.wrapping_mul(sum_a))
                .wrapping_add(k_i32.wrapping_mul(za).wrapping_mul(zw))
                .wrapping_add(bias);
        }
    }
    Ok(acc)
}

/// The f32 value of a dequantizing epilogue for one accumulator, without bias:
/// `f32(acc) * s_acc[n]`, or `f32(acc) * (s_a[m] * s_w[n])`.
fn dequant_scale(d: &Dequant, row: usize, col: usize) -> Result<f32> {
    match &d.scales {
        DequantScales::PerChannel(s) => Ok(per_row_or_one(s, col)),
        DequantScales::PerRowPerChannel {
            row_scales,
            channel_scales,
        } => {
            let p = row_scales[row] * per_row_or_one(channel_scales, col);
            check_scale(|| format!("s_a[{row}] * s_w[{col}]"), p)?;
            Ok(p)
        }
    }
}

/// The two results a float bias after a float scale may have on a conforming GPU:
/// `[round(round(x * s) + b), fma(x, s, b)]` (DESIGN.md rule 2). The first is the reference.
pub fn scale_then_bias_candidates(x: f32, scale: f32, bias: f32) -> [f32; 2] {
    [x * scale + bias, x.mul_add(scale, bias)]
}

/// Checks a dequantizing stage against an `[m, n]` output (scales, bias, activation) and
/// returns its float clamp range.
pub(crate) fn check_dequant(d: &Dequant, m: usize, n: usize) -> Result<Option<(f32, f32)>> {
    match &d.scales {
        DequantScales::PerChannel(s) => {
            check_count("dequant scales", s.len(), n, true)?;
            for (i, &v) in s.iter().enumerate() {
                check_scale(|| format!("s_acc[{i}]"), v)?;
            }
        }
        DequantScales::PerRowPerChannel {
            row_scales,
            channel_scales,
        } => {
            check_count("row scales", row_scales.len(), m, false)?;
            check_count("channel scales", channel_scales.len(), n, true)?;
            for (i, &v) in row_scales.iter().enumerate() {
                check_scale(|| format!("s_a[{i}]"), v)?;
            }
            for (i, &v) in channel_scales.iter().enumerate() {
                check_scale(|| format!("s_w[{i}]"), v)?;
            }
        }
    }
    if let Some(b) = &d.bias {
        check_count("f32 bias", b.len(), n, false)?;
        crate::error::check_finite("f32 bias", b)?;
    }
    d.activation.float_range()
}

/// The float activation clamp: `v = v < lo ? lo : v; v = v > hi ? hi : v` (comparisons,
/// as the shader's `select`s; never `min`/`max`).
pub fn float_clamp(v: f32, range: Option<(f32, f32)>) -> f32 {
    let Some((lo, hi)) = range else { return v };
    let v = if v < lo { lo } else { v };
    if v > hi { hi } else { v }
}

/// The dequantized values before any activation: `f32(acc) * scale`, then `+ b` as the
/// reference member of the rule-2 pair (`fused == false`) or as one `fma` (`fused == true`).
fn dequant_values(acc: &[i32], d: &Dequant, m: usize, n: usize, fused: bool) -> Result<Vec<f32>> {
    let mut out = Vec::with_capacity(acc.len());
    for row in 0..m {
        for col in 0..n {
            let x = acc[row * n + col] as f32;
            let s = dequant_scale(d, row, col)?;
            out.push(match &d.bias {
                Some(b) => scale_then_bias_candidates(x, s, b[col])[usize::from(fused)],
                None => x * s,
            });
        }
    }
    Ok(out)
}

/// Dequantized f32 outputs with the activation (the reference member of the rule-2 pair
/// when a bias is present, or the fused one).
fn dequant_f32(acc: &[i32], d: &Dequant, m: usize, n: usize, fused: bool) -> Result<Vec<f32>> {
    let range = check_dequant(d, m, n)?;
    let mut out = dequant_values(acc, d, m, n, fused)?;
    for v in &mut out {
        *v = float_clamp(*v, range);
    }
    Ok(out)
}

/// The alternative (fused) f32 outputs of a dequantizing epilogue with a float bias, after
/// its activation, or `None` when there is no bias (the result is then unique).
///
/// # Errors
/// As [`matmul_i8`].
pub fn dequant_f32_fused_alternative(inputs: &GemmInputs, d: &Dequant) -> Result<Option<Vec<f32>>> {
    if d.bias.is_none() {
        return Ok(None);
    }
    let acc = matmul_i8_accumulators(inputs)?;
    let (m, n, _) = inputs.dims();
    dequant_f32(&acc, d, m, n, true).map(Some)
}

/// Checks a dequantize-requantize stage against an `[m, n]` output.
pub(crate) fn check_dequant_requant(r: &DequantRequant, m: usize, n: usize) -> Result<()> {
    check_dequant(&r.dequant, m, n)?;
    r.check_output()
}

/// The output value of a dequantize-requantize stage for one dequantized f32 value `v`:
/// `quantize_value(convention, v, s_out, zp_out, clamp_min, clamp_max)`.
pub fn dequant_requant_value(r: &DequantRequant, v: f32) -> i32 {
    quantize_value(
        r.convention,
        v,
        r.out_scale,
        r.out_zero_point,
        r.clamp_min,
        r.clamp_max,
    )
}

/// Storage bytes of a dequantize-requantize stage (reference or fused rule-2 member).
fn dequant_requant(
    acc: &[i32],
    r: &DequantRequant,
    m: usize,
    n: usize,
    fused: bool,
) -> Result<Vec<u8>> {
    check_dequant_requant(r, m, n)?;
    Ok(dequant_values(acc, &r.dequant, m, n, fused)?
        .into_iter()
        .map(|v| to_storage_byte(dequant_requant_value(r, v), r.out_qtype))
        .collect())
}

/// The whole output computed with the fused member of the rule-2 pair (`fma(x, s, b)`),
/// for epilogues with a float bias after a float scale; `None` for every other epilogue
/// (its result is unique). A conforming GPU's output equals, element by element, either
/// [`matmul_i8`] or this.
///
/// # Errors
/// As [`matmul_i8`].
pub fn matmul_i8_fused_alternative(
    inputs: &GemmInputs,
    epilogue: &Epilogue,
) -> Result<Option<GemmOutput>> {
    let has_bias = match epilogue {
        Epilogue::DequantF32(d) | Epilogue::DequantF16(d) => d.bias.is_some(),
        Epilogue::DequantRequant(r) => r.dequant.bias.is_some(),
        Epilogue::I32 | Epilogue::Requant(_) => false,
    };
    if !has_bias {
        return Ok(None);
    }
    matmul_i8_with(inputs, epilogue, true).map(Some)
}

/// Applies a requantizing stage to one accumulator of channel `col`.
///
/// * Float: `v = f32(acc) * M[n]`; clamp `v` to `[clamp_min - zp, clamp_max - zp]` with
///   comparisons; `rne`; `+ zp`.
/// * Fixed point: `clamp(sat(zp + MBQM(acc, m0[n], shift[n])), clamp_min, clamp_max)`.
pub fn requantize_value(r: &Requant, acc: i32, col: usize) -> i32 {
    let zp = r.out_zero_point;
    match &r.scaling {
        RequantScaling::Float(multipliers) => {
            let v = acc as f32 * per_row_or_one(multipliers, col);
            let lo = (r.clamp_min - zp) as f32;
            let hi = (r.clamp_max - zp) as f32;
            let clamped = if v < lo {
                lo
            } else if v > hi {
                hi
            } else {
                v
            };
            round_half_to_even(clamped) as i32 + zp
        }
        RequantScaling::FixedPoint {
            multipliers,
            rounding,
        } => {
            let scaled =
                multiply_by_quantized_multiplier(acc, per_row_or_one(multipliers, col), *rounding);
            scaled.saturating_add(zp).clamp(r.clamp_min, r.clamp_max)
        }
    }
}

/// Checks a requantizing stage against `n` output channels: multiplier count, clamp range,
/// output zero point, float multipliers, and fixed-point multipliers
/// ([`crate::quant::fixed_point::QuantizedMultiplier::validate`]).
pub(crate) fn check_requant(r: &Requant, n: usize) -> Result<()> {
    check_count("requant multipliers", r.channels(), n, true)?;
    let (lo, hi) = r.out_qtype.storage_range();
    if r.clamp_min > r.clamp_max || r.clamp_min < lo || r.clamp_max > hi {
        return Err(Error::InvalidRange {
            qtype: r.out_qtype.name(),
            qmin: r.clamp_min,
            qmax: r.clamp_max,
        });
    }
    if !(lo..=hi).contains(&r.out_zero_point) {
        return Err(Error::ZeroPointOutOfRange {
            what: "output zero point".into(),
            value: r.out_zero_point,
            qmin: lo,
            qmax: hi,
        });
    }
    match &r.scaling {
        RequantScaling::Float(m) => {
            for (i, &v) in m.iter().enumerate() {
                check_scale(|| format!("M[{i}]"), v)?;
            }
        }
        RequantScaling::FixedPoint {
            multipliers,
            rounding,
        } => {
            // Hand-built multipliers: a negative or unnormalised m0, or a shift outside the
            // kernels' range, would make the GPU differ from `multiply_by_quantized_multiplier`.
            for (i, q) in multipliers.iter().enumerate() {
                q.validate(*rounding).map_err(|e| match e {
                    Error::InvalidConfig {
                        what,
                        value,
                        reason,
                    } => Error::InvalidConfig {
                        what: format!("requant multipliers[{i}]: {what}"),
                        value,
                        reason,
                    },
                    other => other,
                })?;
            }
        }
    }
    Ok(())
}

/// The full int8 GEMM with its epilogue: the normative result every GPU kernel must equal.
///
/// # Errors
/// As [`GemmInputs::validate`], plus epilogue parameter errors ([`Error::LengthMismatch`],
/// [`Error::InvalidScale`] including a dynamic `s_a[m] * s_w[n]` that is not normal,
/// [`Error::InvalidRange`], [`Error::InvalidConfig`] for an activation a float output cannot
/// take or a `DequantRequant` output scale below its limit).
pub fn matmul_i8(inputs: &GemmInputs, epilogue: &Epilogue) -> Result<GemmOutput> {
    matmul_i8_with(inputs, epilogue, false)
}

fn matmul_i8_with(inputs: &GemmInputs, epilogue: &Epilogue, fused: bool) -> Result<GemmOutput> {
    let acc = matmul_i8_accumulators(inputs)?;
    let (m, n, _) = inputs.dims();
    Ok(match epilogue {
        Epilogue::I32 => GemmOutput::I32(acc),
        Epilogue::DequantF32(d) => GemmOutput::F32(dequant_f32(&acc, d, m, n, fused)?),
        Epilogue::DequantF16(d) => GemmOutput::F16(
            dequant_f32(&acc, d, m, n, fused)?
                .into_iter()
                .map(crate::reference::f16::f32_to_f16_bits)
                .map(f16::from_bits)
                .collect(),
        ),
        Epilogue::Requant(r) => {
            check_requant(r, n)?;
            let bytes = acc
                .iter()
                .enumerate()
                .map(|(i, &a)| to_storage_byte(requantize_value(r, a, i % n), r.out_qtype))
                .collect();
            GemmOutput::Quantized {
                qtype: r.out_qtype,
                bytes,
            }
        }
        Epilogue::DequantRequant(r) => GemmOutput::Quantized {
            qtype: r.out_qtype,
            bytes: dequant_requant(&acc, r, m, n, fused)?,
        },
    })
}
