//! Embedding: the crate records into a device, queue and encoder that the application owns,
//! between the application's own passes, with one submit for everything.
//!
//! The application here makes its own device, fills the model's input with its own compute
//! pass, lets the quantized model record its passes into the same encoder, and copies the
//! result into its own readback buffer.
//!
//! Run: `cargo run --example embed`.

use wgpu_quant::nn::{FloatLinear, FloatModel, QuantConfig, QuantizedModel, Tensor};
use wgpu_quant::prelude::*;
use wgpu_quant::wgpu;

/// The application's own kernel: writes its input features, `x[i] = f(i)`.
const FILL: &str = "
@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
    if id.x < arrayLength(&x) { x[id.x] = f32(id.x % 13u) * 0.25 - 1.5; }
}";

const ROWS: usize = 6;
const FEATURES: usize = 16;

/// What the application computes on the CPU for the same input.
fn fill_cpu() -> Vec<f32> {
    (0..ROWS * FEATURES)
        .map(|i| (i % 13) as f32 * 0.25 - 1.5)
        .collect()
}

/// A small float model with fixed weights (an application would load its own).
fn float_model() -> Result<FloatModel> {
    let weights = |n: usize, k: usize, seed: usize| -> Vec<f32> {
        (0..n * k)
            .map(|i| (((i * 7 + seed) % 17) as f32 - 8.0) / 16.0)
            .collect()
    };
    FloatModel::new(vec![
        FloatLinear::new(
            "fc1",
            weights(24, FEATURES, 1),
            24,
            FEATURES,
            Some(vec![0.1; 24]),
            Activation::Relu,
        )?,
        FloatLinear::new("fc2", weights(4, 24, 5), 4, 24, None, Activation::None)?,
    ])
}

/// Runs the embedding and returns `(GPU output, CPU reference)`, or `None` when skipped.
///
/// # Errors
/// Any crate error, and [`Error::NoAdapter`] under `REQUIRE_GPU=1` without an adapter.
pub async fn run() -> Result<Option<(Vec<f32>, Vec<f32>)>> {
    // The application's device and queue.
    let instance =
        wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    let Ok(adapter) = instance.request_adapter(&Default::default()).await else {
        if wgpu_quant::testing::gpu_required() {
            return Err(Error::NoAdapter(
                "REQUIRE_GPU=1 and the embed example found none".into(),
            ));
        }
        eprintln!("SKIPPED embed: no GPU adapter");
        return Ok(None);
    };
    let (device, queue) = adapter
        .request_device(&wgpu::DeviceDescriptor::default())
        .await
        .map_err(|e| Error::Gpu(e.to_string()))?;

    // The crate shares them.
    let ctx = Context::from_wgpu(device.clone(), queue.clone());
    let float = float_model()?;
    let calibration = fill_cpu();
    let mut model = QuantizedModel::calibrate(
        &ctx,
        &float,
        &calibration,
        ROWS,
        &QuantConfig::static_int8().max_batch(ROWS),
    )?;
    let mut input = Tensor::new(&ctx, model.input_spec(), ROWS)?;
    let mut output = Tensor::new(&ctx, model.output_spec(), ROWS)?;

    // One encoder: the application's pass, the model's passes, the application's copy.
    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some("app fill"),
        source: wgpu::ShaderSource::Wgsl(FILL.into()),
    });
    let fill = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: Some("app fill"),
        layout: None,
        module: &module,
        entry_point: Some("main"),
        compilation_options: Default::default(),
        cache: None,
    });
    let group = device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: None,
        layout: &fill.get_bind_group_layout(0),
        entries: &[wgpu::BindGroupEntry {
            binding: 0,
            resource: input.buffer().as_entire_binding(),
        }],
    });
    let out_bytes = (ROWS * 4 * 4) as u64;
    let readback = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("app readback"),
        size: out_bytes,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let mut encoder = device.create_command_encoder(&Default::default());
    {
        let mut pass = encoder.begin_compute_pass(&Default::default());
        pass.set_pipeline(&fill);
        pass.set_bind_group(0, &group, &[]);
        pass.dispatch_workgroups(((ROWS * FEATURES) as u32).div_ceil(64), 1, 1);
    }
    input.set_rows(ROWS)?; // the application's pass wrote ROWS rows
    model.encode(&ctx, &mut encoder, &input, &mut output)?;
    encoder.copy_buffer_to_buffer(output.buffer(), 0, &readback, 0, out_bytes);
    queue.submit([encoder.finish()]);

    let data = wgpu_quant::gpu::buffers::map_read(&ctx, &readback, out_bytes).await?;
    let y: Vec<f32> = bytemuck::pod_collect_to_vec(&data);
    Ok(Some((y, model.reference(&fill_cpu(), ROWS)?)))
}

#[allow(
    dead_code,
    reason = "the test suite includes this file and calls run()"
)]
fn main() -> Result<()> {
    if let Some((y, reference)) = pollster::block_on(run())? {
        let same = y
            .iter()
            .zip(&reference)
            .all(|(a, b)| a.to_bits() == b.to_bits());
        println!("model output (first row): {:?}", &y[..4]);
        println!("equals the CPU reference bit for bit: {same}");
    }
    Ok(())
}
