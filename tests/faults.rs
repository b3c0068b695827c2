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

/// A device of our own with no uncaptured-error handler (wgpu's default handler panics) and a
/// small `max_buffer_size`, wrapped as an embedder would: anything the crate lets escape its
/// error scopes would panic here.
fn raw_context(max_buffer_size: u64) -> Option<Context> {
    gpu()?;
    // The headless contexts' instance: devices of one instance can be told apart.
    let instance = wgpu_quant::gpu::context::shared_instance();
    let adapter = pollster::block_on(instance.request_adapter(&Default::default())).ok()?;
    let limits = wgpu::Limits {
        max_buffer_size,
        ..adapter.limits()
    };
    let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
        required_limits: limits,
        ..Default::default()
    }))
    .unwrap();
    Some(Context::from_wgpu(device, queue))
}

fn static_layer(ctx: &Context) -> QLinear {
    let weights = QuantizedWeights::from_quantized(ctx, &[1u8; 12], 3, 4, params()).unwrap();
    let input = ActivationInput::Static {
        qtype: QType::I8,
        zero_point: 0,
    };
    QLinear::new(ctx, weights, input, None, Epilogue::I32).unwrap()
}

fn unusable(what: &str, r: Result<(), Error>, reason: &str) {
    match r {
        Err(Error::BufferUnusable { reason: got, .. }) => {
            assert!(
                got.contains(reason),
                "{what}: reason {got:?}, expected {reason:?}"
            )
        }
        other => panic!("{what}: {other:?}, expected BufferUnusable ({reason})"),
    }
}

/// Buffers of another device, and destroyed buffers (also after a call cached their bind
/// groups), are typed errors from every encode, on a context over the caller's device that
/// has no uncaptured-error handler: nothing reaches wgpu's panicking default handler.
#[test]
fn foreign_and_destroyed_buffers_are_typed_errors() {
    use wgpu_quant::gpu::buffers::{create, upload};
    let Some(ctx) = raw_context(1 << 24) else {
        return;
    };
    let other = gpu().unwrap();
    let storage = wgpu::BufferUsages::STORAGE;
    let layer = static_layer(&ctx);
    let (a, out) = (
        upload(&ctx, "a", &[0x0101_0101u32; 2], storage).unwrap(),
        create(&ctx, "out", 24, storage | wgpu::BufferUsages::COPY_SRC).unwrap(),
    );
    let foreign_a = upload(other, "foreign a", &[0u32; 2], storage).unwrap();
    let foreign_out = create(other, "foreign out", 24, storage).unwrap();
    let mut enc = ctx.device().create_command_encoder(&Default::default());
    let device = "another device";
    unusable(
        "QLinear input",
        layer.encode(&ctx, &mut enc, 2, &foreign_a, None, &out),
        device,
    );
    unusable(
        "QLinear output",
        layer.encode(&ctx, &mut enc, 2, &a, None, &foreign_out),
        device,
    );
    let f32_layer = F32Linear::new(&ctx, &[1.0; 8], 2, 4, None).unwrap();
    let x = upload(&ctx, "x", &[1.0f32; 8], storage).unwrap();
    let y = create(&ctx, "y", 16, storage | wgpu::BufferUsages::COPY_SRC).unwrap();
    let foreign_x = upload(other, "foreign x", &[1.0f32; 8], storage).unwrap();
    unusable(
        "F32Linear input",
        f32_layer.encode(&ctx, &mut enc, 2, &foreign_x, &y),
        device,
    );
    let quantizer =
        wgpu_quant::gpu::quantize::Quantizer::new(&ctx, Convention::Onnx, &params(), 2, 4).unwrap();
    unusable(
        "Quantizer input",
        quantizer.encode(&ctx, &mut enc, 2, &foreign_x, &a),
        device,
    );
    let dynamic = wgpu_quant::gpu::dynamic::DynamicQuantizer::new(
        &ctx,
        DynamicScheme::SymmetricPerToken,
        DynamicGranularity::PerRow,
        2,
        4,
    )
    .unwrap();
    let rows = create(&ctx, "rows", 16, storage).unwrap();
    unusable(
        "DynamicQuantizer output",
        dynamic.encode(&ctx, &mut enc, 2, &x, &foreign_a, &rows),
        device,
    );
    let dot4 = wgpu_quant::gpu::dot4::Dot4Kernel::new(&ctx).unwrap();
    unusable(
        "Dot4Kernel lhs",
        dot4.encode(&ctx, &mut enc, &foreign_a, &a, &out, 2),
        device,
    );
    // The encoder is still clean: a valid call records and runs.
    layer.encode(&ctx, &mut enc, 2, &a, None, &out).unwrap();
    f32_layer.encode(&ctx, &mut enc, 2, &x, &y).unwrap();
    ctx.queue().submit([enc.finish()]);
    let got = wgpu_quant::gpu::buffers::read_blocking(&ctx, &out, 24).unwrap();
    assert_eq!(bytemuck::cast_slice::<u8, i32>(&got), &[4; 6]);

    // Destroyed after a call cached its bind groups: the next call refuses it up front
    // instead of recording a bind group that fails at the caller's submit.
    let mut enc = ctx.device().create_command_encoder(&Default::default());
    a.destroy();
    unusable(
        "cached QLinear input",
        layer.encode(&ctx, &mut enc, 2, &a, None, &out),
        "destroyed",
    );
    x.destroy();
    unusable(
        "cached F32Linear input",
        f32_layer.encode(&ctx, &mut enc, 2, &x, &y),
        "destroyed",
    );
    let x2 = upload(&ctx, "x2", &[1.0f32; 8], storage).unwrap();
    let fresh = create(&ctx, "fresh", 64, storage).unwrap();
    fresh.destroy();
    unusable(
        "Quantizer output",
        quantizer.encode(&ctx, &mut enc, 2, &x2, &fresh),
        "destroyed",
    );
    unusable(
        "DynamicQuantizer row params",
        dynamic.encode(&ctx, &mut enc, 2, &x2, &out, &fresh),
        "destroyed",
    );
    // Nothing was recorded: the encoder finishes and submits cleanly.
    ctx.queue().submit([enc.finish()]);
    ctx.wait_idle().unwrap();
    assert_eq!(
        layer.run_blocking(&ctx, &[1u8; 8], 2, None).unwrap(),
        wgpu_quant::reference::gemm::GemmOutput::I32(vec![4; 6])
    );
}

/// Buffer sizes: `u64::MAX` and anything above `max_buffer_size` are refused (no wrap to a
/// small buffer); exactly `max_buffer_size` is allowed (the limit is checked before rounding).
#[test]
fn buffer_sizes_at_and_past_the_limit() {
    use wgpu_quant::gpu::buffers::{create, upload};
    let max = 1u64 << 20;
    let Some(ctx) = raw_context(max) else { return };
    let storage = wgpu::BufferUsages::STORAGE;
    for bytes in [u64::MAX, u64::MAX - 2, max + 1, max + 4] {
        let err = create(&ctx, "huge", bytes, storage).unwrap_err();
        assert!(
            matches!(&err, Error::Unsupported(m) if m.contains(&bytes.to_string())),
            "{bytes}: {err:?}"
        );
    }
    assert_eq!(create(&ctx, "exact", max, storage).unwrap().size(), max);
    assert_eq!(create(&ctx, "odd", max - 3, storage).unwrap().size(), max);
    let words = vec![7u32; (max / 4) as usize];
    assert_eq!(upload(&ctx, "exact", &words, storage).unwrap().size(), max);
    let err = upload(&ctx, "one more", &vec![7u8; max as usize + 1], storage).unwrap_err();
    assert!(matches!(err, Error::Unsupported(_)), "{err:?}");
}

/// The dispatch grid refuses a workgroup size of 0 and a grid row wider than `u32`.
#[test]
fn grid_refuses_zero_workgroups_and_wide_rows() {
    use wgpu_quant::gpu::buffers::grid;
    let Some(ctx) = gpu() else { return };
    assert!(matches!(
        grid(ctx, 100, 0),
        Err(Error::InvalidConfig { .. })
    ));
    let max = u64::from(ctx.device().limits().max_compute_workgroups_per_dimension);
    // Enough workgroups for a full grid row, each of 2^20 invocations: wider than u32.
    let err = grid(ctx, max * (1 << 20), 1 << 20).unwrap_err();
    assert!(
        matches!(&err, Error::Unsupported(m) if m.contains("u32")),
        "{err:?}"
    );
    assert!(matches!(grid(ctx, u64::MAX, 1), Err(Error::Unsupported(_))));
    assert_eq!(grid(ctx, 100, 64).unwrap(), (2, 1, 128));
}

/// A headless context files an error that escaped every scope under the thread that caused
/// it: another thread's wait does not see it, and the causing thread's wait does.
#[test]
fn uncaptured_errors_belong_to_their_thread() {
    if gpu().is_none() {
        return;
    }
    let ctx = Context::headless().unwrap();
    let (to_b, b_rx) = std::sync::mpsc::channel::<()>();
    let (to_a, a_rx) = std::sync::mpsc::channel::<()>();
    let ctx = &ctx;
    std::thread::scope(|s| {
        let a = s.spawn(move || {
            // A copy past the end of a buffer, submitted outside any scope.
            let small = wgpu_quant::gpu::buffers::create(
                ctx,
                "small",
                4,
                wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
            )
            .unwrap();
            let mut enc = ctx.device().create_command_encoder(&Default::default());
            enc.copy_buffer_to_buffer(&small, 0, &small, 0, 64);
            ctx.queue().submit([enc.finish()]);
            to_b.send(()).unwrap();
            a_rx.recv().unwrap();
            ctx.wait_idle()
        });
        let b = s.spawn(move || {
            b_rx.recv().unwrap();
            let mine = ctx.wait_idle();
            let run = wgpu_quant::gpu::divide::divide_blocking(ctx, &[1.0], &[8.0]);
            to_a.send(()).unwrap();
            (mine, run)
        });
        let (b_wait, b_run) = b.join().unwrap();
        assert_eq!(b_wait, Ok(()), "thread B got thread A's error");
        assert_eq!(b_run, Ok(vec![0.125]));
        let a_wait = a.join().unwrap();
        assert!(matches!(a_wait, Err(Error::Gpu(_))), "{a_wait:?}");
    });
}

/// `scripts/ensure-vulkan.sh` on a machine without Vulkan while another apt/dpkg holds the
/// lock (fake `apt-get`, `ldconfig`, `id` and `sleep` on `PATH`): it says it is waiting, waits
/// until the lock is free and installs; with no time left it gives up with the reason.
#[cfg(target_os = "linux")]
#[test]
fn ensure_vulkan_waits_for_the_apt_lock() {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("wgpu-quant-apt-lock-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let d = dir.display();
    let script = |name: &str, body: String| {
        let path = dir.join(name);
        std::fs::write(&path, format!("#!/usr/bin/env bash\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    };
    // Locked for the first three calls (while LOCKED_CALLS says so), then installs a driver.
    script(
        "apt-get",
        format!(
            r#"n=$(cat {d}/calls 2>/dev/null || echo 0); echo $((n + 1)) > {d}/calls
echo "$*" >> {d}/log
if [ "$n" -lt "${{LOCKED_CALLS:-3}}" ]; then
  echo "E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 4242 (unattended-upgr)" >&2
  exit 100
fi
case "$*" in *install*) touch {d}/installed; echo '{{}}' > {d}/icd.json;; esac
exit 0"#
        ),
    );
    script(
        "ldconfig",
        format!(r#"[ -f {d}/installed ] && echo "libvulkan.so.1 (libc6,x86-64) => /x""#),
    );
    script("id", "echo 0".into());
    script("sleep", "exit 0".into());
    let run = |locked_calls: &str, timeout: &str| {
        let _ = std::fs::remove_file(dir.join("calls"));
        let _ = std::fs::remove_file(dir.join("installed"));
        let path = format!(
            "{}:{}",
            dir.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        std::process::Command::new("bash")
            .arg("-c")
            .arg("source scripts/ensure-vulkan.sh")
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("PATH", path)
            .env("LOCKED_CALLS", locked_calls)
            .env("WGPU_QUANT_APT_LOCK_TIMEOUT", timeout)
            .env("VK_DRIVER_FILES", dir.join("icd.json"))
            .env_remove("VK_ICD_FILENAMES")
            .output()
            .unwrap()
    };
    let out = run("3", "300");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("waiting up to 300 s"), "{stderr}");
    assert_eq!(stderr.matches("waiting up to").count(), 1, "{stderr}");
    let calls: u32 = std::fs::read_to_string(dir.join("calls"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(calls, 5, "three locked tries, then update and install");
    let log = std::fs::read_to_string(dir.join("log")).unwrap();
    assert!(log.contains("DPkg::Lock::Timeout=300"), "{log}");
    // The lock never frees and no time is left: a failure that says why.
    let out = run("1000", "0");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("Gave up after 0 s"), "{stderr}");
    std::fs::remove_dir_all(&dir).unwrap();
}
