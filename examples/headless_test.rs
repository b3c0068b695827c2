//! Testing your own wgpu code in CI without a GPU.
//!
//! On a machine without a GPU, Mesa's lavapipe (Debian/Ubuntu: `mesa-vulkan-drivers`) is a
//! conforming software Vulkan driver that wgpu uses like any other; this repository's
//! `scripts/ensure-vulkan.sh` installs it when missing. In a test, one line gives you a
//! device or a loud skip, and `REQUIRE_GPU=1` (set it in CI) turns the skip into a failure:
//!
//! ```text
//! let Some(ctx) = wgpu_quant::testing::gpu_or_skip("doubles")? else { return Ok(()) };
//! ```
//!
//! Run: `cargo run --example headless_test` (and `REQUIRE_GPU=1 cargo run --example
//! headless_test` to insist on an adapter).

use wgpu_quant::wgpu;

/// "Your" kernel: doubles every element. The test checks it against the CPU.
const DOUBLE: &str = "
@group(0) @binding(0) var<storage, read_write> data: array<u32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
    if id.x < arrayLength(&data) { data[id.x] = data[id.x] * 2u; }
}";

/// The test body: returns the adapter it ran on, or `None` when skipped.
///
/// # Errors
/// [`wgpu_quant::Error::NoAdapter`] under `REQUIRE_GPU=1` without an adapter; GPU errors;
/// [`wgpu_quant::Error::Mismatch`] when the kernel is wrong.
pub fn run() -> wgpu_quant::Result<Option<String>> {
    let Some(ctx) = wgpu_quant::testing::gpu_or_skip("headless_test")? else {
        return Ok(None);
    };
    let device = ctx.device();
    let input: Vec<u32> = (0..1000).collect();
    let data = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("data"),
        size: 4000,
        usage: wgpu::BufferUsages::STORAGE
            | wgpu::BufferUsages::COPY_DST
            | wgpu::BufferUsages::COPY_SRC,
        mapped_at_creation: false,
    });
    ctx.queue()
        .write_buffer(&data, 0, bytemuck::cast_slice(&input));
    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some("double"),
        source: wgpu::ShaderSource::Wgsl(DOUBLE.into()),
    });
    let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: Some("double"),
        layout: None,
        module: &module,
        entry_point: Some("main"),
        compilation_options: Default::default(),
        cache: None,
    });
    let group = device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: None,
        layout: &pipeline.get_bind_group_layout(0),
        entries: &[wgpu::BindGroupEntry {
            binding: 0,
            resource: data.as_entire_binding(),
        }],
    });
    let mut encoder = device.create_command_encoder(&Default::default());
    {
        let mut pass = encoder.begin_compute_pass(&Default::default());
        pass.set_pipeline(&pipeline);
        pass.set_bind_group(0, &group, &[]);
        pass.dispatch_workgroups(1000u32.div_ceil(64), 1, 1);
    }
    ctx.queue().submit([encoder.finish()]);
    // The crate's checked readback (a typed error, never a panic, if the device is lost).
    let bytes = wgpu_quant::gpu::buffers::read_blocking(&ctx, &data, 4000)?;
    let output: Vec<u32> = bytemuck::pod_collect_to_vec(&bytes);
    let expected: Vec<u32> = input.iter().map(|v| v * 2).collect();
    if output != expected {
        return Err(wgpu_quant::Error::Mismatch(
            "the doubling kernel is wrong".into(),
        ));
    }
    Ok(Some(
        ctx.capabilities()
            .adapter_name
            .unwrap_or_else(|| "an unnamed adapter".into()),
    ))
}

#[allow(
    dead_code,
    reason = "the test suite includes this file and calls run()"
)]
fn main() -> wgpu_quant::Result<()> {
    match run()? {
        Some(adapter) => println!("ok: 1000 elements doubled on {adapter}"),
        None => println!("skipped: no GPU adapter"),
    }
    Ok(())
}
