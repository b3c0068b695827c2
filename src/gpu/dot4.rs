//! `dot4I8Packed` over word pairs on the GPU: the smoke test of the whole chain
//! (WGSL → naga → driver → readback). CPU twin: [`crate::reference::dot::dot4_i8_packed`].

use wgpu::util::DeviceExt;

use crate::error::{Error, Result};
use crate::gpu::context::Context;

const SHADER: &str = include_str!("../../shaders/dot4_i8.wgsl");

/// Computes `dot4I8Packed(lhs[i], rhs[i])` for every `i` on the GPU and reads the results back.
///
/// # Errors
/// [`Error::DimensionMismatch`] when the slices differ in length; [`Error::Gpu`] for any
/// wgpu validation, out-of-memory or mapping error.
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
    let device = ctx.device();
    let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
    let oom_scope = device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
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
    let storage = |label, data: &[u32]| {
        device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some(label),
            contents: bytemuck::cast_slice(data),
            usage: wgpu::BufferUsages::STORAGE,
        })
    };
    let lhs_buf = storage("dot4 lhs", lhs);
    let rhs_buf = storage("dot4 rhs", rhs);
    let bytes = (lhs.len() * 4) as u64;
    let out_buf = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("dot4 out"),
        size: bytes,
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
        mapped_at_creation: false,
    });
    let readback = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("dot4 readback"),
        size: bytes,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some("dot4"),
        layout: &pipeline.get_bind_group_layout(0),
        entries: &[
            wgpu::BindGroupEntry {
                binding: 0,
                resource: lhs_buf.as_entire_binding(),
            },
            wgpu::BindGroupEntry {
                binding: 1,
                resource: rhs_buf.as_entire_binding(),
            },
            wgpu::BindGroupEntry {
                binding: 2,
                resource: out_buf.as_entire_binding(),
            },
        ],
    });
    let mut encoder = device.create_command_encoder(&Default::default());
    {
        let mut pass = encoder.begin_compute_pass(&Default::default());
        pass.set_pipeline(&pipeline);
        pass.set_bind_group(0, &bind_group, &[]);
        let groups = lhs.len().div_ceil(64) as u32;
        pass.dispatch_workgroups(groups.min(65535), groups.div_ceil(65535), 1);
    }
    encoder.copy_buffer_to_buffer(&out_buf, 0, &readback, 0, bytes);
    ctx.queue().submit([encoder.finish()]);
    if let Some(e) = pollster::block_on(oom_scope.pop()) {
        return Err(Error::Gpu(e.to_string()));
    }
    if let Some(e) = pollster::block_on(scope.pop()) {
        return Err(Error::Gpu(e.to_string()));
    }
    let slice = readback.slice(..);
    let (tx, rx) = std::sync::mpsc::channel();
    slice.map_async(wgpu::MapMode::Read, move |r| {
        let _ = tx.send(r);
    });
    ctx.wait_idle()?;
    rx.recv()
        .map_err(|e| Error::Gpu(format!("map callback dropped: {e}")))?
        .map_err(|e| Error::Gpu(format!("map_async: {e}")))?;
    let view = slice
        .get_mapped_range()
        .map_err(|e| Error::Gpu(format!("get_mapped_range: {e}")))?;
    let out = bytemuck::cast_slice(&view).to_vec();
    drop(view);
    readback.unmap();
    Ok(out)
}
