//! Quantized linear layers on the GPU: weights prepared once, a layer that encodes the int8
//! GEMM with its epilogue into the caller's `wgpu::CommandEncoder`, and blocking helpers on
//! top. CPU twin: [`crate::reference::gemm::matmul_i8`], equal bit for bit.

use half::f16;

use crate::error::{Error, Result};
use crate::gpu::buffers::{bind_group, check_storage, create, read_blocking, upload};
use crate::gpu::context::Context;
use crate::gpu::pipelines::{EpilogueKind, MatmulVariant, PipelineKey};
use crate::quant::epilogue::{DequantScales, Epilogue, RequantScaling};
use crate::quant::fixed_point::FixedPointRounding;
use crate::quant::pack::{
    check_len, pack_bytes, pack_i8_domain, row_sums_i8_domain, unpack_bytes, words_per_row,
    zero_point_to_i8_domain,
};
use crate::quant::params::QuantParams;
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
    /// Lowest output value.
    pub clamp_min: i32,
    /// Highest output value.
    pub clamp_max: i32,
    /// `128 · padding bytes per row` for U8 activations (their zero padding reads as -128
    /// after the XOR), else 0.
    pub a_pad_correction: i32,
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

/// Weights `W[N, K]` uploaded once: packed in the I8 domain with their row sums.
#[derive(Debug, Clone)]
pub struct QuantizedWeights {
    n: usize,
    k: usize,
    qtype: QType,
    zero_points: Vec<i32>,
    row_sums: Vec<i32>,
    params: QuantParams,
    buffer: wgpu::Buffer,
}

impl QuantizedWeights {
    /// Uploads already-quantized weights (storage bytes, `n × k` row-major) with their params
    /// (per tensor, or per axis 0 with `n` channels).
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`], [`Error::EmptyDimension`] (K = 0), params/shape errors,
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
        let qtype = params.qtype();
        let packed = pack_i8_domain(data, qtype, n, k)?;
        let buffer = upload(ctx, "weights", &packed, wgpu::BufferUsages::STORAGE)?;
        Ok(QuantizedWeights {
            n,
            k,
            qtype,
            zero_points: (0..n).map(|c| params.zero_point(c)).collect(),
            row_sums: row_sums_i8_domain(data, qtype, n, k)?,
            params,
            buffer,
        })
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
    pipeline: wgpu::ComputePipeline,
    channel_buffer: wgpu::Buffer,
    static_rows: wgpu::Buffer,
    clamp: (i32, i32, i32),
}

fn per_channel<T: Copy>(v: &[T], c: usize) -> T {
    if v.len() == 1 { v[0] } else { v[c] }
}

impl QLinear {
    /// Builds the layer: checks the exact accumulator bound, folds every per-channel value
    /// into one buffer and compiles (or fetches) the pipeline. Nothing is redone per call.
    ///
    /// The epilogue's per-channel vectors must have one entry or `N`. A dynamic
    /// `DequantScales::PerRowPerChannel` uses only its channel scales here; the row scales
    /// arrive with each call.
    ///
    /// # Errors
    /// [`Error::AccumulatorOverflow`], [`Error::LengthMismatch`], [`Error::ZeroPointOutOfRange`],
    /// [`Error::InvalidScale`], [`Error::Mismatch`] (per-row zero points with a static
    /// epilogue is fine; per-row scales need `ActivationInput::PerRow`), GPU errors.
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
        let count_ok = |what: &str, len: usize| -> Result<()> {
            if len == 1 || len == n {
                Ok(())
            } else {
                Err(Error::LengthMismatch {
                    what: what.into(),
                    got: len,
                    expected: n,
                })
            }
        };
        let (kind, dynamic_rows, float_bias, clamp) = match &epilogue {
            Epilogue::I32 => (EpilogueKind::I32, false, false, (0, 0, 0)),
            Epilogue::DequantF32(d) | Epilogue::DequantF16(d) => {
                let kind = if matches!(epilogue, Epilogue::DequantF32(_)) {
                    EpilogueKind::DequantF32
                } else {
                    EpilogueKind::DequantF16
                };
                let (scales, dynamic) = match &d.scales {
                    DequantScales::PerChannel(s) => (s, false),
                    DequantScales::PerRowPerChannel { channel_scales, .. } => {
                        (channel_scales, true)
                    }
                };
                count_ok("dequant scales", scales.len())?;
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
                if dynamic && !matches!(input, ActivationInput::PerRow { .. }) {
                    return Err(Error::Mismatch(
                        "per-row dequantization scales need ActivationInput::PerRow".into(),
                    ));
                }
                (kind, dynamic, d.bias.is_some(), (0, 0, 0))
            }
            Epilogue::Requant(r) => {
                count_ok("requant multipliers", r.channels())?;
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
                (
                    kind,
                    false,
                    false,
                    (r.out_zero_point, r.clamp_min, r.clamp_max),
                )
            }
        };
        let variant = MatmulVariant {
            epilogue: kind,
            a_is_u8: a_type == QType::U8,
            dynamic_rows,
            per_row_zero_point: matches!(input, ActivationInput::PerRow { .. }),
            float_bias,
        };
        let pipeline = ctx.pipeline(PipelineKey::MatmulI8(variant))?;
        let channel_buffer = upload(
            ctx,
            "channel params",
            &channels,
            wgpu::BufferUsages::STORAGE,
        )?;
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
            pipeline,
            channel_buffer,
            static_rows,
            clamp,
        })
    }

    /// The epilogue this layer applies.
    pub fn epilogue(&self) -> &Epilogue {
        &self.epilogue
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
    /// write). `rows` carries one [`RowParams`] per row for `ActivationInput::PerRow`.
    ///
    /// # Errors
    /// Buffer checks ([`check_storage`]), [`Error::Mismatch`] when `rows` is missing or
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
        let (n, k) = (self.weights.n, self.weights.k);
        if m == 0 {
            return Ok(());
        }
        let k_words = words_per_row(k);
        check_storage(ctx, "activations", input, (m * k_words) as u64 * 4)?;
        check_storage(
            ctx,
            "output",
            output,
            (m * self.output_words_per_row()) as u64 * 4,
        )?;
        let rows = match (self.input, rows) {
            (ActivationInput::PerRow { .. }, Some(r)) => {
                check_storage(ctx, "row params", r, m as u64 * 8)?;
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
        let to_u32 = |what: &str, v: usize| {
            u32::try_from(v).map_err(|_| Error::Unsupported(format!("{what} = {v} exceeds u32")))
        };
        let pad = (4 * k_words - k) as i32;
        let uniforms = MatmulUniforms {
            m: to_u32("M", m)?,
            n: to_u32("N", n)?,
            k: to_u32("K", k)?,
            k_words: to_u32("K words", k_words)?,
            out_zero_point: self.clamp.0,
            clamp_min: self.clamp.1,
            clamp_max: self.clamp.2,
            a_pad_correction: if self.variant.a_is_u8 { 128 * pad } else { 0 },
        };
        let (gx, gy) = (n.div_ceil(32), m.div_ceil(32));
        let max = ctx.device().limits().max_compute_workgroups_per_dimension as usize;
        if gx > max || gy > max {
            return Err(Error::Unsupported(format!(
                "{m} x {n} needs {gx} x {gy} workgroups; the limit is {max} per dimension"
            )));
        }
        let uniform_buf = upload(
            ctx,
            "matmul uniforms",
            &[uniforms],
            wgpu::BufferUsages::UNIFORM,
        )?;
        let group = bind_group(
            ctx,
            "matmul_i8",
            &self.pipeline,
            &[
                &uniform_buf,
                input,
                &self.weights.buffer,
                &self.channel_buffer,
                rows,
                output,
            ],
        );
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("matmul_i8"),
            timestamp_writes: None,
        });
        pass.set_pipeline(&self.pipeline);
        pass.set_bind_group(0, &group, &[]);
        pass.dispatch_workgroups(gx as u32, gy as u32, 1);
        Ok(())
    }

    /// Uploads `a` (storage bytes, `m × K`), runs the layer and reads the result back.
    /// `rows` gives the per-row params for `ActivationInput::PerRow`.
    ///
    /// # Errors
    /// As [`QLinear::encode`], plus [`Error::ShapeMismatch`] for `a` or `rows`.
    pub fn run_blocking(
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
                Some(upload(ctx, "row params", r, wgpu::BufferUsages::STORAGE)?)
            }
            None => None,
        };
        let words = (m * self.output_words_per_row()) as u64;
        let output = create(
            ctx,
            "output",
            words * 4,
            wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
        )?;
        let mut encoder = ctx.device().create_command_encoder(&Default::default());
        self.encode(ctx, &mut encoder, m, &input, row_buf.as_ref(), &output)?;
        ctx.queue().submit([encoder.finish()]);
        let bytes = read_blocking(ctx, &output, words * 4)?;
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
                let Epilogue::Requant(req) = &self.epilogue else {
                    unreachable!("requant kinds come from Epilogue::Requant")
                };
                GemmOutput::Quantized {
                    qtype: req.out_qtype,
                    bytes: unpack_bytes(&words, m, n)?,
                }
            }
        })
    }
}
