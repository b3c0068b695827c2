//! The FP32 GEMM baseline on the GPU (`shaders/matmul_f32.wgsl`), held to the written bound
//! of [`crate::reference::matmul_f32`]. It exists so the INT8 kernels have an honest peer.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};
use crate::gpu::buffers::{bind_group, check_storage, create, read_blocking, upload};
use crate::gpu::context::Context;
use crate::gpu::pipelines::PipelineKey;
use crate::quant::pack::check_len;

/// Twin of `MatmulF32Uniforms` in `shaders/matmul_f32.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub struct MatmulF32Uniforms {
    /// Rows of A.
    pub m: u32,
    /// Output channels.
    pub n: u32,
    /// `vec4`s per padded row.
    pub k_vec4: u32,
    /// Output row width (all of N).
    pub n_total: u32,
    /// First output column of this dispatch.
    pub col_offset: u32,
    /// Padding.
    pub pad: [u32; 3],
}

/// Rows of `cols` floats padded with zeros to a multiple of 4.
///
/// # Errors
/// [`Error::ShapeMismatch`] when `data.len() != rows * cols`.
pub fn pad_rows_f32(data: &[f32], rows: usize, cols: usize) -> Result<Vec<f32>> {
    check_len("f32 matrix", data.len(), rows, cols)?;
    let stride = cols.next_multiple_of(4);
    let mut out = vec![0.0f32; rows * stride];
    for r in 0..rows {
        out[r * stride..r * stride + cols].copy_from_slice(&data[r * cols..(r + 1) * cols]);
    }
    Ok(out)
}

/// One part of the weights along N with its bias slice.
#[derive(Debug, Clone)]
struct Chunk {
    n0: usize,
    n1: usize,
    weights: wgpu::Buffer,
    bias: wgpu::Buffer,
}

/// An FP32 linear layer with weights uploaded once (split along N above the binding limit).
#[derive(Debug, Clone)]
pub struct F32Linear {
    n: usize,
    k: usize,
    chunks: Vec<Chunk>,
    pipeline: wgpu::ComputePipeline,
    gemv_pipeline: wgpu::ComputePipeline,
    /// Prepared bind groups (and their uniforms) per `(M, input, output)`.
    dispatch_cache: Arc<Mutex<HashMap<F32Key, PreparedF32>>>,
}

/// `(M, input, output)` of a call.
type F32Key = (usize, wgpu::Buffer, wgpu::Buffer);

/// One call's bind groups, each with its workgroups along N and the uniforms it binds.
type PreparedF32 = Arc<Vec<(wgpu::BindGroup, u32, wgpu::Buffer)>>;

impl F32Linear {
    /// Uploads `W[N, K]` (row-major) and an optional bias.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`], [`Error::LengthMismatch`] (bias), [`Error::NonFiniteInput`],
    /// [`Error::EmptyDimension`] (K = 0), GPU errors.
    pub fn new(ctx: &Context, w: &[f32], n: usize, k: usize, bias: Option<&[f32]>) -> Result<Self> {
        if k == 0 {
            return Err(Error::EmptyDimension { what: "K".into() });
        }
        let padded = pad_rows_f32(w, n, k)?;
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
        let has_bias = bias.is_some();
        let pipeline = ctx.pipeline(PipelineKey::MatmulF32 {
            has_bias,
            gemv: false,
        })?;
        let gemv_pipeline = ctx.pipeline(PipelineKey::MatmulF32 {
            has_bias,
            gemv: true,
        })?;
        let stride = k.next_multiple_of(4);
        let per_chunk = (ctx.binding_limit() / (stride as u64 * 4)) as usize / 4 * 4;
        if per_chunk == 0 {
            return Err(Error::Unsupported(format!(
                "four f32 weight rows of {} bytes exceed the storage binding limit",
                stride * 4
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
            dispatch_cache: Arc::default(),
        })
    }

    /// Records `output[M, N] = input × Wᵀ (+ bias)`. `input` holds `m` rows of K floats
    /// padded with zeros to a multiple of 4 ([`pad_rows_f32`]).
    ///
    /// # Errors
    /// Buffer checks ([`check_storage`]); [`Error::Unsupported`] above dispatch limits.
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
        let stride = self.k.next_multiple_of(4);
        check_storage(ctx, "f32 activations", input, (m * stride) as u64 * 4)?;
        check_storage(ctx, "f32 output", output, (m * self.n) as u64 * 4)?;
        let gemv = m <= crate::gpu::gemm::GEMV_MAX_ROWS;
        let pipeline = if gemv {
            &self.gemv_pipeline
        } else {
            &self.pipeline
        };
        let (cols, rows) = if gemv { (256, 1) } else { (32, 32) };
        let widest = self.chunks.iter().map(|c| c.n1 - c.n0).max().unwrap_or(0);
        let (gx, gy) = (widest.div_ceil(cols), m.div_ceil(rows));
        let max = ctx.device().limits().max_compute_workgroups_per_dimension as usize;
        if gx > max || gy > max {
            return Err(Error::Unsupported(format!(
                "{m} x {} needs {gx} x {gy} workgroups; the limit is {max}",
                self.n
            )));
        }
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
                let device = ctx.device();
                let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
                let mut prepared = Vec::with_capacity(self.chunks.len());
                for chunk in &self.chunks {
                    let uniforms = MatmulF32Uniforms {
                        m: m as u32,
                        n: (chunk.n1 - chunk.n0) as u32,
                        k_vec4: (stride / 4) as u32,
                        n_total: self.n as u32,
                        col_offset: chunk.n0 as u32,
                        pad: [0; 3],
                    };
                    let uniform_buf = upload(
                        ctx,
                        "f32 uniforms",
                        &[uniforms],
                        wgpu::BufferUsages::UNIFORM,
                    )?;
                    let group = bind_group(
                        ctx,
                        "matmul_f32",
                        pipeline,
                        &[&uniform_buf, input, &chunk.weights, &chunk.bias, output],
                    );
                    prepared.push((
                        group,
                        (chunk.n1 - chunk.n0).div_ceil(cols) as u32,
                        uniform_buf,
                    ));
                }
                if let Some(e) = pollster::block_on(scope.pop()) {
                    return Err(Error::Gpu(format!("preparing matmul_f32: {e}")));
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
        for (group, gx, _) in groups.iter() {
            pass.set_bind_group(0, group, &[]);
            pass.dispatch_workgroups(*gx, gy as u32, 1);
        }
        Ok(())
    }

    /// Uploads `a` (`m × K`), runs and reads back (blocking).
    ///
    /// # Errors
    /// As [`F32Linear::encode`], plus shape and finiteness errors for `a`.
    pub fn run_blocking(&self, ctx: &Context, a: &[f32], m: usize) -> Result<Vec<f32>> {
        let padded = pad_rows_f32(a, m, self.k)?;
        crate::error::check_finite("A", a)?;
        let input = upload(ctx, "f32 activations", &padded, wgpu::BufferUsages::STORAGE)?;
        let bytes = (m * self.n) as u64 * 4;
        let output = create(
            ctx,
            "f32 output",
            bytes,
            wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
        )?;
        let mut encoder = ctx.device().create_command_encoder(&Default::default());
        self.encode(ctx, &mut encoder, m, &input, &output)?;
        ctx.queue().submit([encoder.finish()]);
        Ok(bytemuck::pod_collect_to_vec(&read_blocking(
            ctx, &output, bytes,
        )?))
    }
}
