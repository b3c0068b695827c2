//! Dynamic (run-time) quantization of activations on the GPU (`shaders/dynamic_quantize.wgsl`):
//! the range, scale and zero point are computed on the GPU, bit-identical to
//! [`crate::reference::dynamic`], and left in a [`RowParams`] buffer the int8 GEMM reads.
//!
//! Per row, one pass: a workgroup per row reduces the row's range in workgroup memory,
//! derives its scale and zero point and quantizes the row. Per tensor, three passes: the
//! range of every element into one set of slots, the params once, then the quantize.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::gpu::buffers::{check_storage, create, grid, read, upload};
use crate::gpu::context::Context;
use crate::gpu::gemm::RowParams;
use crate::gpu::pipelines::PipelineKey;
use crate::gpu::quantize::{BoundedCache, ROW_CACHE_ENTRIES, byte_len, checked_mul, to_u32};
use crate::quant::pack::{check_len, unpack_bytes, words_per_row};
use crate::reference::dynamic::{DynamicGranularity, DynamicQuantized, DynamicScheme};

/// Twin of `DynamicUniforms` in `shaders/dynamic_quantize.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub struct DynamicUniforms {
    /// Rows of this call.
    pub rows: u32,
    /// Elements per row.
    pub cols: u32,
    /// Packed words per row.
    pub words_per_row: u32,
    /// Padding (keeps the layout of the kernels' twin).
    pub pad0: u32,
    /// Clamp range low end.
    pub qmin: i32,
    /// Clamp range high end.
    pub qmax: i32,
    /// Invocations per grid row (a 2-D grid above the per-dimension dispatch limit).
    pub dispatch_width: u32,
    /// Padding.
    pub pad: u32,
}

/// Invocations per workgroup of the per-tensor passes (`WORKGROUP` in the shader).
const WORKGROUP: u32 = 64;

/// The workgroup sizes of the one-pass per-row kernel (one workgroup per row).
pub const ROW_WORKGROUPS: [u32; 3] = [8, 32, 64];

/// The per-row kernel's workgroup size on `ctx` for rows of `words_per_row` packed words.
///
/// On a CPU adapter (lavapipe, WARP, `SwiftShader`) 8: one SIMD vector, so the barriers cost
/// nothing; there 64 was measured 2-3x slower than 8 on 540 x 128. On a GPU at least a full
/// subgroup: 32, or 64 when the row has more than 32 words.
fn row_workgroup(ctx: &Context, words_per_row: usize) -> u32 {
    let cpu = ctx
        .adapter_info()
        .is_some_and(|info| info.device_type == wgpu::DeviceType::Cpu);
    if cpu {
        ROW_WORKGROUPS[0]
    } else if words_per_row <= 32 {
        ROW_WORKGROUPS[1]
    } else {
        ROW_WORKGROUPS[2]
    }
}

/// Bytes of one [`RowParams`].
const ROW_PARAMS_BYTES: usize = 8;

fn range(scheme: DynamicScheme) -> (i32, i32) {
    match scheme {
        DynamicScheme::OnnxLinear { qtype } => qtype.storage_range(),
        DynamicScheme::SymmetricPerToken => (-127, 127),
    }
}

/// The kernels of one granularity.
#[derive(Debug, Clone)]
enum Passes {
    /// One pass, one workgroup of `workgroup` invocations per row.
    PerRow {
        row: wgpu::ComputePipeline,
        workgroup: u32,
    },
    /// Range, params, quantize; `slots` hold the tensor's range and params between passes.
    PerTensor {
        range: wgpu::ComputePipeline,
        params: wgpu::ComputePipeline,
        quantize: wgpu::ComputePipeline,
        slots: wgpu::Buffer,
    },
}

/// A bind group from whole buffers at the given binding numbers, created inside an error
/// scope ([`crate::gpu::buffers::captured`]).
fn bind_at(
    ctx: &Context,
    label: &str,
    pipeline: &wgpu::ComputePipeline,
    bindings: &[(u32, &wgpu::Buffer)],
) -> Result<wgpu::BindGroup> {
    let entries: Vec<wgpu::BindGroupEntry> = bindings
        .iter()
        .map(|&(binding, buffer)| wgpu::BindGroupEntry {
            binding,
            resource: buffer.as_entire_binding(),
        })
        .collect();
    crate::gpu::buffers::captured(ctx, label, |device| {
        device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(label),
            layout: &pipeline.get_bind_group_layout(0),
            entries: &entries,
        })
    })
}

/// `(rows, input, output, row params)` of a call.
type DynamicKey = (usize, wgpu::Buffer, wgpu::Buffer, wgpu::Buffer);

/// A dynamic quantizer prepared once for rows of `cols` activations, up to a row capacity:
/// pipelines (and, per tensor, the range slots) are built at construction. Each call
/// quantizes any `rows <= max_rows`; the uniforms of each row count and the bind groups of
/// each `(rows, input, output, row_params)` are built on first use and cached (bounded by
/// [`ROW_CACHE_ENTRIES`]), so steady-state calls allocate nothing. Clones share the caches
/// (and the per-tensor slots, which each call clears inside its encoder).
#[derive(Debug, Clone)]
pub struct DynamicQuantizer {
    passes: Passes,
    scheme: DynamicScheme,
    /// The uniforms with `rows` and `dispatch_width` still to fill in.
    base: DynamicUniforms,
    max_rows: usize,
    cols: usize,
    /// Uniform buffers per row count.
    uniforms: Arc<BoundedCache<usize, wgpu::Buffer>>,
    /// Bind groups (one per pass) per call key.
    groups: Arc<BoundedCache<DynamicKey, Arc<Vec<wgpu::BindGroup>>>>,
}

impl DynamicQuantizer {
    /// Prepares dynamic quantization of up to `max_rows` rows of `cols` f32 activations.
    ///
    /// # Errors
    /// [`Error::EmptyDimension`] for rows without columns; [`Error::SizeOverflow`] when a
    /// size at capacity overflows `usize` or the kernels' `u32` indices; GPU errors.
    pub fn new(
        ctx: &Context,
        scheme: DynamicScheme,
        granularity: DynamicGranularity,
        max_rows: usize,
        cols: usize,
    ) -> Result<Self> {
        if cols == 0 && max_rows > 0 {
            return Err(Error::EmptyDimension {
                what: "cols".into(),
            });
        }
        let wpr = words_per_row(cols);
        // Every size at capacity, so that a call's sizes fit too.
        let elements = checked_mul(
            "dynamic quantize elements (max_rows * cols)",
            max_rows,
            cols,
        )?;
        to_u32("dynamic quantize elements (max_rows * cols)", elements)?;
        let words = checked_mul(
            "dynamic quantize words (max_rows * words per row)",
            max_rows,
            wpr,
        )?;
        to_u32("dynamic quantize words (max_rows * words per row)", words)?;
        byte_len("dynamic input (max_rows * cols f32)", elements, 4)?;
        byte_len("row params (max_rows)", max_rows, ROW_PARAMS_BYTES)?;
        let (qmin, qmax) = range(scheme);
        let base = DynamicUniforms {
            rows: to_u32("max_rows", max_rows)?,
            cols: to_u32("cols", cols)?,
            words_per_row: to_u32("words per row", wpr)?,
            pad0: 0,
            qmin,
            qmax,
            dispatch_width: 0,
            pad: 0,
        };
        let symmetric = scheme == DynamicScheme::SymmetricPerToken;
        let passes = match granularity {
            DynamicGranularity::PerRow => {
                let workgroup = row_workgroup(ctx, wpr);
                Passes::PerRow {
                    row: ctx.pipeline(PipelineKey::DynamicRow {
                        symmetric,
                        workgroup,
                    })?,
                    workgroup,
                }
            }
            DynamicGranularity::PerTensor => Passes::PerTensor {
                range: ctx.pipeline(PipelineKey::DynamicRange { symmetric })?,
                params: ctx.pipeline(PipelineKey::DynamicParams { symmetric })?,
                quantize: ctx.pipeline(PipelineKey::DynamicQuantize { symmetric })?,
                slots: create(
                    ctx,
                    "dynamic range slots",
                    16,
                    wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
                )?,
            },
        };
        Ok(DynamicQuantizer {
            passes,
            scheme,
            base,
            max_rows,
            cols,
            uniforms: Arc::new(BoundedCache::new(ROW_CACHE_ENTRIES)),
            groups: Arc::new(BoundedCache::new(ROW_CACHE_ENTRIES)),
        })
    }

    /// The row capacity.
    pub fn max_rows(&self) -> usize {
        self.max_rows
    }

    /// Elements per row.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// The same quantizer with the per-row kernel's workgroup size set to `workgroup` (one of
    /// [`ROW_WORKGROUPS`]) instead of the one chosen for the adapter: a tuning knob, and how
    /// the tests run every size on any adapter. Per tensor it changes nothing.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a size not in [`ROW_WORKGROUPS`]; GPU errors.
    pub fn with_row_workgroup(mut self, ctx: &Context, workgroup: u32) -> Result<Self> {
        if !ROW_WORKGROUPS.contains(&workgroup) {
            return Err(Error::InvalidConfig {
                what: "dynamic per-row workgroup size".into(),
                value: workgroup.to_string(),
                reason: format!("must be one of {ROW_WORKGROUPS:?}"),
            });
        }
        if let Passes::PerRow { .. } = self.passes {
            let symmetric = self.scheme == DynamicScheme::SymmetricPerToken;
            self.passes = Passes::PerRow {
                row: ctx.pipeline(PipelineKey::DynamicRow {
                    symmetric,
                    workgroup,
                })?,
                workgroup,
            };
            // The cached uniforms and bind groups belong to the old pipeline and grid.
            self.uniforms = Arc::new(BoundedCache::new(ROW_CACHE_ENTRIES));
            self.groups = Arc::new(BoundedCache::new(ROW_CACHE_ENTRIES));
        }
        Ok(self)
    }

    /// The per-row kernel's workgroup size (`None` per tensor).
    pub fn row_workgroup(&self) -> Option<u32> {
        match self.passes {
            Passes::PerRow { workgroup, .. } => Some(workgroup),
            Passes::PerTensor { .. } => None,
        }
    }

    /// The scheme.
    pub fn scheme(&self) -> DynamicScheme {
        self.scheme
    }

    /// The granularity.
    pub fn granularity(&self) -> DynamicGranularity {
        match self.passes {
            Passes::PerRow { .. } => DynamicGranularity::PerRow,
            Passes::PerTensor { .. } => DynamicGranularity::PerTensor,
        }
    }

    /// Records the quantization of the first `rows` rows of `input` (row-major f32, rows of
    /// `cols`) into `output` (packed storage bytes, rows padded to whole words) and
    /// `row_params` (one [`RowParams`] per row: the group's zero point and scale). `rows = 0`
    /// records nothing.
    ///
    /// # Errors
    /// [`Error::CapacityExceeded`] when `rows > max_rows`; buffer checks
    /// ([`check_storage`]); [`Error::BufferAliasing`] when any two of `input`, `output` and
    /// `row_params` are the same buffer; [`Error::Unsupported`] above the dispatch limits;
    /// GPU errors.
    pub fn encode(
        &self,
        ctx: &Context,
        encoder: &mut wgpu::CommandEncoder,
        rows: usize,
        input: &wgpu::Buffer,
        output: &wgpu::Buffer,
        row_params: &wgpu::Buffer,
    ) -> Result<()> {
        if rows > self.max_rows {
            return Err(Error::CapacityExceeded {
                what: "dynamic quantize".into(),
                rows,
                capacity: self.max_rows,
            });
        }
        if rows == 0 {
            return Ok(());
        }
        // Within the capacity, whose sizes `new` checked.
        let words = rows * words_per_row(self.cols);
        check_storage(
            ctx,
            "dynamic input",
            input,
            byte_len("dynamic input", rows * self.cols, 4)?,
        )?;
        check_storage(
            ctx,
            "dynamic output",
            output,
            byte_len("dynamic output", words, 4)?,
        )?;
        check_storage(
            ctx,
            "row params",
            row_params,
            byte_len("row params", rows, ROW_PARAMS_BYTES)?,
        )?;
        use crate::gpu::buffers::check_distinct;
        check_distinct(("dynamic input", input), ("dynamic output", output))?;
        check_distinct(("dynamic input", input), ("row params", row_params))?;
        check_distinct(("dynamic output", output), ("row params", row_params))?;
        // Per row: one workgroup per row. Per tensor: one invocation per packed word.
        let (gx, gy, dispatch_width) = match self.passes {
            Passes::PerRow { workgroup, .. } => {
                grid(ctx, rows as u64 * u64::from(workgroup), workgroup)?
            }
            Passes::PerTensor { .. } => grid(ctx, words as u64, WORKGROUP)?,
        };
        let key = (rows, input.clone(), output.clone(), row_params.clone());
        let groups = self.groups.get_or_try_insert(key, || {
            let uniforms = self.uniforms.get_or_try_insert(rows, || {
                let uniforms = DynamicUniforms {
                    rows: rows as u32,
                    dispatch_width,
                    ..self.base
                };
                upload(
                    ctx,
                    "dynamic uniforms",
                    &[uniforms],
                    wgpu::BufferUsages::UNIFORM,
                )
            })?;
            let u = &uniforms;
            Ok(Arc::new(match &self.passes {
                // The one-pass kernel has no slots: bindings 0, 1, 3 and 4.
                Passes::PerRow { row, .. } => vec![bind_at(
                    ctx,
                    "dynamic_row",
                    row,
                    &[(0, u), (1, input), (3, output), (4, row_params)],
                )?],
                Passes::PerTensor {
                    range,
                    params,
                    quantize,
                    slots,
                } => vec![
                    bind_at(
                        ctx,
                        "dynamic_range",
                        range,
                        &[(0, u), (1, input), (2, slots)],
                    )?,
                    // The params pass reads no input and writes no output.
                    bind_at(ctx, "dynamic_params", params, &[(0, u), (2, slots)])?,
                    bind_at(
                        ctx,
                        "dynamic_quantize",
                        quantize,
                        &[(0, u), (1, input), (2, slots), (3, output), (4, row_params)],
                    )?,
                ],
            }))
        })?;
        match &self.passes {
            Passes::PerRow { row, .. } => {
                let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some("dynamic quantize per row"),
                    timestamp_writes: None,
                });
                pass.set_pipeline(row);
                pass.set_bind_group(0, &groups[0], &[]);
                pass.dispatch_workgroups(gx, gy, 1);
            }
            Passes::PerTensor {
                range,
                params,
                quantize,
                slots,
            } => {
                // Cleared inside the caller's encoder, so it is ordered with the passes.
                encoder.clear_buffer(slots, 0, None);
                let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some("dynamic quantize per tensor"),
                    timestamp_writes: None,
                });
                pass.set_pipeline(range);
                pass.set_bind_group(0, &groups[0], &[]);
                pass.dispatch_workgroups(gx, gy, 1);
                pass.set_pipeline(params);
                pass.set_bind_group(0, &groups[1], &[]);
                pass.dispatch_workgroups(1, 1, 1);
                pass.set_pipeline(quantize);
                pass.set_bind_group(0, &groups[2], &[]);
                pass.dispatch_workgroups(gx, gy, 1);
            }
        }
        Ok(())
    }
}

/// Records the dynamic quantization of `input` (`rows × cols` f32) into `output` (packed
/// storage bytes, rows padded to whole words) and `row_params` (one [`RowParams`] per row).
/// Builds a [`DynamicQuantizer`] each call; keep one for repeated use.
///
/// # Errors
/// As [`DynamicQuantizer::new`] and [`DynamicQuantizer::encode`].
#[allow(
    clippy::too_many_arguments,
    reason = "the caller's encoder and four buffers"
)]
pub fn encode_dynamic_quantize(
    ctx: &Context,
    encoder: &mut wgpu::CommandEncoder,
    scheme: DynamicScheme,
    granularity: DynamicGranularity,
    rows: usize,
    cols: usize,
    input: &wgpu::Buffer,
    output: &wgpu::Buffer,
    row_params: &wgpu::Buffer,
) -> Result<()> {
    DynamicQuantizer::new(ctx, scheme, granularity, rows, cols)?
        .encode(ctx, encoder, rows, input, output, row_params)
}

/// Dynamically quantizes on the GPU and reads back the bytes and the per-group params.
///
/// # Errors
/// As [`encode_dynamic_quantize`], plus [`Error::ShapeMismatch`] for `x`.
pub async fn dynamic_quantize(
    ctx: &Context,
    x: &[f32],
    rows: usize,
    cols: usize,
    scheme: DynamicScheme,
    granularity: DynamicGranularity,
) -> Result<DynamicQuantized> {
    check_len("dynamic quantize input", x.len(), rows, cols)?;
    let q = DynamicQuantizer::new(ctx, scheme, granularity, rows, cols)?;
    q.run(ctx, x, rows).await
}

/// Blocking form of [`dynamic_quantize`] (native only).
///
/// # Errors
/// As [`dynamic_quantize`].
#[cfg(not(target_arch = "wasm32"))]
pub fn dynamic_quantize_blocking(
    ctx: &Context,
    x: &[f32],
    rows: usize,
    cols: usize,
    scheme: DynamicScheme,
    granularity: DynamicGranularity,
) -> Result<DynamicQuantized> {
    pollster::block_on(dynamic_quantize(ctx, x, rows, cols, scheme, granularity))
}

/// The storage bytes and every row's [`RowParams`] as the GPU wrote them.
///
/// # Errors
/// As [`dynamic_quantize`].
pub async fn dynamic_quantize_buffers(
    ctx: &Context,
    x: &[f32],
    rows: usize,
    cols: usize,
    scheme: DynamicScheme,
    granularity: DynamicGranularity,
) -> Result<(Vec<u8>, Vec<RowParams>)> {
    check_len("dynamic quantize input", x.len(), rows, cols)?;
    DynamicQuantizer::new(ctx, scheme, granularity, rows, cols)?
        .run_buffers(ctx, x, rows)
        .await
}

/// Blocking form of [`dynamic_quantize_buffers`] (native only).
///
/// # Errors
/// As [`dynamic_quantize_buffers`].
#[cfg(not(target_arch = "wasm32"))]
pub fn dynamic_quantize_buffers_blocking(
    ctx: &Context,
    x: &[f32],
    rows: usize,
    cols: usize,
    scheme: DynamicScheme,
    granularity: DynamicGranularity,
) -> Result<(Vec<u8>, Vec<RowParams>)> {
    pollster::block_on(dynamic_quantize_buffers(
        ctx,
        x,
        rows,
        cols,
        scheme,
        granularity,
    ))
}

impl DynamicQuantizer {
    /// Blocking form of [`DynamicQuantizer::run`] (native only).
    ///
    /// # Errors
    /// As [`DynamicQuantizer::run`].
    #[cfg(not(target_arch = "wasm32"))]
    pub fn run_blocking(&self, ctx: &Context, x: &[f32], rows: usize) -> Result<DynamicQuantized> {
        pollster::block_on(self.run(ctx, x, rows))
    }

    /// Blocking form of [`DynamicQuantizer::run_buffers`] (native only).
    ///
    /// # Errors
    /// As [`DynamicQuantizer::run_buffers`].
    #[cfg(not(target_arch = "wasm32"))]
    pub fn run_buffers_blocking(
        &self,
        ctx: &Context,
        x: &[f32],
        rows: usize,
    ) -> Result<(Vec<u8>, Vec<RowParams>)> {
        pollster::block_on(self.run_buffers(ctx, x, rows))
    }

    /// Uploads `x` (`rows × cols`), quantizes it with this quantizer and reads back the
    /// bytes and the per-group params.
    ///
    /// # Errors
    /// As [`DynamicQuantizer::encode`], plus [`Error::ShapeMismatch`] for `x`.
    pub async fn run(&self, ctx: &Context, x: &[f32], rows: usize) -> Result<DynamicQuantized> {
        let (bytes, row_params) = self.run_buffers(ctx, x, rows).await?;
        let groups = match self.passes {
            Passes::PerRow { .. } => rows,
            Passes::PerTensor { .. } => rows.min(1),
        };
        Ok(DynamicQuantized {
            qtype: self.scheme.qtype(),
            bytes,
            scales: row_params[..groups].iter().map(|p| p.scale).collect(),
            zero_points: row_params[..groups].iter().map(|p| p.zero_point).collect(),
        })
    }

    /// As [`DynamicQuantizer::run`], returning the storage bytes and every row's
    /// [`RowParams`] as the GPU wrote them.
    ///
    /// # Errors
    /// As [`DynamicQuantizer::run`].
    pub async fn run_buffers(
        &self,
        ctx: &Context,
        x: &[f32],
        rows: usize,
    ) -> Result<(Vec<u8>, Vec<RowParams>)> {
        check_len("dynamic quantize input", x.len(), rows, self.cols)?;
        if rows > self.max_rows {
            return Err(Error::CapacityExceeded {
                what: "dynamic quantize".into(),
                rows,
                capacity: self.max_rows,
            });
        }
        if rows == 0 {
            return Ok((Vec::new(), Vec::new()));
        }
        let input = upload(ctx, "dynamic input", x, wgpu::BufferUsages::STORAGE)?;
        let words = byte_len("dynamic output", rows * words_per_row(self.cols), 4)?;
        let params_bytes = byte_len("row params", rows, ROW_PARAMS_BYTES)?;
        let usage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC;
        let output = create(ctx, "dynamic output", words, usage)?;
        let params = create(ctx, "row params", params_bytes, usage)?;
        ctx.submit("dynamic quantize", |encoder| {
            self.encode(ctx, encoder, rows, &input, &output, &params)
        })?;
        let packed: Vec<u32> = bytemuck::pod_collect_to_vec(&read(ctx, &output, words).await?);
        let row_params: Vec<RowParams> =
            bytemuck::pod_collect_to_vec(&read(ctx, &params, params_bytes).await?);
        Ok((unpack_bytes(&packed, rows, self.cols)?, row_params))
    }
}
