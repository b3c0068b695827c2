//! The GPU int8 GEMM equals the CPU reference bit for bit: a fluent tester over shapes,
//! types, zero points, bias, epilogues and conventions.

use wgpu_quant::gpu::Context;
use wgpu_quant::gpu::gemm::{ActivationInput, QLinear, QuantizedWeights, RowParams};
use wgpu_quant::reference::bounds::max_depth;
use wgpu_quant::reference::gemm::{
    GemmInputs, GemmOutput, QMatrix, matmul_i8, matmul_i8_fused_alternative,
};
use wgpu_quant::{
    Activation, Convention, Dequant, DequantRequant, DequantScales, Epilogue, Error,
    FixedPointRounding, QType, QuantParams, Requant,
};

use crate::common::{Rng, gpu};

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    I32,
    F32,
    F16,
    RequantFloat,
    Fixed(FixedPointRounding),
    /// Dequantize to f32 (static or dynamic scales, optional f32 bias), then quantize under
    /// the tester's convention.
    DequantRequant,
}

/// `GemmTester::new().m(37).n(55).k(73).a_type(QType::U8).epilogue(Kind::F32).check(ctx)`.
#[derive(Debug, Clone)]
pub struct GemmTester {
    m: usize,
    n: usize,
    k: usize,
    a_type: QType,
    w_type: QType,
    out_type: Option<QType>,
    a_zero_point: Option<i32>,
    per_channel_w_zero_points: bool,
    bias: bool,
    kind: Kind,
    convention: Convention,
    activation: Activation,
    float_bias: bool,
    dynamic_rows: bool,
    per_row_zero_points: bool,
    worst_case_data: bool,
    seed: u64,
}

impl GemmTester {
    pub fn new() -> Self {
        GemmTester {
            m: 5,
            n: 7,
            k: 13,
            a_type: QType::I8,
            w_type: QType::I8,
            out_type: None,
            a_zero_point: None,
            per_channel_w_zero_points: false,
            bias: true,
            kind: Kind::I32,
            convention: Convention::Onnx,
            activation: Activation::None,
            float_bias: false,
            dynamic_rows: false,
            per_row_zero_points: false,
            worst_case_data: false,
            seed: 1,
        }
    }
    pub fn m(mut self, v: usize) -> Self {
        self.m = v;
        self
    }
    pub fn n(mut self, v: usize) -> Self {
        self.n = v;
        self
    }
    pub fn k(mut self, v: usize) -> Self {
        self.k = v;
        self
    }
    pub fn shape(self, m: usize, n: usize, k: usize) -> Self {
        self.m(m).n(n).k(k)
    }
    pub fn a_type(mut self, t: QType) -> Self {
        self.a_type = t;
        self
    }
    pub fn w_type(mut self, t: QType) -> Self {
        self.w_type = t;
        self
    }
    /// The quantized output's type (the activations' type by default).
    pub fn out_type(mut self, t: QType) -> Self {
        self.out_type = Some(t);
        self
    }
    pub fn a_zero_point(mut self, z: i32) -> Self {
        self.a_zero_point = Some(z);
        self
    }
    pub fn per_channel_w_zero_points(mut self) -> Self {
        self.per_channel_w_zero_points = true;
        self
    }
    pub fn no_bias(mut self) -> Self {
        self.bias = false;
        self
    }
    pub fn epilogue(mut self, kind: Kind) -> Self {
        self.kind = kind;
        self
    }
    pub fn convention(mut self, c: Convention) -> Self {
        self.convention = c;
        self
    }
    pub fn activation(mut self, a: Activation) -> Self {
        self.activation = a;
        self
    }
    pub fn float_bias(mut self) -> Self {
        self.float_bias = true;
        self
    }
    pub fn dynamic_rows(mut self) -> Self {
        self.dynamic_rows = true;
        self
    }
    pub fn per_row_zero_points(mut self) -> Self {
        self.per_row_zero_points = true;
        self
    }
    pub fn worst_case_data(mut self) -> Self {
        self.worst_case_data = true;
        self
    }
    pub fn seed(mut self, s: u64) -> Self {
        self.seed = s;
        self
    }

    /// Runs the case on `ctx`, asserts it equals the reference and returns the GPU output.
    pub fn check(&self, ctx: &Context) -> GemmOutput {
        let t = self;
        let mut rng = Rng::new(t.seed ^ (t.m as u64) << 40 ^ (t.n as u64) << 20 ^ t.k as u64);
        let (alo, ahi) = t.a_type.storage_range();
        let (wlo, whi) = t.w_type.storage_range();
        // The worst case puts every element at the end of its range farthest from its zero
        // point (U8 activations with zero point 0: 255, not 0), so |acc| is at its bound.
        let farthest = |lo: i32, hi: i32, zp: i32| if hi - zp > zp - lo { hi } else { lo };
        let w_default_zp = if t.w_type == QType::I8 { 0 } else { 128 };
        let a: Vec<u8> = if t.worst_case_data {
            let za = t
                .a_zero_point
                .expect("worst-case data needs a fixed zero point");
            vec![farthest(alo, ahi, za) as u8; t.m * t.k]
        } else {
            rng.bytes(t.m * t.k)
        };
        let w: Vec<u8> = if t.worst_case_data {
            assert!(
                !t.per_channel_w_zero_points,
                "worst-case data: one weight zero point"
            );
            vec![farthest(wlo, whi, w_default_zp) as u8; t.n * t.k]
        } else {
            rng.bytes(t.n * t.k)
        };
        let za = t.a_zero_point.unwrap_or_else(|| rng.int(alo, ahi));
        let row_zps: Vec<i32> = (0..t.m).map(|_| rng.int(alo, ahi)).collect();
        let w_zps: Vec<i32> = if t.per_channel_w_zero_points {
            (0..t.n).map(|_| rng.int(wlo, whi)).collect()
        } else {
            vec![if t.w_type == QType::I8 { 0 } else { 128 }; t.n]
        };
        let bias: Vec<i32> = if t.bias {
            (0..t.n).map(|_| rng.int(-4096, 4096)).collect()
        } else {
            vec![]
        };
        let a_params = QuantParams::per_tensor(0.021, za, t.a_type.full_range()).unwrap();
        let w_scales: Vec<f32> = (0..t.n).map(|_| rng.uniform(0.001, 0.01)).collect();
        let w_params =
            QuantParams::per_axis(0, w_scales.clone(), w_zps.clone(), t.w_type.full_range())
                .unwrap();
        let out_type = t.out_type.unwrap_or(t.a_type);
        let (olo, ohi) = out_type.storage_range();
        let out_params = QuantParams::per_tensor(
            rng.uniform(0.05, 0.4),
            rng.int(olo + 20, ohi - 20),
            out_type.full_range(),
        )
        .unwrap();
        let row_scales: Vec<f32> = (0..t.m).map(|_| rng.uniform(0.005, 0.05)).collect();
        let float_bias: Option<Vec<f32>> = t
            .float_bias
            .then(|| (0..t.n).map(|_| rng.uniform(-3.0, 3.0)).collect());
        let dequant = || {
            if t.dynamic_rows {
                Dequant {
                    scales: DequantScales::PerRowPerChannel {
                        row_scales: row_scales.clone(),
                        channel_scales: w_scales.clone(),
                    },
                    bias: float_bias.clone(),
                    activation: Activation::None,
                }
            } else {
                Dequant::per_channel(&a_params, &w_params, float_bias.clone()).unwrap()
            }
        };
        // Float outputs take the activation as a float clamp.
        let float_dequant = || dequant().with_activation(t.activation);
        let epilogue = match t.kind {
            Kind::I32 => Epilogue::I32,
            Kind::F32 => Epilogue::DequantF32(float_dequant()),
            Kind::F16 => Epilogue::DequantF16(float_dequant()),
            Kind::DequantRequant => Epilogue::DequantRequant(
                DequantRequant::new(t.convention, dequant(), &out_params, t.activation).unwrap(),
            ),
            Kind::RequantFloat => Epilogue::Requant(
                Requant::float(
                    t.convention,
                    &a_params,
                    &w_params,
                    &out_params,
                    t.activation,
                )
                .unwrap(),
            ),
            Kind::Fixed(r) => Epilogue::Requant(
                Requant::fixed_point(&a_params, &w_params, &out_params, t.activation, r).unwrap(),
            ),
        };
        let per_row = t.per_row_zero_points || t.dynamic_rows;
        let a_zero_points = if per_row { row_zps.clone() } else { vec![za] };
        let inputs = GemmInputs {
            a: QMatrix {
                data: &a,
                qtype: t.a_type,
                rows: t.m,
                cols: t.k,
            },
            a_zero_points: &a_zero_points,
            w: QMatrix {
                data: &w,
                qtype: t.w_type,
                rows: t.n,
                cols: t.k,
            },
            w_zero_points: &w_zps,
            bias: &bias,
        };
        let want =
            matmul_i8(&inputs, &epilogue).unwrap_or_else(|e| panic!("{t:?}: reference: {e}"));
        let weights =
            QuantizedWeights::from_quantized(ctx, &w, t.n, t.k, w_params.clone()).unwrap();
        let input = if per_row {
            ActivationInput::PerRow { qtype: t.a_type }
        } else {
            ActivationInput::Static {
                qtype: t.a_type,
                zero_point: za,
            }
        };
        let layer = QLinear::new(
            ctx,
            weights,
            input,
            t.bias.then(|| bias.clone()),
            epilogue.clone(),
        )
        .unwrap_or_else(|e| panic!("{t:?}: {e}"));
        let rows: Vec<RowParams> = (0..t.m)
            .map(|r| RowParams {
                zero_point: row_zps[r],
                scale: row_scales[r],
            })
            .collect();
        // The layer runs what the context's tuning chose, and never dot4I8Packed where the
        // context forces the polyfill.
        assert_eq!(layer.kernel(), wgpu_quant::gpu::tune::choose(ctx, t.n, t.k));
        assert!(!ctx.dot4_polyfill() || layer.variant().dot4_polyfill);
        assert!(!ctx.dot4_polyfill() || layer.gemv_variant().dot4_polyfill);
        let got = layer
            .run_blocking(ctx, &a, t.m, per_row.then_some(&rows[..]))
            .unwrap_or_else(|e| panic!("{t:?}: gpu: {e}"));
        self.compare(&got, &want, &inputs, &epilogue);
        if t.worst_case_data && t.kind == Kind::I32 {
            // Really the worst case: every accumulator is K * (extreme products), at the
            // bound the layer was allowed for, not zero.
            let GemmOutput::I32(v) = &got else {
                unreachable!()
            };
            let per = |x: u8, ty: QType, zp: i32| match ty {
                QType::I8 => i32::from(x as i8) - zp,
                QType::U8 => i32::from(x) - zp,
            };
            let product =
                i64::from(per(a[0], t.a_type, za)) * i64::from(per(w[0], t.w_type, w_default_zp));
            assert!(product.abs() >= 127 * 128, "{t:?}: product {product}");
            let expected = product * t.k as i64;
            assert!(
                v.iter().all(|&x| i64::from(x) == expected),
                "{t:?}: {} != {expected}",
                v[0]
            );
        }
        got
    }

    fn compare(
        &self,
        got: &GemmOutput,
        want: &GemmOutput,
        inputs: &GemmInputs,
        epilogue: &Epilogue,
    ) {
        assert_matches_reference(&format!("{self:?}"), self.n, got, want, inputs, epilogue);
    }
}

/// Every element as bits (f32/f16 by their bit patterns, so -0.0 != 0.0 and NaN == NaN).
fn element_bits(o: &GemmOutput) -> Vec<u32> {
    match o {
        GemmOutput::I32(v) => v.iter().map(|&x| x as u32).collect(),
        GemmOutput::F32(v) => v.iter().map(|x| x.to_bits()).collect(),
        GemmOutput::F16(v) => v.iter().map(|x| u32::from(x.to_bits())).collect(),
        GemmOutput::Quantized { bytes, .. } => bytes.iter().map(|&b| u32::from(b)).collect(),
    }
}

fn same_kind(a: &GemmOutput, b: &GemmOutput) -> bool {
    match (a, b) {
        (GemmOutput::Quantized { qtype: x, .. }, GemmOutput::Quantized { qtype: y, .. }) => x == y,
        _ => std::mem::discriminant(a) == std::mem::discriminant(b),
    }
}

/// The GPU output equals the reference bit for bit; where the epilogue has a float bias
/// after a float scale, each element equals the reference's or the fused alternative's
/// (DESIGN.md rule 2: an exact membership check, not a tolerance).
fn assert_matches_reference(
    what: &str,
    n: usize,
    got: &GemmOutput,
    want: &GemmOutput,
    inputs: &GemmInputs,
    epilogue: &Epilogue,
) {
    assert!(same_kind(got, want), "{what}: gpu {got:?} vs cpu kind");
    let (g, w) = (element_bits(got), element_bits(want));
    assert_eq!(g.len(), w.len(), "{what}: length");
    let alt = matmul_i8_fused_alternative(inputs, epilogue)
        .unwrap()
        .map(|a| element_bits(&a));
    let bad: Vec<String> = (0..w.len())
        .filter(|&i| !(g[i] == w[i] || alt.as_ref().is_some_and(|a| g[i] == a[i])))
        .map(|i| {
            let fused = alt
                .as_ref()
                .map_or(String::new(), |a| format!(", {:#x}", a[i]));
            format!(
                "[{}, {}]: gpu {:#x} not in {{{:#x}{fused}}}",
                i / n,
                i % n,
                g[i],
                w[i]
            )
        })
        .collect();
    assert!(
        bad.is_empty(),
        "{what}: {} of {} elements differ; first: {:?}",
        bad.len(),
        w.len(),
        &bad[..bad.len().min(8)]
    );
}

#[test]
fn every_small_shape() {
    let Some(ctx) = gpu() else { return };
    for m in 1..=10 {
        for n in 1..=10 {
            for k in 1..=10 {
                GemmTester::new()
                    .shape(m, n, k)
                    .a_type(if (m + n) % 2 == 0 {
                        QType::U8
                    } else {
                        QType::I8
                    })
                    .per_channel_w_zero_points()
                    .epilogue(Kind::I32)
                    .check(ctx);
            }
        }
    }
}

#[test]
fn tile_multiples_primes_and_odd_k() {
    let Some(ctx) = gpu() else { return };
    for (m, n, k) in [
        (32, 32, 32),
        (31, 33, 31),
        (33, 31, 33),
        (64, 64, 64),
        (65, 63, 67),
        (37, 55, 73),
        (1, 55, 73),
        (1, 300, 513),
        (3, 1, 1),
        (129, 17, 2),
    ] {
        for (seed, kind) in [Kind::I32, Kind::RequantFloat, Kind::F16]
            .into_iter()
            .enumerate()
        {
            GemmTester::new()
                .shape(m, n, k)
                .a_type(QType::U8)
                .per_channel_w_zero_points()
                .epilogue(kind)
                .seed(seed as u64 + 100)
                .check(ctx);
        }
    }
}

#[test]
fn every_epilogue_convention_and_type() {
    let Some(ctx) = gpu() else { return };
    let kinds = [
        Kind::I32,
        Kind::F32,
        Kind::F16,
        Kind::RequantFloat,
        Kind::Fixed(FixedPointRounding::Single),
        Kind::Fixed(FixedPointRounding::Double),
    ];
    for kind in kinds {
        for convention in Convention::ALL {
            for (a_type, w_type) in [
                (QType::I8, QType::I8),
                (QType::U8, QType::I8),
                (QType::U8, QType::U8),
                (QType::I8, QType::U8),
            ] {
                for activation in [Activation::None, Activation::Relu6] {
                    GemmTester::new()
                        .shape(37, 55, 73)
                        .a_type(a_type)
                        .w_type(w_type)
                        .per_channel_w_zero_points()
                        .epilogue(kind)
                        .convention(convention)
                        .activation(activation)
                        .check(ctx);
                }
            }
        }
    }
}

#[test]
fn dequant_dynamic_rows_float_bias_and_per_row_zero_points() {
    let Some(ctx) = gpu() else { return };
    for kind in [Kind::F32, Kind::F16] {
        for a_type in [QType::I8, QType::U8] {
            GemmTester::new()
                .shape(19, 23, 45)
                .a_type(a_type)
                .epilogue(kind)
                .float_bias()
                .check(ctx);
            GemmTester::new()
                .shape(19, 23, 45)
                .a_type(a_type)
                .epilogue(kind)
                .dynamic_rows()
                .check(ctx);
            GemmTester::new()
                .shape(19, 23, 45)
                .a_type(a_type)
                .epilogue(kind)
                .dynamic_rows()
                .float_bias()
                .check(ctx);
        }
    }
    GemmTester::new()
        .shape(9, 12, 30)
        .a_type(QType::U8)
        .per_row_zero_points()
        .epilogue(Kind::I32)
        .check(ctx);
    GemmTester::new()
        .shape(9, 12, 30)
        .a_type(QType::U8)
        .per_row_zero_points()
        .epilogue(Kind::RequantFloat)
        .check(ctx);
}

/// Deep K at the exact accumulator bound with worst-case data: the i32 result is exact.
#[test]
fn deep_k_at_the_accumulator_bound() {
    let Some(ctx) = gpu() else { return };
    let k = max_depth(QType::U8, 0, QType::I8, 0, 0); // 65793
    GemmTester::new()
        .shape(2, 3, k)
        .a_type(QType::U8)
        .a_zero_point(0)
        .no_bias()
        .worst_case_data()
        .epilogue(Kind::I32)
        .check(ctx);
    let k = max_depth(QType::I8, 0, QType::I8, 0, 0); // 131071
    GemmTester::new()
        .shape(1, 2, k)
        .a_zero_point(0)
        .no_bias()
        .worst_case_data()
        .epilogue(Kind::I32)
        .check(ctx);
}

#[test]
fn layer_errors_are_typed() {
    let Some(ctx) = gpu() else { return };
    let k = 131_072;
    let params = QuantParams::per_tensor(0.01, 0, QType::I8.full_range()).unwrap();
    let w = QuantizedWeights::from_quantized(ctx, &vec![0u8; k], 1, k, params.clone()).unwrap();
    let input = ActivationInput::Static {
        qtype: QType::I8,
        zero_point: 0,
    };
    assert!(matches!(
        QLinear::new(ctx, w, input, None, Epilogue::I32),
        Err(Error::AccumulatorOverflow { k: 131_072, .. })
    ));
    let w = QuantizedWeights::from_quantized(ctx, &[0u8; 12], 3, 4, params.clone()).unwrap();
    assert!(matches!(
        QLinear::new(ctx, w.clone(), input, Some(vec![1, 2]), Epilogue::I32),
        Err(Error::LengthMismatch {
            got: 2,
            expected: 3,
            ..
        })
    ));
    let layer = QLinear::new(ctx, w.clone(), input, None, Epilogue::I32).unwrap();
    assert!(matches!(
        layer.run_blocking(ctx, &[0u8; 7], 2, None),
        Err(Error::ShapeMismatch { .. })
    ));
    let rows = [RowParams::default(); 2];
    assert!(matches!(
        layer.run_blocking(ctx, &[0u8; 8], 2, Some(&rows)),
        Err(Error::Mismatch(_))
    ));
    assert!(matches!(
        QuantizedWeights::from_quantized(ctx, &[0u8; 5], 3, 4, params),
        Err(Error::ShapeMismatch { .. })
    ));
}

/// Two threads share one context, each building its own layer and running it repeatedly;
/// every result equals the reference.
#[test]
fn two_threads_share_one_context() {
    let Some(ctx) = gpu() else { return };
    std::thread::scope(|s| {
        for t in 0..2u64 {
            s.spawn(move || {
                for i in 0..4 {
                    GemmTester::new()
                        .shape(17 + t as usize, 29, 41)
                        .a_type(if t == 0 { QType::U8 } else { QType::I8 })
                        .per_channel_w_zero_points()
                        .epilogue(if i % 2 == 0 {
                            Kind::RequantFloat
                        } else {
                            Kind::I32
                        })
                        .seed(t * 10 + i)
                        .check(ctx);
                }
            });
        }
    });
}

/// The dot-product fallback: a context forced onto the polyfill (as after a failed
/// self-test) builds the polyfill variant, and every epilogue, shape and load variant gives
/// the same bits as `dot4I8Packed` and as the reference.
#[test]
fn dot4_polyfill_gives_the_same_bits() {
    let Some(ctx) = gpu() else { return };
    let poly = ctx.clone().with_dot4_polyfill(true);
    assert!(poly.dot4_polyfill());
    assert_eq!(
        poly.capabilities().dot_product,
        wgpu_quant::gpu::capabilities::DotProductPath::Polyfill
    );
    let native = ctx.clone().with_dot4_polyfill(false);
    for (i, kind) in [
        Kind::I32,
        Kind::F32,
        Kind::F16,
        Kind::RequantFloat,
        Kind::Fixed(FixedPointRounding::Double),
        Kind::DequantRequant,
    ]
    .into_iter()
    .enumerate()
    {
        for (m, n, k) in [(2, 9, 37), (13, 17, 64), (33, 5, 131)] {
            let t = GemmTester::new()
                .shape(m, n, k)
                .a_type(if i % 2 == 0 { QType::U8 } else { QType::I8 })
                .per_channel_w_zero_points()
                .epilogue(kind)
                .seed(700 + i as u64);
            let (a, b) = (t.check(&native), t.check(&poly));
            assert_eq!(element_bits(&a), element_bits(&b), "{t:?}");
        }
    }
    // The worst case at the accumulator bound, on the polyfill too.
    let k = max_depth(QType::I8, 0, QType::I8, 0, 0);
    GemmTester::new()
        .shape(5, 3, k)
        .a_zero_point(0)
        .no_bias()
        .worst_case_data()
        .epilogue(Kind::I32)
        .check(&poly);
}

/// The packed dot-product self-test runs at context creation and passes on a conforming
/// driver; its operands cover every edge value in every lane.
#[test]
fn dot4_self_test_runs_at_creation() {
    use wgpu_quant::gpu::capabilities::Dot4SelfTest;
    let Some(ctx) = gpu() else { return };
    assert_eq!(ctx.dot4_self_test(), &Dot4SelfTest::Passed);
    assert!(!ctx.dot4_polyfill());
    let caps = ctx.capabilities();
    assert_eq!(caps.dot4_self_test, Dot4SelfTest::Passed);
    let (lhs, rhs) = wgpu_quant::gpu::dot4::self_test_operands();
    assert_eq!(lhs.len(), rhs.len());
    for lane in 0..4 {
        for (x, y) in [(0x80u32, 0x80u32), (0x7f, 0x80), (0xff, 0xff), (0x81, 0x7f)] {
            assert!(
                lhs.iter()
                    .zip(&rhs)
                    .any(|(&a, &b)| a == x << (8 * lane) && b == y << (8 * lane)),
                "lane {lane}: {x:#x} x {y:#x}"
            );
        }
    }
    // A context over the caller's device runs it when asked.
    let mut embedded = Context::from_wgpu(ctx.device().clone(), ctx.queue().clone());
    assert_eq!(embedded.dot4_self_test(), &Dot4SelfTest::NotRun);
    assert_eq!(embedded.run_dot4_self_test(), &Dot4SelfTest::Passed);
    assert!(!embedded.dot4_polyfill());
}

#[test]
fn capabilities_report_the_adapter() {
    let Some(ctx) = gpu() else { return };
    let caps = ctx.capabilities();
    assert!(caps.adapter_name.is_some() && caps.backend.is_some());
    assert!(caps.max_storage_buffer_binding_size >= 128 << 20);
    assert!(caps.max_compute_workgroups_per_dimension >= 65_535);
    eprintln!("{caps:#?}");
    eprintln!(
        "storage offset alignment {}",
        ctx.device().limits().min_storage_buffer_offset_alignment
    );
}

/// Above the storage binding limit (forced small here, so the test is cheap) weights split
/// along N and activations/outputs along M, transparently; results are identical.
#[test]
fn split_above_the_binding_limit() {
    let Some(ctx) = gpu() else { return };
    let small = ctx.clone().with_binding_limit(4096);
    let params = QuantParams::per_tensor(0.01, 0, QType::I8.full_range()).unwrap();
    let weights =
        QuantizedWeights::from_quantized(&small, &vec![1u8; 300 * 75], 300, 75, params).unwrap();
    assert!(
        weights.chunk_count() > 1,
        "{} chunks",
        weights.chunk_count()
    );
    for kind in [
        Kind::I32,
        Kind::F16,
        Kind::RequantFloat,
        Kind::Fixed(FixedPointRounding::Single),
    ] {
        for (m, n, k) in [(100, 300, 75), (70, 37, 129), (5, 1000, 9)] {
            GemmTester::new()
                .shape(m, n, k)
                .a_type(QType::U8)
                .per_channel_w_zero_points()
                .epilogue(kind)
                .check(&small);
        }
    }
    GemmTester::new()
        .shape(90, 130, 40)
        .a_type(QType::U8)
        .epilogue(Kind::F32)
        .dynamic_rows()
        .float_bias()
        .check(&small);
    // Split and unsplit give identical bits.
    GemmTester::new()
        .shape(90, 130, 40)
        .a_type(QType::U8)
        .epilogue(Kind::F32)
        .dynamic_rows()
        .float_bias()
        .check(ctx);
}

/// Two layers chained in one encoder: the first requantizes to packed int8, which the second
/// reads directly (its K is the first's N); nothing leaves the GPU in between.
#[test]
fn two_layers_chain_on_the_gpu() {
    use wgpu_quant::Scheme;
    use wgpu_quant::gpu::buffers::{create, read_blocking, upload};
    use wgpu_quant::quant::calibrate::MinMax;
    use wgpu_quant::reference::quantize::quantize;
    let Some(ctx) = gpu() else { return };
    let mut rng = Rng::new(70);
    let (m, k, hidden, n) = (6, 45, 33, 10);
    let w1: Vec<f32> = (0..hidden * k).map(|_| rng.uniform(-1.0, 1.0)).collect();
    let w2: Vec<f32> = (0..n * hidden).map(|_| rng.uniform(-1.0, 1.0)).collect();
    let sym = Scheme::symmetric(QType::I8);
    let conv = Convention::Onnx;
    let l1w = QuantizedWeights::quantize(ctx, &w1, hidden, k, conv, MinMax::new(), &sym).unwrap();
    let l2w = QuantizedWeights::quantize(ctx, &w2, n, hidden, conv, MinMax::new(), &sym).unwrap();
    let x_params = QuantParams::per_tensor(0.02, 5, QType::U8.full_range()).unwrap();
    let h_params = QuantParams::per_tensor(0.05, 128, QType::U8.full_range()).unwrap();
    let y_params = QuantParams::per_tensor(0.1, 120, QType::U8.full_range()).unwrap();
    let r1 = Requant::float(conv, &x_params, l1w.params(), &h_params, Activation::Relu).unwrap();
    let r2 = Requant::float(conv, &h_params, l2w.params(), &y_params, Activation::None).unwrap();
    let (p1, p2) = (l1w.params().clone(), l2w.params().clone());
    let in_u8 = |zp| ActivationInput::Static {
        qtype: QType::U8,
        zero_point: zp,
    };
    let layer1 = QLinear::new(ctx, l1w, in_u8(5), None, Epilogue::Requant(r1.clone())).unwrap();
    let layer2 = QLinear::new(ctx, l2w, in_u8(128), None, Epilogue::Requant(r2.clone())).unwrap();

    let x: Vec<f32> = (0..m * k).map(|_| rng.uniform(-1.0, 2.0)).collect();
    let xq = quantize(conv, &x, &[m, k], &x_params).unwrap();
    let packed = wgpu_quant::quant::pack::pack_bytes(&xq, m, k).unwrap();
    let usage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC;
    let input = upload(ctx, "x", &packed, wgpu::BufferUsages::STORAGE).unwrap();
    let hidden_buf = create(ctx, "h", (m * hidden.div_ceil(4) * 4) as u64, usage).unwrap();
    let out = create(ctx, "y", (m * n.div_ceil(4) * 4) as u64, usage).unwrap();
    let mut encoder = ctx.device().create_command_encoder(&Default::default());
    layer1
        .encode(ctx, &mut encoder, m, &input, None, &hidden_buf)
        .unwrap();
    layer2
        .encode(ctx, &mut encoder, m, &hidden_buf, None, &out)
        .unwrap();
    ctx.queue().submit([encoder.finish()]);
    let words: Vec<u32> = bytemuck::pod_collect_to_vec(
        &read_blocking(ctx, &out, (m * n.div_ceil(4) * 4) as u64).unwrap(),
    );
    let got = wgpu_quant::quant::pack::unpack_bytes(&words, m, n).unwrap();

    let w1q = quantize(conv, &w1, &[hidden, k], &p1).unwrap();
    let w2q = quantize(conv, &w2, &[n, hidden], &p2).unwrap();
    let step = |a: &[u8], rows, cols, w: &[u8], wrows, wp: &QuantParams, za, r: &Requant| {
        let inputs = GemmInputs {
            a: QMatrix {
                data: a,
                qtype: QType::U8,
                rows,
                cols,
            },
            a_zero_points: &[za],
            w: QMatrix {
                data: w,
                qtype: QType::I8,
                rows: wrows,
                cols,
            },
            w_zero_points: wp.zero_points(),
            bias: &[],
        };
        match matmul_i8(&inputs, &Epilogue::Requant(r.clone())).unwrap() {
            GemmOutput::Quantized { bytes, .. } => bytes,
            _ => unreachable!(),
        }
    };
    let h = step(&xq, m, k, &w1q, hidden, &p1, 5, &r1);
    let want = step(&h, m, hidden, &w2q, n, &p2, 128, &r2);
    assert_eq!(got, want);
}

/// The GEMV shape (M <= 3) for every epilogue, N around its 256-column workgroup.
#[test]
fn gemv_shapes() {
    let Some(ctx) = gpu() else { return };
    let kinds = [
        Kind::I32,
        Kind::F32,
        Kind::F16,
        Kind::RequantFloat,
        Kind::Fixed(FixedPointRounding::Double),
    ];
    for m in 1..=3 {
        for (n, k) in [(1, 1), (255, 33), (256, 64), (257, 130), (1000, 7)] {
            for kind in kinds {
                GemmTester::new()
                    .shape(m, n, k)
                    .a_type(QType::U8)
                    .per_channel_w_zero_points()
                    .epilogue(kind)
                    .check(ctx);
            }
        }
    }
}

mod random_shapes {
    //! Proptest over shapes, types, zero points and epilogues (few cases: each is a GPU run).
    use proptest::prelude::*;

    use super::{GemmTester, Kind};
    use crate::common::gpu;
    use wgpu_quant::{FixedPointRounding, QType};

    fn kinds() -> impl Strategy<Value = Kind> {
        prop::sample::select(vec![
            Kind::I32,
            Kind::F32,
            Kind::F16,
            Kind::RequantFloat,
            Kind::Fixed(FixedPointRounding::Single),
            Kind::Fixed(FixedPointRounding::Double),
        ])
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(40))]
        #[test]
        fn gpu_equals_reference(
            m in 1usize..70, n in 1usize..70, k in 1usize..150,
            a_u8 in any::<bool>(), w_u8 in any::<bool>(), kind in kinds(), seed in any::<u64>(),
        ) {
            let Some(ctx) = gpu() else { return Ok(()) };
            let t = |u| if u { QType::U8 } else { QType::I8 };
            GemmTester::new().shape(m, n, k).a_type(t(a_u8)).w_type(t(w_u8)).per_channel_w_zero_points()
                .epilogue(kind).seed(seed).check(ctx);
        }
    }
}

/// Repeated calls with the same buffers reuse one prepared set of bind groups and uniforms,
/// and give identical results.
#[test]
fn encode_reuses_prepared_dispatches() {
    use wgpu_quant::gpu::buffers::{create, read_blocking, upload};
    let Some(ctx) = gpu() else { return };
    let mut rng = Rng::new(80);
    let (m, n, k) = (9, 14, 30);
    let params = QuantParams::per_tensor(0.01, 0, QType::I8.full_range()).unwrap();
    let weights = QuantizedWeights::from_quantized(ctx, &rng.bytes(n * k), n, k, params).unwrap();
    let input_kind = ActivationInput::Static {
        qtype: QType::I8,
        zero_point: 3,
    };
    let layer = QLinear::new(ctx, weights, input_kind, None, Epilogue::I32).unwrap();
    let packed = wgpu_quant::quant::pack::pack_bytes(&rng.bytes(m * k), m, k).unwrap();
    let input = upload(ctx, "a", &packed, wgpu::BufferUsages::STORAGE).unwrap();
    let usage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC;
    let (out1, out2) = (
        create(ctx, "y1", (m * n * 4) as u64, usage).unwrap(),
        create(ctx, "y2", (m * n * 4) as u64, usage).unwrap(),
    );
    let mut results = Vec::new();
    for (i, out) in [&out1, &out1, &out1, &out2].into_iter().enumerate() {
        let mut encoder = ctx.device().create_command_encoder(&Default::default());
        layer
            .encode(ctx, &mut encoder, m, &input, None, out)
            .unwrap();
        ctx.queue().submit([encoder.finish()]);
        results.push(read_blocking(ctx, out, (m * n * 4) as u64).unwrap());
        assert_eq!(layer.cached_dispatch_sets(), if i < 3 { 1 } else { 2 });
    }
    assert!(results.windows(2).all(|w| w[0] == w[1]));
}

/// Rows of whole vec4s (K words % 4 == 0) take the 16-byte-load variant: every epilogue, and
/// split along M (whose aligned remainders must stay 16-byte aligned).
#[test]
fn vec4_load_variant() {
    let Some(ctx) = gpu() else { return };
    let kinds = [
        Kind::I32,
        Kind::F32,
        Kind::F16,
        Kind::RequantFloat,
        Kind::Fixed(FixedPointRounding::Single),
    ];
    for kind in kinds {
        for (m, n, k) in [(37, 55, 64), (1, 40, 16), (33, 31, 128), (5, 9, 13)] {
            GemmTester::new()
                .shape(m, n, k)
                .a_type(QType::U8)
                .per_channel_w_zero_points()
                .epilogue(kind)
                .check(ctx);
        }
    }
    let small = ctx.clone().with_binding_limit(4096);
    GemmTester::new()
        .shape(100, 300, 64)
        .a_type(QType::U8)
        .per_channel_w_zero_points()
        .epilogue(Kind::I32)
        .check(&small);
    GemmTester::new()
        .shape(70, 50, 48)
        .dynamic_rows()
        .epilogue(Kind::F32)
        .check(&small);
}

const FLOAT_ACTIVATIONS: [Activation; 5] = [
    Activation::None,
    Activation::Relu,
    Activation::Relu6,
    Activation::ReluN1To1,
    Activation::Clamp { lo: -0.75, hi: 2.5 },
];

/// Every activation on f32 and f16 outputs: static and dynamic row scales, with and without
/// an f32 bias (the clamp applies to either rule-2 member).
#[test]
fn float_activations_on_dequant_outputs() {
    let Some(ctx) = gpu() else { return };
    for kind in [Kind::F32, Kind::F16] {
        for (i, activation) in FLOAT_ACTIVATIONS.into_iter().enumerate() {
            for (dynamic, bias) in [(false, false), (false, true), (true, false), (true, true)] {
                let mut t = GemmTester::new()
                    .shape(19, 23, 45)
                    .a_type(if i % 2 == 0 { QType::U8 } else { QType::I8 })
                    .per_channel_w_zero_points()
                    .epilogue(kind)
                    .activation(activation)
                    .seed(i as u64);
                if dynamic {
                    t = t.dynamic_rows();
                }
                if bias {
                    t = t.float_bias();
                }
                t.check(ctx);
            }
        }
    }
}

/// `DequantRequant` for every convention: static input, per-row zero points with static
/// scales, and dynamic per-row scales (`PerRow` input); with and without f32 bias; i8 and u8
/// activations and outputs; several activations.
#[test]
fn dequant_requant_every_convention() {
    let Some(ctx) = gpu() else { return };
    let mut seed = 0;
    for convention in Convention::ALL {
        for (a_type, out_type) in [
            (QType::I8, QType::I8),
            (QType::U8, QType::U8),
            (QType::U8, QType::I8),
            (QType::I8, QType::U8),
        ] {
            for (input, bias) in [
                ("static", false),
                ("static", true),
                ("per-row zp", true),
                ("dynamic", false),
                ("dynamic", true),
            ] {
                seed += 1;
                let activation =
                    [Activation::None, Activation::Relu, Activation::Relu6][seed as usize % 3];
                let mut t = GemmTester::new()
                    .shape(19, 23, 45)
                    .a_type(a_type)
                    .out_type(out_type)
                    .per_channel_w_zero_points()
                    .epilogue(Kind::DequantRequant)
                    .convention(convention)
                    .activation(activation)
                    .seed(seed);
                match input {
                    "per-row zp" => t = t.per_row_zero_points(),
                    "dynamic" => t = t.dynamic_rows(),
                    _ => {}
                }
                if bias {
                    t = t.float_bias();
                }
                t.check(ctx);
            }
        }
    }
}

/// The new epilogues on awkward shapes: GEMV (M <= 3), K % 4 != 0, one off the 32 x 32
/// tile, whole vec4 rows, and split above the binding limit.
#[test]
fn dequant_activation_and_requant_shapes() {
    let Some(ctx) = gpu() else { return };
    let shapes = [
        (1, 1, 1),
        (1, 55, 73),
        (2, 257, 130),
        (3, 9, 7),
        (31, 33, 31),
        (32, 32, 32),
        (33, 31, 33),
        (37, 55, 64),
        (65, 5, 2),
    ];
    for (i, (m, n, k)) in shapes.into_iter().enumerate() {
        let conv = Convention::ALL[i % 3];
        let types = [QType::I8, QType::U8];
        let base = GemmTester::new()
            .shape(m, n, k)
            .a_type(types[i % 2])
            .per_channel_w_zero_points()
            .seed(1000 + i as u64);
        base.clone()
            .epilogue(Kind::F32)
            .activation(Activation::Relu6)
            .float_bias()
            .check(ctx);
        base.clone()
            .epilogue(Kind::F16)
            .activation(Activation::ReluN1To1)
            .dynamic_rows()
            .check(ctx);
        base.clone()
            .epilogue(Kind::DequantRequant)
            .out_type(types[(i + 1) % 2])
            .convention(conv)
            .activation(Activation::Relu)
            .float_bias()
            .check(ctx);
        base.clone()
            .epilogue(Kind::DequantRequant)
            .convention(conv)
            .dynamic_rows()
            .check(ctx);
    }
    let small = ctx.clone().with_binding_limit(4096);
    for conv in Convention::ALL {
        GemmTester::new()
            .shape(90, 130, 40)
            .a_type(QType::U8)
            .epilogue(Kind::DequantRequant)
            .convention(conv)
            .dynamic_rows()
            .float_bias()
            .check(&small);
    }
    GemmTester::new()
        .shape(70, 300, 75)
        .epilogue(Kind::F16)
        .activation(Activation::Clamp { lo: -1.5, hi: 0.25 })
        .float_bias()
        .check(&small);
}

/// A huge dequantization scale overflows f32 to ±Inf: the quantizer saturates it and a float
/// clamp bounds it, on the GPU as in the reference.
#[test]
fn dequant_overflow_saturates_on_the_gpu() {
    let Some(ctx) = gpu() else { return };
    let mut rng = Rng::new(90);
    let (m, n, k) = (5, 6, 40);
    let a = rng.bytes(m * k);
    let w = rng.bytes(n * k);
    let params = QuantParams::per_tensor(0.01, 0, QType::I8.full_range()).unwrap();
    let fbias = Some(vec![1.0, -1.0, 1e38, -1e38, 0.0, 3.0]);
    let d = Dequant {
        scales: DequantScales::PerChannel(vec![3e38]),
        bias: fbias,
        activation: Activation::None,
    };
    let out = QuantParams::per_tensor(0.1, 3, QType::I8.full_range()).unwrap();
    let mut epilogues = vec![
        Epilogue::DequantF32(d.clone().with_activation(Activation::Relu6)),
        Epilogue::DequantF16(d.clone().with_activation(Activation::Relu)),
        Epilogue::DequantF32(d.clone()),
    ];
    for conv in Convention::ALL {
        epilogues.push(Epilogue::DequantRequant(
            DequantRequant::new(conv, d.clone(), &out, Activation::ReluN1To1).unwrap(),
        ));
    }
    let input = ActivationInput::Static {
        qtype: QType::I8,
        zero_point: 0,
    };
    let inputs = GemmInputs {
        a: QMatrix {
            data: &a,
            qtype: QType::I8,
            rows: m,
            cols: k,
        },
        a_zero_points: &[0],
        w: QMatrix {
            data: &w,
            qtype: QType::I8,
            rows: n,
            cols: k,
        },
        w_zero_points: &[0],
        bias: &[],
    };
    for epilogue in epilogues {
        let want = matmul_i8(&inputs, &epilogue).unwrap();
        let weights = QuantizedWeights::from_quantized(ctx, &w, n, k, params.clone()).unwrap();
        let layer = QLinear::new(ctx, weights, input, None, epilogue.clone()).unwrap();
        let got = layer.run_blocking(ctx, &a, m, None).unwrap();
        assert_matches_reference(&format!("{epilogue:?}"), n, &got, &want, &inputs, &epilogue);
    }
}

/// Layer construction rejects what the new epilogues cannot take.
#[test]
fn dequant_epilogue_errors_are_typed() {
    let Some(ctx) = gpu() else { return };
    let params = QuantParams::per_tensor(0.01, 0, QType::I8.full_range()).unwrap();
    let w = QuantizedWeights::from_quantized(ctx, &[1u8; 12], 3, 4, params.clone()).unwrap();
    let st = ActivationInput::Static {
        qtype: QType::I8,
        zero_point: 0,
    };
    let d = Dequant::per_channel(&params, &params, None).unwrap();
    let quantized_clamp = d
        .clone()
        .with_activation(Activation::ClampQuantized { lo: 0, hi: 1 });
    assert!(matches!(
        QLinear::new(
            ctx,
            w.clone(),
            st,
            None,
            Epilogue::DequantF32(quantized_clamp)
        ),
        Err(Error::InvalidConfig { .. })
    ));
    let dynamic = Dequant {
        scales: DequantScales::PerRowPerChannel {
            row_scales: vec![],
            channel_scales: vec![0.1],
        },
        bias: None,
        activation: Activation::None,
    };
    let r = DequantRequant::new(Convention::Onnx, dynamic, &params, Activation::None).unwrap();
    assert!(matches!(
        QLinear::new(
            ctx,
            w.clone(),
            st,
            None,
            Epilogue::DequantRequant(r.clone())
        ),
        Err(Error::Mismatch(_))
    ));
    let with_act = DequantRequant {
        dequant: d.with_activation(Activation::Relu),
        ..r
    };
    assert!(matches!(
        QLinear::new(ctx, w, st, None, Epilogue::DequantRequant(with_act)),
        Err(Error::InvalidConfig { .. })
    ));
}

/// Exact ties `v / s_out = k + 0.5` tell the conventions apart: Onnx rounds half to even,
/// TfLite half away from zero, and PyTorch's reciprocal multiply lands beside some ties. The
/// GPU follows each convention's quantizer (its `SCALE_OP` and `ROUND_MODE` constants).
#[test]
fn dequant_requant_conventions_differ_at_ties() {
    let Some(ctx) = gpu() else { return };
    // A[256, 1] = every i8 value, W[4, 1] = 1: acc[m, n] = a[m] exactly.
    let (m, n, k) = (256, 4, 1);
    let a: Vec<u8> = (-128i32..=127).map(|v| v as u8).collect();
    let w = vec![1u8; n];
    let inputs = GemmInputs {
        a: QMatrix {
            data: &a,
            qtype: QType::I8,
            rows: m,
            cols: k,
        },
        a_zero_points: &[0],
        w: QMatrix {
            data: &w,
            qtype: QType::I8,
            rows: n,
            cols: k,
        },
        w_zero_points: &[0],
        bias: &[],
    };
    let out_for = |s_out: f32| {
        let d = Dequant {
            // s_out / 2^j: v = acc * s_out / 2^j is exact (s_out has 7 spare low bits).
            scales: DequantScales::PerChannel(vec![s_out / 2.0, s_out / 4.0, s_out / 2.0, s_out]),
            bias: None,
            activation: Activation::None,
        };
        let out = QuantParams::per_tensor(s_out, 0, QType::I8.full_range()).unwrap();
        Convention::ALL.map(|c| {
            Epilogue::DequantRequant(
                DequantRequant::new(c, d.clone(), &out, Activation::None).unwrap(),
            )
        })
    };
    // The first output scale at which all three conventions give different bytes.
    let epilogues = (0..1000)
        .map(|i| f32::from_bits((0.0137f32 + 0.0071 * i as f32).to_bits() & !0x7f))
        .map(out_for)
        .find(|e| {
            let y = e.clone().map(|e| matmul_i8(&inputs, &e).unwrap());
            y[0] != y[1] && y[0] != y[2] && y[1] != y[2]
        })
        .expect("an output scale that separates the conventions");
    let params = QuantParams::per_tensor(1.0, 0, QType::I8.full_range()).unwrap();
    let input = ActivationInput::Static {
        qtype: QType::I8,
        zero_point: 0,
    };
    for epilogue in epilogues {
        let want = matmul_i8(&inputs, &epilogue).unwrap();
        let weights = QuantizedWeights::from_quantized(ctx, &w, n, k, params.clone()).unwrap();
        let layer = QLinear::new(ctx, weights, input, None, epilogue.clone()).unwrap();
        let got = layer.run_blocking(ctx, &a, m, None).unwrap();
        assert_matches_reference(&format!("{epilogue:?}"), n, &got, &want, &inputs, &epilogue);
    }
}

/// Hand-built fixed-point multipliers at the edges of what `QuantizedMultiplier::validate`
/// accepts (m0 = 0, 2^30, 2^31 - 1; shift -31 and 30 for single rounding, up to 1000 for
/// double rounding, whose left shift saturates) give the reference's bits on the GPU.
#[test]
fn fixed_point_multipliers_at_the_edges_match_the_reference() {
    use wgpu_quant::{QuantizedMultiplier, RequantScaling};
    let Some(ctx) = gpu() else { return };
    let mut rng = Rng::new(4242);
    let (m, k) = (5, 37);
    let m0s = [0, 1 << 30, i32::MAX, 1_518_500_250];
    for rounding in [FixedPointRounding::Single, FixedPointRounding::Double] {
        let shifts: &[i32] = match rounding {
            FixedPointRounding::Single => &[-31, -30, -1, 0, 1, 29, 30],
            FixedPointRounding::Double => &[-31, -1, 0, 1, 30, 31, 40, 1000],
        };
        let multipliers: Vec<QuantizedMultiplier> = shifts
            .iter()
            .flat_map(|&shift| m0s.iter().map(move |&m0| QuantizedMultiplier { m0, shift }))
            .collect();
        for q in &multipliers {
            q.validate(rounding).unwrap();
        }
        let n = multipliers.len();
        let a = rng.bytes(m * k);
        let w = rng.bytes(n * k);
        let bias: Vec<i32> = (0..n).map(|_| rng.int(-100_000, 100_000)).collect();
        let w_params = QuantParams::per_tensor(0.01, 0, QType::I8.full_range()).unwrap();
        let requant = Requant {
            scaling: RequantScaling::FixedPoint {
                multipliers,
                rounding,
            },
            out_qtype: QType::I8,
            out_zero_point: -3,
            clamp_min: -128,
            clamp_max: 127,
        };
        let epilogue = Epilogue::Requant(requant);
        let inputs = GemmInputs {
            a: QMatrix {
                data: &a,
                qtype: QType::I8,
                rows: m,
                cols: k,
            },
            a_zero_points: &[7],
            w: QMatrix {
                data: &w,
                qtype: QType::I8,
                rows: n,
                cols: k,
            },
            w_zero_points: &[0],
            bias: &bias,
        };
        let want = matmul_i8(&inputs, &epilogue).unwrap();
        let weights = QuantizedWeights::from_quantized(ctx, &w, n, k, w_params).unwrap();
        let layer = QLinear::new(
            ctx,
            weights,
            ActivationInput::Static {
                qtype: QType::I8,
                zero_point: 7,
            },
            Some(bias.clone()),
            epilogue.clone(),
        )
        .unwrap();
        let got = layer.run_blocking(ctx, &a, m, None).unwrap();
        assert_eq!(element_bits(&got), element_bits(&want), "{rounding:?}");
    }
}

/// Every kernel the tuning can choose (tile x loads x dot-product formulation) equals the
/// reference on the shape classes that break kernels: tile multiples and tile ± 1, K not a
/// multiple of 4 or of 16, GEMV rows, row sums (U8, per-channel weight zero points), three
/// epilogues, an M and N split under a forced binding limit, and the accumulator bound.
/// GEMM shapes run here; the GEMV shapes in `every_gemv_kernel_equals_the_reference`.
#[test]
fn every_kernel_config_equals_the_reference() {
    use wgpu_quant::gpu::pipelines::Tile;
    use wgpu_quant::gpu::tune::{KernelConfig, Tuning};
    let Some(ctx) = gpu() else { return };
    let mut configs = Vec::new();
    for tile in Tile::GEMM {
        for vec4_loads in [true, false] {
            for unpacked in [false, true] {
                configs.push(KernelConfig {
                    tile,
                    vec4_loads,
                    unpacked,
                });
            }
        }
    }
    let depth = max_depth(QType::I8, 0, QType::I8, 0, 0);
    for (c, config) in configs.into_iter().enumerate() {
        let fixed = ctx.clone().with_tuning(Tuning::Fixed(config));
        for (i, (m, n, k)) in [
            (1, 9, 37),
            (3, 70, 64),
            (64, 64, 64),
            (65, 63, 67),
            (63, 65, 130),
            (9, 130, 16),
        ]
        .into_iter()
        .enumerate()
        {
            // One epilogue per config and shape family (each is a pipeline to compile); the
            // configs rotate through them.
            let kind = [Kind::I32, Kind::RequantFloat, Kind::F16][(c + i / 3) % 3];
            GemmTester::new()
                .shape(m, n, k)
                .a_type(QType::U8)
                .per_channel_w_zero_points()
                .epilogue(kind)
                .seed(900 + c as u64)
                .check(&fixed);
        }
        GemmTester::new()
            .shape(100, 300, 64)
            .a_type(QType::U8)
            .per_channel_w_zero_points()
            .epilogue(Kind::Fixed(FixedPointRounding::Single))
            .check(&fixed.clone().with_binding_limit(4096));
        GemmTester::new()
            .shape(9, 3, depth)
            .a_zero_point(0)
            .no_bias()
            .worst_case_data()
            .epilogue(Kind::I32)
            .check(&fixed);
    }
}

/// Every GEMV shape (columns per invocation or per workgroup, K whole, interleaved or in
/// slices across the workgroup) x loads x dot-product formulation equals the reference on
/// 1 to 3 rows: N at the shape's column count ± 1 and at 4 workgroups of it ± 1, K of one
/// element, odd, not a multiple of 16, below and above one interleave (64 invocations x 16
/// bytes) and not a multiple of it, row sums (U8, per-channel weight zero points), four
/// epilogues, an N split under a forced binding limit, and the accumulator bound.
#[test]
fn every_gemv_kernel_equals_the_reference() {
    use wgpu_quant::gpu::pipelines::Tile;
    use wgpu_quant::gpu::tune::{KernelConfig, Tuning};
    let Some(ctx) = gpu() else { return };
    let depth = max_depth(QType::I8, 0, QType::I8, 0, 0);
    let mut c = 0u64;
    for tile in Tile::GEMV {
        for vec4_loads in [true, false] {
            for unpacked in [false, true] {
                let config = KernelConfig {
                    tile,
                    vec4_loads,
                    unpacked,
                };
                let fixed = ctx.clone().with_tuning(Tuning::Fixed(config));
                let cols = tile.block().1 as usize;
                for (i, (m, n, k)) in [
                    (1, cols - 1, 1),
                    (1, cols, 37),
                    (2, cols + 1, 64),
                    (3, 4 * cols - 1, 130),
                    (1, 4 * cols + 1, 1024),
                    (1, 70, 1092),
                    (2, 257, 2051),
                ]
                .into_iter()
                .enumerate()
                {
                    // One epilogue per config and shape family (each is a pipeline to
                    // compile); the configs rotate through them.
                    let kind = [Kind::I32, Kind::RequantFloat, Kind::F16, Kind::F32]
                        [(c as usize + i / 4) % 4];
                    GemmTester::new()
                        .shape(m, n, k)
                        .a_type(QType::U8)
                        .per_channel_w_zero_points()
                        .epilogue(kind)
                        .seed(1900 + c)
                        .check(&fixed);
                }
                GemmTester::new()
                    .shape(3, 300, 64)
                    .a_type(QType::U8)
                    .per_channel_w_zero_points()
                    .epilogue(Kind::Fixed(FixedPointRounding::Single))
                    .check(&fixed.clone().with_binding_limit(4096));
                GemmTester::new()
                    .shape(2, 5, depth)
                    .a_zero_point(0)
                    .no_bias()
                    .worst_case_data()
                    .epilogue(Kind::I32)
                    .check(&fixed);
                c += 1;
            }
        }
    }
}

/// The autotune measures a layer's two shape classes once, caches the winners per context
/// (shared by clones), reports every candidate's time, and layers built afterwards take the
/// winners; the tuned layer still equals the reference. Under `Heuristic` nothing is
/// measured.
#[test]
fn autotune_measures_caches_and_reports() {
    use wgpu_quant::gpu::tune::{ChoiceSource, Tuning, candidates};
    let Some(ctx) = gpu() else { return };
    // A context over the same device with its own, empty cache.
    let fresh = Context::from_wgpu(ctx.device().clone(), ctx.queue().clone());
    let (n, k) = (96, 128);
    let params = QuantParams::per_tensor(0.01, 0, QType::I8.full_range()).unwrap();
    let w = Rng::new(5).bytes(n * k);
    let build = |c: &Context| {
        let weights = QuantizedWeights::from_quantized(c, &w, n, k, params.clone()).unwrap();
        let input = ActivationInput::Static {
            qtype: QType::I8,
            zero_point: 3,
        };
        QLinear::new(c, weights, input, None, Epilogue::I32).unwrap()
    };
    let heuristic_only = fresh.clone().with_tuning(Tuning::Heuristic);
    let mut layer = build(&heuristic_only);
    assert_eq!(layer.kernel().source, ChoiceSource::Heuristic);
    layer.tune_blocking(&heuristic_only).unwrap();
    assert!(fresh.tuning_report().is_empty(), "Heuristic measured");

    let mut layer = build(&fresh);
    assert_eq!(layer.kernel().source, ChoiceSource::Heuristic);
    let tuned = layer.tune_blocking(&fresh).unwrap();
    assert_eq!(tuned.source, ChoiceSource::Measured);
    assert_eq!(layer.kernel(), tuned);
    let report = fresh.tuning_report();
    assert_eq!(report.len(), 2, "{report:#?}");
    for record in &report {
        assert_eq!(record.timings.len(), candidates(&fresh, record.class).len());
        assert!(record.timings.iter().all(|t| t.1.is_finite() && t.1 > 0.0));
        eprintln!(
            "{}: {:?} {:?} -> {}",
            record.adapter, record.class, record.shape, record.winner
        );
    }
    // A clone shares the cache: a new layer takes the winners without measuring again.
    let again = build(&fresh.clone());
    assert_eq!(again.kernel(), tuned);
    assert_eq!(fresh.tuning_report(), report);
    // The tuned kernels give the reference's bits.
    for m in [1, 2, 40] {
        let a = Rng::new(m as u64).bytes(m * k);
        let got = layer.run_blocking(&fresh, &a, m, None).unwrap();
        let want = again.run_blocking(&fresh, &a, m, None).unwrap();
        assert_eq!(element_bits(&got), element_bits(&want));
    }
    GemmTester::new().shape(40, n, k).check(&fresh);
}

/// A `Linear` built after `autotune` for its shape takes the measured kernels.
#[test]
fn a_linear_built_after_autotune_takes_the_winners() {
    use wgpu_quant::gpu::tune::{ChoiceSource, autotune_blocking};
    use wgpu_quant::nn::{InputSpec, Linear, LinearConfig, OutputSpec};
    let Some(ctx) = gpu() else { return };
    let fresh = Context::from_wgpu(ctx.device().clone(), ctx.queue().clone());
    let (n, k) = (40, 48);
    let params = QuantParams::per_tensor(0.02, 0, QType::I8.full_range()).unwrap();
    let config = || LinearConfig::new(InputSpec::Static(params.clone()), OutputSpec::F32);
    let w = vec![0.25f32; n * k];
    let before = Linear::new(&fresh, &w, n, k, None, config()).unwrap();
    assert_eq!(before.kernel().source, ChoiceSource::Heuristic);
    let tuned = autotune_blocking(&fresh, n, k).unwrap();
    assert_eq!(tuned.source, ChoiceSource::Measured);
    let after = Linear::new(&fresh, &w, n, k, None, config()).unwrap();
    assert_eq!(after.kernel(), tuned);
}

/// Not a check (no speed is asserted): times, interleaved in one run, the read-bandwidth
/// peak, the FP32 GEMV and every INT8 GEMV shape at 1 x 4096 x 4096, and the FP32 GEMM and
/// every INT8 GEMM shape at 1024^3 (16-byte loads, both dot-product formulations), and
/// prints the best and median of each. `cargo test --test root -- --ignored --nocapture
/// kernel_speeds`.
#[test]
#[ignore = "a measurement, minutes on lavapipe"]
fn kernel_speeds() {
    use wgpu_quant::gpu::matmul_f32::F32Linear;
    use wgpu_quant::gpu::peak::{PeakKernel, PeakKind, PeakShape};
    use wgpu_quant::gpu::pipelines::Tile;
    use wgpu_quant::gpu::timer::GpuTimer;
    use wgpu_quant::gpu::tune::{ChoiceSource, KernelConfig, LayerKernels};
    let Some(ctx) = gpu() else { return };
    let runs: usize = std::env::var("RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let timer = GpuTimer::new(ctx).unwrap();
    type Recorder<'a> = Box<dyn FnMut(&mut wgpu::CommandEncoder) -> wgpu_quant::Result<()> + 'a>;
    let peaks: Vec<PeakKernel> = PeakShape::candidates(PeakKind::ReadBandwidth)
        .into_iter()
        .map(|s| PeakKernel::read_bandwidth(ctx, s, 128 << 20).unwrap())
        .collect();
    let mut keep = Vec::new();
    // (name, work, unit, recorder)
    let mut cases: Vec<(String, f64, &str, Recorder)> = Vec::new();
    for p in &peaks {
        cases.push((
            format!(
                "read peak ({})",
                p.shape().describe(PeakKind::ReadBandwidth)
            ),
            p.work() as f64,
            "GB/s",
            Box::new(move |e| {
                p.encode(e);
                Ok(())
            }),
        ));
    }
    let layer = |n: usize, k: usize| {
        let params = QuantParams::per_tensor(0.01, 0, QType::I8.narrow_range()).unwrap();
        let w: Vec<u8> = Rng::new(7)
            .bytes(n * k)
            .into_iter()
            .map(|b| if b == 0x80 { 0 } else { b })
            .collect();
        let weights = QuantizedWeights::from_quantized(ctx, &w, n, k, params).unwrap();
        let input = ActivationInput::Static {
            qtype: QType::I8,
            zero_point: 0,
        };
        QLinear::new(ctx, weights, input, None, Epilogue::I32).unwrap()
    };
    let f32_buffers = |m: usize, n: usize, k: usize| {
        let usage = wgpu::BufferUsages::STORAGE;
        let make = |len: usize| {
            ctx.device().create_buffer(&wgpu::BufferDescriptor {
                label: None,
                size: (len * 4) as u64,
                usage,
                mapped_at_creation: false,
            })
        };
        (make(m * k), make(m * n))
    };
    let mut shapes = vec![(1usize, 4096usize, 4096usize, Tile::GEMV.to_vec())];
    shapes.push((1024, 1024, 1024, Tile::GEMM.to_vec()));
    for &(m, n, k, _) in &shapes {
        let fp = F32Linear::new(ctx, &vec![0.5f32; n * k], n, k, None).unwrap();
        let (fi, fo) = f32_buffers(m, n, k);
        keep.push((fp, fi, fo));
    }
    for (m, n, k, tiles) in shapes {
        let (gemv, bytes) = (m == 1, (n * k) as f64);
        let work = if gemv {
            bytes
        } else {
            2.0 * (m * n * k) as f64
        };
        let unit = if gemv { "GB/s" } else { "GOP/s" };
        let base = layer(n, k);
        for tile in tiles {
            for unpacked in [false, true] {
                let config = KernelConfig {
                    tile,
                    vec4_loads: true,
                    unpacked,
                };
                let kernels = LayerKernels {
                    gemm: config,
                    gemv: config,
                    source: ChoiceSource::Fixed,
                };
                let l = base.with_kernels(ctx, kernels).unwrap();
                let (input, rows, output) = (
                    ctx.device().create_buffer(&wgpu::BufferDescriptor {
                        label: None,
                        size: (m * k.div_ceil(4) * 4) as u64,
                        usage: wgpu::BufferUsages::STORAGE,
                        mapped_at_creation: false,
                    }),
                    None::<wgpu::Buffer>,
                    ctx.device().create_buffer(&wgpu::BufferDescriptor {
                        label: None,
                        size: (m * n * 4) as u64,
                        usage: wgpu::BufferUsages::STORAGE,
                        mapped_at_creation: false,
                    }),
                );
                let name = format!(
                    "int8 {m}x{n}x{k} {}",
                    if gemv {
                        l.kernel().gemv
                    } else {
                        l.kernel().gemm
                    }
                );
                cases.push((
                    name,
                    work,
                    unit,
                    Box::new(move |e| l.encode(ctx, e, m, &input, rows.as_ref(), &output)),
                ));
            }
        }
    }
    for (i, (m, n, k)) in [(1usize, 4096usize, 4096usize), (1024, 1024, 1024)]
        .into_iter()
        .enumerate()
    {
        let (fp, fi, fo) = &keep[i];
        let gemv = m == 1;
        let work = if gemv {
            (n * k * 4) as f64
        } else {
            2.0 * (m * n * k) as f64
        };
        cases.push((
            format!("f32 {m}x{n}x{k} ({})", fp.kernel(m)),
            work,
            if gemv { "GB/s" } else { "GFLOP/s" },
            Box::new(move |e| fp.encode(ctx, e, m, fi, fo)),
        ));
    }
    let mut times = vec![Vec::new(); cases.len()];
    for run in 0..=runs {
        for (i, case) in cases.iter_mut().enumerate() {
            let t = timer.time(ctx, &mut *case.3).unwrap();
            if run > 0 {
                times[i].push(t);
            }
        }
    }
    for (case, mut t) in cases.iter().zip(times) {
        t.sort_by(f64::total_cmp);
        let (best, median) = (t[0], t[t.len() / 2]);
        eprintln!(
            "{:<60} best {:>9.3} ms  median {:>9.3} ms  {:>8.2} {} (best)",
            case.0,
            best,
            median,
            case.1 / best / 1e6,
            case.2
        );
    }
}
