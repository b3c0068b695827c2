//! The building blocks in the browser: `dot4I8Packed` (Tint's lowering of the WGSL builtin)
//! and the exact integer-arithmetic f32 division both equal their CPU twins bit for bit (the
//! native `tests/gpu_smoke.rs` and `tests/divide.rs`).

use wasm_bindgen_test::wasm_bindgen_test;
use wgpu_quant::gpu::divide::divide;
use wgpu_quant::gpu::dot4::dot4_i8_packed;
use wgpu_quant::quant::divide::div_f32_exact_bits;
use wgpu_quant::reference::dot::dot4_i8_packed as dot4_reference;

use crate::common::{Rng, Test, count};

#[wasm_bindgen_test]
async fn dot4_i8_packed_matches_cpu() {
    let t = Test::start("kernels::dot4_i8_packed_matches_cpu").await;
    let mut rng = Rng::new(1);
    // Extremes first (-128·-128, 127·-128, zero), then every lane's edge pairs, then random.
    let mut lhs = vec![0x8080_8080, 0x7f7f_7f7f, 0x8080_8080, 0, 0x0102_03ff];
    let mut rhs = vec![
        0x8080_8080,
        0x8080_8080,
        0x7f7f_7f7f,
        0xffff_ffff,
        0xff03_0201,
    ];
    let (l, r) = wgpu_quant::gpu::dot4::self_test_operands();
    lhs.extend(l);
    rhs.extend(r);
    for _ in 0..100_000 {
        lhs.push(rng.next_u32());
        rhs.push(rng.next_u32());
    }
    let got = dot4_i8_packed(&t.ctx, &lhs, &rhs).await.unwrap();
    let want: Vec<i32> = lhs
        .iter()
        .zip(&rhs)
        .map(|(&a, &b)| dot4_reference(a, b))
        .collect();
    assert_eq!(got.len(), want.len());
    if let Some(i) = (0..want.len()).find(|&i| got[i] != want[i]) {
        panic!(
            "dot4I8Packed({:#010x}, {:#010x}): gpu {} cpu {}",
            lhs[i], rhs[i], got[i], want[i]
        );
    }
    count(want.len());
    t.done();
}

/// Special values, powers of two, subnormals at every scale, overflow and underflow edges
/// (the native suite's edge set).
fn edge_values() -> Vec<u32> {
    let mut v = vec![
        0,
        0x8000_0000,
        0x7f80_0000,
        0xff80_0000,
        0x7fc0_0000,
        0x7f80_0001,
        0xffc0_1234,
        1,
        2,
        3,
        0x007f_ffff,
        0x0040_0000,
        0x0080_0000,
        0x0080_0001,
        0x7f7f_ffff,
        0x7f7f_fffe,
        0x3f80_0000,
        0x3f80_0001,
        0x3f7f_ffff,
        0x4040_0000,
        0x4000_0000,
        0x3f00_0000,
        0x4b00_0000,
        0x4b7f_ffff,
        0x437f_0000,
        0x42fe_0000,
        0x3c80_8081,
    ];
    for e in (0..=254u32).step_by(3) {
        v.push(e << 23);
        v.push((e << 23) | 0x0055_5555);
    }
    for s in 0..23 {
        v.push(1 << s);
        v.push((1 << s) | 1);
    }
    let negatives: Vec<u32> = v.iter().map(|x| x ^ 0x8000_0000).collect();
    v.extend(negatives);
    v
}

/// The exact division on the GPU equals its CPU twin on every pair of edge values and on
/// random bit patterns (the twin is itself checked against IEEE `/` natively, on 10^7 pairs).
#[wasm_bindgen_test]
async fn exact_division_matches_cpu() {
    let t = Test::start("kernels::exact_division_matches_cpu").await;
    let edges = edge_values();
    let mut a: Vec<u32> = Vec::new();
    let mut b: Vec<u32> = Vec::new();
    for &x in &edges {
        for &y in &edges {
            a.push(x);
            b.push(y);
        }
    }
    let mut rng = Rng::new(7);
    for _ in 0..100_000 {
        a.push(rng.next_u32());
        b.push(rng.next_u32());
    }
    let fa: Vec<f32> = a.iter().map(|&x| f32::from_bits(x)).collect();
    let fb: Vec<f32> = b.iter().map(|&x| f32::from_bits(x)).collect();
    let got = divide(&t.ctx, &fa, &fb).await.unwrap();
    assert_eq!(got.len(), a.len());
    if let Some(i) = (0..a.len()).find(|&i| got[i].to_bits() != div_f32_exact_bits(a[i], b[i])) {
        panic!(
            "{:#010x} / {:#010x}: gpu {:#010x} cpu {:#010x}",
            a[i],
            b[i],
            got[i].to_bits(),
            div_f32_exact_bits(a[i], b[i])
        );
    }
    count(a.len());
    t.done();
}
