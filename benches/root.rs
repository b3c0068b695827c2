//! criterion benches. CPU numerics for now: the exact division routine against hardware `/`,
//! and scalar quantize per convention. GPU benches join with the kernels.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use wgpu_quant::Convention;
use wgpu_quant::quant::divide::div_f32_exact;
use wgpu_quant::quant::scalar::quantize_value;

fn inputs() -> Vec<(f32, f32)> {
    (0..4096u32)
        .map(|i| {
            let a = f32::from_bits(0x3f00_0000 ^ i.wrapping_mul(0x9e37_79b9) >> 9);
            let b = f32::from_bits(0x3c00_0000 ^ i.wrapping_mul(0x85eb_ca6b) >> 9);
            (a, b)
        })
        .collect()
}

fn division(c: &mut Criterion) {
    let pairs = inputs();
    let mut g = c.benchmark_group("divide");
    g.throughput(Throughput::Elements(pairs.len() as u64));
    g.bench_function("div_f32_exact", |b| {
        b.iter(|| {
            pairs
                .iter()
                .map(|&(x, y)| div_f32_exact(black_box(x), black_box(y)))
                .sum::<f32>()
        })
    });
    g.bench_function("hardware /", |b| {
        b.iter(|| {
            pairs
                .iter()
                .map(|&(x, y)| black_box(x) / black_box(y))
                .sum::<f32>()
        })
    });
    g.finish();
}

fn quantize(c: &mut Criterion) {
    let pairs = inputs();
    let mut g = c.benchmark_group("quantize_value");
    g.throughput(Throughput::Elements(pairs.len() as u64));
    for convention in Convention::ALL {
        g.bench_function(format!("{convention:?}"), |b| {
            b.iter(|| {
                pairs
                    .iter()
                    .map(|&(x, _)| quantize_value(convention, black_box(x), 0.0173, 3, -128, 127))
                    .sum::<i32>()
            })
        });
    }
    g.finish();
}

criterion_group!(benches, division, quantize);
criterion_main!(benches);
