//! Timing GPU work for the benchmark: timestamp queries around the recorded work where the
//! device has them (two empty passes bracket it), wall time around submit and wait otherwise.

// std's Instant panics on wasm32-unknown-unknown; web-time is std's on native and
// `performance.now()` in a browser.
use web_time::Instant;

use crate::error::{Error, Result};
use crate::gpu::buffers::{create, read};
use crate::gpu::context::Context;

/// How times are measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimingSource {
    /// GPU timestamp queries.
    GpuTimestamps,
    /// Wall clock around submit and wait.
    Wall,
}

impl TimingSource {
    /// `"gpu_timestamps"` or `"wall"` (the benchmark JSON's `timing`).
    pub fn as_str(self) -> &'static str {
        match self {
            TimingSource::GpuTimestamps => "gpu_timestamps",
            TimingSource::Wall => "wall",
        }
    }
}

/// Times recorded GPU work.
#[derive(Debug)]
pub struct GpuTimer {
    queries: Option<(wgpu::QuerySet, wgpu::Buffer)>,
}

impl GpuTimer {
    /// Timestamp queries when the device has `TIMESTAMP_QUERY`, wall time otherwise.
    ///
    /// # Errors
    /// [`Error::Gpu`] when the query resources cannot be created.
    pub fn new(ctx: &Context) -> Result<Self> {
        if !ctx
            .device()
            .features()
            .contains(wgpu::Features::TIMESTAMP_QUERY)
        {
            return Ok(GpuTimer { queries: None });
        }
        let set = ctx.device().create_query_set(&wgpu::QuerySetDescriptor {
            label: Some("bench timestamps"),
            ty: wgpu::QueryType::Timestamp,
            count: 2,
        });
        let resolve = create(
            ctx,
            "timestamp resolve",
            16,
            wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
        )?;
        Ok(GpuTimer {
            queries: Some((set, resolve)),
        })
    }

    /// Which source this timer uses.
    pub fn source(&self) -> TimingSource {
        if self.queries.is_some() {
            TimingSource::GpuTimestamps
        } else {
            TimingSource::Wall
        }
    }

    /// Blocking form of [`GpuTimer::time_async`] (native only).
    ///
    /// # Errors
    /// As [`GpuTimer::time_async`].
    #[cfg(not(target_arch = "wasm32"))]
    pub fn time(
        &self,
        ctx: &Context,
        record: &mut dyn FnMut(&mut wgpu::CommandEncoder) -> Result<()>,
    ) -> Result<f64> {
        pollster::block_on(self.time_async(ctx, record))
    }

    /// Records the work with `record`, submits it, waits without blocking, and returns its
    /// duration in ms.
    ///
    /// # Errors
    /// The recorder's errors; [`Error::Gpu`] for wgpu errors.
    pub async fn time_async(
        &self,
        ctx: &Context,
        record: &mut dyn FnMut(&mut wgpu::CommandEncoder) -> Result<()>,
    ) -> Result<f64> {
        let mut encoder = ctx.device().create_command_encoder(&Default::default());
        let Some((set, resolve)) = &self.queries else {
            record(&mut encoder)?;
            let start = Instant::now();
            crate::gpu::buffers::captured(ctx, "timed submit", |_| {
                ctx.queue().submit([encoder.finish()])
            })?;
            ctx.wait().await?;
            return Ok(start.elapsed().as_secs_f64() * 1e3);
        };
        let marker = |encoder: &mut wgpu::CommandEncoder, begin: Option<u32>, end: Option<u32>| {
            encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("timestamp marker"),
                timestamp_writes: Some(wgpu::ComputePassTimestampWrites {
                    query_set: set,
                    beginning_of_pass_write_index: begin,
                    end_of_pass_write_index: end,
                }),
            });
        };
        marker(&mut encoder, Some(0), None);
        record(&mut encoder)?;
        marker(&mut encoder, None, Some(1));
        encoder.resolve_query_set(set, 0..2, resolve, 0);
        crate::gpu::buffers::captured(ctx, "timed submit", |_| {
            ctx.queue().submit([encoder.finish()])
        })?;
        let bytes = read(ctx, resolve, 16).await?;
        let ticks: Vec<u64> = bytemuck::pod_collect_to_vec(&bytes);
        let period = f64::from(ctx.queue().get_timestamp_period());
        if ticks[1] < ticks[0] {
            return Err(Error::Gpu(format!(
                "timestamps went backwards: {} then {}",
                ticks[0], ticks[1]
            )));
        }
        Ok((ticks[1] - ticks[0]) as f64 * period / 1e6)
    }
}
