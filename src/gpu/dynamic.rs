//! Dynamic (run-time) quantization of activations on the GPU (`shaders/dynamic_quantize.wgsl`):
//! the range, scale and zero point are computed on the GPU, bit-identical to
//! [`crate::reference::dynamic`], and left in a [`RowParams`] buffer the int8 GEMM reads.

use crate::error::{Error, Result};
use crate::gpu::buffers::{bind_group, check_storage, create, grid, read_blocking, upload};
use crate::gpu::context::Context;
use crate::gpu::gemm::RowParams;
use crate::gpu::pipelines::PipelineKey;
use crate::quant::pack::{check_len, unpack_bytes, words_per_row};
use crate::reference::dynamic::{DynamicGranularity, DynamicQuantized, DynamicScheme};

/// Twin of `DynamicUniforms` in `shaders/dynamic_quantize.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub struct DynamicUniforms {
    /// Rows.
    pub rows: u32,
    /// Elements per row.
    pub cols: u32,
    /// Packed words per row.
    pub words_per_row: u32,
    /// 1 for per-row params, 0 for one per tensor.
    pub per_row: u32,
    /// Clamp range low end.
    pub qmin: i32,
    /// Clamp range high end.
    pub qmax: i32,
    /// Invocations per grid row.
    pub dispatch_width: u32,
    /// Padding.
    pub pad: u32,
}

fn range(scheme: DynamicScheme) -> (i32, i32) {
    match scheme {
        DynamicScheme::OnnxLinear { qtype } => qtype.storage_range(),
        DynamicScheme::SymmetricPerToken => (-127, 127),
    }
}

/// A dynamic quantizer prepared once for `rows × cols` activations: pipelines, uniforms and
/// the range slots are built at construction; [`DynamicQuantizer::encode`] clears the slots
/// inside the caller's encoder and records the three passes.
#[derive(Debug)]
pub struct DynamicQuantizer {
    range: wgpu::ComputePipeline,
    params: wgpu::ComputePipeline,
    quantize: wgpu::ComputePipeline,
    uniforms: wgpu::Buffer,
    slots: wgpu::Buffer,
    rows: usize,
    cols: usize,
    groups: u32,
    workgroups: (u32, u32),
}

impl DynamicQuantizer {
    /// Prepares dynamic quantization of `rows × cols` f32 activations.
    ///
    /// # Errors
    /// [`Error::EmptyDimension`] for rows without columns; [`Error::Unsupported`] above the
    /// dispatch limits; GPU errors.
    pub fn new(
        ctx: &Context,
        scheme: DynamicScheme,
        granularity: DynamicGranularity,
        rows: usize,
        cols: usize,
    ) -> Result<Self> {
        if cols == 0 && rows > 0 {
            return Err(Error::EmptyDimension {
                what: "cols".into(),
            });
        }
        let wpr = words_per_row(cols);
        let words = (rows * wpr) as u64;
        let to_u32 = |what: &str, v: usize| {
            u32::try_from(v).map_err(|_| Error::Unsupported(format!("{what} = {v} exceeds u32")))
        };
        let (gx, gy, dispatch_width) = grid(ctx, words, 64)?;
        let (qmin, qmax) = range(scheme);
        let per_row = granularity == DynamicGranularity::PerRow;
        let uniforms = DynamicUniforms {
            rows: to_u32("rows", rows)?,
            cols: to_u32("cols", cols)?,
            words_per_row: to_u32("words per row", wpr)?,
            per_row: u32::from(per_row),
            qmin,
            qmax,
            dispatch_width,
            pad: 0,
        };
        let symmetric = scheme == DynamicScheme::SymmetricPerToken;
        let groups = if per_row { rows.max(1) } else { 1 };
        Ok(DynamicQuantizer {
            range: ctx.pipeline(PipelineKey::DynamicRange { symmetric })?,
            params: ctx.pipeline(PipelineKey::DynamicParams { symmetric })?,
            quantize: ctx.pipeline(PipelineKey::DynamicQuantize { symmetric })?,
            uniforms: upload(
                ctx,
                "dynamic uniforms",
                &[uniforms],
                wgpu::BufferUsages::UNIFORM,
            )?,
            slots: create(
                ctx,
                "dynamic range slots",
                groups as u64 * 16,
                wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
            )?,
            rows,
            cols,
            groups: to_u32("groups", groups)?,
            workgroups: (gx, gy),
        })
    }

    /// Records the quantization of `input` (`rows × cols` f32) into `output` (packed storage
    /// bytes, rows padded to whole words) and `row_params` (one [`RowParams`] per row: the
    /// group's zero point and scale).
    ///
    /// # Errors
    /// Buffer checks ([`check_storage`]); GPU errors.
    pub fn encode(
        &self,
        ctx: &Context,
        encoder: &mut wgpu::CommandEncoder,
        input: &wgpu::Buffer,
        output: &wgpu::Buffer,
        row_params: &wgpu::Buffer,
    ) -> Result<()> {
        let (rows, cols) = (self.rows, self.cols);
        if rows == 0 {
            return Ok(());
        }
        check_storage(ctx, "dynamic input", input, (rows * cols) as u64 * 4)?;
        check_storage(
            ctx,
            "dynamic output",
            output,
            (rows * words_per_row(cols)) as u64 * 4,
        )?;
        check_storage(ctx, "row params", row_params, rows as u64 * 8)?;
        // Cleared inside the caller's encoder, so it is ordered with the passes.
        encoder.clear_buffer(&self.slots, 0, None);
        let buffers = [&self.uniforms, input, &self.slots, output, row_params];
        let range_group = bind_group(ctx, "dynamic_range", &self.range, &buffers[..3]);
        // The params pass reads no input, so its layout has bindings 0 and 2 only.
        let params_group = ctx.device().create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("dynamic_params"),
            layout: &self.params.get_bind_group_layout(0),
            entries: &[
                wgpu::BindGroupEntry {
                    binding: 0,
                    resource: self.uniforms.as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 2,
                    resource: self.slots.as_entire_binding(),
                },
            ],
        });
        let quantize_group = bind_group(ctx, "dynamic_quantize", &self.quantize, &buffers);
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("dynamic quantize"),
            timestamp_writes: None,
        });
        pass.set_pipeline(&self.range);
        pass.set_bind_group(0, &range_group, &[]);
        pass.dispatch_workgroups(self.workgroups.0, self.workgroups.1, 1);
        pass.set_pipeline(&self.params);
        pass.set_bind_group(0, &params_group, &[]);
        pass.dispatch_workgroups(self.groups.div_ceil(64), 1, 1);
        pass.set_pipeline(&self.quantize);
        pass.set_bind_group(0, &quantize_group, &[]);
        pass.dispatch_workgroups(self.workgroups.0, self.workgroups.1, 1);
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
        .encode(ctx, encoder, input, output, row_params)
}

/// Dynamically quantizes on the GPU and reads back the bytes and the per-group params
/// (blocking helper).
///
/// # Errors
/// As [`encode_dynamic_quantize`], plus [`Error::ShapeMismatch`] for `x`.
pub fn dynamic_quantize_blocking(
    ctx: &Context,
    x: &[f32],
    rows: usize,
    cols: usize,
    scheme: DynamicScheme,
    granularity: DynamicGranularity,
) -> Result<DynamicQuantized> {
    check_len("dynamic quantize input", x.len(), rows, cols)?;
    let (bytes, row_params) =
        dynamic_quantize_buffers_blocking(ctx, x, rows, cols, scheme, granularity)?;
    let groups = match granularity {
        DynamicGranularity::PerRow => rows,
        DynamicGranularity::PerTensor => rows.min(1),
    };
    Ok(DynamicQuantized {
        qtype: scheme.qtype(),
        bytes,
        scales: row_params[..groups].iter().map(|p| p.scale).collect(),
        zero_points: row_params[..groups].iter().map(|p| p.zero_point).collect(),
    })
}

/// The storage bytes and every row's [`RowParams`] as the GPU wrote them.
///
/// # Errors
/// As [`dynamic_quantize_blocking`].
pub fn dynamic_quantize_buffers_blocking(
    ctx: &Context,
    x: &[f32],
    rows: usize,
    cols: usize,
    scheme: DynamicScheme,
    granularity: DynamicGranularity,
) -> Result<(Vec<u8>, Vec<RowParams>)> {
    check_len("dynamic quantize input", x.len(), rows, cols)?;
    if rows == 0 {
        return Ok((Vec::new(), Vec::new()));
    }
    let input = upload(ctx, "dynamic input", x, wgpu::BufferUsages::STORAGE)?;
    let words = (rows * words_per_row(cols)) as u64;
    let usage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC;
    let output = create(ctx, "dynamic output", words * 4, usage)?;
    let params = create(ctx, "row params", rows as u64 * 8, usage)?;
    let mut encoder = ctx.device().create_command_encoder(&Default::default());
    encode_dynamic_quantize(
        ctx,
        &mut encoder,
        scheme,
        granularity,
        rows,
        cols,
        &input,
        &output,
        &params,
    )?;
    ctx.queue().submit([encoder.finish()]);
    let packed: Vec<u32> = bytemuck::pod_collect_to_vec(&read_blocking(ctx, &output, words * 4)?);
    let row_params: Vec<RowParams> =
        bytemuck::pod_collect_to_vec(&read_blocking(ctx, &params, rows as u64 * 8)?);
    Ok((unpack_bytes(&packed, rows, cols)?, row_params))
}
