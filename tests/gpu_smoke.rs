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
