//! The FP32 GEMM baseline on the GPU (`shaders/matmul_f32.wgsl`), held to the written bound
//! of [`crate::reference::matmul_f32`]. It exists so the INT8 kernels have an honest peer,
//! and so a model's FP32 baseline can run on the GPU with the same activations.
//!
//! The kernel is chosen by shape on every call: M <= [`crate::gpu::gemm::GEMV_MAX_ROWS`]
//! takes the GEMV form (1 x 8 outputs per invocation, 512 columns per workgroup, bound by
//! reading W), larger M the GEMM form (8 x 8 outputs per invocation in registers, vec4 loads,
//! a 64 x 64 output tile per 8 x 8 workgroup). Both are one `fma` chain per output over k in
//! order; see `shaders/matmul_f32.wgsl` for the tilings measured against them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};
use crate::gpu::buffers::{bind_group_of, check_buffer, check_distinct, create, read, upload};
use crate::gpu::context::Context;
use crate::gpu::pipelines::PipelineKey;
use crate::quant::epilogue::Activation;
use crate::quant::pack::check_len;
use crate::reference::matmul_f32::{check_clamp, f32_activation_clamp};

/// Twin of `MatmulF32Uniforms` in `shaders/matmul_f32.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub struct MatmulF32Uniforms {
    /// Rows of A.
    pub m: u32,
    /// Output channels of this dispatch.
    pub n: u32,
    /// K: floats per row of A (its row stride).
    pub k: u32,
    /// Floats per row of the uploaded W (K padded to a multiple of 4).
    pub w_stride: u32,
    /// Output row width (all of N).
    pub n_total: u32,
    /// First output column of this dispatch.
    pub col_offset: u32,
    /// Clamp low end (`-Inf` without a clamp).
    pub lo: f32,
    /// Clamp high end (`+Inf` without a clamp).
    pub hi: f32,
    /// Floats between the aligned activation binding offset and this part's first row
    /// (outputs above the binding limit are split along M).
    pub a_offset: u32,
    /// Floats between the aligned output binding offset and this part's first row.
    pub out_offset: u32,
    /// Padding to 16 bytes.
    pub pad: [u32; 2],
}

/// One part of the weights along N with its bias slice.
#[derive(Debug, Clone)]
struct Chunk {
    n0: usize,
    n1: usize,
    weights: wgpu::Buffer,
    bias: wgpu::Buffer,
}

/// An FP32 linear layer `y = clamp(x × Wᵀ + bias, lo, hi)` with weights uploaded once (split
/// along N above the binding limit). Activations are plain row-major `[m, K]` f32.
#[derive(Debug, Clone)]
pub struct F32Linear {
    n: usize,
    k: usize,
    chunks: Vec<Chunk>,
    pipeline: wgpu::ComputePipeline,
    gemv_pipeline: wgpu::ComputePipeline,
    /// The activation clamp, if any.
    clamp: Option<(f32, f32)>,
    /// Prepared bind groups (and their uniforms) per `(M, input, output)`.
    dispatch_cache: Arc<Mutex<HashMap<F32Key, PreparedF32>>>,
}

/// `(M, input, output)` of a call.
type F32Key = (usize, wgpu::Buffer, wgpu::Buffer);

/// One call's bind groups, each with its workgroups along N and M and the uniforms it binds.
type PreparedF32 = Arc<Vec<(wgpu::BindGroup, u32, u32, wgpu::Buffer)>>;

fn overflow(what: String) -> Error {
    Error::SizeOverflow { what }
}

impl F32Linear {
    /// Uploads `W[N, K]` (row-major) and an optional bias; no activation (see
    /// [`F32Linear::with_clamp`] and [`F32Linear::with_activation`]).
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`], [`Error::LengthMismatch`] (bias), [`Error::NonFiniteInput`],
    /// [`Error::EmptyDimension`] (K = 0), [`Error::SizeOverflow`], GPU errors.
    pub fn new(ctx: &Context, w: &[f32], n: usize, k: usize, bias: Option<&[f32]>) -> Result<Self> {
        if k == 0 {
            return Err(Error::EmptyDimension { what: "K".into() });
        }
        check_len("W", w.len(), n, k)?;
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
        u32::try_from(n).map_err(|_| overflow(format!("N = {n} exceeds u32")))?;
        let stride = k
            .checked_next_multiple_of(4)
            .ok_or_else(|| overflow(format!("K = {k} padded to a multiple of 4")))?;
        u32::try_from(stride)
            .map_err(|_| overflow(format!("K = {k} padded to {stride} exceeds u32")))?;
        let row_bytes = stride
            .checked_mul(4)
            .ok_or_else(|| overflow(format!("a weight row of K = {k} floats in bytes")))?;
        let padded = pad_rows(w, n, k)?;
        let has_bias = bias.is_some();
        let vec4 = k.is_multiple_of(4);
        let pipeline = ctx.pipeline(PipelineKey::MatmulF32 {
            has_bias,
            gemv: false,
            vec4,
        })?;
        let gemv_pipeline = ctx.pipeline(PipelineKey::MatmulF32 {
            has_bias,
            gemv: true,
            vec4,
        })?;
        // row_bytes >= 16: K >= 1, so the padded stride is at least 4 floats.
        let row_bytes = u64::try_from(row_bytes)
            .map_err(|_| overflow(format!("a weight row of {row_bytes} bytes exceeds u64")))?
            .max(16);
        let per_chunk =
            usize::try_from(ctx.binding_limit() / row_bytes).unwrap_or(usize::MAX) / 4 * 4;
        if per_chunk == 0 {
            return Err(Error::Unsupported(format!(
                "four f32 weight rows of {row_bytes} bytes exceed the storage binding limit"
            )));
        }
        let zeros = vec![0.0f32; n];
        let bias_all = bias.unwrap_or(&zeros);
        let mut chunks = Vec::new();
        for n0 in (0..n).step_by(per_chunk) {
            let n1 = (n0 + per_chunk).min(n);
            chunks.push(Chunk {
                n0,
                n1,
                weights: upload(
                    ctx,
                    "f32 weights",
                    &padded[n0 * stride..n1 * stride],
                    wgpu::BufferUsages::STORAGE,
                )?,
                bias: upload(
                    ctx,
                    "f32 bias",
                    &bias_all[n0..n1],
                    wgpu::BufferUsages::STORAGE,
                )?,
            });
        }
        Ok(F32Linear {
            n,
            k,
            chunks,
            pipeline,
            gemv_pipeline,
            clamp: None,
            dispatch_cache: Arc::default(),
        })
    }

    /// The same layer with its outputs clamped to `[lo, hi]` after the product and bias:
    /// `lo = 0, hi = +Inf` is `Relu`, `[0, 6]` is `Relu6`. Infinite bounds are allowed; a NaN
    /// output stays NaN (the kernel clamps with `select`, never float `min`/`max`).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a NaN bound or `lo > hi`.
    pub fn with_clamp(mut self, lo: f32, hi: f32) -> Result<Self> {
        check_clamp(lo, hi)?;
        self.clamp = Some((lo, hi));
        // The prepared uniforms hold the clamp; clones made before keep theirs.
        self.dispatch_cache = Arc::default();
        Ok(self)
    }

    /// The same layer with `activation` applied to its f32 outputs: `Relu` = `[0, +Inf]`,
    /// `Relu6` = `[0, 6]`, `ReluN1To1` = `[-1, 1]`, `Clamp { lo, hi }`, `None` = no clamp
    /// ([`f32_activation_clamp`]).
    ///
    /// # Errors
    /// As [`f32_activation_clamp`] and [`F32Linear::with_clamp`].
    pub fn with_activation(mut self, activation: Activation) -> Result<Self> {
        match f32_activation_clamp(activation)? {
            Some((lo, hi)) => self.with_clamp(lo, hi),
            None => {
                self.clamp = None;
                self.dispatch_cache = Arc::default();
                Ok(self)
            }
        }
    }

    /// The clamp applied to the outputs, if any.
    pub fn clamp(&self) -> Option<(f32, f32)> {
        self.clamp
    }

    /// Output channels.
    pub fn n(&self) -> usize {
        self.n
    }

    /// Inputs per row.
    pub fn k(&self) -> usize {
        self.k
    }

    /// The kernel `m` rows run, in words: `gemv 1x8 vec4` (M <=
    /// [`crate::gpu::gemm::GEMV_MAX_ROWS`]: one row by 8 columns per invocation) or `gemm 8x8
    /// vec4` (8 × 8 outputs per invocation, a 64 × 64 tile per workgroup); `scalar` instead of
    /// `vec4` when K is not a multiple of 4 (one float per load).
    pub fn kernel(&self, m: usize) -> &'static str {
        let vec4 = self.k.is_multiple_of(4);
        match (m <= crate::gpu::gemm::GEMV_MAX_ROWS, vec4) {
            (true, true) => "gemv 1x8 vec4",
            (true, false) => "gemv 1x8 scalar",
            (false, true) => "gemm 8x8 vec4",
            (false, false) => "gemm 8x8 scalar",
        }
    }

    /// Records `output[M, N] = clamp(input × Wᵀ (+ bias))`. `input` holds `m` plain rows of
    /// K floats (row stride exactly K). `m = 0` records nothing. Activations and outputs
    /// above the storage-binding limit are split along M, as [`crate::gpu::gemm::QLinear`]
    /// does.
    ///
    /// # Errors
    /// [`Error::SizeOverflow`] for sizes that overflow; buffer checks ([`check_buffer`]);
    /// [`Error::BufferAliasing`] when `input` is `output`; [`Error::Unsupported`] above
    /// dispatch limits or when one row exceeds the binding limit; [`Error::Gpu`].
    pub fn encode(
        &self,
        ctx: &Context,
        encoder: &mut wgpu::CommandEncoder,
        m: usize,
        input: &wgpu::Buffer,
        output: &wgpu::Buffer,
    ) -> Result<()> {
        if m == 0 {
            return Ok(());
        }
        let elements = |what: &str, cols: usize| -> Result<u64> {
            let count = m
                .checked_mul(cols)
                .ok_or_else(|| overflow(format!("{what}: {m} * {cols} elements")))?;
            // The kernel indexes elements with u32.
            u32::try_from(count)
                .map_err(|_| overflow(format!("{what}: {m} * {cols} = {count} exceeds u32")))?;
            Ok(count as u64 * 4)
        };
        let a_bytes = elements("f32 activations", self.k)?;
        let out_bytes = elements("f32 output", self.n)?;
        check_buffer(ctx, "f32 activations", input, a_bytes)?;
        check_buffer(ctx, "f32 output", output, out_bytes)?;
        check_distinct(("f32 activations", input), ("f32 output", output))?;
        let gemv = m <= crate::gpu::gemm::GEMV_MAX_ROWS;
        let pipeline = if gemv {
            &self.gemv_pipeline
        } else {
            &self.pipeline
        };
        // Outputs per workgroup (`shaders/matmul_f32.wgsl`): 8 columns per invocation, 64 x 1
        // invocations of 1 row (GEMV) or 8 x 8 invocations of 8 rows (a 64 x 64 tile).
        let (cols, rows) = if gemv { (512, 1) } else { (64, 64) };
        let widest = self.chunks.iter().map(|c| c.n1 - c.n0).max().unwrap_or(0);
        let gx = widest.div_ceil(cols);
        let limits = ctx.device().limits();
        let max = limits.max_compute_workgroups_per_dimension as usize;
        if gx > max {
            return Err(Error::Unsupported(format!(
                "{m} x {} needs {gx} workgroups along N; the limit is {max}",
                self.n
            )));
        }
        // Rows per dispatch: all when both sides fit the binding limit and the dispatch
        // limit, else as many as fit with one alignment unit to spare (each part is bound
        // from an aligned offset below its first row).
        let limit = ctx.binding_limit();
        // 16 at least, so a part's first row stays on a whole vec4 for 16-byte loads.
        let align = u64::from(limits.min_storage_buffer_offset_alignment).max(16);
        let (a_row, out_row) = (self.k as u64 * 4, self.n as u64 * 4);
        let max_rows = max.saturating_mul(rows);
        let m_chunk = if a_bytes.max(out_bytes) <= limit && m <= max_rows {
            m
        } else {
            let room = limit.saturating_sub(align);
            let fit = (room / a_row).min(room / out_row.max(1));
            let fit = usize::try_from(fit).unwrap_or(usize::MAX).min(max_rows);
            if fit == 0 {
                return Err(Error::Unsupported(format!(
                    "one row of {a_row} activation or {out_row} output bytes exceeds the storage binding limit of {limit}"
                )));
            }
            fit
        };
        let key = (m, input.clone(), output.clone());
        let poisoned = || Error::Gpu("dispatch cache lock poisoned".into());
        let cached = self
            .dispatch_cache
            .lock()
            .map_err(|_| poisoned())?
            .get(&key)
            .cloned();
        let groups = match cached {
            Some(g) => g,
            None => {
                // Built once per (M, input, output), as QLinear does, so wall-clock timings
                // compare the kernels rather than host-side allocations.
                let (lo, hi) = self.clamp.unwrap_or((f32::NEG_INFINITY, f32::INFINITY));
                let mut prepared = Vec::with_capacity(self.chunks.len());
                for m0 in (0..m).step_by(m_chunk) {
                    let rows_here = m_chunk.min(m - m0);
                    // (exact byte offset, aligned binding offset, binding size) of the part.
                    let part = |row_bytes: u64| {
                        let start = m0 as u64 * row_bytes;
                        let base = start / align * align;
                        (start, base, start + rows_here as u64 * row_bytes - base)
                    };
                    let (a, out) = (part(a_row), part(out_row));
                    for chunk in &self.chunks {
                        // All fit u32: m and m * k, m * n were checked above, n and K at
                        // build, and the offsets are below one alignment unit.
                        let uniforms = MatmulF32Uniforms {
                            m: rows_here as u32,
                            n: (chunk.n1 - chunk.n0) as u32,
                            k: self.k as u32,
                            w_stride: self.k.next_multiple_of(4) as u32,
                            n_total: self.n as u32,
                            col_offset: chunk.n0 as u32,
                            lo,
                            hi,
                            a_offset: ((a.0 - a.1) / 4) as u32,
                            out_offset: ((out.0 - out.1) / 4) as u32,
                            pad: [0; 2],
                        };
                        let uniform_buf = upload(
                            ctx,
                            "f32 uniforms",
                            &[uniforms],
                            wgpu::BufferUsages::UNIFORM,
                        )?;
                        let binding = |buffer, (_, base, size): (u64, u64, u64)| {
                            wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                                buffer,
                                offset: base,
                                size: wgpu::BufferSize::new(size),
                            })
                        };
                        let group = bind_group_of(
                            ctx,
                            "matmul_f32",
                            pipeline,
                            vec![
                                uniform_buf.as_entire_binding(),
                                binding(input, a),
                                chunk.weights.as_entire_binding(),
                                chunk.bias.as_entire_binding(),
                                binding(output, out),
                            ],
                        )?;
                        prepared.push((
                            group,
                            (chunk.n1 - chunk.n0).div_ceil(cols) as u32,
                            rows_here.div_ceil(rows) as u32,
                            uniform_buf,
                        ));
                    }
                }
                let prepared = Arc::new(prepared);
                let mut cache = self.dispatch_cache.lock().map_err(|_| poisoned())?;
                if cache.len() >= crate::gpu::gemm::DISPATCH_CACHE_ENTRIES {
                    cache.clear();
                }
                cache.insert(key, prepared.clone());
                prepared
            }
        };
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("matmul_f32"),
            timestamp_writes: None,
        });
        pass.set_pipeline(pipeline);
        for (group, gx, gy, _) in groups.iter() {
            pass.set_bind_group(0, group, &[]);
            pass.dispatch_workgroups(*gx, *gy, 1);
        }
        Ok(())
    }

    /// Blocking form of [`F32Linear::run`] (native only).
    ///
    /// # Errors
    /// As [`F32Linear::run`].
    #[cfg(not(target_arch = "wasm32"))]
    pub fn run_blocking(&self, ctx: &Context, a: &[f32], m: usize) -> Result<Vec<f32>> {
        pollster::block_on(self.run(ctx, a, m))
    }

    /// Uploads `a` (`m × K`, row-major), runs and reads back without blocking.
    ///
    /// # Errors
    /// As [`F32Linear::encode`], plus shape and finiteness errors for `a`.
    pub async fn run(&self, ctx: &Context, a: &[f32], m: usize) -> Result<Vec<f32>> {
        check_len("A", a.len(), m, self.k)?;
        crate::error::check_finite("A", a)?;
        if m == 0 {
            return Ok(Vec::new());
        }
        let input = upload(ctx, "f32 activations", a, wgpu::BufferUsages::STORAGE)?;
        let bytes = m
            .checked_mul(self.n)
            .and_then(|e| e.checked_mul(4))
            .ok_or_else(|| overflow(format!("f32 output: {m} * {} floats in bytes", self.n)))?
            as u64;
        let output = create(
            ctx,
            "f32 output",
            bytes,
            wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
        )?;
        ctx.submit("matmul_f32", |encoder| {
            self.encode(ctx, encoder, m, &input, &output)
        })?;
        Ok(bytemuck::pod_collect_to_vec(
            &read(ctx, &output, bytes).await?,
        ))
    }
}

/// Rows of `cols` floats padded with zeros to a multiple of 4 (the uploaded weights).
fn pad_rows(data: &[f32], rows: usize, cols: usize) -> Result<Vec<f32>> {
    let stride = cols.next_multiple_of(4);
    let len = rows
        .checked_mul(stride)
        .ok_or_else(|| overflow(format!("padded weights: {rows} * {stride} floats")))?;
    let mut out = vec![0.0f32; len];
    for r in 0..rows {
        out[r * stride..r * stride + cols].copy_from_slice(&data[r * cols..(r + 1) * cols]);
    }
    Ok(out)
}
