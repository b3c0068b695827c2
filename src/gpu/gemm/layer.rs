//! The layer: activations' kind, epilogue folded into per-channel params, the accumulator
//! bound checked and the kernels chosen, once at build.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};
use crate::gpu::buffers::{create, upload};
use crate::gpu::context::Context;
use crate::gpu::pipelines::{EpilogueKind, MatmulVariant, PipelineKey};
use crate::gpu::tune::LayerKernels;
use crate::quant::convention::Convention;
use crate::quant::epilogue::{Dequant, DequantScales, Epilogue, RequantScaling};
use crate::quant::fixed_point::FixedPointRounding;
use crate::quant::pack::{words_per_row, zero_point_to_i8_domain};
use crate::quant::qtype::QType;
use crate::reference::bounds::check_accumulator_bound;

use super::dispatch::{Dispatch, DispatchKey};
use super::{ChannelParams, EpilogueUniforms, QuantizedWeights, RowParams, as_u64, bytes_of};

/// The GEMV-shape variant of a layer's GEMM variant under `kernels`.
fn gemv_variant_of(variant: MatmulVariant, kernels: LayerKernels) -> MatmulVariant {
    MatmulVariant {
        vec4_loads: kernels.gemv.vec4_loads,
        dot4_polyfill: kernels.gemv.unpacked,
        tile: kernels.gemv.tile,
        ..variant
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
    pub(super) weights: QuantizedWeights,
    pub(super) input: ActivationInput,
    pub(super) epilogue: Epilogue,
    pub(super) variant: MatmulVariant,
    /// The same epilogue in the GEMV shape.
    pub(super) gemv_variant: MatmulVariant,
    /// The kernels chosen for this layer and where the choice came from.
    pub(super) kernels: LayerKernels,
    pub(super) pipeline: wgpu::ComputePipeline,
    /// The same epilogue in the GEMV shape, used for M <= [`GEMV_MAX_ROWS`](super::GEMV_MAX_ROWS).
    pub(super) gemv_pipeline: wgpu::ComputePipeline,
    /// One channel-params buffer per weight chunk.
    pub(super) channel_buffers: Vec<wgpu::Buffer>,
    /// Prepared dispatches (bind groups and uniforms) of recent calls.
    pub(super) dispatch_cache: Arc<Mutex<HashMap<DispatchKey, Arc<Vec<Dispatch>>>>>,
    pub(super) static_rows: wgpu::Buffer,
    pub(super) epilogue_uniforms: EpilogueUniforms,
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

    /// The kernel specialisation this layer runs for M > [`GEMV_MAX_ROWS`](super::GEMV_MAX_ROWS) (epilogue kind,
    /// types, tile, loads, dot-product formulation).
    pub fn variant(&self) -> MatmulVariant {
        self.variant
    }

    /// The kernel specialisation this layer runs for M <= [`GEMV_MAX_ROWS`](super::GEMV_MAX_ROWS).
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
}
