//! `dot4I8Packed` over word pairs on the GPU: the smoke test of the whole chain
//! (WGSL → naga → driver → readback) and the smallest example of the crate's shape: a
//! kernel built once, encoded into the caller's `wgpu::CommandEncoder`, with a blocking
//! helper on top. CPU twin: [`crate::reference::dot::dot4_i8_packed`].

use crate::error::{Error, Result};
use crate::gpu::buffers::{bind_group_of, captured, check_storage};
use crate::gpu::context::Context;

const SHADER: &str = include_str!("../../shaders/dot4_i8.wgsl");
const WORKGROUP_SIZE: u32 = 64;

/// The compiled `dot4_i8` pipeline (or its unsigned twin, `dot4_u8`).
#[derive(Debug, Clone)]
pub struct Dot4Kernel {
    pipeline: wgpu::ComputePipeline,
}

impl Dot4Kernel {
    /// Compiles the kernel on `ctx`'s device.
    ///
    /// # Errors
    /// [`Error::Gpu`] when shader or pipeline creation fails validation.
    pub fn new(ctx: &Context) -> Result<Self> {
        Self::with_entry(ctx, "dot4_i8")
    }

    /// The kernel of `dot4U8Packed`, storing each u32 result's bits as i32.
    ///
    /// # Errors
    /// As [`Dot4Kernel::new`].
    pub fn unsigned(ctx: &Context) -> Result<Self> {
        Self::with_entry(ctx, "dot4_u8")
    }

    fn with_entry(ctx: &Context, entry: &str) -> Result<Self> {
        let pipeline = captured(ctx, &format!("{entry} pipeline"), |device| {
            let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(entry),
                source: wgpu::ShaderSource::Wgsl(SHADER.into()),
            });
            device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(entry),
                layout: None,
                module: &module,
                entry_point: Some(entry),
                compilation_options: Default::default(),
                cache: None,
            })
        })?;
        Ok(Dot4Kernel { pipeline })
    }

    /// Records `out[i] = dot4I8Packed(lhs[i], rhs[i])` for `i < len` into `encoder`.
    /// Nothing is submitted; the caller owns the encoder and the queue.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a buffer without `STORAGE` usage, [`Error::BufferTooSmall`]
    /// for a buffer smaller than `len` words, [`Error::BufferUnusable`] for a destroyed buffer
    /// or one of another device, [`Error::BufferAliasing`] when `out` is an operand, [`Error::Unsupported`] above the adapter's
    /// binding or dispatch limits.
    pub fn encode(
        &self,
        ctx: &Context,
        encoder: &mut wgpu::CommandEncoder,
        lhs: &wgpu::Buffer,
        rhs: &wgpu::Buffer,
        out: &wgpu::Buffer,
        len: u32,
    ) -> Result<()> {
        if len == 0 {
            return Ok(());
        }
        check_storage(ctx, "lhs", lhs, u64::from(len) * 4)?;
        check_storage(ctx, "rhs", rhs, u64::from(len) * 4)?;
        check_storage(ctx, "out", out, u64::from(len) * 4)?;
        let groups = len.div_ceil(WORKGROUP_SIZE);
        let max = ctx.device().limits().max_compute_workgroups_per_dimension;
        if groups > max {
            return Err(Error::Unsupported(format!(
                "{len} words need {groups} workgroups; max_compute_workgroups_per_dimension = {max}"
            )));
        }
        fn binding(buffer: &wgpu::Buffer, len: u32) -> wgpu::BufferBinding<'_> {
            wgpu::BufferBinding {
                buffer,
                offset: 0,
                size: wgpu::BufferSize::new(u64::from(len) * 4),
            }
        }
        crate::gpu::buffers::check_distinct(("dot4 lhs", lhs), ("dot4 out", out))?;
        crate::gpu::buffers::check_distinct(("dot4 rhs", rhs), ("dot4 out", out))?;
        let bind_group = bind_group_of(
            ctx,
            "dot4_i8",
            &self.pipeline,
            vec![
                wgpu::BindingResource::Buffer(binding(lhs, len)),
                wgpu::BindingResource::Buffer(binding(rhs, len)),
                wgpu::BindingResource::Buffer(binding(out, len)),
            ],
        )?;
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("dot4_i8"),
            timestamp_writes: None,
        });
        pass.set_pipeline(&self.pipeline);
        pass.set_bind_group(0, &bind_group, &[]);
        pass.dispatch_workgroups(groups, 1, 1);
        Ok(())
    }
}

/// Reads back `words` `u32`s of a `COPY_SRC` buffer.
///
/// # Errors
/// [`Error::Gpu`] for any wgpu validation, out-of-memory or mapping error.
pub async fn read_words(ctx: &Context, source: &wgpu::Buffer, words: u64) -> Result<Vec<u32>> {
    let bytes = words.checked_mul(4).ok_or_else(|| Error::SizeOverflow {
        what: format!("readback of {words} words in bytes"),
    })?;
    Ok(bytemuck::pod_collect_to_vec(
        &crate::gpu::buffers::read(ctx, source, bytes).await?,
    ))
}

/// Blocking form of [`read_words`] (native only).
///
/// # Errors
/// As [`read_words`].
#[cfg(not(target_arch = "wasm32"))]
pub fn read_words_blocking(ctx: &Context, source: &wgpu::Buffer, words: u64) -> Result<Vec<u32>> {
    pollster::block_on(read_words(ctx, source, words))
}

/// Blocking form of [`dot4_i8_packed`] (native only).
///
/// # Errors
/// As [`dot4_i8_packed`].
#[cfg(not(target_arch = "wasm32"))]
pub fn dot4_i8_packed_blocking(ctx: &Context, lhs: &[u32], rhs: &[u32]) -> Result<Vec<i32>> {
    pollster::block_on(dot4_i8_packed(ctx, lhs, rhs))
}

/// Uploads the operands, runs [`Dot4Kernel`] and reads the results back: the convenience on
/// top of [`Dot4Kernel::encode`].
///
/// # Errors
/// [`Error::DimensionMismatch`] when the slices differ in length; [`Error::Unsupported`]
/// above the adapter's limits; [`Error::Gpu`] for wgpu errors.
pub async fn dot4_i8_packed(ctx: &Context, lhs: &[u32], rhs: &[u32]) -> Result<Vec<i32>> {
    if lhs.len() != rhs.len() {
        return Err(Error::DimensionMismatch {
            what: "dot4 operand lengths".into(),
            left: lhs.len(),
            right: rhs.len(),
        });
    }
    if lhs.is_empty() {
        return Ok(Vec::new());
    }
    let len = u32::try_from(lhs.len())
        .map_err(|_| Error::Unsupported(format!("{} words exceed u32 indexing", lhs.len())))?;
    run(ctx, &Dot4Kernel::new(ctx)?, lhs, rhs, len).await
}

async fn run(
    ctx: &Context,
    kernel: &Dot4Kernel,
    lhs: &[u32],
    rhs: &[u32],
    len: u32,
) -> Result<Vec<i32>> {
    let storage = wgpu::BufferUsages::STORAGE;
    let lhs_buf = crate::gpu::buffers::upload(ctx, "dot4 lhs", lhs, storage)?;
    let rhs_buf = crate::gpu::buffers::upload(ctx, "dot4 rhs", rhs, storage)?;
    let out_buf = crate::gpu::buffers::create(
        ctx,
        "dot4 out",
        u64::from(len) * 4,
        wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
    )?;
    ctx.submit("dot4", |encoder| {
        kernel.encode(ctx, encoder, &lhs_buf, &rhs_buf, &out_buf, len)
    })?;
    let words = read_words(ctx, &out_buf, u64::from(len)).await?;
    Ok(bytemuck::cast_slice(&words).to_vec())
}

/// CPU twin of WGSL's `dot4U8Packed`: the sum of the four unsigned byte products.
pub fn dot4_u8_packed_cpu(a: u32, b: u32) -> u32 {
    let (a, b) = (a.to_le_bytes(), b.to_le_bytes());
    (0..4).map(|i| u32::from(a[i]) * u32::from(b[i])).sum()
}

/// The operand pairs of the self-test: every edge value (0, ±1, ±64, ±127, -128 and, as
/// unsigned bytes, 128, 129, 254, 255) against every other in each of the four lanes alone,
/// whole words of extremes in all four lanes with equal and mixed signs, and seeded random
/// words.
pub fn self_test_operands() -> (Vec<u32>, Vec<u32>) {
    const EDGES: [u8; 11] = [0, 1, 0xff, 64, 0xc0, 127, 0x81, 0x80, 0x7e, 0xfe, 2];
    let (mut lhs, mut rhs) = (Vec::new(), Vec::new());
    for lane in 0..4 {
        for &x in &EDGES {
            for &y in &EDGES {
                lhs.push(u32::from(x) << (8 * lane));
                rhs.push(u32::from(y) << (8 * lane));
            }
        }
    }
    let words = |bytes: [u8; 4]| u32::from_le_bytes(bytes);
    let whole = [
        ([0x80; 4], [0x80; 4]),
        ([0x7f; 4], [0x7f; 4]),
        ([0x7f; 4], [0x80; 4]),
        ([0xff; 4], [0xff; 4]),
        ([0x81; 4], [0x7f; 4]),
        ([0x80, 0x7f, 0x80, 0x7f], [0x80, 0x80, 0x7f, 0x7f]),
        ([0x7f, 0x80, 0xff, 0x01], [0x80, 0x7f, 0x01, 0xff]),
        ([0xff, 0x00, 0xff, 0x00], [0xff, 0xff, 0x00, 0x00]),
        ([0x01, 0x02, 0x03, 0x04], [0x05, 0x06, 0x07, 0x08]),
    ];
    for (a, b) in whole {
        lhs.push(words(a));
        rhs.push(words(b));
    }
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..256 {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        lhs.push((state >> 32) as u32);
        rhs.push(state as u32);
    }
    (lhs, rhs)
}

/// Runs `dot4I8Packed` and `dot4U8Packed` over [`self_test_operands`] and compares every
/// result with the CPU: `Ok(None)` when all agree, `Ok(Some(first mismatch))` otherwise.
/// [`Context::run_dot4_self_test_async`] records the outcome.
///
/// # Errors
/// GPU errors (the test could not run).
pub async fn self_test(ctx: &Context) -> Result<Option<String>> {
    let (lhs, rhs) = self_test_operands();
    let len = u32::try_from(lhs.len()).map_err(|_| Error::SizeOverflow {
        what: "self-test operand count".into(),
    })?;
    let signed = run(ctx, &Dot4Kernel::new(ctx)?, &lhs, &rhs, len).await?;
    let unsigned = run(ctx, &Dot4Kernel::unsigned(ctx)?, &lhs, &rhs, len).await?;
    for (i, (&a, &b)) in lhs.iter().zip(&rhs).enumerate() {
        let want = crate::reference::dot::dot4_i8_packed(a, b);
        if signed[i] != want {
            return Ok(Some(format!(
                "dot4I8Packed({a:#010x}, {b:#010x}) = {}, expected {want}",
                signed[i]
            )));
        }
        let want = dot4_u8_packed_cpu(a, b);
        if unsigned[i] as u32 != want {
            return Ok(Some(format!(
                "dot4U8Packed({a:#010x}, {b:#010x}) = {}, expected {want}",
                unsigned[i] as u32
            )));
        }
    }
    Ok(None)
}

/// Blocking form of [`self_test`] (native only).
///
/// # Errors
/// As [`self_test`].
#[cfg(not(target_arch = "wasm32"))]
pub fn self_test_blocking(ctx: &Context) -> Result<Option<String>> {
    pollster::block_on(self_test(ctx))
}
