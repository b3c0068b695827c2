//! `dot4I8Packed` over word pairs on the GPU: the smoke test of the whole chain
//! (WGSL → naga → driver → readback) and the smallest example of the crate's shape: a
//! kernel built once, encoded into the caller's `wgpu::CommandEncoder`, with a blocking
//! helper on top. CPU twin: [`crate::reference::dot::dot4_i8_packed`].

use crate::error::{Error, Result};
use crate::gpu::buffers::check_storage;
use crate::gpu::context::Context;

const SHADER: &str = include_str!("../../shaders/dot4_i8.wgsl");
const WORKGROUP_SIZE: u32 = 64;

/// The compiled `dot4_i8` pipeline.
#[derive(Debug, Clone)]
pub struct Dot4Kernel {
    pipeline: wgpu::ComputePipeline,
}

impl Dot4Kernel {
    /// Compiles the kernel on `ctx`'s device.
    ///
    /// # Errors
    /// [`Error::Gpu`] when shader or pipeline creation fails validation.
    pub fn new(ctx: &Context) -> Result<Self> {
        let device = ctx.device();
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("dot4_i8"),
            source: wgpu::ShaderSource::Wgsl(SHADER.into()),
        });
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some("dot4_i8"),
            layout: None,
            module: &module,
            entry_point: Some("dot4_i8"),
            compilation_options: Default::default(),
            cache: None,
        });
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(Error::Gpu(format!("dot4_i8 pipeline: {e}")));
        }
        Ok(Dot4Kernel { pipeline })
    }

    /// Records `out[i] = dot4I8Packed(lhs[i], rhs[i])` for `i < len` into `encoder`.
    /// Nothing is submitted; the caller owns the encoder and the queue.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a buffer without `STORAGE` usage, [`Error::ShapeMismatch`]
    /// for a buffer smaller than `len` words, [`Error::Unsupported`] above the adapter's
    /// binding or dispatch limits.
    pub fn encode(
        &self,
        ctx: &Context,
        encoder: &mut wgpu::CommandEncoder,
        lhs: &wgpu::Buffer,
        rhs: &wgpu::Buffer,
        out: &wgpu::Buffer,
        len: u32,
    ) -> Result<()> {
        if len == 0 {
            return Ok(());
        }
        check_storage(ctx, "lhs", lhs, u64::from(len) * 4)?;
        check_storage(ctx, "rhs", rhs, u64::from(len) * 4)?;
        check_storage(ctx, "out", out, u64::from(len) * 4)?;
        let groups = len.div_ceil(WORKGROUP_SIZE);
        let max = ctx.device().limits().max_compute_workgroups_per_dimension;
        if groups > max {
            return Err(Error::Unsupported(format!(
                "{len} words need {groups} workgroups; max_compute_workgroups_per_dimension = {max}"
            )));
        }
        fn binding(buffer: &wgpu::Buffer, len: u32) -> wgpu::BufferBinding<'_> {
            wgpu::BufferBinding {
                buffer,
                offset: 0,
                size: wgpu::BufferSize::new(u64::from(len) * 4),
            }
        }
        let bind_group = ctx.device().create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("dot4_i8"),
            layout: &self.pipeline.get_bind_group_layout(0),
            entries: &[
                wgpu::BindGroupEntry {
                    binding: 0,
                    resource: wgpu::BindingResource::Buffer(binding(lhs, len)),
                },
                wgpu::BindGroupEntry {
                    binding: 1,
                    resource: wgpu::BindingResource::Buffer(binding(rhs, len)),
                },
                wgpu::BindGroupEntry {
                    binding: 2,
                    resource: wgpu::BindingResource::Buffer(binding(out, len)),
                },
            ],
        });
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("dot4_i8"),
            timestamp_writes: None,
        });
        pass.set_pipeline(&self.pipeline);
        pass.set_bind_group(0, &bind_group, &[]);
        pass.dispatch_workgroups(groups, 1, 1);
        Ok(())
    }
}

/// Reads back `words` `u32`s of a `COPY_SRC` buffer, blocking.
///
/// # Errors
/// [`Error::Gpu`] for any wgpu validation, out-of-memory or mapping error.
pub fn read_words_blocking(ctx: &Context, source: &wgpu::Buffer, words: u64) -> Result<Vec<u32>> {
    Ok(bytemuck::pod_collect_to_vec(
        &crate::gpu::buffers::read_blocking(ctx, source, words * 4)?,
    ))
}

/// Uploads the operands, runs [`Dot4Kernel`] and reads the results back: the blocking
/// convenience on top of [`Dot4Kernel::encode`].
///
/// # Errors
/// [`Error::DimensionMismatch`] when the slices differ in length; [`Error::Unsupported`]
/// above the adapter's limits; [`Error::Gpu`] for wgpu errors.
pub fn dot4_i8_packed_blocking(ctx: &Context, lhs: &[u32], rhs: &[u32]) -> Result<Vec<i32>> {
    if lhs.len() != rhs.len() {
        return Err(Error::DimensionMismatch {
            what: "dot4 operand lengths".into(),
            left: lhs.len(),
            right: rhs.len(),
        });
    }
    if lhs.is_empty() {
        return Ok(Vec::new());
    }
    let len = u32::try_from(lhs.len())
        .map_err(|_| Error::Unsupported(format!("{} words exceed u32 indexing", lhs.len())))?;
    let kernel = Dot4Kernel::new(ctx)?;
    let device = ctx.device();
    let scope = device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
    let storage = wgpu::BufferUsages::STORAGE;
    let lhs_buf = crate::gpu::buffers::upload(ctx, "dot4 lhs", lhs, storage)?;
    let rhs_buf = crate::gpu::buffers::upload(ctx, "dot4 rhs", rhs, storage)?;
    let out_buf = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("dot4 out"),
        size: u64::from(len) * 4,
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
        mapped_at_creation: false,
    });
    if let Some(e) = pollster::block_on(scope.pop()) {
        return Err(Error::Gpu(format!("allocating dot4 buffers: {e}")));
    }
    let mut encoder = device.create_command_encoder(&Default::default());
    kernel.encode(ctx, &mut encoder, &lhs_buf, &rhs_buf, &out_buf, len)?;
    ctx.queue().submit([encoder.finish()]);
    let words = read_words_blocking(ctx, &out_buf, u64::from(len))?;
    Ok(bytemuck::cast_slice(&words).to_vec())
}
