//! Elementwise exact f32 division on the GPU (`shaders/divide.wgsl`): IEEE quotients on any
//! adapter, whatever its `/` accuracy. CPU twin: [`crate::quant::divide`].

use crate::error::{Error, Result};
use crate::gpu::buffers::{bind_group, create, grid, read, upload};
use crate::gpu::context::Context;
use crate::gpu::pipelines::PipelineKey;

/// Blocking form of [`divide`] (native only).
///
/// # Errors
/// As [`divide`].
#[cfg(not(target_arch = "wasm32"))]
pub fn divide_blocking(ctx: &Context, a: &[f32], b: &[f32]) -> Result<Vec<f32>> {
    pollster::block_on(divide(ctx, a, b))
}

/// `a[i] / b[i]` for every `i`, correctly rounded, on the GPU.
///
/// # Errors
/// [`Error::DimensionMismatch`] for different lengths; GPU errors.
pub async fn divide(ctx: &Context, a: &[f32], b: &[f32]) -> Result<Vec<f32>> {
    if a.len() != b.len() {
        return Err(Error::DimensionMismatch {
            what: "dividend vs divisor length".into(),
            left: a.len(),
            right: b.len(),
        });
    }
    if a.is_empty() {
        return Ok(Vec::new());
    }
    let len = u32::try_from(a.len())
        .map_err(|_| Error::Unsupported(format!("{} elements exceed u32", a.len())))?;
    let (gx, gy, dispatch_width) = grid(ctx, u64::from(len), 64)?;
    let pipeline = ctx.pipeline(PipelineKey::Divide)?;
    let uniforms = upload(
        ctx,
        "divide uniforms",
        &[len, dispatch_width],
        wgpu::BufferUsages::UNIFORM,
    )?;
    let x = upload(ctx, "dividend", a, wgpu::BufferUsages::STORAGE)?;
    let y = upload(ctx, "divisor", b, wgpu::BufferUsages::STORAGE)?;
    let bytes = u64::from(len) * 4;
    let out = create(
        ctx,
        "quotient",
        bytes,
        wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
    )?;
    let group = bind_group(ctx, "divide", &pipeline, &[&uniforms, &x, &y, &out])?;
    ctx.submit("divide", |encoder| {
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("divide"),
            timestamp_writes: None,
        });
        pass.set_pipeline(&pipeline);
        pass.set_bind_group(0, &group, &[]);
        pass.dispatch_workgroups(gx, gy, 1);
        Ok(())
    })?;
    Ok(bytemuck::pod_collect_to_vec(&read(ctx, &out, bytes).await?))
}
