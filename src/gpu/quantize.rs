//! Static quantize and dequantize on the GPU (`shaders/quantize.wgsl`), per tensor or per
//! axis, under any convention, and the dequantize of int32 tensors
//! (`shaders/dequantize_i32.wgsl`). CPU twins: [`crate::reference::quantize`].

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};
use crate::gpu::buffers::{bind_group, check_storage, grid, read, upload};
use crate::gpu::context::Context;
use crate::gpu::pipelines::PipelineKey;
use crate::quant::convention::{Convention, ScaleOp};
use crate::quant::pack::{unpack_bytes, words_per_row};
use crate::quant::params::QuantParams;
use crate::quant::qtype::QType;
use crate::quant::scalar::reciprocal_scale;
use crate::reference::quantize::check_int32_params;

/// Twin of `QuantizeUniforms` in `shaders/quantize.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub struct QuantizeUniforms {
    /// Rows of this call (product of all dimensions but the last).
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

/// Twin of `DequantizeI32Uniforms` in `shaders/dequantize_i32.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub struct DequantizeI32Uniforms {
    /// Elements of the tensor.
    pub elements: u32,
    /// Elements per step of the scaled axis (1 per tensor).
    pub inner: u32,
    /// Channels along the axis (1 per tensor).
    pub channels: u32,
    /// Invocations per grid row (see [`grid`]).
    pub dispatch_width: u32,
}

/// The smallest scale the reciprocal-multiply path accepts on the GPU: below it, `x * (1/s)`
/// of a subnormal `x` can reach 0.5 and round to ±1, which a GPU that flushes subnormals to
/// zero would not reproduce. (The division path works on bits and has no such limit.)
pub const MIN_RECIPROCAL_SCALE: f32 = 2.350_988_7e-38; // 2^-125

/// Entries a prepared op keeps per row count, or per row count and buffers, before the
/// cache is cleared (as the GEMM's dispatch cache). Uniform buffers are 32 bytes, so this
/// covers every batch size a model sees in steady state.
pub const ROW_CACHE_ENTRIES: usize = 64;

/// Prepared GPU objects by key, cleared when full: a bounded cache shared by the clones of
/// a prepared op. Entries are built outside the lock.
#[derive(Debug)]
pub(crate) struct BoundedCache<K, V> {
    entries: Mutex<HashMap<K, V>>,
    capacity: usize,
}

impl<K: Eq + Hash, V: Clone> BoundedCache<K, V> {
    pub(crate) fn new(capacity: usize) -> Self {
        BoundedCache {
            entries: Mutex::new(HashMap::new()),
            capacity: capacity.max(1),
        }
    }

    /// The entry for `key`, built by `make` on a miss.
    pub(crate) fn get_or_try_insert(&self, key: K, make: impl FnOnce() -> Result<V>) -> Result<V> {
        let poisoned = || Error::Gpu("prepared-op cache lock poisoned".into());
        if let Some(v) = self.entries.lock().map_err(|_| poisoned())?.get(&key) {
            return Ok(v.clone());
        }
        let value = make()?;
        let mut entries = self.entries.lock().map_err(|_| poisoned())?;
        if entries.len() >= self.capacity {
            entries.clear();
        }
        entries.insert(key, value.clone());
        Ok(value)
    }
}

/// `a * b`, or [`Error::SizeOverflow`] naming `what` and both values.
pub(crate) fn checked_mul(what: &str, a: usize, b: usize) -> Result<usize> {
    a.checked_mul(b).ok_or_else(|| Error::SizeOverflow {
        what: format!("{what}: {a} * {b} overflows usize"),
    })
}

/// `v` as a `u32` for a kernel, or [`Error::SizeOverflow`] naming `what` and the value.
pub(crate) fn to_u32(what: &str, v: usize) -> Result<u32> {
    u32::try_from(v).map_err(|_| Error::SizeOverflow {
        what: format!("{what} = {v} exceeds u32"),
    })
}

/// Bytes of `count` elements of `element_bytes` each, checked.
pub(crate) fn byte_len(what: &str, count: usize, element_bytes: usize) -> Result<u64> {
    let bytes = checked_mul(what, count, element_bytes)?;
    u64::try_from(bytes).map_err(|_| Error::SizeOverflow {
        what: format!("{what}: {bytes} bytes exceed u64"),
    })
}

/// How a shape maps onto the kernel: rows of `cols`, and the quantized axis as
/// `channel = (flat / inner) % channels`, which depends only on the flat index, so any
/// prefix of the rows keeps each element's channel.
#[derive(Debug, Clone, Copy)]
struct Layout {
    rows: usize,
    cols: usize,
    inner: usize,
    channels: usize,
}

fn layout(params: &QuantParams, shape: &[usize]) -> Result<Layout> {
    params.check_shape(shape)?;
    // A rank-0 tensor is one element (the reference's rule; per-axis params were refused
    // above with AxisOutOfRange).
    let shape: &[usize] = if shape.is_empty() { &[1] } else { shape };
    let (&cols, outer) = shape.split_last().ok_or_else(|| Error::InvalidConfig {
        what: "shape".into(),
        value: "[]".into(),
        reason: "needs at least one dimension".into(),
    })?;
    let product = |dims: &[usize]| {
        dims.iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d))
            .ok_or_else(|| Error::SizeOverflow {
                what: format!("product of the dimensions {dims:?} of shape {shape:?}"),
            })
    };
    let rows = product(outer)?;
    let elements = checked_mul("quantize elements (rows * cols)", rows, cols)?;
    let (inner, channels) = match params.axis() {
        None => (1, 1),
        Some(axis) => (product(&shape[axis + 1..])?, shape[axis]),
    };
    // The kernel indexes elements and words with u32.
    to_u32("quantize elements (rows * cols)", elements)?;
    Ok(Layout {
        rows,
        cols,
        inner,
        channels,
    })
}

fn channel_params(convention: Convention, params: &QuantParams) -> Result<Vec<ChannelQuant>> {
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
    Ok(channel_params)
}

/// The uniforms of `rows` rows of `layout`, without the dispatch width.
fn base_uniforms(params: &QuantParams, layout: &Layout, rows: usize) -> Result<QuantizeUniforms> {
    let range = params.range();
    Ok(QuantizeUniforms {
        rows: to_u32("rows", rows)?,
        cols: to_u32("cols", layout.cols)?,
        words_per_row: to_u32("words per row", words_per_row(layout.cols))?,
        inner: to_u32("inner", layout.inner)?,
        channels: to_u32("channels", layout.channels)?,
        qmin: range.qmin(),
        qmax: range.qmax(),
        dispatch_width: 0,
    })
}

/// Records a quantize of `input` (f32, row-major `shape`) into `output` (packed storage
/// bytes, rows of the last dimension padded to whole words) into the caller's encoder.
/// Builds a [`Quantizer`] each call; keep one for repeated use.
///
/// # Errors
/// Shape and params errors ([`QuantParams::check_shape`]); [`Error::SizeOverflow`] for a
/// shape whose sizes overflow; [`Error::InvalidConfig`] for a reciprocal-convention scale
/// below [`MIN_RECIPROCAL_SCALE`]; buffer checks as [`check_storage`]; [`Error::Gpu`] for
/// wgpu errors.
pub fn encode_quantize(
    ctx: &Context,
    encoder: &mut wgpu::CommandEncoder,
    convention: Convention,
    params: &QuantParams,
    shape: &[usize],
    input: &wgpu::Buffer,
    output: &wgpu::Buffer,
) -> Result<()> {
    let q = Quantizer::for_shape(ctx, convention, params, shape)?;
    q.encode(ctx, encoder, q.max_rows(), input, output)
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
    let layout = layout(params, shape)?;
    let elements = layout.rows * layout.cols; // checked by `layout`
    let words = layout.rows * words_per_row(layout.cols);
    let channels = channel_params(Convention::Onnx, params)?;
    check_storage(
        ctx,
        "dequantize input",
        input,
        byte_len("dequantize input", words, 4)?,
    )?;
    check_storage(
        ctx,
        "dequantize output",
        output,
        byte_len("dequantize output", elements, 4)?,
    )?;
    if elements == 0 {
        return Ok(());
    }
    crate::gpu::buffers::check_distinct(
        ("dequantize input", input),
        ("dequantize output", output),
    )?;
    let (gx, gy, dispatch_width) = grid(ctx, elements as u64, 64)?;
    let uniforms = QuantizeUniforms {
        dispatch_width,
        ..base_uniforms(params, &layout, layout.rows)?
    };
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
    )?;
    let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
        label: Some("dequantize"),
        timestamp_writes: None,
    });
    pass.set_pipeline(&pipeline);
    pass.set_bind_group(0, &group, &[]);
    pass.dispatch_workgroups(gx, gy, 1);
    Ok(())
}

/// Blocking form of [`quantize`] (native only).
///
/// # Errors
/// As [`quantize`].
#[cfg(not(target_arch = "wasm32"))]
pub fn quantize_blocking(
    ctx: &Context,
    convention: Convention,
    x: &[f32],
    shape: &[usize],
    params: &QuantParams,
) -> Result<Vec<u8>> {
    pollster::block_on(quantize(ctx, convention, x, shape, params))
}

/// Quantizes on the GPU and returns one storage byte per element.
///
/// # Errors
/// As [`encode_quantize`], plus [`Error::ShapeMismatch`] when `x` does not match `shape`.
pub async fn quantize(
    ctx: &Context,
    convention: Convention,
    x: &[f32],
    shape: &[usize],
    params: &QuantParams,
) -> Result<Vec<u8>> {
    let q = Quantizer::for_shape(ctx, convention, params, shape)?;
    let (rows, cols) = (q.max_rows, q.cols);
    let expected = rows * cols; // checked by `for_shape`
    if x.len() != expected {
        return Err(Error::ShapeMismatch {
            what: "quantize input".into(),
            shape: shape.to_vec(),
            expected,
            got: x.len(),
        });
    }
    let usage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC;
    let input = upload(ctx, "quantize input", x, wgpu::BufferUsages::STORAGE)?;
    let bytes = byte_len("quantize output", rows * words_per_row(cols), 4)?;
    let output = crate::gpu::buffers::create(ctx, "quantize output", bytes, usage)?;
    ctx.submit("quantize", |encoder| {
        q.encode(ctx, encoder, rows, &input, &output)
    })?;
    let words = read(ctx, &output, bytes).await?;
    unpack_bytes(&bytemuck::pod_collect_to_vec::<u8, u32>(&words), rows, cols)
}

/// Blocking form of [`dequantize`] (native only).
///
/// # Errors
/// As [`dequantize`].
#[cfg(not(target_arch = "wasm32"))]
pub fn dequantize_blocking(
    ctx: &Context,
    q: &[u8],
    shape: &[usize],
    params: &QuantParams,
) -> Result<Vec<f32>> {
    pollster::block_on(dequantize(ctx, q, shape, params))
}

/// Dequantizes storage bytes on the GPU.
///
/// # Errors
/// As [`encode_dequantize`], plus [`Error::ShapeMismatch`] when `q` does not match `shape`.
pub async fn dequantize(
    ctx: &Context,
    q: &[u8],
    shape: &[usize],
    params: &QuantParams,
) -> Result<Vec<f32>> {
    let layout = layout(params, shape)?;
    let (rows, cols) = (layout.rows, layout.cols);
    let packed = crate::quant::pack::pack_bytes(q, rows, cols)?;
    let input = upload(
        ctx,
        "dequantize input",
        &packed,
        wgpu::BufferUsages::STORAGE,
    )?;
    let bytes = byte_len("dequantize output", rows * cols, 4)?;
    let usage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC;
    let output = crate::gpu::buffers::create(ctx, "dequantize output", bytes, usage)?;
    ctx.submit("dequantize", |encoder| {
        encode_dequantize(ctx, encoder, params, shape, &input, &output)
    })?;
    let out = read(ctx, &output, bytes).await?;
    Ok(bytemuck::pod_collect_to_vec::<u8, f32>(&out))
}

/// Records a dequantize of the int32 tensor `input` (row-major `shape`, one `i32` per
/// element) into f32 `output`: `f32(q) * s` per element, the scale per tensor or per channel
/// along `params.axis()`, as [`crate::reference::quantize::dequantize_i32`]. The params' zero
/// points must be 0 (int32 has no zero point); their qtype and range are not used.
///
/// # Errors
/// [`Error::ZeroPointOutOfRange`] for a non-zero zero point; shape and params errors
/// ([`QuantParams::check_shape`]); [`Error::SizeOverflow`] for a shape whose sizes overflow;
/// buffer checks as [`check_storage`]; [`Error::BufferAliasing`] when `input` is `output`;
/// [`Error::Unsupported`] above the dispatch limits; [`Error::Gpu`] for wgpu errors.
pub fn encode_dequantize_i32(
    ctx: &Context,
    encoder: &mut wgpu::CommandEncoder,
    params: &QuantParams,
    shape: &[usize],
    input: &wgpu::Buffer,
    output: &wgpu::Buffer,
) -> Result<()> {
    check_int32_params(params)?;
    let layout = layout(params, shape)?;
    let elements = layout.rows * layout.cols; // checked by `layout`
    check_storage(
        ctx,
        "dequantize_i32 input",
        input,
        byte_len("dequantize_i32 input", elements, 4)?,
    )?;
    check_storage(
        ctx,
        "dequantize_i32 output",
        output,
        byte_len("dequantize_i32 output", elements, 4)?,
    )?;
    if elements == 0 {
        return Ok(());
    }
    crate::gpu::buffers::check_distinct(
        ("dequantize_i32 input", input),
        ("dequantize_i32 output", output),
    )?;
    let (gx, gy, dispatch_width) = grid(ctx, elements as u64, 64)?;
    let uniforms = DequantizeI32Uniforms {
        elements: to_u32("dequantize_i32 elements", elements)?,
        inner: to_u32("inner", layout.inner)?,
        channels: to_u32("channels", layout.channels)?,
        dispatch_width,
    };
    let scale_bits: Vec<u32> = params.scales().iter().map(|s| s.to_bits()).collect();
    let pipeline = ctx.pipeline(PipelineKey::DequantizeI32)?;
    let uniform_buf = upload(
        ctx,
        "dequantize_i32 uniforms",
        &[uniforms],
        wgpu::BufferUsages::UNIFORM,
    )?;
    let scale_buf = upload(
        ctx,
        "dequantize_i32 scales",
        &scale_bits,
        wgpu::BufferUsages::STORAGE,
    )?;
    let group = bind_group(
        ctx,
        "dequantize_i32",
        &pipeline,
        &[&uniform_buf, &scale_buf, output, input],
    )?;
    let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
        label: Some("dequantize_i32"),
        timestamp_writes: None,
    });
    pass.set_pipeline(&pipeline);
    pass.set_bind_group(0, &group, &[]);
    pass.dispatch_workgroups(gx, gy, 1);
    Ok(())
}

/// Blocking form of [`dequantize_i32`] (native only).
///
/// # Errors
/// As [`dequantize_i32`].
#[cfg(not(target_arch = "wasm32"))]
pub fn dequantize_i32_blocking(
    ctx: &Context,
    q: &[i32],
    shape: &[usize],
    params: &QuantParams,
) -> Result<Vec<f32>> {
    pollster::block_on(dequantize_i32(ctx, q, shape, params))
}

/// Dequantizes an int32 tensor on the GPU (onnxruntime's `DequantizeLinear` with int32
/// input): `f32(q) * s` per element, equal bit for bit to
/// [`crate::reference::quantize::dequantize_i32`].
///
/// # Errors
/// As [`encode_dequantize_i32`], plus [`Error::ShapeMismatch`] when `q` does not match
/// `shape`.
pub async fn dequantize_i32(
    ctx: &Context,
    q: &[i32],
    shape: &[usize],
    params: &QuantParams,
) -> Result<Vec<f32>> {
    check_int32_params(params)?;
    let layout = layout(params, shape)?;
    let elements = layout.rows * layout.cols; // checked by `layout`
    if q.len() != elements {
        return Err(Error::ShapeMismatch {
            what: "dequantize_i32 input".into(),
            shape: shape.to_vec(),
            expected: elements,
            got: q.len(),
        });
    }
    let input = upload(ctx, "dequantize_i32 input", q, wgpu::BufferUsages::STORAGE)?;
    let bytes = byte_len("dequantize_i32 output", elements, 4)?;
    let usage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC;
    let output = crate::gpu::buffers::create(ctx, "dequantize_i32 output", bytes, usage)?;
    ctx.submit("dequantize_i32", |encoder| {
        encode_dequantize_i32(ctx, encoder, params, shape, &input, &output)
    })?;
    let out = read(ctx, &output, bytes).await?;
    Ok(bytemuck::pod_collect_to_vec::<u8, f32>(&out))
}

/// `(rows, input, output)` of a call.
type QuantizeKey = (usize, wgpu::Buffer, wgpu::Buffer);

/// A static quantizer prepared once for rows of `cols` elements, up to a row capacity, and
/// fixed params: the pipeline and channel params are built at construction. Each call
/// quantizes any `rows <= max_rows`; the uniforms of each row count and the bind group of
/// each `(rows, input, output)` are built on first use and cached (bounded by
/// [`ROW_CACHE_ENTRIES`]), so steady-state calls allocate nothing. Clones share the caches.
#[derive(Debug, Clone)]
pub struct Quantizer {
    pipeline: wgpu::ComputePipeline,
    channels: wgpu::Buffer,
    /// The uniforms with `rows` and `dispatch_width` still to fill in.
    base: QuantizeUniforms,
    max_rows: usize,
    cols: usize,
    /// Uniform buffers per row count.
    uniforms: Arc<BoundedCache<usize, wgpu::Buffer>>,
    /// Bind groups per `(rows, input, output)`.
    groups: Arc<BoundedCache<QuantizeKey, wgpu::BindGroup>>,
}

impl Quantizer {
    /// Prepares the quantization of up to `max_rows` rows of `cols` f32 values with `params`
    /// under `convention`. `params` are per tensor, per column (axis 1 of `[max_rows, cols]`)
    /// or per row (axis 0, one channel per row of the capacity: a call with fewer rows uses
    /// the first `rows` channels).
    ///
    /// # Errors
    /// As [`Quantizer::for_shape`] with the shape `[max_rows, cols]`.
    pub fn new(
        ctx: &Context,
        convention: Convention,
        params: &QuantParams,
        max_rows: usize,
        cols: usize,
    ) -> Result<Self> {
        Self::for_shape(ctx, convention, params, &[max_rows, cols])
    }

    /// Prepares the quantization of tensors of `shape` (any rank; the last dimension is the
    /// packed one): the row capacity is the product of the other dimensions, and a call with
    /// fewer rows quantizes that prefix of the tensor (each element keeps its channel).
    ///
    /// # Errors
    /// Shape and params errors ([`QuantParams::check_shape`]); [`Error::SizeOverflow`] when
    /// the element count overflows `usize` or the kernel's `u32` indices;
    /// [`Error::InvalidConfig`] for a reciprocal-convention scale below
    /// [`MIN_RECIPROCAL_SCALE`]; [`Error::Gpu`] for wgpu errors.
    pub fn for_shape(
        ctx: &Context,
        convention: Convention,
        params: &QuantParams,
        shape: &[usize],
    ) -> Result<Self> {
        let layout = layout(params, shape)?;
        let channels = channel_params(convention, params)?;
        // Checks every size at capacity, so a call's sizes fit too.
        let base = base_uniforms(params, &layout, layout.rows)?;
        to_u32(
            "quantize words (rows * words per row)",
            layout.rows * words_per_row(layout.cols),
        )?;
        Ok(Quantizer {
            pipeline: ctx.pipeline(PipelineKey::Quantize { convention })?,
            channels: upload(
                ctx,
                "quantize channels",
                &channels,
                wgpu::BufferUsages::STORAGE,
            )?,
            base,
            max_rows: layout.rows,
            cols: layout.cols,
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

    /// Records the quantization of the first `rows` rows of `input` (row-major f32, rows of
    /// `cols`) into `output` (packed storage bytes, rows padded to whole words). `rows = 0`
    /// records nothing.
    ///
    /// # Errors
    /// [`Error::CapacityExceeded`] when `rows > max_rows`; buffer checks as
    /// [`check_storage`]; [`Error::BufferAliasing`] when `input` is `output`;
    /// [`Error::Unsupported`] above the dispatch limits; [`Error::Gpu`].
    pub fn encode(
        &self,
        ctx: &Context,
        encoder: &mut wgpu::CommandEncoder,
        rows: usize,
        input: &wgpu::Buffer,
        output: &wgpu::Buffer,
    ) -> Result<()> {
        if rows > self.max_rows {
            return Err(Error::CapacityExceeded {
                what: "quantize".into(),
                rows,
                capacity: self.max_rows,
            });
        }
        if rows == 0 {
            return Ok(());
        }
        // Within the capacity, whose sizes `for_shape` checked.
        let words = rows * words_per_row(self.cols);
        check_storage(
            ctx,
            "quantize input",
            input,
            byte_len("quantize input", rows * self.cols, 4)?,
        )?;
        check_storage(
            ctx,
            "quantize output",
            output,
            byte_len("quantize output", words, 4)?,
        )?;
        if words == 0 {
            return Ok(());
        }
        crate::gpu::buffers::check_distinct(
            ("quantize input", input),
            ("quantize output", output),
        )?;
        let (gx, gy, dispatch_width) = grid(ctx, words as u64, 64)?;
        let group = self
            .groups
            .get_or_try_insert((rows, input.clone(), output.clone()), || {
                let uniforms = self.uniforms.get_or_try_insert(rows, || {
                    let uniforms = QuantizeUniforms {
                        rows: rows as u32,
                        dispatch_width,
                        ..self.base
                    };
                    upload(
                        ctx,
                        "quantize uniforms",
                        &[uniforms],
                        wgpu::BufferUsages::UNIFORM,
                    )
                })?;
                bind_group(
                    ctx,
                    "quantize",
                    &self.pipeline,
                    &[&uniforms, &self.channels, input, output],
                )
            })?;
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("quantize"),
            timestamp_writes: None,
        });
        pass.set_pipeline(&self.pipeline);
        pass.set_bind_group(0, &group, &[]);
        pass.dispatch_workgroups(gx, gy, 1);
        Ok(())
    }
}
