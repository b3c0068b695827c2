//! End-to-end smoke test: `dot4I8Packed` on the GPU equals the CPU twin on every word pair.

use wgpu_quant::gpu::dot4::dot4_i8_packed_blocking;
use wgpu_quant::reference::dot::dot4_i8_packed;

use crate::common::{Rng, gpu};

#[test]
fn dot4_i8_packed_matches_cpu() {
    let Some(ctx) = gpu() else { return };
    let mut rng = Rng::new(1);
    // Extremes first (-128·-128, 127·-128, zero), then random words.
    let mut lhs = vec![0x8080_8080, 0x7f7f_7f7f, 0x8080_8080, 0, 0x0102_03ff];
    let mut rhs = vec![
        0x8080_8080,
        0x8080_8080,
        0x7f7f_7f7f,
        0xffff_ffff,
        0xff03_0201,
    ];
    for _ in 0..100_000 {
        lhs.push(rng.next_u32());
        rhs.push(rng.next_u32());
    }
    let got = dot4_i8_packed_blocking(ctx, &lhs, &rhs).expect("gpu dot4");
    let want: Vec<i32> = lhs
        .iter()
        .zip(&rhs)
        .map(|(&a, &b)| dot4_i8_packed(a, b))
        .collect();
    assert_eq!(want[0], 4 * 16384);
    assert_eq!(want[1], 4 * -16256);
    assert_eq!(got, want);
}

#[test]
fn dot4_rejects_mismatched_lengths() {
    let Some(ctx) = gpu() else { return };
    let err = dot4_i8_packed_blocking(ctx, &[1, 2], &[1]).unwrap_err();
    assert!(matches!(
        err,
        wgpu_quant::Error::DimensionMismatch {
            left: 2,
            right: 1,
            ..
        }
    ));
}

/// The embedding path: the caller's own device, queue, buffers and encoder.
#[test]
fn dot4_encodes_into_the_callers_encoder() {
    use wgpu::util::DeviceExt;
    use wgpu_quant::gpu::dot4::{Dot4Kernel, read_words_blocking};
    let Some(shared) = gpu() else { return };
    let (device, queue) = (shared.device().clone(), shared.queue().clone());
    let ctx = wgpu_quant::gpu::Context::from_wgpu(device.clone(), queue.clone());
    let lhs = [0x0102_0304u32, 0x8080_8080, 0x7f00_ff01];
    let rhs = [0x0101_0101u32, 0x7f7f_7f7f, 0x0203_0405];
    let make = |data: &[u32], usage| {
        device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: None,
            contents: bytemuck::cast_slice(data),
            usage,
        })
    };
    let storage = wgpu::BufferUsages::STORAGE;
    let (a, b) = (make(&lhs, storage), make(&rhs, storage));
    let out = make(&[0; 3], storage | wgpu::BufferUsages::COPY_SRC);
    let kernel = Dot4Kernel::new(&ctx).unwrap();
    let mut encoder = device.create_command_encoder(&Default::default());
    kernel.encode(&ctx, &mut encoder, &a, &b, &out, 3).unwrap();
    queue.submit([encoder.finish()]);
    let got = read_words_blocking(&ctx, &out, 3).unwrap();
    let want: Vec<u32> = lhs
        .iter()
        .zip(&rhs)
        .map(|(&x, &y)| dot4_i8_packed(x, y) as u32)
        .collect();
    assert_eq!(got, want);

    // Bad buffers are typed errors, not wgpu panics or lost devices.
    let no_storage = make(&[0; 3], wgpu::BufferUsages::COPY_SRC);
    let mut encoder = device.create_command_encoder(&Default::default());
    assert!(matches!(
        kernel.encode(&ctx, &mut encoder, &no_storage, &b, &out, 3),
        Err(wgpu_quant::Error::InvalidConfig { .. })
    ));
    assert!(matches!(
        kernel.encode(&ctx, &mut encoder, &a, &b, &out, 4),
        Err(wgpu_quant::Error::BufferTooSmall {
            needed: 16,
            size: 12,
            ..
        })
    ));
}

#[test]
fn context_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<wgpu_quant::gpu::Context>();
    assert_send_sync::<wgpu_quant::gpu::dot4::Dot4Kernel>();
}

/// The exact division routine on the GPU equals IEEE `/` on 2·10^6 pairs (random bit
/// patterns, quotients near 1, near underflow and near overflow), NaN payloads aside.
#[test]
fn exact_division_on_the_gpu() {
    let Some(ctx) = gpu() else { return };
    let mut rng = Rng::new(60);
    let n = 2_000_000;
    let mut a = Vec::with_capacity(n);
    let mut b = Vec::with_capacity(n);
    for i in 0..n {
        let (x, y) = match i % 4 {
            0 => (rng.next_u32(), rng.next_u32()),
            1 => (
                rng.next_u32() & 0x807f_ffff | 0x3f80_0000,
                rng.next_u32() & 0x807f_ffff | 0x3f80_0000,
            ),
            2 => (
                rng.next_u32() & 0x83ff_ffff,
                (rng.next_u32() & 0x807f_ffff) | (rng.int(127, 200) as u32) << 23,
            ),
            _ => (
                rng.next_u32() & 0x807f_ffff | 0x7e00_0000,
                rng.next_u32() & 0x807f_ffff | (rng.int(0, 126) as u32) << 23,
            ),
        };
        a.push(f32::from_bits(x));
        b.push(f32::from_bits(y));
    }
    let got = wgpu_quant::gpu::divide::divide_blocking(ctx, &a, &b).unwrap();
    let mut bad = 0;
    for i in 0..n {
        let want = a[i] / b[i];
        let ok = if want.is_nan() {
            got[i].to_bits() == 0x7fc0_0000
        } else {
            got[i].to_bits() == want.to_bits()
        };
        if !ok {
            bad += 1;
            assert!(
                bad < 5,
                "{:e} / {:e}: gpu {:#010x}, IEEE {:#010x}",
                a[i],
                b[i],
                got[i].to_bits(),
                want.to_bits()
            );
        }
    }
    assert_eq!(bad, 0);
}
