//! Adapter peak microkernels (`shaders/peak.wgsl`): f32 FMA throughput and `dot4I8Packed`
//! throughput, the denominators of every "percent of peak" figure the benchmark reports.

use crate::error::{Error, Result};
use crate::gpu::context::Context;

const SHADER: &str = include_str!("../../shaders/peak.wgsl");
const ITERATIONS: u64 = 256; // matches ITERATIONS in the shader
const CHAINS: u64 = 8;
const WORKGROUP: u64 = 64;

/// Which peak to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeakKind {
    /// f32 `fma` chains; 2 FLOP per fma.
    F32Fma,
    /// `dot4I8Packed` + add chains; 8 ops per dot4 (4 multiplies, 4 adds).
    Dot4I8,
}

impl PeakKind {
    fn entry_point(self) -> &'static str {
        match self {
            PeakKind::F32Fma => "peak_f32_fma",
            PeakKind::Dot4I8 => "peak_dot4_i8",
        }
    }
    fn ops_per_step(self) -> u64 {
        match self {
            PeakKind::F32Fma => 2,
            PeakKind::Dot4I8 => 8,
        }
    }
}

/// A compiled peak microkernel with its buffers, ready to encode.
#[derive(Debug)]
pub struct PeakKernel {
    kind: PeakKind,
    workgroups: u32,
    pipeline: wgpu::ComputePipeline,
    bind_group: wgpu::BindGroup,
}

impl PeakKernel {
    /// Builds the kernel for `workgroups` workgroups of 64 invocations.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for zero workgroups; [`Error::Gpu`] for wgpu errors.
    pub fn new(ctx: &Context, kind: PeakKind, workgroups: u32) -> Result<Self> {
        if workgroups == 0 {
            return Err(Error::InvalidConfig {
                what: "peak workgroups".into(),
                value: "0".into(),
                reason: "must be at least 1".into(),
            });
        }
        let seed = crate::gpu::buffers::upload(
            ctx,
            "peak seed",
            &[3u32, 0x0102_0304],
            wgpu::BufferUsages::STORAGE,
        )?;
        let sink = crate::gpu::buffers::create(
            ctx,
            "peak sink",
            u64::from(workgroups) * WORKGROUP * 4,
            wgpu::BufferUsages::STORAGE,
        )?;
        let (pipeline, bind_group) = crate::gpu::buffers::captured(ctx, "peak", |device| {
            let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some("peak"),
                source: wgpu::ShaderSource::Wgsl(SHADER.into()),
            });
            let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(kind.entry_point()),
                layout: None,
                module: &module,
                entry_point: Some(kind.entry_point()),
                compilation_options: Default::default(),
                cache: None,
            });
            let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("peak"),
                layout: &pipeline.get_bind_group_layout(0),
                entries: &[
                    wgpu::BindGroupEntry {
                        binding: 0,
                        resource: seed.as_entire_binding(),
                    },
                    wgpu::BindGroupEntry {
                        binding: 1,
                        resource: sink.as_entire_binding(),
                    },
                ],
            });
            (pipeline, bind_group)
        })?;
        Ok(PeakKernel {
            kind,
            workgroups,
            pipeline,
            bind_group,
        })
    }

    /// Records one dispatch.
    pub fn encode(&self, encoder: &mut wgpu::CommandEncoder) {
        let mut pass = encoder.begin_compute_pass(&Default::default());
        pass.set_pipeline(&self.pipeline);
        pass.set_bind_group(0, &self.bind_group, &[]);
        pass.dispatch_workgroups(self.workgroups, 1, 1);
    }

    /// Operations one dispatch performs (2 per fma, 8 per dot4).
    pub fn ops(&self) -> u64 {
        u64::from(self.workgroups) * WORKGROUP * ITERATIONS * CHAINS * self.kind.ops_per_step()
    }
}
