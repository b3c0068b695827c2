//! Encoding a layer: prepared dispatches (bind groups and uniforms) cached per call
//! signature, splits along M and N where the binding or dispatch limits require them, and
//! the async and blocking runs.

use std::sync::Arc;

use half::f16;

use crate::error::{Error, Result};
use crate::gpu::buffers::{check_buffer, create, read, upload};
use crate::gpu::context::Context;
use crate::gpu::pipelines::EpilogueKind;
use crate::quant::epilogue::Epilogue;
use crate::quant::pack::{check_len, pack_bytes, unpack_bytes, words_per_row};
use crate::reference::gemm::GemmOutput;

use super::{ActivationInput, GEMV_MAX_ROWS, MatmulUniforms, QLinear, RowParams, as_u64, bytes_of};

/// How many recent `(M, input, rows, output)` combinations a layer keeps prepared. The cache
/// holds references to those buffers until an entry is evicted.
pub const DISPATCH_CACHE_ENTRIES: usize = 8;

/// What a prepared set of dispatches depends on besides the layer itself.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct DispatchKey {
    m: usize,
    input: wgpu::Buffer,
    rows: Option<wgpu::Buffer>,
    output: wgpu::Buffer,
}

/// One recorded dispatch: its pipeline, bind group, grid and the uniforms it binds.
#[derive(Debug)]
pub(super) struct Dispatch {
    pipeline: wgpu::ComputePipeline,
    group: wgpu::BindGroup,
    workgroups: (u32, u32),
    _uniforms: wgpu::Buffer,
}
/// A binding of `size` bytes of `buffer` from `offset`.
fn range(buffer: &wgpu::Buffer, offset: u64, size: u64) -> wgpu::BufferBinding<'_> {
    wgpu::BufferBinding {
        buffer,
        offset,
        size: wgpu::BufferSize::new(size),
    }
}
impl QLinear {
    /// Records `output = epilogue(input × Wᵀ + bias)` for `m` rows into `encoder`.
    ///
    /// `input` holds `m` packed rows of `ceil(K/4)` words (storage bytes, rows padded with
    /// zero bytes: what [`crate::gpu::quantize::encode_quantize`] and a requantizing layer
    /// write). `rows` carries one [`RowParams`] per row for `ActivationInput::PerRow`: the
    /// values in a GPU buffer cannot be checked here; the dynamic quantizer writes valid ones,
    /// and [`QLinear::check_row_params`] checks host-made ones before they are uploaded (as
    /// [`QLinear::run_blocking`] does).
    ///
    /// # Errors
    /// Buffer checks ([`check_buffer`](crate::gpu::buffers::check_buffer): usage, size, destroyed or of another device),
    /// [`Error::SizeOverflow`] when `m` rows in bytes overflow, [`Error::BufferAliasing`]
    /// when `output` is `input` or `rows`, [`Error::Mismatch`] when `rows` is missing or
    /// unexpected, [`Error::Unsupported`] above the dispatch limits.
    pub fn encode(
        &self,
        ctx: &Context,
        encoder: &mut wgpu::CommandEncoder,
        m: usize,
        input: &wgpu::Buffer,
        rows: Option<&wgpu::Buffer>,
        output: &wgpu::Buffer,
    ) -> Result<()> {
        let k = self.weights.k;
        if m == 0 {
            return Ok(());
        }
        let k_words = words_per_row(k);
        let a_row = bytes_of("an activation row", as_u64("K words", k_words)?, 4)?;
        let out_row = bytes_of(
            "an output row",
            as_u64("output words", self.output_words_per_row())?,
            4,
        )?;
        let m64 = as_u64("M", m)?;
        // Every size below is at most one of these three, so plain arithmetic on them is safe.
        let a_bytes = bytes_of("activations (M rows)", m64, a_row)?;
        let out_bytes = bytes_of("output (M rows)", m64, out_row)?;
        let row_bytes = bytes_of("row params (M rows)", m64, 8)?;
        check_buffer(ctx, "activations", input, a_bytes)?;
        check_buffer(ctx, "output", output, out_bytes)?;
        crate::gpu::buffers::check_distinct(("activations", input), ("output", output))?;
        let per_row_params = matches!(self.input, ActivationInput::PerRow { .. });
        let rows = match (self.input, rows) {
            (ActivationInput::PerRow { .. }, Some(r)) => {
                check_buffer(ctx, "row params", r, row_bytes)?;
                crate::gpu::buffers::check_distinct(("row params", r), ("output", output))?;
                r
            }
            (ActivationInput::PerRow { .. }, None) => {
                return Err(Error::Mismatch(
                    "this layer takes per-row activation params: pass a RowParams buffer".into(),
                ));
            }
            (ActivationInput::Static { .. }, None) => &self.static_rows,
            (ActivationInput::Static { .. }, Some(_)) => {
                return Err(Error::Mismatch(
                    "this layer has a static activation zero point; it takes no RowParams".into(),
                ));
            }
        };
        let key = DispatchKey {
            m,
            input: input.clone(),
            rows: per_row_params.then(|| rows.clone()),
            output: output.clone(),
        };
        let poisoned = || Error::Gpu("dispatch cache lock poisoned".into());
        let cached = self
            .dispatch_cache
            .lock()
            .map_err(|_| poisoned())?
            .get(&key)
            .cloned();
        let dispatches = match cached {
            Some(d) => d,
            None => {
                let prepared = Arc::new(self.prepare_dispatches(ctx, m, input, rows, output)?);
                let mut cache = self.dispatch_cache.lock().map_err(|_| poisoned())?;
                if cache.len() >= DISPATCH_CACHE_ENTRIES {
                    cache.clear();
                }
                cache.insert(key, prepared.clone());
                prepared
            }
        };
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("matmul_i8"),
            timestamp_writes: None,
        });
        for d in dispatches.iter() {
            pass.set_pipeline(&d.pipeline);
            pass.set_bind_group(0, &d.group, &[]);
            pass.dispatch_workgroups(d.workgroups.0, d.workgroups.1, 1);
        }
        Ok(())
    }

    /// Builds the bind groups and uniforms of every dispatch of one call (split along M and
    /// N as the binding limit requires), inside a validation error scope.
    fn prepare_dispatches(
        &self,
        ctx: &Context,
        m: usize,
        input: &wgpu::Buffer,
        rows: &wgpu::Buffer,
        output: &wgpu::Buffer,
    ) -> Result<Vec<Dispatch>> {
        let (n, k) = (self.weights.n, self.weights.k);
        let k_words = words_per_row(k);
        let a_row = k_words as u64 * 4;
        let out_row = self.output_words_per_row() as u64 * 4;
        let per_row_params = matches!(self.input, ActivationInput::PerRow { .. });
        let to_u32 = |what: &str, v: usize| {
            u32::try_from(v).map_err(|_| Error::Unsupported(format!("{what} = {v} exceeds u32")))
        };
        let pad = (4 * k_words - k) as i32;
        let device = ctx.device();
        let align = u64::from(device.limits().min_storage_buffer_offset_alignment);
        let gemv = m <= GEMV_MAX_ROWS;
        let pipeline = if gemv {
            &self.gemv_pipeline
        } else {
            &self.pipeline
        };
        let (cols_per_group, rows_per_group) = if gemv {
            self.gemv_variant.extent()
        } else {
            self.variant.extent()
        };
        let (cols_per_group, rows_per_group) = (cols_per_group as usize, rows_per_group as usize);
        let m_chunk = self.rows_per_dispatch(
            ctx,
            m,
            (a_row, out_row),
            per_row_params,
            (cols_per_group, rows_per_group),
        )?;
        // Every buffer and bind group below is made through `captured`.
        let mut dispatches = Vec::new();
        for m0 in (0..m).step_by(m_chunk) {
            let m1 = (m0 + m_chunk).min(m);
            let rows_here = m1 - m0;
            // (exact byte offset, aligned binding offset, binding size) of each M-split part.
            let part = |row_bytes: u64| {
                let start = m0 as u64 * row_bytes;
                let base = start / align * align;
                (start, base, start + rows_here as u64 * row_bytes - base)
            };
            let (a, out, rp) = (part(a_row), part(out_row), part(8));
            for (chunk, channels) in self.weights.chunks.iter().zip(&self.channel_buffers) {
                let uniforms = MatmulUniforms {
                    m: to_u32("M", rows_here)?,
                    n: to_u32("N", chunk.n1 - chunk.n0)?,
                    k: to_u32("K", k)?,
                    k_words: to_u32("K words", k_words)?,
                    out_zero_point: self.epilogue_uniforms.out_zero_point,
                    clamp_min: self.epilogue_uniforms.clamp_min,
                    clamp_max: self.epilogue_uniforms.clamp_max,
                    a_pad_correction: if self.variant.a_is_u8 { 128 * pad } else { 0 },
                    n_total: to_u32("N", n)?,
                    col_offset: to_u32("column offset", chunk.n0)?,
                    a_word_offset: ((a.0 - a.1) / 4) as u32,
                    out_word_offset: ((out.0 - out.1) / 4) as u32,
                    row_offset: ((rp.0 - rp.1) / 8) as u32,
                    out_scale_bits: self.epilogue_uniforms.out_scale_bits,
                    out_inv_scale: self.epilogue_uniforms.out_inv_scale,
                    pad: 0,
                };
                let uniform_buf = upload(
                    ctx,
                    "matmul uniforms",
                    &[uniforms],
                    wgpu::BufferUsages::UNIFORM,
                )?;

                let row_binding = if per_row_params {
                    wgpu::BindingResource::Buffer(range(rows, rp.1, rp.2))
                } else {
                    rows.as_entire_binding()
                };
                let resources = [
                    uniform_buf.as_entire_binding(),
                    wgpu::BindingResource::Buffer(range(input, a.1, a.2)),
                    chunk.buffer.as_entire_binding(),
                    channels.as_entire_binding(),
                    row_binding,
                    wgpu::BindingResource::Buffer(range(output, out.1, out.2)),
                ];
                let entries: Vec<wgpu::BindGroupEntry> = resources
                    .into_iter()
                    .enumerate()
                    .map(|(i, resource)| wgpu::BindGroupEntry {
                        binding: i as u32,
                        resource,
                    })
                    .collect();
                let group = crate::gpu::buffers::captured(ctx, "matmul_i8 bind group", |device| {
                    device.create_bind_group(&wgpu::BindGroupDescriptor {
                        label: Some("matmul_i8"),
                        layout: &pipeline.get_bind_group_layout(0),
                        entries: &entries,
                    })
                })?;
                dispatches.push(Dispatch {
                    pipeline: pipeline.clone(),
                    group,
                    workgroups: (
                        to_u32(
                            "workgroups along N",
                            (chunk.n1 - chunk.n0).div_ceil(cols_per_group),
                        )?,
                        to_u32("workgroups along M", rows_here.div_ceil(rows_per_group))?,
                    ),
                    _uniforms: uniform_buf,
                });
            }
        }
        Ok(dispatches)
    }

    /// Rows per dispatch: all of them when the activations, outputs and row params fit the
    /// binding limit and the dispatch limit, else as many as fit with one alignment unit to
    /// spare (each part is bound from an aligned offset below its first row).
    fn rows_per_dispatch(
        &self,
        ctx: &Context,
        m: usize,
        (a_row, out_row): (u64, u64),
        per_row: bool,
        (cols_per_group, rows_per_group): (usize, usize),
    ) -> Result<usize> {
        let limit = ctx.binding_limit();
        let limits = ctx.device().limits();
        let n_groups = self
            .weights
            .chunks
            .iter()
            .map(|c| (c.n1 - c.n0).div_ceil(cols_per_group))
            .max()
            .unwrap_or(0);
        if n_groups > limits.max_compute_workgroups_per_dimension as usize {
            return Err(Error::Unsupported(format!(
                "{n_groups} workgroups along N exceed max_compute_workgroups_per_dimension"
            )));
        }
        let dispatch_rows =
            u64::from(limits.max_compute_workgroups_per_dimension) * rows_per_group as u64;
        // `encode` checked these products.
        let m64 = as_u64("M", m)?;
        let whole = bytes_of("activations", m64, a_row)?
            .max(bytes_of("output", m64, out_row)?)
            .max(if per_row {
                bytes_of("row params", m64, 8)?
            } else {
                0
            });
        if whole <= limit && m64 <= dispatch_rows {
            return Ok(m);
        }
        let room = limit.saturating_sub(u64::from(limits.min_storage_buffer_offset_alignment));
        let mut fit = (room / a_row).min(room / out_row).min(dispatch_rows);
        if per_row {
            fit = fit.min(room / 8);
        }
        if fit == 0 {
            return Err(Error::Unsupported(format!(
                "one row of {a_row} activation or {out_row} output bytes exceeds the storage binding limit of {limit}"
            )));
        }
        Ok(usize::try_from(fit).unwrap_or(usize::MAX))
    }

    /// Blocking form of [`QLinear::run`] (native only).
    ///
    /// # Errors
    /// As [`QLinear::run`].
    #[cfg(not(target_arch = "wasm32"))]
    pub fn run_blocking(
        &self,
        ctx: &Context,
        a: &[u8],
        m: usize,
        rows: Option<&[RowParams]>,
    ) -> Result<GemmOutput> {
        pollster::block_on(self.run(ctx, a, m, rows))
    }

    /// Uploads `a` (storage bytes, `m × K`), runs the layer and reads the result back
    /// without blocking.
    /// `rows` gives the per-row params for `ActivationInput::PerRow`.
    ///
    /// # Errors
    /// As [`QLinear::encode`], plus [`Error::ShapeMismatch`] for `a` or `rows`;
    /// [`Error::ZeroPointOutOfRange`] for a row's zero point outside the activations'
    /// storage range; [`Error::InvalidScale`] for a row scale that is not positive, finite
    /// and normal when the epilogue uses it (dynamic dequantization).
    pub async fn run(
        &self,
        ctx: &Context,
        a: &[u8],
        m: usize,
        rows: Option<&[RowParams]>,
    ) -> Result<GemmOutput> {
        let k = self.weights.k;
        check_len("activations", a.len(), m, k)?;
        let packed = pack_bytes(a, m, k)?;
        let input = upload(ctx, "activations", &packed, wgpu::BufferUsages::STORAGE)?;
        let row_buf = match rows {
            Some(r) => {
                if r.len() != m {
                    return Err(Error::LengthMismatch {
                        what: "row params".into(),
                        got: r.len(),
                        expected: m,
                    });
                }
                self.check_row_params(r)?;
                Some(upload(ctx, "row params", r, wgpu::BufferUsages::STORAGE)?)
            }
            None => None,
        };
        let out_bytes = bytes_of(
            "output (M rows)",
            as_u64("M", m)?,
            bytes_of(
                "an output row",
                as_u64("output words", self.output_words_per_row())?,
                4,
            )?,
        )?;
        let output = create(
            ctx,
            "output",
            out_bytes,
            wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
        )?;
        ctx.submit("matmul_i8", |encoder| {
            self.encode(ctx, encoder, m, &input, row_buf.as_ref(), &output)
        })?;
        let bytes = read(ctx, &output, out_bytes).await?;
        let words: Vec<u32> = bytemuck::pod_collect_to_vec(&bytes);
        let n = self.weights.n;
        Ok(match self.variant.epilogue {
            EpilogueKind::I32 => GemmOutput::I32(words.iter().map(|&w| w as i32).collect()),
            EpilogueKind::DequantF32 => {
                GemmOutput::F32(words.iter().map(|&w| f32::from_bits(w)).collect())
            }
            EpilogueKind::DequantF16 => {
                let wpr = n.div_ceil(2);
                GemmOutput::F16(
                    (0..m)
                        .flat_map(|r| (0..n).map(move |c| (r, c)))
                        .map(|(r, c)| {
                            f16::from_bits((words[r * wpr + c / 2] >> (16 * (c % 2))) as u16)
                        })
                        .collect(),
                )
            }
            _ => {
                let qtype = match &self.epilogue {
                    Epilogue::Requant(r) => r.out_qtype,
                    Epilogue::DequantRequant(r) => r.out_qtype,
                    _ => unreachable!("packed kinds come from Requant or DequantRequant"),
                };
                GemmOutput::Quantized {
                    qtype,
                    bytes: unpack_bytes(&words, m, n)?,
                }
            }
        })
    }
}
