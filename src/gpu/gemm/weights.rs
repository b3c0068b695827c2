//! Weights `W[N, K]` prepared once: checked, packed in the I8 domain with their row sums,
//! uploaded, and split along N above the storage binding limit.

use crate::error::{Error, Result};
use crate::gpu::buffers::upload;
use crate::gpu::context::Context;
use crate::quant::calibrate::{Observer, RangeEstimator};
use crate::quant::convention::Convention;
use crate::quant::pack::{check_len, pack_i8_domain, row_sums_i8_domain, words_per_row};
use crate::quant::params::{QuantParams, Scheme};
use crate::quant::qtype::QType;

use super::bytes_of;

/// One part of the weights along N (all of them unless they exceed the binding limit).
#[derive(Debug, Clone)]
pub(super) struct WeightChunk {
    pub(super) n0: usize,
    pub(super) n1: usize,
    pub(super) buffer: wgpu::Buffer,
}
/// `ChannelParams` is 32 bytes per channel.
const CHANNEL_PARAMS_BYTES: u64 = 32;

/// Output channels per weight chunk: as many as fit the binding limit (weights and their
/// channel params), a multiple of 4 so packed and f16 output words never straddle chunks.
fn channels_per_chunk(ctx: &Context, k_words: usize) -> Result<usize> {
    let limit = ctx.binding_limit();
    let row_bytes = bytes_of("a weight row", k_words as u64, 4)?;
    let per_row = row_bytes.max(CHANNEL_PARAMS_BYTES);
    let fit = usize::try_from(limit / per_row).unwrap_or(usize::MAX) / 4 * 4;
    if fit == 0 {
        return Err(Error::Unsupported(format!(
            "four weight rows of {row_bytes} bytes exceed the storage binding limit of {limit}"
        )));
    }
    Ok(fit)
}
/// Checks that every weight byte lies in its channel's quantized range (a narrow symmetric
/// range excludes -128, for instance): the accumulator bound and the reference assume it.
fn check_weight_range(data: &[u8], n: usize, k: usize, params: &QuantParams) -> Result<()> {
    let range = params.range();
    let (qmin, qmax) = (range.qmin(), range.qmax());
    let value = |b: u8| match params.qtype() {
        QType::I8 => i32::from(b as i8),
        QType::U8 => i32::from(b),
    };
    if let Some(i) = data
        .iter()
        .position(|&b| !(qmin..=qmax).contains(&value(b)))
    {
        let (row, col) = (i / k.max(1), i % k.max(1));
        return Err(Error::InvalidConfig {
            what: format!("weight [{row}, {col}] of the {n} x {k} weights"),
            value: value(data[i]).to_string(),
            reason: format!("outside the params' quantized range [{qmin}, {qmax}]"),
        });
    }
    Ok(())
}

/// Weights `W[N, K]` uploaded once: packed in the I8 domain with their row sums. Weights
/// above the storage binding limit are split along N into separate buffers, transparently.
#[derive(Debug, Clone)]
pub struct QuantizedWeights {
    pub(super) n: usize,
    pub(super) k: usize,
    pub(super) qtype: QType,
    pub(super) zero_points: Vec<i32>,
    pub(super) row_sums: Vec<i32>,
    pub(super) params: QuantParams,
    pub(super) chunks: Vec<WeightChunk>,
}

impl QuantizedWeights {
    /// Uploads already-quantized weights (storage bytes, `n × k` row-major) with their params
    /// (per tensor, or per axis 0 with `n` channels).
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`], [`Error::EmptyDimension`] (K = 0), params/shape errors,
    /// [`Error::InvalidConfig`] for a weight byte outside its params' quantized range,
    /// [`Error::SizeOverflow`] for a K the kernel cannot index (above `u32`),
    /// [`Error::Gpu`] / [`Error::Unsupported`] for the upload.
    pub fn from_quantized(
        ctx: &Context,
        data: &[u8],
        n: usize,
        k: usize,
        params: QuantParams,
    ) -> Result<Self> {
        check_len("weights", data.len(), n, k)?;
        if k == 0 {
            return Err(Error::EmptyDimension { what: "K".into() });
        }
        params.check_shape(&[n, k])?;
        if params.axis() == Some(1) {
            return Err(Error::Mismatch(
                "weights are quantized per output channel (axis 0), not along K".into(),
            ));
        }
        u32::try_from(k).map_err(|_| Error::SizeOverflow {
            what: format!("K = {k} exceeds the kernel's u32 indices"),
        })?;
        u32::try_from(n).map_err(|_| Error::SizeOverflow {
            what: format!("N = {n} exceeds the kernel's u32 indices"),
        })?;
        check_weight_range(data, n, k, &params)?;
        let qtype = params.qtype();
        let packed = pack_i8_domain(data, qtype, n, k)?;
        let k_words = words_per_row(k);
        let per_chunk = channels_per_chunk(ctx, k_words)?;
        let mut chunks = Vec::new();
        for n0 in (0..n).step_by(per_chunk) {
            let n1 = (n0 + per_chunk).min(n);
            let part = &packed[n0 * k_words..n1 * k_words];
            let buffer = upload(ctx, "weights", part, wgpu::BufferUsages::STORAGE)?;
            chunks.push(WeightChunk { n0, n1, buffer });
        }
        Ok(QuantizedWeights {
            n,
            k,
            qtype,
            zero_points: (0..n).map(|c| params.zero_point(c)).collect(),
            row_sums: row_sums_i8_domain(data, qtype, n, k)?,
            params,
            chunks,
        })
    }

    /// Calibrates, quantizes and uploads f32 weights `W[N, K]` (row-major) with `estimator`
    /// per output channel (axis 0) under `convention` and `scheme`: per-channel symmetric
    /// MinMax (`MinMax::new()`, `Scheme::symmetric(QType::I8)`) is the usual choice.
    /// Returns the weights and their params (the params also stay inside the weights).
    ///
    /// # Errors
    /// Calibration errors (empty, NaN/Inf), params errors, and as
    /// [`QuantizedWeights::from_quantized`].
    pub fn quantize<E: RangeEstimator>(
        ctx: &Context,
        w: &[f32],
        n: usize,
        k: usize,
        convention: Convention,
        estimator: E,
        scheme: &Scheme,
    ) -> Result<Self> {
        check_len("weights", w.len(), n, k)?;
        let mut observer = Observer::per_channel(estimator, 0);
        observer.observe(w, &[n, k])?;
        let params = observer.params(convention, scheme)?;
        let bytes = crate::reference::quantize::quantize(convention, w, &[n, k], &params)?;
        Self::from_quantized(ctx, &bytes, n, k, params)
    }

    /// Output channels.
    pub fn n(&self) -> usize {
        self.n
    }
    /// Reduction depth.
    pub fn k(&self) -> usize {
        self.k
    }
    /// The weights' params.
    pub fn params(&self) -> &QuantParams {
        &self.params
    }
    /// The storage type of the weights.
    pub fn qtype(&self) -> QType {
        self.qtype
    }
    /// `Σ_k w[n, k]` per output channel in the I8 domain (what the kernel's zero-point
    /// correction uses).
    pub fn row_sums(&self) -> &[i32] {
        &self.row_sums
    }
    /// The packed weight buffers: `(first channel, end channel, buffer)` per part along N,
    /// each holding its rows packed 4 per word in the I8 domain, rows padded to whole words.
    pub fn buffers(&self) -> impl Iterator<Item = (usize, usize, &wgpu::Buffer)> {
        self.chunks.iter().map(|c| (c.n0, c.n1, &c.buffer))
    }
    /// How many buffers the weights were split into along N (1 unless they exceed the
    /// storage binding limit).
    pub fn chunk_count(&self) -> usize {
        self.chunks.len()
    }
}
