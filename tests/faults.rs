//! Faults: a destroyed device and allocations beyond the limits give typed errors, never a
//! panic; a context whose device is gone keeps answering with errors.

use wgpu_quant::gpu::Context;
use wgpu_quant::gpu::gemm::{ActivationInput, QLinear, QuantizedWeights};
use wgpu_quant::gpu::matmul_f32::F32Linear;
use wgpu_quant::reference::dynamic::{DynamicGranularity, DynamicScheme};
use wgpu_quant::{Convention, Epilogue, Error, QType, QuantParams};

use crate::common::gpu;

fn params() -> QuantParams {
    QuantParams::per_tensor(0.05, 0, QType::I8.full_range()).unwrap()
}

/// After `device.destroy()` every op returns a typed error (`DeviceLost` or a caught GPU
/// error), including a layer built before the loss.
#[test]
fn destroyed_device_gives_typed_errors() {
    if gpu().is_none() {
        return;
    }
    let ctx = Context::headless().unwrap();
    let weights = QuantizedWeights::from_quantized(&ctx, &[1u8; 12], 3, 4, params()).unwrap();
    let input = ActivationInput::Static {
        qtype: QType::I8,
        zero_point: 0,
    };
    let layer = QLinear::new(&ctx, weights, input, None, Epilogue::I32).unwrap();
    assert!(layer.run_blocking(&ctx, &[2u8; 8], 2, None).is_ok());

    ctx.device().destroy();
    let typed = |what: &str, e: Error| {
        assert!(
            matches!(e, Error::DeviceLost(_) | Error::Gpu(_)),
            "{what}: {e:?}"
        );
    };
    typed(
        "run",
        layer.run_blocking(&ctx, &[2u8; 8], 2, None).unwrap_err(),
    );
    typed(
        "weights",
        QuantizedWeights::from_quantized(&ctx, &[1u8; 12], 3, 4, params()).unwrap_err(),
    );
    typed(
        "quantize",
        wgpu_quant::gpu::quantize::quantize_blocking(
            &ctx,
            Convention::Onnx,
            &[1.0; 4],
            &[4],
            &params(),
        )
        .unwrap_err(),
    );
    typed(
        "dequantize",
        wgpu_quant::gpu::quantize::dequantize_blocking(&ctx, &[1; 4], &[4], &params()).unwrap_err(),
    );
    typed(
        "dynamic",
        wgpu_quant::gpu::dynamic::dynamic_quantize_blocking(
            &ctx,
            &[1.0; 8],
            2,
            4,
            DynamicScheme::SymmetricPerToken,
            DynamicGranularity::PerRow,
        )
        .unwrap_err(),
    );
    typed(
        "divide",
        wgpu_quant::gpu::divide::divide_blocking(&ctx, &[1.0], &[3.0]).unwrap_err(),
    );
    typed(
        "dot4",
        wgpu_quant::gpu::dot4::dot4_i8_packed_blocking(&ctx, &[1], &[1]).unwrap_err(),
    );
    typed(
        "f32",
        F32Linear::new(&ctx, &[1.0; 6], 2, 3, None).unwrap_err(),
    );
    typed("wait", ctx.wait_idle().unwrap_err());
    // Still errors on a second round: nothing latches into a panic.
    typed(
        "run again",
        layer.run_blocking(&ctx, &[2u8; 8], 2, None).unwrap_err(),
    );
}

/// An embedder that handles device loss itself can tell the context.
#[test]
fn mark_lost_stops_every_op() {
    let Some(shared) = gpu() else { return };
    let ctx = Context::from_wgpu(shared.device().clone(), shared.queue().clone());
    ctx.mark_lost("the application saw DeviceLostReason::Unknown");
    assert!(matches!(
        wgpu_quant::gpu::divide::divide_blocking(&ctx, &[1.0], &[3.0]),
        Err(Error::DeviceLost(r)) if r.contains("Unknown")
    ));
    // The shared context is unaffected.
    assert!(wgpu_quant::gpu::divide::divide_blocking(shared, &[1.0], &[3.0]).is_ok());
}

/// An allocation beyond the adapter's `max_buffer_size` is refused with the values; the
/// context keeps working afterwards.
#[test]
fn oversized_allocations_are_refused() {
    let Some(ctx) = gpu() else { return };
    let max = ctx.device().limits().max_buffer_size;
    let err = wgpu_quant::gpu::buffers::create(ctx, "huge", max + 4, wgpu::BufferUsages::STORAGE)
        .unwrap_err();
    assert!(
        matches!(&err, Error::Unsupported(m) if m.contains("max_buffer_size")),
        "{err}"
    );
    assert!(wgpu_quant::gpu::divide::divide_blocking(ctx, &[1.0], &[4.0]).unwrap() == vec![0.25]);
}
