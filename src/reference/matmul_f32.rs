//! The FP32 GEMM reference: an f64 product and the written error bound the FP32 kernels are
//! held to. This is the only tolerance in the crate.
//!
//! For `y[m, n] = Σ_k a[m, k] * w[n, k] (+ bias[n])` computed in f32 in any order, with or
//! without fused multiply-adds, the standard inner-product bound (Higham, *Accuracy and
//! Stability of Numerical Algorithms*, §3.1) is
//! `|y - exact| ≤ γ_L · Σ_k |a||w| (+ |bias|)`, `γ_L = L·u / (1 - L·u)`, `u = 2^-24`,
//! with `L = K + 1` terms when a bias is added. A GPU may flush subnormals, which adds at most
//! `2^-126` per operation: `2L · 2^-126` in all. The f64 reference itself is within
//! `γ_L(2^-53) · Σ|a||w|` of the exact value, which the bound also absorbs.
//!
//! The bound assumes no particular order: Higham's proof holds for any order of the L - 1
//! additions, and a fused `fma(x, y, s)` rounds once where `s + x*y` rounds twice. The GPU
//! kernel (`shaders/matmul_f32.wgsl`) evaluates each output as one `fma` chain over
//! `k = 0, 1, .., K-1` in order (the zeros padding K to a multiple of 4 add exact zeros),
//! then adds the bias: L = K + 1 roundings at most, one of the orders covered.
//!
//! An activation clamp `[lo, hi]` after the sum (`Relu` = `[0, +Inf]`, `Relu6` = `[0, 6]`)
//! keeps the same bound: clamping is monotone and 1-Lipschitz, so
//! `|clamp(y) - clamp(exact)| ≤ |y - exact|`. The reference clamps its f64 values.

use crate::quant::epilogue::Activation;

use crate::error::{Error, Result};
use crate::quant::pack::check_len;

/// `γ_n = n·u / (1 - n·u)` for unit roundoff `u`.
pub fn gamma(n: usize, unit_roundoff: f64) -> f64 {
    let nu = n as f64 * unit_roundoff;
    nu / (1.0 - nu)
}

/// The f64 reference of an FP32 GEMM and its per-element error bound.
#[derive(Debug, Clone, PartialEq)]
pub struct MatmulF32Reference {
    /// `Σ_k a·w + bias` in f64, `[M, N]`.
    pub values: Vec<f64>,
    /// The largest allowed `|y - value|` per element.
    pub bounds: Vec<f64>,
}

impl MatmulF32Reference {
    /// Whether `y` lies within the bound of every element.
    pub fn accepts(&self, y: &[f32]) -> bool {
        y.len() == self.values.len()
            && y.iter()
                .zip(self.values.iter().zip(&self.bounds))
                .all(|(&y, (&r, &b))| (f64::from(y) - r).abs() <= b)
    }
}

/// Rejects a clamp with a NaN bound or `lo > hi` (infinite bounds are fine).
///
/// # Errors
/// [`Error::InvalidConfig`] naming the bounds.
pub fn check_clamp(lo: f32, hi: f32) -> Result<()> {
    // `lo <= hi` is false when either is NaN.
    if lo <= hi {
        Ok(())
    } else {
        Err(Error::InvalidConfig {
            what: "f32 activation clamp".into(),
            value: format!("[{lo}, {hi}]"),
            reason: "bounds must not be NaN, with lo <= hi".into(),
        })
    }
}

/// The f32 clamp of an activation: `None` for [`Activation::None`], `[0, +Inf]` for `Relu`,
/// `[0, 6]` for `Relu6`, `[-1, 1]` for `ReluN1To1`, `[lo, hi]` for `Clamp`.
///
/// # Errors
/// [`Error::Mismatch`] for [`Activation::ClampQuantized`] (an integer-domain clamp has no
/// meaning for f32 outputs); [`Error::InvalidConfig`] as [`check_clamp`].
pub fn f32_activation_clamp(activation: Activation) -> Result<Option<(f32, f32)>> {
    let clamp = match activation {
        Activation::None => return Ok(None),
        Activation::Relu => (0.0, f32::INFINITY),
        Activation::Relu6 => (0.0, 6.0),
        Activation::ReluN1To1 => (-1.0, 1.0),
        Activation::Clamp { lo, hi } => (lo, hi),
        Activation::ClampQuantized { lo, hi } => {
            return Err(Error::Mismatch(format!(
                "the quantized clamp [{lo}, {hi}] has no meaning for f32 outputs"
            )));
        }
    };
    check_clamp(clamp.0, clamp.1)?;
    Ok(Some(clamp))
}

/// `A[M, K] × W[N, K]^T (+ bias)` in f64 with the bound.
///
/// # Errors
/// [`Error::ShapeMismatch`] for mismatched lengths, [`Error::LengthMismatch`] for the bias,
/// [`Error::NonFiniteInput`] for NaN or Inf in any operand, [`Error::SizeOverflow`] when
/// `M * N` overflows or the output cannot be allocated.
pub fn matmul_f32_reference(
    a: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    m: usize,
    n: usize,
    k: usize,
) -> Result<MatmulF32Reference> {
    matmul_f32_reference_clamped(a, w, bias, m, n, k, None)
}

/// `clamp(A[M, K] × W[N, K]^T (+ bias), lo, hi)` in f64 with the bound: the reference of
/// an FP32 layer with an activation (`clamp` as [`f32_activation_clamp`] gives it). The
/// clamp applies after the sum, to the f64 value; the bound is unchanged.
///
/// # Errors
/// As [`matmul_f32_reference`], plus [`Error::InvalidConfig`] as [`check_clamp`].
pub fn matmul_f32_reference_clamped(
    a: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    m: usize,
    n: usize,
    k: usize,
    clamp: Option<(f32, f32)>,
) -> Result<MatmulF32Reference> {
    if let Some((lo, hi)) = clamp {
        check_clamp(lo, hi)?;
    }
    check_len("A", a.len(), m, k)?;
    check_len("W", w.len(), n, k)?;
    crate::error::check_finite("A", a)?;
    crate::error::check_finite("W", w)?;
    if let Some(b) = bias {
        if b.len() != n {
            return Err(Error::LengthMismatch {
                what: "bias".into(),
                got: b.len(),
                expected: n,
            });
        }
        crate::error::check_finite("bias", b)?;
    }
    let terms = k + usize::from(bias.is_some());
    let g32 = gamma(terms, 2f64.powi(-24));
    let g64 = gamma(terms, 2f64.powi(-53));
    let underflow = 2.0 * terms as f64 * 2f64.powi(-126);
    let outputs = m.checked_mul(n).ok_or_else(|| Error::SizeOverflow {
        what: format!("f32 reference output: {m} * {n} elements"),
    })?;
    // With K = 0 the operands are empty and M * N is bounded by nothing the caller allocated:
    // reserve fallibly (a typed error instead of an abort) before filling.
    let reserve = |v: &mut Vec<f64>| {
        v.try_reserve_exact(outputs)
            .map_err(|e| Error::SizeOverflow {
                what: format!("f32 reference output: {m} * {n} = {outputs} f64 values: {e}"),
            })
    };
    let mut values = Vec::new();
    let mut bounds = Vec::new();
    reserve(&mut values)?;
    reserve(&mut bounds)?;
    for row in 0..m {
        for col in 0..n {
            let mut sum = 0.0f64;
            let mut magnitude = 0.0f64;
            for i in 0..k {
                let p = f64::from(a[row * k + i]) * f64::from(w[col * k + i]);
                sum += p;
                magnitude += p.abs();
            }
            if let Some(b) = bias {
                sum += f64::from(b[col]);
                magnitude += f64::from(b[col]).abs();
            }
            if let Some((lo, hi)) = clamp {
                let (lo, hi) = (f64::from(lo), f64::from(hi));
                sum = if sum < lo {
                    lo
                } else if sum > hi {
                    hi
                } else {
                    sum
                };
            }
            values.push(sum);
            bounds.push((g32 + g64) * magnitude * (1.0 + g64) + underflow);
        }
    }
    Ok(MatmulF32Reference { values, bounds })
}
