//! Buffer helpers shared by the ops: checked uploads (out-of-memory caught and returned),
//! the checks every `encode` makes on caller buffers, dispatch grids and readback.

use crate::error::{Error, Result};
use crate::gpu::context::Context;

/// Uploads `data` into a new buffer with `usage`, catching out-of-memory and validation
/// errors and checking `max_buffer_size`.
///
/// # Errors
/// [`Error::Unsupported`] above `max_buffer_size`; [`Error::Gpu`] for wgpu errors.
pub fn upload<T: bytemuck::Pod>(
    ctx: &Context,
    label: &str,
    data: &[T],
    usage: wgpu::BufferUsages,
) -> Result<wgpu::Buffer> {
    let bytes: &[u8] = bytemuck::cast_slice(data);
    // wgpu rejects zero-sized bindings; keep one word so empty tensors still bind.
    let padded;
    let contents = if bytes.is_empty() {
        padded = [0u8; 4];
        &padded[..]
    } else {
        bytes
    };
    let max = ctx.device().limits().max_buffer_size;
    if contents.len() as u64 > max {
        return Err(Error::Unsupported(format!(
            "{label}: {} bytes exceed max_buffer_size = {max}",
            contents.len()
        )));
    }
    ctx.check_alive()?;
    let device = ctx.device();
    let oom = device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
    let validation = device.push_error_scope(wgpu::ErrorFilter::Validation);
    // Not DeviceExt::create_buffer_init: it panics when the mapping fails (a lost device);
    // here that is a typed error.
    let buffer = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size: contents.len().next_multiple_of(4) as u64,
        usage,
        mapped_at_creation: true,
    });
    let mapped = buffer.slice(..).get_mapped_range_mut().map(|mut view| {
        view.slice(..contents.len()).copy_from_slice(contents);
    });
    buffer.unmap();
    if let Some(e) = pollster::block_on(validation.pop()) {
        return Err(Error::Gpu(format!("{label}: {e}")));
    }
    if let Some(e) = pollster::block_on(oom.pop()) {
        return Err(Error::Gpu(format!("{label}: out of memory: {e}")));
    }
    mapped.map_err(|e| Error::Gpu(format!("{label}: mapping the new buffer: {e}")))?;
    ctx.check_alive()?;
    Ok(buffer)
}

/// Creates an uninitialised buffer of `bytes` (at least 4), with the same checks as [`upload`].
///
/// # Errors
/// As [`upload`].
pub fn create(
    ctx: &Context,
    label: &str,
    bytes: u64,
    usage: wgpu::BufferUsages,
) -> Result<wgpu::Buffer> {
    ctx.check_alive()?;
    let bytes = bytes.max(4).next_multiple_of(4);
    let max = ctx.device().limits().max_buffer_size;
    if bytes > max {
        return Err(Error::Unsupported(format!(
            "{label}: {bytes} bytes exceed max_buffer_size = {max}"
        )));
    }
    let device = ctx.device();
    let oom = device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
    let validation = device.push_error_scope(wgpu::ErrorFilter::Validation);
    let buffer = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size: bytes,
        usage,
        mapped_at_creation: false,
    });
    if let Some(e) = pollster::block_on(validation.pop()) {
        return Err(Error::Gpu(format!("{label}: {e}")));
    }
    if let Some(e) = pollster::block_on(oom.pop()) {
        return Err(Error::Gpu(format!("{label}: out of memory: {e}")));
    }
    Ok(buffer)
}

/// Checks a caller's buffer: `STORAGE` usage and size (ops that split large tensors call
/// this; the others call [`check_storage`], which also checks the binding limit).
///
/// # Errors
/// [`Error::InvalidConfig`] for missing usage, [`Error::BufferTooSmall`] when too small.
pub fn check_buffer(
    ctx: &Context,
    what: &str,
    buffer: &wgpu::Buffer,
    bytes_needed: u64,
) -> Result<()> {
    let _ = ctx;
    let usage = wgpu::BufferUsages::STORAGE;
    if !buffer.usage().contains(usage) {
        return Err(Error::InvalidConfig {
            what: format!("{what} buffer usage"),
            value: format!("{:?}", buffer.usage()),
            reason: format!("needs {usage:?}"),
        });
    }
    if buffer.size() < bytes_needed {
        return Err(Error::BufferTooSmall {
            what: what.to_string(),
            needed: bytes_needed,
            size: buffer.size(),
        });
    }
    Ok(())
}

/// Checks a caller's buffer: usage, size and the binding limit.
///
/// # Errors
/// [`Error::InvalidConfig`] for missing usage, [`Error::BufferTooSmall`] when too small,
/// [`Error::Unsupported`] above the binding limit ([`Context::binding_limit`]).
pub fn check_storage(
    ctx: &Context,
    what: &str,
    buffer: &wgpu::Buffer,
    bytes_needed: u64,
) -> Result<()> {
    check_buffer(ctx, what, buffer, bytes_needed)?;
    let limit = ctx.binding_limit();
    if bytes_needed > limit {
        return Err(Error::Unsupported(format!(
            "{what}: {bytes_needed} bytes exceed the storage binding limit of {limit}"
        )));
    }
    Ok(())
}

/// A 2-D grid covering `invocations` one-dimensional work items of `workgroup` each:
/// `(groups_x, groups_y, dispatch_width)`, where a kernel recovers its linear index as
/// `gid.x + gid.y * dispatch_width`.
///
/// # Errors
/// [`Error::Unsupported`] when even a 2-D grid exceeds the adapter's dispatch limit.
pub fn grid(ctx: &Context, invocations: u64, workgroup: u32) -> Result<(u32, u32, u32)> {
    let groups = invocations.div_ceil(u64::from(workgroup)).max(1);
    let max = u64::from(ctx.device().limits().max_compute_workgroups_per_dimension);
    let x = groups.min(max);
    let y = groups.div_ceil(x);
    if y > max {
        return Err(Error::Unsupported(format!(
            "{invocations} invocations need {groups} workgroups, above {max} x {max}"
        )));
    }
    Ok((x as u32, y as u32, (x * u64::from(workgroup)) as u32))
}

/// Reads back the first `bytes` bytes (a multiple of 4) of a `COPY_SRC` buffer, blocking.
///
/// # Errors
/// [`Error::Gpu`] for any wgpu validation, out-of-memory or mapping error.
pub fn read_blocking(ctx: &Context, source: &wgpu::Buffer, bytes: u64) -> Result<Vec<u8>> {
    if bytes == 0 {
        return Ok(Vec::new());
    }
    let readback = create(
        ctx,
        "wgpu-quant readback",
        bytes,
        wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
    )?;
    let device = ctx.device();
    let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
    let mut encoder = device.create_command_encoder(&Default::default());
    encoder.copy_buffer_to_buffer(source, 0, &readback, 0, bytes);
    ctx.queue().submit([encoder.finish()]);
    if let Some(e) = pollster::block_on(scope.pop()) {
        return Err(Error::Gpu(format!("readback: {e}")));
    }
    let slice = readback.slice(..bytes);
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
    let out = view.to_vec();
    drop(view);
    readback.unmap();
    Ok(out)
}

/// A bind group from buffers bound whole, in binding order.
pub fn bind_group(
    ctx: &Context,
    label: &str,
    pipeline: &wgpu::ComputePipeline,
    buffers: &[&wgpu::Buffer],
) -> wgpu::BindGroup {
    let entries: Vec<wgpu::BindGroupEntry> = buffers
        .iter()
        .enumerate()
        .map(|(i, b)| wgpu::BindGroupEntry {
            binding: i as u32,
            resource: b.as_entire_binding(),
        })
        .collect();
    ctx.device().create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some(label),
        layout: &pipeline.get_bind_group_layout(0),
        entries: &entries,
    })
}

/// Maps the first `bytes` bytes of a `MAP_READ` buffer and copies them out, without
/// blocking: the returned future resolves when wgpu calls back. On native it polls the
/// device each time it is polled (no thread waits); in a browser the event loop drives it.
///
/// # Errors
/// [`Error::Gpu`] for a mapping error, [`Error::DeviceLost`].
pub async fn map_read(ctx: &Context, buffer: &wgpu::Buffer, bytes: u64) -> Result<Vec<u8>> {
    use std::sync::{Arc, Mutex};
    if bytes == 0 {
        return Ok(Vec::new());
    }
    type Slot = Arc<
        Mutex<(
            Option<std::result::Result<(), wgpu::BufferAsyncError>>,
            Option<std::task::Waker>,
        )>,
    >;
    let slot: Slot = Arc::default();
    let sink = slot.clone();
    let slice = buffer.slice(..bytes);
    slice.map_async(wgpu::MapMode::Read, move |r| {
        if let Ok(mut s) = sink.lock() {
            s.0 = Some(r);
            if let Some(w) = s.1.take() {
                w.wake();
            }
        }
    });
    let device = ctx.device().clone();
    let result = std::future::poll_fn(|cx| {
        let ready = |slot: &Slot| slot.lock().ok().and_then(|mut s| s.0.take());
        if let Some(r) = ready(&slot) {
            return std::task::Poll::Ready(Ok(r));
        }
        if let Err(e) = device.poll(wgpu::PollType::Poll) {
            return std::task::Poll::Ready(Err(Error::Gpu(format!("poll: {e}"))));
        }
        if let Some(r) = ready(&slot) {
            return std::task::Poll::Ready(Ok(r));
        }
        if let Ok(mut s) = slot.lock() {
            s.1 = Some(cx.waker().clone());
        }
        // Native wgpu calls back only from a poll: ask to be polled again.
        if !cfg!(target_arch = "wasm32") {
            cx.waker().wake_by_ref();
        }
        std::task::Poll::Pending
    })
    .await?;
    result.map_err(|e| Error::Gpu(format!("map_async: {e}")))?;
    ctx.check_alive()?;
    let view = slice
        .get_mapped_range()
        .map_err(|e| Error::Gpu(format!("get_mapped_range: {e}")))?;
    let out = view.to_vec();
    drop(view);
    buffer.unmap();
    Ok(out)
}
