//! Adapter peak microkernels (`shaders/peak.wgsl`): f32 FMA throughput, `dot4I8Packed`
//! throughput and streaming read bandwidth, the denominators of every "% of peak" figure the
//! benchmark reports.
//!
//! A peak is only a fair denominator if the kernel reaches what the hardware can do, so the
//! throughput kernels run 8 or 16 independent accumulator chains per invocation, unrolled
//! into separate variables (no arrays) and advanced 4 or 16 steps per loop iteration, with
//! every result kept alive; the read kernel streams a buffer larger than any cache with
//! 16-byte loads. Their entry points are generated here for each shape (WGSL has no macros)
//! and appended to `shaders/peak.wgsl`, which holds what they share. No single shape is best on
//! every adapter: [`PeakShape::candidates`] lists the shapes a caller measures, reporting the
//! fastest with the shape that won.

use std::fmt::Write as _;

use crate::error::{Error, Result};
use crate::gpu::context::Context;
use crate::gpu::shader::{ConstValue, assemble, build_pipeline};

/// Steps of every chain per invocation in the throughput kernels (a multiple of every
/// unroll factor).
pub const ITERATIONS: u32 = 1024;
/// Never the f32 sum (a NaN pattern); see the shader.
const MAGIC: u32 = 0xffff_ffff;

/// Twin of `PeakUniforms` in `shaders/peak.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct PeakUniforms {
    seed: u32,
    magic: u32,
    mul: f32,
    add: f32,
}

const UNIFORMS: PeakUniforms = PeakUniforms {
    seed: 0x0102_0304,
    magic: MAGIC,
    mul: 0.999,
    add: 0.5,
};

/// Which peak to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PeakKind {
    /// f32 `fma` chains; 2 FLOP per fma.
    F32Fma,
    /// `dot4I8Packed` + add chains; 8 ops per step (4 multiplies, 4 adds), the count a GEMM's
    /// 2·M·N·K gives four multiply-accumulates.
    Dot4I8,
    /// Streaming reads of a large buffer with `vec4<u32>` loads; bytes read.
    ReadBandwidth,
}

impl PeakKind {
    /// Every kind, in the order the benchmark reports them.
    pub const ALL: [PeakKind; 3] = [PeakKind::F32Fma, PeakKind::Dot4I8, PeakKind::ReadBandwidth];

    /// `"f32_fma"`, `"dot4_i8"` or `"read_bandwidth"` (the benchmark JSON's keys).
    pub fn as_str(self) -> &'static str {
        match self {
            PeakKind::F32Fma => "f32_fma",
            PeakKind::Dot4I8 => "dot4_i8",
            PeakKind::ReadBandwidth => "read_bandwidth",
        }
    }

    /// The unit of [`PeakKernel::work`] per second, scaled by 1e9.
    pub fn unit(self) -> &'static str {
        match self {
            PeakKind::F32Fma => "GFLOP/s",
            PeakKind::Dot4I8 => "GOP/s",
            PeakKind::ReadBandwidth => "GB/s",
        }
    }

    fn ops_per_step(self) -> u64 {
        match self {
            PeakKind::F32Fma => 2,
            PeakKind::Dot4I8 => 8,
            PeakKind::ReadBandwidth => 0,
        }
    }
}

/// One shape of a peak kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PeakShape {
    /// Invocations per workgroup.
    pub workgroup_size: u32,
    /// Independent accumulator chains per invocation (8 or 16) for the throughput kernels;
    /// the read kernel keeps 4 accumulators (this field is 4 there).
    pub chains: u32,
    /// Throughput kernels: steps of every chain per loop iteration (4 or 16, dividing
    /// [`ITERATIONS`]). Read kernel: vec4 loads per invocation per loop iteration (a
    /// multiple of 4).
    pub unroll: u32,
    /// Read kernel: loop iterations per invocation, so a workgroup streams a block of
    /// `steps · unroll · workgroup_size` vec4s; 0 for the throughput kernels.
    pub steps: u32,
}

impl PeakShape {
    /// The shapes worth measuring for `kind`: workgroup size ∈ {64, 256} × chains ∈ {8, 16}
    /// × unroll ∈ {4, 16} for the throughput kernels; workgroup size ∈ {64, 256} × loads
    /// per iteration ∈ {4, 16} × iterations ∈ {8, 32} for the read.
    pub fn candidates(kind: PeakKind) -> Vec<PeakShape> {
        let mut shapes = Vec::new();
        for workgroup_size in [64, 256] {
            for unroll in [4, 16] {
                if kind == PeakKind::ReadBandwidth {
                    for steps in [8, 32] {
                        shapes.push(PeakShape {
                            workgroup_size,
                            chains: 4,
                            unroll,
                            steps,
                        });
                    }
                } else {
                    for chains in [8, 16] {
                        shapes.push(PeakShape {
                            workgroup_size,
                            chains,
                            unroll,
                            steps: 0,
                        });
                    }
                }
            }
        }
        shapes
    }

    /// The shape in words.
    pub fn describe(&self, kind: PeakKind) -> String {
        match kind {
            PeakKind::ReadBandwidth => format!(
                "workgroup {}, {} iterations of {} vec4 loads",
                self.workgroup_size, self.steps, self.unroll
            ),
            _ => format!(
                "chains {}, unroll {}, workgroup {}",
                self.chains, self.unroll, self.workgroup_size
            ),
        }
    }

    /// The vec4s one workgroup of the read kernel streams.
    fn block_vec4s(&self) -> u64 {
        // u32 · u32 · u32 < 2^96 only in theory: saturate.
        u64::from(self.steps)
            .saturating_mul(u64::from(self.unroll))
            .saturating_mul(u64::from(self.workgroup_size))
    }

    fn entry_point(kind: PeakKind) -> &'static str {
        match kind {
            PeakKind::F32Fma => "peak_f32_fma",
            PeakKind::Dot4I8 => "peak_dot4_i8",
            PeakKind::ReadBandwidth => "peak_read",
        }
    }

    fn check(&self, kind: PeakKind) -> Result<()> {
        let ok = self.workgroup_size > 0
            && match kind {
                PeakKind::ReadBandwidth => {
                    self.steps > 0 && self.unroll > 0 && self.unroll.is_multiple_of(4)
                }
                _ => {
                    matches!(self.chains, 8 | 16)
                        && self.unroll > 0
                        && ITERATIONS.is_multiple_of(self.unroll)
                }
            };
        if ok {
            Ok(())
        } else {
            Err(Error::InvalidConfig {
                what: "peak shape".into(),
                value: format!("{kind:?} {self:?}"),
                reason: "workgroup size ≥ 1; throughput kernels: 8 or 16 chains, an unroll \
                         dividing ITERATIONS; read kernel: ≥ 1 steps, unroll a multiple of 4"
                    .into(),
            })
        }
    }

    /// The shader of this shape: `shaders/peak.wgsl` with `WORKGROUP_SIZE` declared and the
    /// kind's entry point (`peak_f32_fma`, `peak_dot4_i8` or `peak_read`) appended.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a shape [`PeakShape::candidates`] could not produce (no
    /// workgroup, chains other than 8 or 16, an unroll not dividing [`ITERATIONS`], a read
    /// shape without steps or with loads not in fours); [`Error::Shader`] when the source
    /// cannot be assembled.
    pub fn wgsl(&self, kind: PeakKind) -> Result<String> {
        self.check(kind)?;
        let mut wgsl = assemble(
            "peak",
            &[("WORKGROUP_SIZE", ConstValue::U32(self.workgroup_size))],
        )?;
        match kind {
            PeakKind::ReadBandwidth => self.read_kernel(&mut wgsl),
            _ => self.throughput_kernel(kind, &mut wgsl),
        }
        Ok(wgsl)
    }

    /// `peak_f32_fma` or `peak_dot4_i8`: `chains` variables `a0..`, each advanced `unroll`
    /// times per loop iteration.
    fn throughput_kernel(&self, kind: PeakKind, w: &mut String) {
        let f32 = kind == PeakKind::F32Fma;
        let _ = writeln!(w, "\n@compute @workgroup_size(WORKGROUP_SIZE)");
        let _ = writeln!(
            w,
            "fn {}(@builtin(global_invocation_id) gid: vec3<u32>) {{",
            Self::entry_point(kind)
        );
        if f32 {
            w.push_str("    let m = params.mul;\n    let c = params.add;\n");
            w.push_str("    let s = f32((gid.x ^ params.seed) & 1023u) * 0.001;\n");
        } else {
            w.push_str("    let b = params.seed | 0x01010101u;\n");
            w.push_str("    let s = i32(gid.x ^ params.seed);\n");
        }
        for c in 0..self.chains {
            let _ = if f32 {
                writeln!(w, "    var a{c} = s + {c}.0;")
            } else {
                writeln!(w, "    var a{c} = s + {c};")
            };
        }
        let _ = writeln!(
            w,
            "    for (var i = 0u; i < {ITERATIONS}u; i += {}u) {{",
            self.unroll
        );
        for _ in 0..self.unroll {
            for c in 0..self.chains {
                let _ = if f32 {
                    writeln!(w, "        a{c} = fma(a{c}, m, c);")
                } else {
                    writeln!(w, "        a{c} = dot4_step(a{c}, b);")
                };
            }
        }
        w.push_str("    }\n");
        let op = if f32 { " + " } else { " ^ " };
        let sum: Vec<String> = (0..self.chains).map(|c| format!("a{c}")).collect();
        let _ = writeln!(w, "    let total = {};", sum.join(op));
        w.push_str("    if (bitcast<u32>(total) == params.magic) {\n");
        w.push_str("        sink[0] = gid.x;\n    }\n}\n");
    }

    /// `peak_read`: the workgroup's block, `unroll` vec4 loads per invocation per iteration
    /// (each run of `WORKGROUP_SIZE` adjacent), into 4 accumulators in turn.
    fn read_kernel(&self, w: &mut String) {
        w.push_str("\n@compute @workgroup_size(WORKGROUP_SIZE)\n");
        w.push_str("fn peak_read(\n    @builtin(local_invocation_id) lid: vec3<u32>,\n");
        w.push_str("    @builtin(workgroup_id) wid: vec3<u32>,\n) {\n");
        let _ = writeln!(w, "    var i = wid.x * {}u + lid.x;", self.block_vec4s());
        for a in 0..4 {
            let _ = writeln!(w, "    var s{a} = vec4<u32>();");
        }
        let _ = writeln!(
            w,
            "    for (var step = 0u; step < {}u; step++) {{",
            self.steps
        );
        for l in 0..self.unroll {
            let _ = writeln!(
                w,
                "        s{} += stream[i + {l}u * WORKGROUP_SIZE];",
                l % 4
            );
        }
        let _ = writeln!(w, "        i += {}u * WORKGROUP_SIZE;", self.unroll);
        w.push_str("    }\n    let v = (s0 ^ s1) + (s2 ^ s3);\n");
        w.push_str("    if ((v.x ^ v.y ^ v.z ^ v.w) == params.magic) {\n");
        w.push_str("        sink[0] = wid.x;\n    }\n}\n");
    }
}

/// A compiled peak microkernel with its buffers, ready to encode.
#[derive(Debug)]
pub struct PeakKernel {
    kind: PeakKind,
    shape: PeakShape,
    workgroups: u32,
    pipeline: wgpu::ComputePipeline,
    bind_group: wgpu::BindGroup,
}

fn pipeline(ctx: &Context, kind: PeakKind, shape: &PeakShape) -> Result<wgpu::ComputePipeline> {
    let wgsl = shape.wgsl(kind)?;
    let entry = PeakShape::entry_point(kind);
    crate::gpu::buffers::captured(ctx, "peak pipeline", |device| {
        build_pipeline(device, entry, &wgsl, entry)
    })?
}

fn entries<'a>(
    uniforms: &'a wgpu::Buffer,
    sink: &'a wgpu::Buffer,
    extra: Option<(u32, &'a wgpu::Buffer)>,
) -> Vec<wgpu::BindGroupEntry<'a>> {
    let mut entries = vec![
        wgpu::BindGroupEntry {
            binding: 0,
            resource: uniforms.as_entire_binding(),
        },
        wgpu::BindGroupEntry {
            binding: 1,
            resource: sink.as_entire_binding(),
        },
    ];
    if let Some((binding, buffer)) = extra {
        entries.push(wgpu::BindGroupEntry {
            binding,
            resource: buffer.as_entire_binding(),
        });
    }
    entries
}

impl PeakKernel {
    /// Builds a throughput kernel ([`PeakKind::F32Fma`] or [`PeakKind::Dot4I8`]) of `shape`
    /// over `workgroups` workgroups.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for zero workgroups, more than the adapter's per-dimension
    /// limit, a shape as [`PeakShape::wgsl`], or [`PeakKind::ReadBandwidth`] (use
    /// [`PeakKernel::read_bandwidth`]); [`Error::Shader`] or [`Error::Gpu`] for shader and
    /// wgpu errors.
    pub fn compute(
        ctx: &Context,
        kind: PeakKind,
        shape: PeakShape,
        workgroups: u32,
    ) -> Result<Self> {
        let invalid = |value: String, reason: &str| Error::InvalidConfig {
            what: "peak kernel".into(),
            value,
            reason: reason.into(),
        };
        if kind == PeakKind::ReadBandwidth {
            return Err(invalid(
                format!("{kind:?}"),
                "the read kernel is built by PeakKernel::read_bandwidth",
            ));
        }
        let max = ctx.device().limits().max_compute_workgroups_per_dimension;
        if workgroups == 0 || workgroups > max {
            return Err(invalid(
                format!("{workgroups} workgroups"),
                &format!("must be between 1 and the adapter's limit {max}"),
            ));
        }
        let uniforms = crate::gpu::buffers::upload(
            ctx,
            "peak uniforms",
            &[UNIFORMS],
            wgpu::BufferUsages::UNIFORM,
        )?;
        let sink = crate::gpu::buffers::create(ctx, "peak sink", 4, wgpu::BufferUsages::STORAGE)?;
        let pipeline = pipeline(ctx, kind, &shape)?;
        let bind_group = crate::gpu::buffers::captured(ctx, "peak bind group", |device| {
            device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("peak"),
                layout: &pipeline.get_bind_group_layout(0),
                entries: &entries(&uniforms, &sink, None),
            })
        })?;
        Ok(PeakKernel {
            kind,
            shape,
            workgroups,
            pipeline,
            bind_group,
        })
    }

    /// Builds the read kernel of `shape` over a buffer of at most `max_bytes` (rounded down
    /// to whole workgroup blocks, and to the device's storage-binding and buffer limits), and
    /// fills the buffer once with distinct data, so its pages are real.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when not even one block fits, or for a shape as
    /// [`PeakShape::wgsl`]; [`Error::Shader`] or [`Error::Gpu`] for shader and wgpu errors.
    pub fn read_bandwidth(ctx: &Context, shape: PeakShape, max_bytes: u64) -> Result<Self> {
        let kind = PeakKind::ReadBandwidth;
        let limits = ctx.device().limits();
        let cap = max_bytes
            .min(limits.max_storage_buffer_binding_size)
            .min(limits.max_buffer_size);
        let block_bytes = shape.block_vec4s().saturating_mul(16);
        let blocks =
            (cap / block_bytes.max(1)).min(u64::from(limits.max_compute_workgroups_per_dimension));
        if blocks == 0 || block_bytes == 0 {
            return Err(Error::InvalidConfig {
                what: "peak read buffer".into(),
                value: format!("{cap} bytes for blocks of {block_bytes} bytes"),
                reason: "at least one workgroup block must fit the binding limit".into(),
            });
        }
        // blocks ≤ the per-dimension limit (a u32) and blocks · block_bytes ≤ cap.
        let workgroups = u32::try_from(blocks).unwrap_or(u32::MAX);
        let bytes = blocks.saturating_mul(block_bytes);
        let uniforms = crate::gpu::buffers::upload(
            ctx,
            "peak uniforms",
            &[UNIFORMS],
            wgpu::BufferUsages::UNIFORM,
        )?;
        let sink = crate::gpu::buffers::create(ctx, "peak sink", 4, wgpu::BufferUsages::STORAGE)?;
        let stream =
            crate::gpu::buffers::create(ctx, "peak stream", bytes, wgpu::BufferUsages::STORAGE)?;
        let pipeline = pipeline(ctx, kind, &shape)?;

        // Fill once: `peak_fill` over a 2-D grid of workgroups of this shape's size.
        let fill = crate::gpu::buffers::captured(ctx, "peak fill", |device| {
            build_pipeline(device, "peak_fill", &shape.wgsl(kind)?, "peak_fill")
        })??;
        let vec4s = bytes / 16;
        let fill_groups = vec4s.div_ceil(u64::from(shape.workgroup_size));
        let row = u64::from(limits.max_compute_workgroups_per_dimension);
        let (x, y) = (fill_groups.min(row), fill_groups.div_ceil(row));
        let (x, y) = (
            u32::try_from(x).unwrap_or(u32::MAX),
            u32::try_from(y).unwrap_or(u32::MAX),
        );
        ctx.submit("peak fill", |encoder| {
            let group = ctx.device().create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("peak fill"),
                layout: &fill.get_bind_group_layout(0),
                entries: &[
                    wgpu::BindGroupEntry {
                        binding: 0,
                        resource: uniforms.as_entire_binding(),
                    },
                    wgpu::BindGroupEntry {
                        binding: 3,
                        resource: stream.as_entire_binding(),
                    },
                ],
            });
            let mut pass = encoder.begin_compute_pass(&Default::default());
            pass.set_pipeline(&fill);
            pass.set_bind_group(0, &group, &[]);
            pass.dispatch_workgroups(x, y, 1);
            Ok(())
        })?;

        let bind_group = crate::gpu::buffers::captured(ctx, "peak bind group", |device| {
            device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("peak read"),
                layout: &pipeline.get_bind_group_layout(0),
                entries: &entries(&uniforms, &sink, Some((2, &stream))),
            })
        })?;
        Ok(PeakKernel {
            kind,
            shape,
            workgroups,
            pipeline,
            bind_group,
        })
    }

    /// The kind measured.
    pub fn kind(&self) -> PeakKind {
        self.kind
    }

    /// The shape.
    pub fn shape(&self) -> PeakShape {
        self.shape
    }

    /// Workgroups per dispatch.
    pub fn workgroups(&self) -> u32 {
        self.workgroups
    }

    /// Records one dispatch.
    pub fn encode(&self, encoder: &mut wgpu::CommandEncoder) {
        let mut pass = encoder.begin_compute_pass(&Default::default());
        pass.set_pipeline(&self.pipeline);
        pass.set_bind_group(0, &self.bind_group, &[]);
        pass.dispatch_workgroups(self.workgroups, 1, 1);
    }

    /// The work of one dispatch: FLOP (2 per fma), ops (8 per dot4 step) or bytes read.
    pub fn work(&self) -> u64 {
        // At most 2^16 workgroups of 2^10 invocations: far from u64's range; saturating anyway.
        let workgroups = u64::from(self.workgroups);
        match self.kind {
            PeakKind::ReadBandwidth => workgroups
                .saturating_mul(self.shape.block_vec4s())
                .saturating_mul(16),
            kind => workgroups
                .saturating_mul(u64::from(self.shape.workgroup_size))
                .saturating_mul(u64::from(ITERATIONS))
                .saturating_mul(u64::from(self.shape.chains))
                .saturating_mul(kind.ops_per_step()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every candidate shape of every kind assembles and passes naga's validation (no GPU).
    #[test]
    fn every_candidate_validates() {
        for kind in PeakKind::ALL {
            let shapes = PeakShape::candidates(kind);
            assert_eq!(shapes.len(), 8);
            for shape in shapes {
                let wgsl = shape.wgsl(kind).unwrap();
                let entry = PeakShape::entry_point(kind);
                assert!(wgsl.contains(&format!("fn {entry}(")), "{entry}");
                assert!(!wgsl.contains("array<f32") && !wgsl.contains("array<i32"));
                crate::gpu::shader::validate(entry, &wgsl).unwrap();
            }
        }
    }

    #[test]
    fn the_unrolled_body_has_every_step_of_every_chain() {
        let shape = PeakShape {
            workgroup_size: 64,
            chains: 16,
            unroll: 4,
            steps: 0,
        };
        let wgsl = shape.wgsl(PeakKind::F32Fma).unwrap();
        assert_eq!(wgsl.matches("= fma(a").count(), 64);
        assert!(wgsl.contains("a15 = fma(a15, m, c);"));
        let wgsl = shape.wgsl(PeakKind::Dot4I8).unwrap();
        assert_eq!(wgsl.matches("= dot4_step(a").count(), 64);
    }

    #[test]
    fn bad_shapes_are_refused() {
        let shape = PeakShape {
            workgroup_size: 64,
            chains: 12,
            unroll: 4,
            steps: 0,
        };
        for bad in [
            shape,
            PeakShape {
                chains: 8,
                unroll: 3,
                ..shape
            },
            PeakShape {
                chains: 8,
                workgroup_size: 0,
                ..shape
            },
        ] {
            assert!(matches!(
                bad.wgsl(PeakKind::F32Fma),
                Err(Error::InvalidConfig { .. })
            ));
        }
        assert!(matches!(
            shape.wgsl(PeakKind::ReadBandwidth),
            Err(Error::InvalidConfig { .. })
        ));
    }
}
