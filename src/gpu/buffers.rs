//! Buffer helpers shared by the ops: checked uploads (out-of-memory caught and returned),
//! the checks every `encode` makes on caller buffers, dispatch grids and readback.

use crate::error::{Error, Result};
use crate::gpu::context::{Context, ScopeFuture};

/// Runs `f` on the device inside validation, out-of-memory and internal error scopes (wgpu's
/// scopes are per thread, so only this call's errors are caught) and returns its value, or
/// the first error as [`Error::Gpu`] prefixed with `what`. Every bind group, pipeline and
/// buffer the crate creates goes through it, so a wgpu error is a typed error, never wgpu's
/// default handler (which panics). Nothing blocks: on native the scopes' verdicts are ready
/// at once; in a browser they resolve later and [`Context::flush`] reports them.
///
/// # Errors
/// [`Error::DeviceLost`] before or after; [`Error::Gpu`] for an error `f` caused.
pub fn captured<T>(ctx: &Context, what: &str, f: impl FnOnce(&wgpu::Device) -> T) -> Result<T> {
    ctx.check_alive()?;
    let device = ctx.device();
    let internal = device.push_error_scope(wgpu::ErrorFilter::Internal);
    let oom = device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
    let validation = device.push_error_scope(wgpu::ErrorFilter::Validation);
    let value = f(device);
    let verdict = |pop: Box<dyn FnOnce(wgpu::Error) -> String + Send>,
                   scope: wgpu::ErrorScopeGuard| {
        let popped = scope.pop();
        Box::pin(async move { popped.await.map(pop) }) as ScopeFuture
    };
    let (v, o, i) = (what.to_string(), what.to_string(), what.to_string());
    ctx.settle(vec![
        verdict(Box::new(move |e| format!("{v}: {e}")), validation),
        verdict(Box::new(move |e| format!("{o}: out of memory: {e}")), oom),
        verdict(
            Box::new(move |e| format!("{i}: internal error: {e}")),
            internal,
        ),
    ])?;
    ctx.check_alive()?;
    Ok(value)
}

/// A one-shot signal: the future resolves with the value the returned function is called
/// with (from a wgpu callback, on any thread or the browser's event loop).
pub(crate) fn oneshot<T: Send + 'static>()
-> (impl Future<Output = T>, impl FnOnce(T) + Send + 'static) {
    use std::sync::{Arc, Mutex};
    type Slot<T> = Arc<Mutex<(Option<T>, Option<std::task::Waker>)>>;
    let slot: Slot<T> = Arc::new(Mutex::new((None, None)));
    let sink = slot.clone();
    let signal = move |value: T| {
        if let Ok(mut s) = sink.lock() {
            s.0 = Some(value);
            if let Some(w) = s.1.take() {
                w.wake();
            }
        }
    };
    let done = std::future::poll_fn(move |cx| match slot.lock() {
        Ok(mut s) => match s.0.take() {
            Some(value) => std::task::Poll::Ready(value),
            None => {
                s.1 = Some(cx.waker().clone());
                std::task::Poll::Pending
            }
        },
        Err(_) => std::task::Poll::Pending,
    });
    (done, signal)
}

/// `bytes` rounded up to whole words (at least one), checked against `max_buffer_size`
/// *before* rounding so a request of exactly the limit is allowed and one near `u64::MAX`
/// cannot wrap to a small buffer.
fn buffer_size(ctx: &Context, label: &str, bytes: u64) -> Result<u64> {
    let max = ctx.device().limits().max_buffer_size;
    let too_big = || {
        Error::Unsupported(format!(
            "{label}: {bytes} bytes exceed max_buffer_size = {max}"
        ))
    };
    if bytes > max {
        return Err(too_big());
    }
    let rounded = bytes
        .max(4)
        .checked_next_multiple_of(4)
        .ok_or_else(too_big)?;
    // A limit that is not a multiple of 4 could be passed by rounding: refuse instead.
    if rounded > max {
        return Err(too_big());
    }
    Ok(rounded)
}

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
    let len = u64::try_from(contents.len()).map_err(|_| Error::SizeOverflow {
        what: format!("{label}: {} bytes exceed u64", contents.len()),
    })?;
    let size = buffer_size(ctx, label, len)?;
    // Not DeviceExt::create_buffer_init: it panics when the mapping fails (a lost device);
    // here that is a typed error.
    let (buffer, mapped) = captured(ctx, label, |device| {
        let buffer = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size,
            usage,
            mapped_at_creation: true,
        });
        let mapped = buffer.slice(..).get_mapped_range_mut().map(|mut view| {
            view.slice(..contents.len()).copy_from_slice(contents);
        });
        buffer.unmap();
        (buffer, mapped)
    })?;
    mapped.map_err(|e| Error::Gpu(format!("{label}: mapping the new buffer: {e}")))?;
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
    let size = buffer_size(ctx, label, bytes)?;
    captured(ctx, label, |device| {
        device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size,
            usage,
            mapped_at_creation: false,
        })
    })
}

/// Checks a caller's buffer: `STORAGE` usage and size (ops that split large tensors call
/// this; the others call [`check_storage`], which also checks the binding limit), and that
/// this context's device can use it ([`check_usable`]).
///
/// # Errors
/// [`Error::InvalidConfig`] for missing usage, [`Error::BufferTooSmall`] when too small,
/// [`Error::BufferUnusable`] for a destroyed buffer or one of another device.
pub fn check_buffer(
    ctx: &Context,
    what: &str,
    buffer: &wgpu::Buffer,
    bytes_needed: u64,
) -> Result<()> {
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
    check_usable(ctx, what, buffer)
}

/// Checks that `ctx`'s device can bind `buffer`: wgpu exposes neither a buffer's device
/// nor whether it was destroyed, so the buffer is bound to a one-entry probe layout inside
/// an error scope, and wgpu's verdict becomes a typed error here, before anything is
/// recorded (a cached bind group would otherwise carry a destroyed buffer to the caller's
/// submit).
///
/// # Errors
/// [`Error::BufferUnusable`] naming `what` and the reason (destroyed, another device, or
/// wgpu's message); [`Error::DeviceLost`].
pub fn check_usable(ctx: &Context, what: &str, buffer: &wgpu::Buffer) -> Result<()> {
    if buffer.size() < 4 || !buffer.usage().contains(wgpu::BufferUsages::STORAGE) {
        // Nothing a kernel can bind; the size and usage checks speak for it.
        return Ok(());
    }
    let layout = ctx.probe_layout()?;
    let bind = || {
        captured(ctx, "buffer check", |device| {
            device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("wgpu-quant buffer probe"),
                layout: &layout,
                entries: &[wgpu::BindGroupEntry {
                    binding: 0,
                    resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                        buffer,
                        offset: 0,
                        size: wgpu::BufferSize::new(4),
                    }),
                }],
            })
        })
    };
    // A buffer of another wgpu instance makes wgpu-core panic while looking its id up (an
    // index into this instance's registry); its locks do not poison and its error scopes
    // pop cleanly while unwinding, so the panic is caught here and becomes a typed error.
    let probe =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(bind)).unwrap_or_else(|panic| {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            Err(Error::Gpu(format!(
                "another wgpu instance's device: wgpu could not look it up ({message})"
            )))
        });
    match probe {
        Ok(_) => Ok(()),
        Err(Error::Gpu(message)) => Err(Error::BufferUnusable {
            what: what.to_string(),
            reason: unusable_reason(&message),
        }),
        Err(e) => Err(e),
    }
}

/// The reason in wgpu's message, in words.
fn unusable_reason(message: &str) -> String {
    let lower = message.to_lowercase();
    if lower.contains("destroyed") {
        "it has been destroyed".to_string()
    } else if lower.contains("doesn't match") || lower.contains("device") {
        format!("it belongs to another device ({})", one_line(message))
    } else {
        one_line(message)
    }
}

fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// [`Error::BufferAliasing`] when two bindings that must be distinct are the same buffer.
///
/// # Errors
/// [`Error::BufferAliasing`] naming both roles.
pub fn check_distinct(first: (&str, &wgpu::Buffer), second: (&str, &wgpu::Buffer)) -> Result<()> {
    if first.1 == second.1 {
        return Err(Error::BufferAliasing {
            first: first.0.to_string(),
            second: second.0.to_string(),
        });
    }
    Ok(())
}

/// Checks a caller's buffer: usage, size and the binding limit.
///
/// # Errors
/// [`Error::InvalidConfig`] for missing usage, [`Error::BufferTooSmall`] when too small,
/// [`Error::Unsupported`] above the binding limit ([`Context::binding_limit`]),
/// [`Error::BufferUnusable`] for a destroyed buffer or one of another device.
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
/// [`Error::InvalidConfig`] for a workgroup size of 0; [`Error::Unsupported`] when even a 2-D
/// grid exceeds the adapter's dispatch limit, or the dispatch width (invocations per grid
/// row) does not fit the kernel's `u32`.
pub fn grid(ctx: &Context, invocations: u64, workgroup: u32) -> Result<(u32, u32, u32)> {
    if workgroup == 0 {
        return Err(Error::InvalidConfig {
            what: "workgroup size".into(),
            value: "0".into(),
            reason: "a dispatch needs at least one invocation per workgroup".into(),
        });
    }
    let groups = invocations.div_ceil(u64::from(workgroup)).max(1);
    let max = u64::from(ctx.device().limits().max_compute_workgroups_per_dimension).max(1);
    let x = groups.min(max);
    let y = groups.div_ceil(x);
    if y > max {
        return Err(Error::Unsupported(format!(
            "{invocations} invocations need {groups} workgroups, above {max} x {max}"
        )));
    }
    let width = x
        .checked_mul(u64::from(workgroup))
        .and_then(|w| u32::try_from(w).ok())
        .ok_or_else(|| {
            Error::Unsupported(format!(
                "a grid row of {x} workgroups of {workgroup} invocations exceeds u32 indexing"
            ))
        })?;
    // x and y are at most `max`, a u32.
    Ok((x as u32, y as u32, width))
}

/// Reads back the first `bytes` bytes (a multiple of 4) of a `COPY_SRC` buffer, without
/// blocking: copies them to a new staging buffer, waits for the map, then
/// [`Context::flush`]es so an earlier error is never hidden behind stale data.
///
/// # Errors
/// [`Error::Gpu`] for any wgpu validation, out-of-memory or mapping error.
pub async fn read(ctx: &Context, source: &wgpu::Buffer, bytes: u64) -> Result<Vec<u8>> {
    if bytes == 0 {
        return Ok(Vec::new());
    }
    let readback = create(
        ctx,
        "wgpu-quant readback",
        bytes,
        wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
    )?;
    ctx.submit("readback", |encoder| {
        encoder.copy_buffer_to_buffer(source, 0, &readback, 0, bytes);
        Ok(())
    })?;
    map_read(ctx, &readback, bytes).await
}

/// Blocking form of [`read`] (native only).
///
/// # Errors
/// As [`read`].
#[cfg(not(target_arch = "wasm32"))]
pub fn read_blocking(ctx: &Context, source: &wgpu::Buffer, bytes: u64) -> Result<Vec<u8>> {
    pollster::block_on(read(ctx, source, bytes))
}

/// A bind group from buffers bound whole, in binding order, created inside an error scope.
///
/// # Errors
/// [`Error::Gpu`] for a wgpu validation error (a buffer of another device, destroyed, too
/// large to bind); [`Error::DeviceLost`].
pub fn bind_group(
    ctx: &Context,
    label: &str,
    pipeline: &wgpu::ComputePipeline,
    buffers: &[&wgpu::Buffer],
) -> Result<wgpu::BindGroup> {
    let resources: Vec<wgpu::BindingResource> =
        buffers.iter().map(|b| b.as_entire_binding()).collect();
    bind_group_of(ctx, label, pipeline, resources)
}

/// A bind group of `resources` in binding order, created inside an error scope.
///
/// # Errors
/// As [`bind_group`].
pub fn bind_group_of(
    ctx: &Context,
    label: &str,
    pipeline: &wgpu::ComputePipeline,
    resources: Vec<wgpu::BindingResource<'_>>,
) -> Result<wgpu::BindGroup> {
    let entries: Vec<wgpu::BindGroupEntry> = resources
        .into_iter()
        .zip(0u32..)
        .map(|(resource, binding)| wgpu::BindGroupEntry { binding, resource })
        .collect();
    captured(ctx, label, |device| {
        device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(label),
            layout: &pipeline.get_bind_group_layout(0),
            entries: &entries,
        })
    })
}

/// Maps the first `bytes` bytes of a `MAP_READ` buffer and copies them out, without
/// blocking a browser: the returned future resolves when wgpu calls back (the browser's event
/// loop drives it). On native wgpu calls back only from a poll, so polling the future waits
/// on the device. Then [`Context::flush`]es, so an earlier call's error is reported instead
/// of data it left stale.
///
/// # Errors
/// [`Error::Gpu`] for a mapping error or an earlier call's error; [`Error::DeviceLost`].
pub async fn map_read(ctx: &Context, buffer: &wgpu::Buffer, bytes: u64) -> Result<Vec<u8>> {
    if bytes == 0 {
        return Ok(Vec::new());
    }
    let (mapped, signal) = oneshot();
    let slice = buffer.slice(..bytes);
    slice.map_async(wgpu::MapMode::Read, signal);
    #[cfg(not(target_arch = "wasm32"))]
    ctx.device()
        .poll(wgpu::PollType::wait_indefinitely())
        .map_err(|e| Error::Gpu(format!("poll: {e}")))?;
    let mapping = mapped.await;
    ctx.flush().await?;
    mapping.map_err(|e| Error::Gpu(format!("map_async: {e}")))?;
    let view = slice
        .get_mapped_range()
        .map_err(|e| Error::Gpu(format!("get_mapped_range: {e}")))?;
    let out = view.to_vec();
    drop(view);
    buffer.unmap();
    Ok(out)
}
