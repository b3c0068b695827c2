//! Static quantize and dequantize on the GPU (`shaders/quantize.wgsl`), per tensor or per
//! axis, under any convention. CPU twins: [`crate::reference::quantize`].

use crate::error::{Error, Result};
use crate::gpu::buffers::{bind_group, check_storage, grid, read_blocking, upload};
use crate::gpu::context::Context;
use crate::gpu::pipelines::PipelineKey;
use crate::quant::convention::{Convention, ScaleOp};
use crate::quant::pack::{unpack_bytes, words_per_row};
use crate::quant::params::QuantParams;
use crate::quant::qtype::QType;
use crate::quant::scalar::reciprocal_scale;

/// Twin of `QuantizeUniforms` in `shaders/quantize.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub struct QuantizeUniforms {
    /// Rows (product of all dimensions but the last).
    pub rows: u32,
    /// Elements per row (the last dimension).
    pub cols: u32,
    /// Packed words per row, `ceil(cols / 4)`.
    pub words_per_row: u32,
    /// Elements per step of the quantized axis.
    pub inner: u32,
    /// Channels along the axis (1 per tensor).
    pub channels: u32,
    /// Clamp range low end.
    pub qmin: i32,
    /// Clamp range high end.
    pub qmax: i32,
    /// Invocations per grid row (see [`grid`]).
    pub dispatch_width: u32,
}

/// Twin of `ChannelQuant` in `shaders/quantize.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub struct ChannelQuant {
    /// The scale's bits.
    pub scale_bits: u32,
    /// `f32(1 / s)`, computed exactly on the host (used by the reciprocal convention).
    pub inv_scale: f32,
    /// The zero point.
    pub zero_point: i32,
    /// Padding to 16 bytes.
    pub pad: u32,
}

/// The smallest scale the reciprocal-multiply path accepts on the GPU: below it, `x * (1/s)`
/// of a subnormal `x` can reach 0.5 and round to ±1, which a GPU that flushes subnormals to
/// zero would not reproduce. (The division path works on bits and has no such limit.)
pub const MIN_RECIPROCAL_SCALE: f32 = 2.350_988_7e-38; // 2^-125

/// `(rows, cols)` of a tensor whose last dimension is the packed one.
fn rows_cols(shape: &[usize]) -> Result<(usize, usize)> {
    let (&cols, outer) = shape.split_last().ok_or_else(|| Error::InvalidConfig {
        what: "shape".into(),
        value: "[]".into(),
        reason: "needs at least one dimension".into(),
    })?;
    Ok((outer.iter().product(), cols))
}

fn to_u32(what: &str, v: usize) -> Result<u32> {
    u32::try_from(v).map_err(|_| Error::Unsupported(format!("{what} = {v} exceeds u32")))
}

fn uniforms_and_channels(
    ctx: &Context,
    convention: Convention,
    params: &QuantParams,
    shape: &[usize],
    invocations: u64,
) -> Result<(QuantizeUniforms, Vec<ChannelQuant>, (u32, u32))> {
    params.check_shape(shape)?;
    let (rows, cols) = rows_cols(shape)?;
    let total: usize = shape.iter().product();
    let (inner, channels) = match params.axis() {
        None => (total.max(1), 1),
        Some(axis) => (shape[axis + 1..].iter().product(), shape[axis]),
    };
    let mut channel_params = Vec::with_capacity(params.channels());
    for c in 0..params.channels() {
        let s = params.scale(c);
        if convention.scale_op() == ScaleOp::MultiplyByReciprocal && s < MIN_RECIPROCAL_SCALE {
            return Err(Error::InvalidConfig {
                what: format!("scale[{c}]"),
                value: format!("{s:e}"),
                reason: "below 2^-125: the reciprocal multiply of a subnormal input would depend on the GPU's flush-to-zero mode".into(),
            });
        }
        channel_params.push(ChannelQuant {
            scale_bits: s.to_bits(),
            inv_scale: reciprocal_scale(s),
            zero_point: params.zero_point(c),
            pad: 0,
        });
    }
    let (gx, gy, dispatch_width) = grid(ctx, invocations, 64)?;
    let range = params.range();
    Ok((
        QuantizeUniforms {
            rows: to_u32("rows", rows)?,
            cols: to_u32("cols", cols)?,
            words_per_row: to_u32("words per row", words_per_row(cols))?,
            inner: to_u32("inner", inner)?,
            channels: to_u32("channels", channels)?,
            qmin: range.qmin(),
            qmax: range.qmax(),
            dispatch_width,
        },
        channel_params,
        (gx, gy),
    ))
}

/// Records a quantize of `input` (f32, row-major `shape`) into `output` (packed storage
/// bytes, rows of the last dimension padded to whole words) into the caller's encoder.
/// Builds a [`Quantizer`] each call; keep one for repeated use.
///
/// # Errors
/// Shape and params errors ([`QuantParams::check_shape`]); [`Error::InvalidConfig`] for a
/// reciprocal-convention scale below [`MIN_RECIPROCAL_SCALE`]; buffer checks as
/// [`check_storage`]; [`Error::Gpu`] for wgpu errors.
pub fn encode_quantize(
    ctx: &Context,
    encoder: &mut wgpu::CommandEncoder,
    convention: Convention,
    params: &QuantParams,
    shape: &[usize],
    input: &wgpu::Buffer,
    output: &wgpu::Buffer,
) -> Result<()> {
    Quantizer::new(ctx, convention, params, shape)?.encode(ctx, encoder, input, output)
}

/// Records a dequantize of packed storage bytes `input` into f32 `output`.
///
/// # Errors
/// As [`encode_quantize`].
pub fn encode_dequantize(
    ctx: &Context,
    encoder: &mut wgpu::CommandEncoder,
    params: &QuantParams,
    shape: &[usize],
    input: &wgpu::Buffer,
    output: &wgpu::Buffer,
) -> Result<()> {
    let (rows, cols) = rows_cols(shape)?;
    let elements = (rows * cols) as u64;
    let (uniforms, channels, (gx, gy)) =
        uniforms_and_channels(ctx, Convention::Onnx, params, shape, elements)?;
    check_storage(
        ctx,
        "dequantize input",
        input,
        (rows * words_per_row(cols)) as u64 * 4,
    )?;
    check_storage(ctx, "dequantize output", output, elements * 4)?;
    if elements == 0 {
        return Ok(());
    }
    let signed = params.qtype() == QType::I8;
    let pipeline = ctx.pipeline(PipelineKey::Dequantize { signed })?;
    let uniform_buf = upload(
        ctx,
        "dequantize uniforms",
        &[uniforms],
        wgpu::BufferUsages::UNIFORM,
    )?;
    let channel_buf = upload(
        ctx,
        "dequantize channels",
        &channels,
        wgpu::BufferUsages::STORAGE,
    )?;
    let group = bind_group(
        ctx,
        "dequantize",
        &pipeline,
        &[&uniform_buf, &channel_buf, output, input],
    );
    let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
        label: Some("dequantize"),
        timestamp_writes: None,
    });
    pass.set_pipeline(&pipeline);
    pass.set_bind_group(0, &group, &[]);
    pass.dispatch_workgroups(gx, gy, 1);
    Ok(())
}

/// Quantizes on the GPU and returns one storage byte per element (blocking helper).
///
/// # Errors
/// As [`encode_quantize`], plus [`Error::ShapeMismatch`] when `x` does not match `shape`.
pub fn quantize_blocking(
    ctx: &Context,
    convention: Convention,
    x: &[f32],
    shape: &[usize],
    params: &QuantParams,
) -> Result<Vec<u8>> {
    let expected: usize = shape.iter().product();
    if x.len() != expected {
        return Err(Error::ShapeMismatch {
            what: "quantize input".into(),
            shape: shape.to_vec(),
            expected,
            got: x.len(),
        });
    }
    let (rows, cols) = rows_cols(shape)?;
    let usage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC;
    let input = upload(ctx, "quantize input", x, wgpu::BufferUsages::STORAGE)?;
    let words = rows * words_per_row(cols);
    let output = crate::gpu::buffers::create(ctx, "quantize output", words as u64 * 4, usage)?;
    let mut encoder = ctx.device().create_command_encoder(&Default::default());
    encode_quantize(
        ctx,
        &mut encoder,
        convention,
        params,
        shape,
        &input,
        &output,
    )?;
    ctx.queue().submit([encoder.finish()]);
    let bytes = read_blocking(ctx, &output, words as u64 * 4)?;
    unpack_bytes(&bytemuck::pod_collect_to_vec::<u8, u32>(&bytes), rows, cols)
}

/// Dequantizes storage bytes on the GPU (blocking helper).
///
/// # Errors
/// As [`encode_dequantize`], plus [`Error::ShapeMismatch`] when `q` does not match `shape`.
pub fn dequantize_blocking(
    ctx: &Context,
    q: &[u8],
    shape: &[usize],
    params: &QuantParams,
) -> Result<Vec<f32>> {
    let (rows, cols) = rows_cols(shape)?;
    let packed = crate::quant::pack::pack_bytes(q, rows, cols)?;
    let input = upload(
        ctx,
        "dequantize input",
        &packed,
        wgpu::BufferUsages::STORAGE,
    )?;
    let n = (rows * cols) as u64;
    let usage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC;
    let output = crate::gpu::buffers::create(ctx, "dequantize output", n * 4, usage)?;
    let mut encoder = ctx.device().create_command_encoder(&Default::default());
    encode_dequantize(ctx, &mut encoder, params, shape, &input, &output)?;
    ctx.queue().submit([encoder.finish()]);
    let bytes = read_blocking(ctx, &output, n * 4)?;
    Ok(bytemuck::pod_collect_to_vec::<u8, f32>(&bytes))
}

/// A static quantizer prepared once for a shape and params: the pipeline, uniforms and
/// channel params are built at construction, so [`Quantizer::encode`] allocates only a bind
/// group (the per-call functions above build everything each time).
#[derive(Debug)]
pub struct Quantizer {
    pipeline: wgpu::ComputePipeline,
    uniforms: wgpu::Buffer,
    channels: wgpu::Buffer,
    workgroups: (u32, u32),
    input_bytes: u64,
    output_bytes: u64,
}

impl Quantizer {
    /// Prepares the quantization of `shape` tensors with `params` under `convention`.
    ///
    /// # Errors
    /// As [`encode_quantize`].
    pub fn new(
        ctx: &Context,
        convention: Convention,
        params: &QuantParams,
        shape: &[usize],
    ) -> Result<Self> {
        let (rows, cols) = rows_cols(shape)?;
        let words = (rows * words_per_row(cols)) as u64;
        let (uniforms, channels, (gx, gy)) =
            uniforms_and_channels(ctx, convention, params, shape, words)?;
        Ok(Quantizer {
            pipeline: ctx.pipeline(PipelineKey::Quantize { convention })?,
            uniforms: upload(
                ctx,
                "quantize uniforms",
                &[uniforms],
                wgpu::BufferUsages::UNIFORM,
            )?,
            channels: upload(
                ctx,
                "quantize channels",
                &channels,
                wgpu::BufferUsages::STORAGE,
            )?,
            workgroups: (gx, gy),
            input_bytes: (rows * cols) as u64 * 4,
            output_bytes: words * 4,
        })
    }

    /// Records the quantization of `input` (f32) into `output` (packed storage bytes).
    ///
    /// # Errors
    /// Buffer checks as [`check_storage`].
    pub fn encode(
        &self,
        ctx: &Context,
        encoder: &mut wgpu::CommandEncoder,
        input: &wgpu::Buffer,
        output: &wgpu::Buffer,
    ) -> Result<()> {
        check_storage(ctx, "quantize input", input, self.input_bytes)?;
        check_storage(ctx, "quantize output", output, self.output_bytes)?;
        if self.output_bytes == 0 {
            return Ok(());
        }
        let group = bind_group(
            ctx,
            "quantize",
            &self.pipeline,
            &[&self.uniforms, &self.channels, input, output],
        );
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("quantize"),
            timestamp_writes: None,
        });
        pass.set_pipeline(&self.pipeline);
        pass.set_bind_group(0, &group, &[]);
        pass.dispatch_workgroups(self.workgroups.0, self.workgroups.1, 1);
        Ok(())
    }
}
