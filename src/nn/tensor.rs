//! Typed GPU tensors: a buffer with its shape, element type and, for quantized data, the
//! quantization it was made with. Layers check every tensor they are given against what they
//! were built for, so a tensor quantized with other params is an error, never a wrong number.
//!
//! Tensors are matrices `[rows, cols]` (a batch of rows). A tensor is allocated for a row
//! capacity and holds any number of rows up to it; packing and row padding are internal.

use std::sync::Mutex;

use half::f16;

use crate::error::{Error, Result};
use crate::gpu::buffers::{create, read};
use crate::gpu::context::Context;
use crate::quant::pack::{pack_bytes, unpack_bytes};
use crate::quant::params::QuantParams;

pub use crate::nn::spec::{ElementType, Quantization, TensorSpec, describe_params, same_params};

/// A matrix on the GPU: `rows` rows of `spec.cols` elements, in a buffer sized for
/// `capacity` rows. Dynamically quantized tensors also carry one `RowParams` (zero point,
/// scale) per row, written by the quantizer that made them.
#[derive(Debug)]
pub struct Tensor {
    spec: TensorSpec,
    rows: usize,
    capacity: usize,
    buffer: wgpu::Buffer,
    row_params: Option<wgpu::Buffer>,
    /// A mappable buffer reused by every readback.
    staging: Mutex<Option<wgpu::Buffer>>,
}

const USAGE: wgpu::BufferUsages = wgpu::BufferUsages::STORAGE
    .union(wgpu::BufferUsages::COPY_SRC)
    .union(wgpu::BufferUsages::COPY_DST);

impl Tensor {
    /// An empty tensor (0 rows) of `spec` with room for `capacity` rows.
    ///
    /// # Errors
    /// [`Error::SizeOverflow`], and GPU allocation errors ([`Error::Unsupported`] above
    /// `max_buffer_size`, [`Error::Gpu`]).
    pub fn new(ctx: &Context, spec: TensorSpec, capacity: usize) -> Result<Self> {
        let bytes = spec.bytes_for_rows(capacity)?;
        let buffer = create(ctx, "tensor", bytes, USAGE)?;
        let row_params = if spec.is_dynamic() {
            let bytes = (capacity as u64)
                .checked_mul(8)
                .ok_or_else(|| Error::SizeOverflow {
                    what: format!("row params of {capacity} rows"),
                })?;
            Some(create(ctx, "tensor row params", bytes, USAGE)?)
        } else {
            None
        };
        Ok(Tensor {
            spec,
            rows: 0,
            capacity,
            buffer,
            row_params,
            staging: Mutex::new(None),
        })
    }

    /// Uploads `rows × cols` f32 values (row-major, no padding).
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] and as [`Tensor::new`].
    pub fn from_f32(ctx: &Context, data: &[f32], rows: usize, cols: usize) -> Result<Self> {
        let mut t = Self::new(ctx, TensorSpec::f32(cols), rows)?;
        t.write_f32(ctx, data, rows)?;
        Ok(t)
    }

    /// Uploads `rows × cols` f16 values.
    ///
    /// # Errors
    /// As [`Tensor::from_f32`].
    pub fn from_f16(ctx: &Context, data: &[f16], rows: usize, cols: usize) -> Result<Self> {
        let spec = TensorSpec {
            cols,
            element: ElementType::F16,
            quantization: None,
        };
        check_elements(&spec, data.len(), rows)?;
        let wpr = spec.element.words_per_row(cols);
        let mut words = vec![0u32; rows * wpr];
        for r in 0..rows {
            for c in 0..cols {
                words[r * wpr + c / 2] |= u32::from(data[r * cols + c].to_bits()) << (16 * (c % 2));
            }
        }
        let mut t = Self::new(ctx, spec, rows)?;
        t.write_words(ctx, &words, rows)?;
        Ok(t)
    }

    /// Uploads statically quantized storage bytes (`rows × cols`, one byte per element) with
    /// the params they were quantized with.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`]; [`Error::Mismatch`] for per-axis params (tensors are
    /// quantized per tensor); as [`Tensor::new`].
    pub fn from_quantized(
        ctx: &Context,
        bytes: &[u8],
        rows: usize,
        cols: usize,
        params: QuantParams,
    ) -> Result<Self> {
        if params.axis().is_some() {
            return Err(Error::Mismatch(
                "activation tensors are quantized per tensor, not per axis".into(),
            ));
        }
        let (lo, hi) = (params.range().qmin(), params.range().qmax());
        if let Some(i) = bytes.iter().position(|&b| {
            let q = crate::reference::quantize::from_storage_byte(b, params.qtype());
            q < lo || q > hi
        }) {
            return Err(Error::ZeroPointOutOfRange {
                what: format!("quantized value at element {i} (outside the params' range)"),
                value: crate::reference::quantize::from_storage_byte(bytes[i], params.qtype()),
                qmin: lo,
                qmax: hi,
            });
        }
        let spec = TensorSpec::quantized(cols, params);
        check_elements(&spec, bytes.len(), rows)?;
        let words = pack_bytes(bytes, rows, cols)?;
        let mut t = Self::new(ctx, spec, rows)?;
        t.write_words(ctx, &words, rows)?;
        Ok(t)
    }

    /// Uploads a host tensor with its spec (and the row params of a dynamic one), e.g. the
    /// output of a CPU twin.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] when the data disagrees with the spec; as [`Tensor::new`].
    pub fn from_host(ctx: &Context, host: &crate::nn::host::HostTensor) -> Result<Self> {
        use crate::nn::host::HostData;
        let (rows, cols) = (host.rows, host.spec.cols);
        match (&host.data, host.spec.element) {
            (HostData::F32(v), ElementType::F32) => Self::from_f32(ctx, v, rows, cols),
            (HostData::F16(v), ElementType::F16) => Self::from_f16(ctx, v, rows, cols),
            (HostData::I32(v), ElementType::I32) => {
                check_elements(&host.spec, v.len(), rows)?;
                let mut t = Self::new(ctx, host.spec.clone(), rows)?;
                t.write_words(ctx, bytemuck::cast_slice(v), rows)?;
                Ok(t)
            }
            (HostData::Quantized { bytes, row_params }, ElementType::Quantized(_)) => {
                check_elements(&host.spec, bytes.len(), rows)?;
                let words = pack_bytes(bytes, rows, cols)?;
                let mut t = Self::new(ctx, host.spec.clone(), rows)?;
                t.write_words(ctx, &words, rows)?;
                if t.row_params.is_none() && !row_params.is_empty() {
                    return Err(Error::TensorMismatch {
                        what: "host tensor row params".into(),
                        expected: format!("none for {}", host.spec.describe()),
                        found: format!("{} row params", row_params.len()),
                    });
                }
                if let Some(buffer) = &t.row_params {
                    if row_params.len() != rows {
                        return Err(Error::LengthMismatch {
                            what: "row params (one per row)".into(),
                            got: row_params.len(),
                            expected: rows,
                        });
                    }
                    let words: Vec<u32> = row_params
                        .iter()
                        .flat_map(|&(z, s)| [z as u32, s.to_bits()])
                        .collect();
                    if !words.is_empty() {
                        ctx.queue()
                            .write_buffer(buffer, 0, bytemuck::cast_slice(&words));
                    }
                }
                Ok(t)
            }
            _ => Err(Error::TensorMismatch {
                what: "host tensor data".into(),
                expected: host.spec.describe(),
                found: "data of another element type".into(),
            }),
        }
    }

    /// Replaces the contents with `rows × cols` f32 values (`queue.write_buffer`: no
    /// allocation; ordered before the next submit).
    ///
    /// # Errors
    /// [`Error::TensorMismatch`] unless this is an f32 tensor; [`Error::ShapeMismatch`];
    /// [`Error::CapacityExceeded`].
    pub fn write_f32(&mut self, ctx: &Context, data: &[f32], rows: usize) -> Result<()> {
        if self.spec.element != ElementType::F32 {
            return Err(Error::TensorMismatch {
                what: "write_f32".into(),
                expected: "an f32 tensor".into(),
                found: self.spec.describe(),
            });
        }
        check_elements(&self.spec, data.len(), rows)?;
        self.write_words(ctx, bytemuck::cast_slice(data), rows)
    }

    fn write_words(&mut self, ctx: &Context, words: &[u32], rows: usize) -> Result<()> {
        self.check_capacity("write", rows)?;
        ctx.check_alive()?;
        if !words.is_empty() {
            ctx.queue()
                .write_buffer(&self.buffer, 0, bytemuck::cast_slice(words));
        }
        self.rows = rows;
        Ok(())
    }

    /// [`Error::CapacityExceeded`] when `rows` exceed the capacity.
    pub(crate) fn check_capacity(&self, what: &str, rows: usize) -> Result<()> {
        if rows > self.capacity {
            return Err(Error::CapacityExceeded {
                what: what.to_string(),
                rows,
                capacity: self.capacity,
            });
        }
        Ok(())
    }

    /// Declares that the buffer now holds `rows` rows: layers call it on their outputs, and
    /// an application calls it after its own pass wrote the tensor's buffer.
    ///
    /// # Errors
    /// [`Error::CapacityExceeded`].
    pub fn set_rows(&mut self, rows: usize) -> Result<()> {
        self.check_capacity("output", rows)?;
        self.rows = rows;
        Ok(())
    }

    /// The spec: columns, element type, quantization.
    pub fn spec(&self) -> &TensorSpec {
        &self.spec
    }
    /// Rows currently held.
    pub fn rows(&self) -> usize {
        self.rows
    }
    /// Elements per row.
    pub fn cols(&self) -> usize {
        self.spec.cols
    }
    /// The most rows the buffer holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }
    /// The data buffer (for embedding: bind it in your own passes).
    pub fn buffer(&self) -> &wgpu::Buffer {
        &self.buffer
    }
    /// The per-row params buffer of a dynamically quantized tensor.
    pub fn row_params(&self) -> Option<&wgpu::Buffer> {
        self.row_params.as_ref()
    }

    /// Blocking form of [`Tensor::read_words`] (native only).
    ///
    /// # Errors
    /// As [`Tensor::read_words`].
    #[cfg(not(target_arch = "wasm32"))]
    pub fn read_words_blocking(&self, ctx: &Context) -> Result<Vec<u32>> {
        pollster::block_on(self.read_words(ctx))
    }

    /// The raw words of the current rows, without blocking. The staging buffer is created
    /// once and reused.
    ///
    /// # Errors
    /// GPU errors ([`Error::Gpu`], [`Error::DeviceLost`]).
    pub async fn read_words(&self, ctx: &Context) -> Result<Vec<u32>> {
        ctx.check_alive()?;
        let bytes = self.spec.bytes_for_rows(self.rows)?;
        if bytes == 0 {
            return Ok(Vec::new());
        }
        // Borrow the staging buffer for this read (a concurrent read makes its own), so no
        // lock is held while waiting.
        let lock = || {
            self.staging
                .lock()
                .map_err(|_| Error::Gpu("staging lock poisoned".into()))
        };
        let taken = lock()?.take();
        let staging = match taken {
            Some(buffer) => buffer,
            None => create(
                ctx,
                "tensor staging",
                self.spec.bytes_for_rows(self.capacity)?,
                wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            )?,
        };
        let submitted = ctx.submit("Tensor readback", |encoder| {
            encoder.copy_buffer_to_buffer(&self.buffer, 0, &staging, 0, bytes);
            Ok(())
        });
        let data = match submitted {
            Ok(()) => crate::gpu::buffers::map_read(ctx, &staging, bytes).await,
            Err(e) => Err(e),
        };
        lock()?.get_or_insert(staging);
        Ok(bytemuck::pod_collect_to_vec(&data?))
    }

    /// The values of an f32 tensor.
    ///
    /// # Errors
    /// [`Error::TensorMismatch`] for another element type; GPU errors.
    pub async fn read_f32(&self, ctx: &Context) -> Result<Vec<f32>> {
        self.expect_element("read_f32", ElementType::F32)?;
        let words = self.read_words(ctx).await?;
        Ok(words.into_iter().map(f32::from_bits).collect())
    }

    /// Blocking form of [`Tensor::read_f32`] (native only).
    ///
    /// # Errors
    /// As [`Tensor::read_f32`].
    #[cfg(not(target_arch = "wasm32"))]
    pub fn read_f32_blocking(&self, ctx: &Context) -> Result<Vec<f32>> {
        pollster::block_on(self.read_f32(ctx))
    }

    /// The values of an f16 tensor.
    ///
    /// # Errors
    /// As [`Tensor::read_f32`].
    pub async fn read_f16(&self, ctx: &Context) -> Result<Vec<f16>> {
        self.expect_element("read_f16", ElementType::F16)?;
        let words = self.read_words(ctx).await?;
        let (rows, cols) = (self.rows, self.spec.cols);
        let wpr = cols.div_ceil(2);
        Ok((0..rows * cols)
            .map(|i| {
                let (r, c) = (i / cols, i % cols);
                f16::from_bits((words[r * wpr + c / 2] >> (16 * (c % 2))) as u16)
            })
            .collect())
    }

    /// Blocking form of [`Tensor::read_f16`] (native only).
    ///
    /// # Errors
    /// As [`Tensor::read_f16`].
    #[cfg(not(target_arch = "wasm32"))]
    pub fn read_f16_blocking(&self, ctx: &Context) -> Result<Vec<f16>> {
        pollster::block_on(self.read_f16(ctx))
    }

    /// The values of an i32 tensor.
    ///
    /// # Errors
    /// As [`Tensor::read_f32`].
    pub async fn read_i32(&self, ctx: &Context) -> Result<Vec<i32>> {
        self.expect_element("read_i32", ElementType::I32)?;
        Ok(self
            .read_words(ctx)
            .await?
            .into_iter()
            .map(|w| w as i32)
            .collect())
    }

    /// Blocking form of [`Tensor::read_i32`] (native only).
    ///
    /// # Errors
    /// As [`Tensor::read_i32`].
    #[cfg(not(target_arch = "wasm32"))]
    pub fn read_i32_blocking(&self, ctx: &Context) -> Result<Vec<i32>> {
        pollster::block_on(self.read_i32(ctx))
    }

    /// The storage bytes of a quantized tensor, one per element.
    ///
    /// # Errors
    /// [`Error::TensorMismatch`] for an unquantized tensor; GPU errors.
    pub async fn read_quantized(&self, ctx: &Context) -> Result<Vec<u8>> {
        if !matches!(self.spec.element, ElementType::Quantized(_)) {
            return Err(Error::TensorMismatch {
                what: "read_quantized".into(),
                expected: "a quantized tensor".into(),
                found: self.spec.describe(),
            });
        }
        let words = self.read_words(ctx).await?;
        unpack_bytes(&words, self.rows, self.spec.cols)
    }

    /// Blocking form of [`Tensor::read_quantized`] (native only).
    ///
    /// # Errors
    /// As [`Tensor::read_quantized`].
    #[cfg(not(target_arch = "wasm32"))]
    pub fn read_quantized_blocking(&self, ctx: &Context) -> Result<Vec<u8>> {
        pollster::block_on(self.read_quantized(ctx))
    }

    /// The per-row `(zero point, scale)` of a dynamically quantized tensor.
    ///
    /// # Errors
    /// [`Error::TensorMismatch`] for a tensor without row params; GPU errors.
    pub async fn read_row_params(&self, ctx: &Context) -> Result<Vec<(i32, f32)>> {
        let Some(buffer) = &self.row_params else {
            return Err(Error::TensorMismatch {
                what: "read_row_params".into(),
                expected: "a dynamically quantized tensor".into(),
                found: self.spec.describe(),
            });
        };
        let bytes = read(ctx, buffer, self.rows as u64 * 8).await?;
        let words: Vec<u32> = bytemuck::pod_collect_to_vec(&bytes);
        Ok(words
            .chunks_exact(2)
            .map(|p| (p[0] as i32, f32::from_bits(p[1])))
            .collect())
    }

    /// Blocking form of [`Tensor::read_row_params`] (native only).
    ///
    /// # Errors
    /// As [`Tensor::read_row_params`].
    #[cfg(not(target_arch = "wasm32"))]
    pub fn read_row_params_blocking(&self, ctx: &Context) -> Result<Vec<(i32, f32)>> {
        pollster::block_on(self.read_row_params(ctx))
    }

    fn expect_element(&self, what: &str, element: ElementType) -> Result<()> {
        if self.spec.element == element {
            Ok(())
        } else {
            Err(Error::TensorMismatch {
                what: what.into(),
                expected: format!("an {} tensor", element.name()),
                found: self.spec.describe(),
            })
        }
    }
}

/// [`Error::ShapeMismatch`] unless `len == rows * spec.cols`.
fn check_elements(spec: &TensorSpec, len: usize, rows: usize) -> Result<()> {
    let expected = rows
        .checked_mul(spec.cols)
        .ok_or_else(|| Error::SizeOverflow {
            what: format!("{rows} rows of {} elements", spec.cols),
        })?;
    if len != expected {
        return Err(Error::ShapeMismatch {
            what: format!("tensor data ({} elements)", spec.element.name()),
            shape: vec![rows, spec.cols],
            expected,
            got: len,
        });
    }
    Ok(())
}

/// Runs `step` over `steps` in order: the first reads `input`, each writes the intermediate
/// tensor of its position (one per step but the last), and the last writes `output`. The one
/// chaining loop of every sequential model.
///
/// # Errors
/// [`Error::EmptyInput`] for no steps; [`Error::LengthMismatch`] unless there is one
/// intermediate per step but the last; what `step` returns.
pub(crate) fn chain_steps<T>(
    steps: &[T],
    intermediates: &mut [Tensor],
    input: &Tensor,
    output: &mut Tensor,
    mut step: impl FnMut(&T, &Tensor, &mut Tensor) -> Result<()>,
) -> Result<()> {
    let count = steps.len();
    if count == 0 {
        return Err(Error::EmptyInput {
            what: "model layers".into(),
        });
    }
    if intermediates.len() + 1 != count {
        return Err(Error::LengthMismatch {
            what: "intermediate tensors (one per layer but the last)".into(),
            got: intermediates.len(),
            expected: count - 1,
        });
    }
    for (i, s) in steps.iter().enumerate() {
        let (done, rest) = intermediates.split_at_mut(i.min(count - 1));
        let source = if i == 0 { input } else { &done[i - 1] };
        let target = if i + 1 == count {
            &mut *output
        } else {
            &mut rest[0]
        };
        step(s, source, target)?;
    }
    Ok(())
}
