//! Quantized linear layers on the GPU: weights prepared once, a layer that encodes the int8
//! GEMM with its epilogue into the caller's `wgpu::CommandEncoder`, and blocking helpers on
//! top. CPU twin: [`crate::reference::gemm::matmul_i8`], equal bit for bit.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use half::f16;

use crate::error::{Error, Result};
use crate::gpu::buffers::{check_buffer, create, read, upload};
use crate::gpu::context::Context;
use crate::gpu::pipelines::{EpilogueKind, MatmulVariant, PipelineKey};
use crate::gpu::tune::LayerKernels;
use crate::quant::calibrate::{Observer, RangeEstimator};
use crate::quant::convention::Convention;
use crate::quant::epilogue::{Dequant, DequantScales, Epilogue, RequantScaling};
use crate::quant::fixed_point::FixedPointRounding;
use crate::quant::pack::{
    check_len, pack_bytes, pack_i8_domain, row_sums_i8_domain, unpack_bytes, words_per_row,
    zero_point_to_i8_domain,
};
use crate::quant::params::{QuantParams, Scheme};
use crate::quant::qtype::QType;
use crate::reference::bounds::check_accumulator_bound;
use crate::reference::gemm::GemmOutput;

/// Twin of `MatmulUniforms` in `shaders/matmul_i8.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub struct MatmulUniforms {
    /// Rows of A.
    pub m: u32,
    /// Output channels.
    pub n: u32,
    /// Reduction depth.
    pub k: u32,
    /// Packed words per row of A and W.
    pub k_words: u32,
    /// Output zero point (requantizing epilogues).
    pub out_zero_point: i32,
    /// Lowest output value; for a dequantizing epilogue with an activation, the bits of the
    /// f32 lower bound.
    pub clamp_min: i32,
    /// Highest output value; for a dequantizing epilogue with an activation, the bits of the
    /// f32 upper bound.
    pub clamp_max: i32,
    /// `128 · padding bytes per row` for U8 activations (their zero padding reads as -128
    /// after the XOR), else 0.
    pub a_pad_correction: i32,
    /// Output row width in elements (all of N).
    pub n_total: u32,
    /// First output column of this dispatch (a multiple of 4).
    pub col_offset: u32,
    /// Words between the aligned activation binding offset and this part's first row.
    pub a_word_offset: u32,
    /// Words between the aligned output binding offset and this part's first row.
    pub out_word_offset: u32,
    /// Rows between the aligned row-params binding offset and this part's first row.
    pub row_offset: u32,
    /// `DequantRequant`: the output scale's bits.
    pub out_scale_bits: u32,
    /// `DequantRequant`: `f32(1 / out_scale)` (the reciprocal convention's multiplier).
    pub out_inv_scale: f32,
    /// Padding to 16 bytes. Must stay 0: the shader's `rounded()` XORs a value's bits with
    /// it (`pad0` there) so that no compiler can reassociate through the product.
    pub pad: u32,
}

/// The per-layer epilogue values of [`MatmulUniforms`].
#[derive(Debug, Clone, Copy, Default)]
struct EpilogueUniforms {
    out_zero_point: i32,
    clamp_min: i32,
    clamp_max: i32,
    out_scale_bits: u32,
    out_inv_scale: f32,
}

/// Twin of `ChannelParams` in `shaders/matmul_i8.wgsl`: everything per output channel,
/// computed once when the layer is built.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub struct ChannelParams {
    /// `Σ_k w[n, k]` in the I8 domain.
    pub sum_w: i32,
    /// Weight zero point in the I8 domain.
    pub zero_point: i32,
    /// i32 bias.
    pub bias: i32,
    /// Fixed-point shift.
    pub shift: i32,
    /// f32 scale / multiplier bits, or the fixed-point `m0`.
    pub scale_bits: u32,
    /// f32 bias after the scale.
    pub float_bias: f32,
    /// Padding to 32 bytes.
    pub pad: [u32; 2],
}

/// Twin of `RowParams` in `shaders/matmul_i8.wgsl`: per activation row (or one for all).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct RowParams {
    /// Activation zero point in the activations' own storage domain.
    pub zero_point: i32,
    /// Activation scale (dynamic dequantization).
    pub scale: f32,
}

/// One part of the weights along N (all of them unless they exceed the binding limit).
#[derive(Debug, Clone)]
struct WeightChunk {
    n0: usize,
    n1: usize,
    buffer: wgpu::Buffer,
}

/// How many recent `(M, input, rows, output)` combinations a layer keeps prepared. The cache
/// holds references to those buffers until an entry is evicted.
pub const DISPATCH_CACHE_ENTRIES: usize = 8;

/// What a prepared set of dispatches depends on besides the layer itself.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct DispatchKey {
    m: usize,
    input: wgpu::Buffer,
    rows: Option<wgpu::Buffer>,
    output: wgpu::Buffer,
}

/// One recorded dispatch: its pipeline, bind group, grid and the uniforms it binds.
#[derive(Debug)]
struct Dispatch {
    pipeline: wgpu::ComputePipeline,
    group: wgpu::BindGroup,
    workgroups: (u32, u32),
    _uniforms: wgpu::Buffer,
}

/// Batches up to this many rows use the GEMV kernel shape.
pub const GEMV_MAX_ROWS: usize = 3;

/// The GEMV-shape variant of a layer's GEMM variant under `kernels`.
fn gemv_variant_of(variant: MatmulVariant, kernels: LayerKernels) -> MatmulVariant {
    MatmulVariant {
        vec4_loads: kernels.gemv.vec4_loads,
        dot4_polyfill: kernels.gemv.unpacked,
        tile: kernels.gemv.tile,
        ..variant
    }
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

/// `count * unit` bytes, or [`Error::SizeOverflow`] naming `what` and both values.
fn bytes_of(what: &str, count: u64, unit: u64) -> Result<u64> {
    count.checked_mul(unit).ok_or_else(|| Error::SizeOverflow {
        what: format!("{what}: {count} * {unit} bytes overflows u64"),
    })
}

/// `v` as a `u64` (lossless on every supported target, checked anyway).
fn as_u64(what: &str, v: usize) -> Result<u64> {
    u64::try_from(v).map_err(|_| Error::SizeOverflow {
        what: format!("{what} = {v} exceeds u64"),
    })
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
    n: usize,
    k: usize,
    qtype: QType,
    zero_points: Vec<i32>,
    row_sums: Vec<i32>,
    params: QuantParams,
    chunks: Vec<WeightChunk>,
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

/// How the activations arrive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActivationInput {
    /// Statically quantized with one zero point.
    Static {
        /// Storage type.
        qtype: QType,
        /// Zero point.
        zero_point: i32,
    },
    /// Dynamically quantized per row: zero points (and scales) come with each call in a
    /// [`RowParams`] buffer, as the dynamic quantizer writes them.
    PerRow {
        /// Storage type.
        qtype: QType,
    },
}

impl ActivationInput {
    fn qtype(self) -> QType {
        match self {
            ActivationInput::Static { qtype, .. } | ActivationInput::PerRow { qtype } => qtype,
        }
    }
}

/// A quantized linear layer: `epilogue(A × Wᵀ + bias)`, encoded into the caller's encoder.
#[derive(Debug, Clone)]
pub struct QLinear {
    weights: QuantizedWeights,
    input: ActivationInput,
    epilogue: Epilogue,
    variant: MatmulVariant,
    /// The same epilogue in the GEMV shape.
    gemv_variant: MatmulVariant,
    /// The kernels chosen for this layer and where the choice came from.
    kernels: LayerKernels,
    pipeline: wgpu::ComputePipeline,
    /// The same epilogue in the GEMV shape, used for M <= [`GEMV_MAX_ROWS`].
    gemv_pipeline: wgpu::ComputePipeline,
    /// One channel-params buffer per weight chunk.
    channel_buffers: Vec<wgpu::Buffer>,
    /// Prepared dispatches (bind groups and uniforms) of recent calls.
    dispatch_cache: Arc<Mutex<HashMap<DispatchKey, Arc<Vec<Dispatch>>>>>,
    static_rows: wgpu::Buffer,
    epilogue_uniforms: EpilogueUniforms,
}

/// A binding of `size` bytes of `buffer` from `offset`.
fn range(buffer: &wgpu::Buffer, offset: u64, size: u64) -> wgpu::BufferBinding<'_> {
    wgpu::BufferBinding {
        buffer,
        offset,
        size: wgpu::BufferSize::new(size),
    }
}

fn per_channel<T: Copy>(v: &[T], c: usize) -> T {
    if v.len() == 1 { v[0] } else { v[c] }
}

/// Writes a dequantizing stage's channel scales and f32 bias into `channels` and returns
/// whether its scales are dynamic (per row). Checks counts, scales, the bias and that
/// per-row scales come with per-row input.
fn fill_dequant_channels(
    channels: &mut [ChannelParams],
    d: &Dequant,
    per_row_input: bool,
) -> Result<bool> {
    let n = channels.len();
    let (scales, dynamic) = match &d.scales {
        DequantScales::PerChannel(s) => (s, false),
        DequantScales::PerRowPerChannel { channel_scales, .. } => (channel_scales, true),
    };
    if scales.len() != 1 && scales.len() != n {
        return Err(Error::LengthMismatch {
            what: "dequant scales".into(),
            got: scales.len(),
            expected: n,
        });
    }
    for (c, ch) in channels.iter_mut().enumerate() {
        let s = per_channel(scales, c);
        crate::error::check_scale(|| format!("dequant scale[{c}]"), s)?;
        ch.scale_bits = s.to_bits();
    }
    if let Some(b) = &d.bias {
        if b.len() != n {
            return Err(Error::LengthMismatch {
                what: "f32 bias".into(),
                got: b.len(),
                expected: n,
            });
        }
        crate::error::check_finite("f32 bias", b)?;
        for (ch, &v) in channels.iter_mut().zip(b) {
            ch.float_bias = v;
        }
    }
    if dynamic && !per_row_input {
        return Err(Error::Mismatch(
            "per-row dequantization scales need ActivationInput::PerRow".into(),
        ));
    }
    Ok(dynamic)
}

impl QLinear {
    /// Builds the layer: checks the exact accumulator bound, folds every per-channel value
    /// into one buffer and compiles (or fetches) the pipeline. Nothing is redone per call.
    ///
    /// The epilogue's per-channel vectors must have one entry or `N`. A dynamic
    /// `DequantScales::PerRowPerChannel` uses only its channel scales here; the row scales
    /// arrive with each call (in the [`RowParams`] buffer), for `DequantF32`, `DequantF16` and
    /// `DequantRequant` alike. `DequantRequant` writes packed int8 like `Requant`.
    ///
    /// # Errors
    /// [`Error::AccumulatorOverflow`], [`Error::LengthMismatch`], [`Error::ZeroPointOutOfRange`],
    /// [`Error::InvalidScale`], [`Error::Mismatch`] (per-row zero points with a static
    /// epilogue is fine; per-row scales need `ActivationInput::PerRow`),
    /// [`Error::InvalidConfig`] (an activation a float output cannot take, a `DequantRequant`
    /// whose dequant stage has an activation or whose output scale is below its limit),
    /// [`Error::InvalidRange`], GPU errors.
    pub fn new(
        ctx: &Context,
        weights: QuantizedWeights,
        input: ActivationInput,
        bias: Option<Vec<i32>>,
        epilogue: Epilogue,
    ) -> Result<Self> {
        let n = weights.n;
        let bias = bias.unwrap_or_default();
        if !bias.is_empty() && bias.len() != n {
            return Err(Error::LengthMismatch {
                what: "bias".into(),
                got: bias.len(),
                expected: n,
            });
        }
        let a_type = input.qtype();
        // The bound over every zero point the activations may use.
        let za_candidates: Vec<i32> = match input {
            ActivationInput::Static { zero_point, .. } => {
                let (lo, hi) = a_type.storage_range();
                if !(lo..=hi).contains(&zero_point) {
                    return Err(Error::ZeroPointOutOfRange {
                        what: "activation zero point".into(),
                        value: zero_point,
                        qmin: lo,
                        qmax: hi,
                    });
                }
                vec![zero_point]
            }
            // Any zero point of the type may arrive: the extremes bound them all.
            ActivationInput::PerRow { .. } => {
                let (lo, hi) = a_type.storage_range();
                vec![lo, hi]
            }
        };
        for za in za_candidates {
            check_accumulator_bound(
                weights.k,
                n,
                a_type,
                za,
                weights.qtype,
                &weights.zero_points,
                &bias,
            )?;
        }
        let mut channels: Vec<ChannelParams> = (0..n)
            .map(|c| ChannelParams {
                sum_w: weights.row_sums[c],
                zero_point: zero_point_to_i8_domain(weights.zero_points[c], weights.qtype),
                bias: bias.get(c).copied().unwrap_or(0),
                ..Default::default()
            })
            .collect();
        let per_row_input = matches!(input, ActivationInput::PerRow { .. });
        let no_uniforms = EpilogueUniforms::default();
        let (kind, dynamic_rows, float_bias, float_clamp, convention, epilogue_uniforms) =
            match &epilogue {
                Epilogue::I32 => (
                    EpilogueKind::I32,
                    false,
                    false,
                    false,
                    Convention::Onnx,
                    no_uniforms,
                ),
                Epilogue::DequantF32(d) | Epilogue::DequantF16(d) => {
                    let kind = if matches!(epilogue, Epilogue::DequantF32(_)) {
                        EpilogueKind::DequantF32
                    } else {
                        EpilogueKind::DequantF16
                    };
                    let dynamic = fill_dequant_channels(&mut channels, d, per_row_input)?;
                    let range = d.activation.float_range()?;
                    let (lo, hi) = range.unwrap_or((0.0, 0.0));
                    let uniforms = EpilogueUniforms {
                        clamp_min: lo.to_bits() as i32,
                        clamp_max: hi.to_bits() as i32,
                        ..no_uniforms
                    };
                    (
                        kind,
                        dynamic,
                        d.bias.is_some(),
                        range.is_some(),
                        Convention::Onnx,
                        uniforms,
                    )
                }
                Epilogue::DequantRequant(r) => {
                    let dynamic = fill_dequant_channels(&mut channels, &r.dequant, per_row_input)?;
                    r.check_output()?;
                    let uniforms = EpilogueUniforms {
                        out_zero_point: r.out_zero_point,
                        clamp_min: r.clamp_min,
                        clamp_max: r.clamp_max,
                        out_scale_bits: r.out_scale.to_bits(),
                        out_inv_scale: r.out_inv_scale(),
                    };
                    (
                        EpilogueKind::DequantRequant,
                        dynamic,
                        r.dequant.bias.is_some(),
                        false,
                        r.convention,
                        uniforms,
                    )
                }
                Epilogue::Requant(r) => {
                    // The reference's own checks: channel count, clamp range, zero point, M normal.
                    crate::reference::gemm::check_requant(r, n)?;
                    let kind = match &r.scaling {
                        RequantScaling::Float(m) => {
                            for (c, ch) in channels.iter_mut().enumerate() {
                                let v = per_channel(m, c);
                                crate::error::check_scale(|| format!("M[{c}]"), v)?;
                                ch.scale_bits = v.to_bits();
                            }
                            EpilogueKind::RequantFloat
                        }
                        RequantScaling::FixedPoint {
                            multipliers,
                            rounding,
                        } => {
                            for (c, ch) in channels.iter_mut().enumerate() {
                                let q = per_channel(multipliers, c);
                                ch.scale_bits = q.m0 as u32;
                                ch.shift = q.shift;
                            }
                            match rounding {
                                FixedPointRounding::Single => EpilogueKind::RequantFixedSingle,
                                FixedPointRounding::Double => EpilogueKind::RequantFixedDouble,
                            }
                        }
                    };
                    let uniforms = EpilogueUniforms {
                        out_zero_point: r.out_zero_point,
                        clamp_min: r.clamp_min,
                        clamp_max: r.clamp_max,
                        ..no_uniforms
                    };
                    (kind, false, false, false, Convention::Onnx, uniforms)
                }
            };
        let kernels = crate::gpu::tune::choose(ctx, n, weights.k);
        let variant = MatmulVariant {
            epilogue: kind,
            a_is_u8: a_type == QType::U8,
            dynamic_rows,
            per_row_zero_point: matches!(input, ActivationInput::PerRow { .. }),
            float_bias,
            vec4_loads: kernels.gemm.vec4_loads,
            row_sums: channels.iter().any(|c| c.zero_point != 0),
            float_clamp,
            convention,
            dot4_polyfill: kernels.gemm.unpacked,
            tile: kernels.gemm.tile,
        };
        let gemv_variant = gemv_variant_of(variant, kernels);
        let pipeline = ctx.pipeline(PipelineKey::MatmulI8(variant))?;
        let gemv_pipeline = ctx.pipeline(PipelineKey::MatmulI8(gemv_variant))?;
        let channel_buffers = weights
            .chunks
            .iter()
            .map(|c| {
                upload(
                    ctx,
                    "channel params",
                    &channels[c.n0..c.n1],
                    wgpu::BufferUsages::STORAGE,
                )
            })
            .collect::<Result<Vec<_>>>()?;
        let static_zp = match input {
            ActivationInput::Static { zero_point, .. } => zero_point,
            ActivationInput::PerRow { .. } => 0,
        };
        let static_rows = upload(
            ctx,
            "static row params",
            &[RowParams {
                zero_point: static_zp,
                scale: 1.0,
            }],
            wgpu::BufferUsages::STORAGE,
        )?;
        Ok(QLinear {
            weights,
            input,
            epilogue,
            variant,
            gemv_variant,
            kernels,
            pipeline,
            gemv_pipeline,
            channel_buffers,
            dispatch_cache: Arc::default(),
            static_rows,
            epilogue_uniforms,
        })
    }

    /// Checks host-provided [`RowParams`] as the dynamic quantizer would have written them:
    /// each zero point inside the activations' storage range, and (when the epilogue
    /// dequantizes with per-row scales) each scale positive, finite and normal.
    ///
    /// # Errors
    /// [`Error::ZeroPointOutOfRange`], [`Error::InvalidScale`], naming the row.
    pub fn check_row_params(&self, rows: &[RowParams]) -> Result<()> {
        let (lo, hi) = self.input.qtype().storage_range();
        for (r, p) in rows.iter().enumerate() {
            if !(lo..=hi).contains(&p.zero_point) {
                return Err(Error::ZeroPointOutOfRange {
                    what: format!("row params[{r}].zero_point"),
                    value: p.zero_point,
                    qmin: lo,
                    qmax: hi,
                });
            }
            if self.variant.dynamic_rows {
                crate::error::check_scale(|| format!("row params[{r}].scale"), p.scale)?;
            }
        }
        Ok(())
    }

    /// The epilogue this layer applies.
    pub fn epilogue(&self) -> &Epilogue {
        &self.epilogue
    }

    /// The weights.
    pub fn weights(&self) -> &QuantizedWeights {
        &self.weights
    }

    /// How the activations arrive.
    pub fn input(&self) -> ActivationInput {
        self.input
    }

    /// The kernel specialisation this layer runs for M > [`GEMV_MAX_ROWS`] (epilogue kind,
    /// types, tile, loads, dot-product formulation).
    pub fn variant(&self) -> MatmulVariant {
        self.variant
    }

    /// The kernel specialisation this layer runs for M <= [`GEMV_MAX_ROWS`].
    pub fn gemv_variant(&self) -> MatmulVariant {
        self.gemv_variant
    }

    /// The kernels this layer runs (GEMM and GEMV) and where the choice came from: the
    /// heuristic, the caller, or the autotune ([`crate::gpu::tune`]).
    pub fn kernel(&self) -> LayerKernels {
        self.kernels
    }

    /// The same layer running `kernels` (16-byte loads dropped where the rows are not
    /// whole vec4s, the polyfill kept where the context forces it), with its own dispatch
    /// cache. Every choice gives the same bits.
    ///
    /// # Errors
    /// [`Error::Shader`] or [`Error::Gpu`] when a pipeline cannot be built.
    pub fn with_kernels(&self, ctx: &Context, kernels: LayerKernels) -> Result<QLinear> {
        let kernels = crate::gpu::tune::fit(ctx, self.weights.k, kernels);
        let variant = MatmulVariant {
            vec4_loads: kernels.gemm.vec4_loads,
            dot4_polyfill: kernels.gemm.unpacked,
            tile: kernels.gemm.tile,
            ..self.variant
        };
        let gemv_variant = gemv_variant_of(variant, kernels);
        Ok(QLinear {
            variant,
            gemv_variant,
            kernels,
            pipeline: ctx.pipeline(PipelineKey::MatmulI8(variant))?,
            gemv_pipeline: ctx.pipeline(PipelineKey::MatmulI8(gemv_variant))?,
            dispatch_cache: Arc::default(),
            ..self.clone()
        })
    }

    /// Measures this layer's kernel candidates on `ctx` with its own weights and epilogue
    /// (the shape classes the context has not measured yet; nothing under
    /// [`crate::gpu::tune::Tuning::Heuristic`] or `Fixed`), caches the winners in the
    /// context and switches the layer to them. Never blocks: the timings are awaited.
    ///
    /// # Errors
    /// GPU errors of the timed runs.
    pub async fn tune(&mut self, ctx: &Context) -> Result<LayerKernels> {
        let kernels = crate::gpu::tune::tune_layer(ctx, self).await?;
        if kernels != self.kernels {
            *self = self.with_kernels(ctx, kernels)?;
        }
        Ok(self.kernels)
    }

    /// Blocking form of [`QLinear::tune`] (native only).
    ///
    /// # Errors
    /// As [`QLinear::tune`].
    #[cfg(not(target_arch = "wasm32"))]
    pub fn tune_blocking(&mut self, ctx: &Context) -> Result<LayerKernels> {
        pollster::block_on(self.tune(ctx))
    }

    /// Zeroed input, row-params and output buffers for `m` rows (the autotune's runs).
    pub(crate) fn scratch_buffers(
        &self,
        ctx: &Context,
        m: usize,
    ) -> Result<(wgpu::Buffer, Option<wgpu::Buffer>, wgpu::Buffer)> {
        let m64 = as_u64("M", m)?;
        let a_row = bytes_of(
            "an activation row",
            as_u64("K words", words_per_row(self.weights.k))?,
            4,
        )?;
        let out_row = bytes_of(
            "an output row",
            as_u64("output words", self.output_words_per_row())?,
            4,
        )?;
        let input = create(
            ctx,
            "tune input",
            bytes_of("activations", m64, a_row)?,
            wgpu::BufferUsages::STORAGE,
        )?;
        let output = create(
            ctx,
            "tune output",
            bytes_of("output", m64, out_row)?,
            wgpu::BufferUsages::STORAGE,
        )?;
        let rows = match self.input {
            ActivationInput::PerRow { .. } => {
                let rows = vec![
                    RowParams {
                        zero_point: 0,
                        scale: 1.0
                    };
                    m
                ];
                Some(upload(
                    ctx,
                    "tune rows",
                    &rows,
                    wgpu::BufferUsages::STORAGE,
                )?)
            }
            ActivationInput::Static { .. } => None,
        };
        Ok((input, rows, output))
    }

    /// How many prepared `(M, input, rows, output)` dispatch sets the layer holds (a
    /// diagnostic: repeated calls with the same buffers reuse one set).
    pub fn cached_dispatch_sets(&self) -> usize {
        self.dispatch_cache.lock().map_or(0, |c| c.len())
    }

    /// Words per output row: N for i32/f32, `ceil(N/2)` for f16, `ceil(N/4)` for int8.
    pub fn output_words_per_row(&self) -> usize {
        let n = self.weights.n;
        match self.variant.epilogue {
            EpilogueKind::I32 | EpilogueKind::DequantF32 => n,
            EpilogueKind::DequantF16 => n.div_ceil(2),
            _ => words_per_row(n),
        }
    }

    /// Records `output = epilogue(input × Wᵀ + bias)` for `m` rows into `encoder`.
    ///
    /// `input` holds `m` packed rows of `ceil(K/4)` words (storage bytes, rows padded with
    /// zero bytes: what [`crate::gpu::quantize::encode_quantize`] and a requantizing layer
    /// write). `rows` carries one [`RowParams`] per row for `ActivationInput::PerRow`: the
    /// values in a GPU buffer cannot be checked here; the dynamic quantizer writes valid ones,
    /// and [`QLinear::check_row_params`] checks host-made ones before they are uploaded (as
    /// [`QLinear::run_blocking`] does).
    ///
    /// # Errors
    /// Buffer checks ([`check_buffer`]: usage, size, destroyed or of another device),
    /// [`Error::SizeOverflow`] when `m` rows in bytes overflow, [`Error::BufferAliasing`]
    /// when `output` is `input` or `rows`, [`Error::Mismatch`] when `rows` is missing or
    /// unexpected, [`Error::Unsupported`] above the dispatch limits.
    pub fn encode(
        &self,
        ctx: &Context,
        encoder: &mut wgpu::CommandEncoder,
        m: usize,
        input: &wgpu::Buffer,
        rows: Option<&wgpu::Buffer>,
        output: &wgpu::Buffer,
    ) -> Result<()> {
        let k = self.weights.k;
        if m == 0 {
            return Ok(());
        }
        let k_words = words_per_row(k);
        let a_row = bytes_of("an activation row", as_u64("K words", k_words)?, 4)?;
        let out_row = bytes_of(
            "an output row",
            as_u64("output words", self.output_words_per_row())?,
            4,
        )?;
        let m64 = as_u64("M", m)?;
        // Every size below is at most one of these three, so plain arithmetic on them is safe.
        let a_bytes = bytes_of("activations (M rows)", m64, a_row)?;
        let out_bytes = bytes_of("output (M rows)", m64, out_row)?;
        let row_bytes = bytes_of("row params (M rows)", m64, 8)?;
        check_buffer(ctx, "activations", input, a_bytes)?;
        check_buffer(ctx, "output", output, out_bytes)?;
        crate::gpu::buffers::check_distinct(("activations", input), ("output", output))?;
        let per_row_params = matches!(self.input, ActivationInput::PerRow { .. });
        let rows = match (self.input, rows) {
            (ActivationInput::PerRow { .. }, Some(r)) => {
                check_buffer(ctx, "row params", r, row_bytes)?;
                crate::gpu::buffers::check_distinct(("row params", r), ("output", output))?;
                r
            }
            (ActivationInput::PerRow { .. }, None) => {
                return Err(Error::Mismatch(
                    "this layer takes per-row activation params: pass a RowParams buffer".into(),
                ));
            }
            (ActivationInput::Static { .. }, None) => &self.static_rows,
            (ActivationInput::Static { .. }, Some(_)) => {
                return Err(Error::Mismatch(
                    "this layer has a static activation zero point; it takes no RowParams".into(),
                ));
            }
        };
        let key = DispatchKey {
            m,
            input: input.clone(),
            rows: per_row_params.then(|| rows.clone()),
            output: output.clone(),
        };
        let poisoned = || Error::Gpu("dispatch cache lock poisoned".into());
        let cached = self
            .dispatch_cache
            .lock()
            .map_err(|_| poisoned())?
            .get(&key)
            .cloned();
        let dispatches = match cached {
            Some(d) => d,
            None => {
                let prepared = Arc::new(self.prepare_dispatches(ctx, m, input, rows, output)?);
                let mut cache = self.dispatch_cache.lock().map_err(|_| poisoned())?;
                if cache.len() >= DISPATCH_CACHE_ENTRIES {
                    cache.clear();
                }
                cache.insert(key, prepared.clone());
                prepared
            }
        };
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("matmul_i8"),
            timestamp_writes: None,
        });
        for d in dispatches.iter() {
            pass.set_pipeline(&d.pipeline);
            pass.set_bind_group(0, &d.group, &[]);
            pass.dispatch_workgroups(d.workgroups.0, d.workgroups.1, 1);
        }
        Ok(())
    }

    /// Builds the bind groups and uniforms of every dispatch of one call (split along M and
    /// N as the binding limit requires), inside a validation error scope.
    fn prepare_dispatches(
        &self,
        ctx: &Context,
        m: usize,
        input: &wgpu::Buffer,
        rows: &wgpu::Buffer,
        output: &wgpu::Buffer,
    ) -> Result<Vec<Dispatch>> {
        let (n, k) = (self.weights.n, self.weights.k);
        let k_words = words_per_row(k);
        let a_row = k_words as u64 * 4;
        let out_row = self.output_words_per_row() as u64 * 4;
        let per_row_params = matches!(self.input, ActivationInput::PerRow { .. });
        let to_u32 = |what: &str, v: usize| {
            u32::try_from(v).map_err(|_| Error::Unsupported(format!("{what} = {v} exceeds u32")))
        };
        let pad = (4 * k_words - k) as i32;
        let device = ctx.device();
        let align = u64::from(device.limits().min_storage_buffer_offset_alignment);
        let gemv = m <= GEMV_MAX_ROWS;
        let pipeline = if gemv {
            &self.gemv_pipeline
        } else {
            &self.pipeline
        };
        let (cols_per_group, rows_per_group) = if gemv {
            self.gemv_variant.extent()
        } else {
            self.variant.extent()
        };
        let (cols_per_group, rows_per_group) = (cols_per_group as usize, rows_per_group as usize);
        let m_chunk = self.rows_per_dispatch(
            ctx,
            m,
            (a_row, out_row),
            per_row_params,
            (cols_per_group, rows_per_group),
        )?;
        // Every buffer and bind group below is made through `captured`.
        let mut dispatches = Vec::new();
        for m0 in (0..m).step_by(m_chunk) {
            let m1 = (m0 + m_chunk).min(m);
            let rows_here = m1 - m0;
            // (exact byte offset, aligned binding offset, binding size) of each M-split part.
            let part = |row_bytes: u64| {
                let start = m0 as u64 * row_bytes;
                let base = start / align * align;
                (start, base, start + rows_here as u64 * row_bytes - base)
            };
            let (a, out, rp) = (part(a_row), part(out_row), part(8));
            for (chunk, channels) in self.weights.chunks.iter().zip(&self.channel_buffers) {
                let uniforms = MatmulUniforms {
                    m: to_u32("M", rows_here)?,
                    n: to_u32("N", chunk.n1 - chunk.n0)?,
                    k: to_u32("K", k)?,
                    k_words: to_u32("K words", k_words)?,
                    out_zero_point: self.epilogue_uniforms.out_zero_point,
                    clamp_min: self.epilogue_uniforms.clamp_min,
                    clamp_max: self.epilogue_uniforms.clamp_max,
                    a_pad_correction: if self.variant.a_is_u8 { 128 * pad } else { 0 },
                    n_total: to_u32("N", n)?,
                    col_offset: to_u32("column offset", chunk.n0)?,
                    a_word_offset: ((a.0 - a.1) / 4) as u32,
                    out_word_offset: ((out.0 - out.1) / 4) as u32,
                    row_offset: ((rp.0 - rp.1) / 8) as u32,
                    out_scale_bits: self.epilogue_uniforms.out_scale_bits,
                    out_inv_scale: self.epilogue_uniforms.out_inv_scale,
                    pad: 0,
                };
                let uniform_buf = upload(
                    ctx,
                    "matmul uniforms",
                    &[uniforms],
                    wgpu::BufferUsages::UNIFORM,
                )?;

                let row_binding = if per_row_params {
                    wgpu::BindingResource::Buffer(range(rows, rp.1, rp.2))
                } else {
                    rows.as_entire_binding()
                };
                let resources = [
                    uniform_buf.as_entire_binding(),
                    wgpu::BindingResource::Buffer(range(input, a.1, a.2)),
                    chunk.buffer.as_entire_binding(),
                    channels.as_entire_binding(),
                    row_binding,
                    wgpu::BindingResource::Buffer(range(output, out.1, out.2)),
                ];
                let entries: Vec<wgpu::BindGroupEntry> = resources
                    .into_iter()
                    .enumerate()
                    .map(|(i, resource)| wgpu::BindGroupEntry {
                        binding: i as u32,
                        resource,
                    })
                    .collect();
                let group = crate::gpu::buffers::captured(ctx, "matmul_i8 bind group", |device| {
                    device.create_bind_group(&wgpu::BindGroupDescriptor {
                        label: Some("matmul_i8"),
                        layout: &pipeline.get_bind_group_layout(0),
                        entries: &entries,
                    })
                })?;
                dispatches.push(Dispatch {
                    pipeline: pipeline.clone(),
                    group,
                    workgroups: (
                        to_u32(
                            "workgroups along N",
                            (chunk.n1 - chunk.n0).div_ceil(cols_per_group),
                        )?,
                        to_u32("workgroups along M", rows_here.div_ceil(rows_per_group))?,
                    ),
                    _uniforms: uniform_buf,
                });
            }
        }
        Ok(dispatches)
    }

    /// Rows per dispatch: all of them when the activations, outputs and row params fit the
    /// binding limit and the dispatch limit, else as many as fit with one alignment unit to
    /// spare (each part is bound from an aligned offset below its first row).
    fn rows_per_dispatch(
        &self,
        ctx: &Context,
        m: usize,
        (a_row, out_row): (u64, u64),
        per_row: bool,
        (cols_per_group, rows_per_group): (usize, usize),
    ) -> Result<usize> {
        let limit = ctx.binding_limit();
        let limits = ctx.device().limits();
        let n_groups = self
            .weights
            .chunks
            .iter()
            .map(|c| (c.n1 - c.n0).div_ceil(cols_per_group))
            .max()
            .unwrap_or(0);
        if n_groups > limits.max_compute_workgroups_per_dimension as usize {
            return Err(Error::Unsupported(format!(
                "{n_groups} workgroups along N exceed max_compute_workgroups_per_dimension"
            )));
        }
        let dispatch_rows =
            u64::from(limits.max_compute_workgroups_per_dimension) * rows_per_group as u64;
        // `encode` checked these products.
        let m64 = as_u64("M", m)?;
        let whole = bytes_of("activations", m64, a_row)?
            .max(bytes_of("output", m64, out_row)?)
            .max(if per_row {
                bytes_of("row params", m64, 8)?
            } else {
                0
            });
        if whole <= limit && m64 <= dispatch_rows {
            return Ok(m);
        }
        let room = limit.saturating_sub(u64::from(limits.min_storage_buffer_offset_alignment));
        let mut fit = (room / a_row).min(room / out_row).min(dispatch_rows);
        if per_row {
            fit = fit.min(room / 8);
        }
        if fit == 0 {
            return Err(Error::Unsupported(format!(
                "one row of {a_row} activation or {out_row} output bytes exceeds the storage binding limit of {limit}"
            )));
        }
        Ok(usize::try_from(fit).unwrap_or(usize::MAX))
    }

    /// Blocking form of [`QLinear::run`] (native only).
    ///
    /// # Errors
    /// As [`QLinear::run`].
    #[cfg(not(target_arch = "wasm32"))]
    pub fn run_blocking(
        &self,
        ctx: &Context,
        a: &[u8],
        m: usize,
        rows: Option<&[RowParams]>,
    ) -> Result<GemmOutput> {
        pollster::block_on(self.run(ctx, a, m, rows))
    }

    /// Uploads `a` (storage bytes, `m × K`), runs the layer and reads the result back
    /// without blocking.
    /// `rows` gives the per-row params for `ActivationInput::PerRow`.
    ///
    /// # Errors
    /// As [`QLinear::encode`], plus [`Error::ShapeMismatch`] for `a` or `rows`;
    /// [`Error::ZeroPointOutOfRange`] for a row's zero point outside the activations'
    /// storage range; [`Error::InvalidScale`] for a row scale that is not positive, finite
    /// and normal when the epilogue uses it (dynamic dequantization).
    pub async fn run(
        &self,
        ctx: &Context,
        a: &[u8],
        m: usize,
        rows: Option<&[RowParams]>,
    ) -> Result<GemmOutput> {
        let k = self.weights.k;
        check_len("activations", a.len(), m, k)?;
        let packed = pack_bytes(a, m, k)?;
        let input = upload(ctx, "activations", &packed, wgpu::BufferUsages::STORAGE)?;
        let row_buf = match rows {
            Some(r) => {
                if r.len() != m {
                    return Err(Error::LengthMismatch {
                        what: "row params".into(),
                        got: r.len(),
                        expected: m,
                    });
                }
                self.check_row_params(r)?;
                Some(upload(ctx, "row params", r, wgpu::BufferUsages::STORAGE)?)
            }
            None => None,
        };
        let out_bytes = bytes_of(
            "output (M rows)",
            as_u64("M", m)?,
            bytes_of(
                "an output row",
                as_u64("output words", self.output_words_per_row())?,
                4,
            )?,
        )?;
        let output = create(
            ctx,
            "output",
            out_bytes,
            wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
        )?;
        ctx.submit("matmul_i8", |encoder| {
            self.encode(ctx, encoder, m, &input, row_buf.as_ref(), &output)
        })?;
        let bytes = read(ctx, &output, out_bytes).await?;
        let words: Vec<u32> = bytemuck::pod_collect_to_vec(&bytes);
        let n = self.weights.n;
        Ok(match self.variant.epilogue {
            EpilogueKind::I32 => GemmOutput::I32(words.iter().map(|&w| w as i32).collect()),
            EpilogueKind::DequantF32 => {
                GemmOutput::F32(words.iter().map(|&w| f32::from_bits(w)).collect())
            }
            EpilogueKind::DequantF16 => {
                let wpr = n.div_ceil(2);
                GemmOutput::F16(
                    (0..m)
                        .flat_map(|r| (0..n).map(move |c| (r, c)))
                        .map(|(r, c)| {
                            f16::from_bits((words[r * wpr + c / 2] >> (16 * (c % 2))) as u16)
                        })
                        .collect(),
                )
            }
            _ => {
                let qtype = match &self.epilogue {
                    Epilogue::Requant(r) => r.out_qtype,
                    Epilogue::DequantRequant(r) => r.out_qtype,
                    _ => unreachable!("packed kinds come from Requant or DequantRequant"),
                };
                GemmOutput::Quantized {
                    qtype,
                    bytes: unpack_bytes(&words, m, n)?,
                }
            }
        })
    }
}
