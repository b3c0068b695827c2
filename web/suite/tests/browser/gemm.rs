//! The int8 GEMM/GEMV in the browser equals the CPU reference bit for bit: the native
//! suite's fluent tester (`tests/gpu_gemm.rs`), made async, over the same shape classes,
//! types, zero points, bias, epilogues and conventions.

use wgpu_quant::gpu::Context;
use wgpu_quant::gpu::gemm::{ActivationInput, QLinear, QuantizedWeights, RowParams};
use wgpu_quant::gpu::pipelines::Tile;
use wgpu_quant::gpu::tune::{KernelConfig, Tuning};
use wgpu_quant::reference::bounds::max_depth;
use wgpu_quant::reference::gemm::{
    GemmInputs, GemmOutput, QMatrix, matmul_i8, matmul_i8_fused_alternative,
};
use wgpu_quant::{
    Activation, Convention, Dequant, DequantRequant, DequantScales, Epilogue, Error,
    FixedPointRounding, QType, QuantParams, Requant,
};

use crate::common::{Rng, Test, count};

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
    pub async fn check(&self, ctx: &Context) -> GemmOutput {
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
        // A context that runs the polyfill forces it; otherwise the formulation is the
        // heuristic's or the autotune's (on SwiftShader the heuristic picks unpacked).
        assert!(!ctx.dot4_polyfill() || layer.variant().dot4_polyfill);
        let got = layer
            .run(ctx, &a, t.m, per_row.then_some(&rows[..]))
            .await
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
    count(w.len());
}

use wasm_bindgen_test::wasm_bindgen_test;

/// The first smoke: one prime-shaped GEMM with a requantizing epilogue.
#[wasm_bindgen_test]
async fn one_gemm() {
    let t = Test::start("gemm::one_gemm").await;
    GemmTester::new()
        .shape(37, 55, 73)
        .a_type(QType::U8)
        .per_channel_w_zero_points()
        .epilogue(Kind::RequantFloat)
        .check(&t.ctx)
        .await;
    t.done();
}

/// Every M, N, K in 1..=10 (i32 output), alternating activation types.
#[wasm_bindgen_test]
async fn every_small_shape() {
    let t = Test::start("gemm::every_small_shape").await;
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
                    .check(&t.ctx)
                    .await;
            }
        }
    }
    t.done();
}

/// Multiples of the 32 x 32 tile, one off it, primes, GEMV, shallow and odd K.
#[wasm_bindgen_test]
async fn tile_multiples_primes_and_odd_k() {
    let t = Test::start("gemm::tile_multiples_primes_and_odd_k").await;
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
                .check(&t.ctx)
                .await;
        }
    }
    t.done();
}

/// Every epilogue x convention x (activation, weight) type pair x activation.
#[wasm_bindgen_test]
async fn every_epilogue_convention_and_type() {
    let t = Test::start("gemm::every_epilogue_convention_and_type").await;
    let kinds = [
        Kind::I32,
        Kind::F32,
        Kind::F16,
        Kind::RequantFloat,
        Kind::Fixed(FixedPointRounding::Single),
        Kind::Fixed(FixedPointRounding::Double),
        Kind::DequantRequant,
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
                        .check(&t.ctx)
                        .await;
                }
            }
        }
    }
    t.done();
}

const FLOAT_ACTIVATIONS: [Activation; 5] = [
    Activation::None,
    Activation::Relu,
    Activation::Relu6,
    Activation::ReluN1To1,
    Activation::Clamp { lo: -0.75, hi: 2.5 },
];

/// f32 and f16 outputs: static and dynamic row scales, f32 bias (rule 2 membership), per-row
/// zero points, every float activation.
#[wasm_bindgen_test]
async fn dequant_outputs_rows_bias_and_activations() {
    let t = Test::start("gemm::dequant_outputs_rows_bias_and_activations").await;
    for kind in [Kind::F32, Kind::F16] {
        for (i, activation) in FLOAT_ACTIVATIONS.into_iter().enumerate() {
            for (dynamic, bias) in [(false, false), (false, true), (true, false), (true, true)] {
                let mut g = GemmTester::new()
                    .shape(19, 23, 45)
                    .a_type(if i % 2 == 0 { QType::U8 } else { QType::I8 })
                    .per_channel_w_zero_points()
                    .epilogue(kind)
                    .activation(activation)
                    .seed(i as u64);
                if dynamic {
                    g = g.dynamic_rows();
                }
                if bias {
                    g = g.float_bias();
                }
                g.check(&t.ctx).await;
            }
        }
    }
    for kind in [Kind::I32, Kind::RequantFloat] {
        GemmTester::new()
            .shape(9, 12, 30)
            .a_type(QType::U8)
            .per_row_zero_points()
            .epilogue(kind)
            .check(&t.ctx)
            .await;
    }
    t.done();
}

/// `DequantRequant` under every convention: static, per-row zero points and dynamic rows,
/// with and without f32 bias, every type pair.
#[wasm_bindgen_test]
async fn dequant_requant_every_convention() {
    let t = Test::start("gemm::dequant_requant_every_convention").await;
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
                let mut g = GemmTester::new()
                    .shape(19, 23, 45)
                    .a_type(a_type)
                    .out_type(out_type)
                    .per_channel_w_zero_points()
                    .epilogue(Kind::DequantRequant)
                    .convention(convention)
                    .activation(activation)
                    .seed(seed);
                match input {
                    "per-row zp" => g = g.per_row_zero_points(),
                    "dynamic" => g = g.dynamic_rows(),
                    _ => {}
                }
                if bias {
                    g = g.float_bias();
                }
                g.check(&t.ctx).await;
            }
        }
    }
    t.done();
}

/// Deep K at the exact accumulator bound with worst-case data: the i32 result is exact,
/// on the packed dot product and on the polyfill.
#[wasm_bindgen_test]
async fn deep_k_at_the_accumulator_bound() {
    let t = Test::start("gemm::deep_k_at_the_accumulator_bound").await;
    let k = max_depth(QType::U8, 0, QType::I8, 0, 0); // 65793
    GemmTester::new()
        .shape(2, 3, k)
        .a_type(QType::U8)
        .a_zero_point(0)
        .no_bias()
        .worst_case_data()
        .epilogue(Kind::I32)
        .check(&t.ctx)
        .await;
    let k = max_depth(QType::I8, 0, QType::I8, 0, 0); // 131071
    let poly = t.ctx.clone().with_dot4_polyfill(true);
    let packed = with_packed_dot4(&t.ctx);
    for ctx in [&t.ctx, &poly, &packed] {
        GemmTester::new()
            .shape(1, 2, k)
            .a_zero_point(0)
            .no_bias()
            .worst_case_data()
            .epilogue(Kind::I32)
            .check(ctx)
            .await;
    }
    // Deep K with random data and a requantizing epilogue.
    GemmTester::new()
        .shape(3, 9, 4096)
        .a_type(QType::U8)
        .per_channel_w_zero_points()
        .epilogue(Kind::Fixed(FixedPointRounding::Double))
        .check(&t.ctx)
        .await;
    t.done();
}

/// The GEMV kernel (M <= 3) for every epilogue, N around its 256-column workgroup.
#[wasm_bindgen_test]
async fn gemv_shapes() {
    let t = Test::start("gemm::gemv_shapes").await;
    let kinds = [
        Kind::I32,
        Kind::F32,
        Kind::F16,
        Kind::RequantFloat,
        Kind::Fixed(FixedPointRounding::Double),
        Kind::DequantRequant,
    ];
    for m in 1..=3 {
        for (n, k) in [(1, 1), (255, 33), (256, 64), (257, 130), (1000, 7)] {
            for kind in kinds {
                GemmTester::new()
                    .shape(m, n, k)
                    .a_type(QType::U8)
                    .per_channel_w_zero_points()
                    .epilogue(kind)
                    .check(&t.ctx)
                    .await;
            }
        }
    }
    t.done();
}

/// Whole-vec4 rows (the 16-byte-load variant) and splitting above the binding limit (forced
/// small), for every epilogue.
#[wasm_bindgen_test]
async fn vec4_loads_and_split_above_the_binding_limit() {
    let t = Test::start("gemm::vec4_loads_and_split_above_the_binding_limit").await;
    let kinds = [
        Kind::I32,
        Kind::F32,
        Kind::F16,
        Kind::RequantFloat,
        Kind::Fixed(FixedPointRounding::Single),
        Kind::DequantRequant,
    ];
    for kind in kinds {
        for (m, n, k) in [(37, 55, 64), (1, 40, 16), (33, 31, 128), (5, 9, 13)] {
            GemmTester::new()
                .shape(m, n, k)
                .a_type(QType::U8)
                .per_channel_w_zero_points()
                .epilogue(kind)
                .check(&t.ctx)
                .await;
        }
    }
    let small = t.ctx.clone().with_binding_limit(4096);
    for kind in kinds {
        GemmTester::new()
            .shape(100, 300, 64)
            .a_type(QType::U8)
            .per_channel_w_zero_points()
            .epilogue(kind)
            .check(&small)
            .await;
    }
    GemmTester::new()
        .shape(70, 50, 48)
        .dynamic_rows()
        .epilogue(Kind::F32)
        .check(&small)
        .await;
    GemmTester::new()
        .shape(70, 300, 75)
        .epilogue(Kind::F16)
        .activation(Activation::Clamp { lo: -1.5, hi: 0.25 })
        .float_bias()
        .check(&small)
        .await;
    t.done();
}

/// A context forced onto the dot-product polyfill gives the same bits as `dot4I8Packed`
/// and as the reference, for every epilogue.
#[wasm_bindgen_test]
async fn dot4_polyfill_gives_the_same_bits() {
    let t = Test::start("gemm::dot4_polyfill_gives_the_same_bits").await;
    let poly = t.ctx.clone().with_dot4_polyfill(true);
    // The built-in, whatever the heuristic would pick on this adapter.
    let native = with_packed_dot4(&t.ctx.clone().with_dot4_polyfill(false));
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
            let g = GemmTester::new()
                .shape(m, n, k)
                .a_type(if i % 2 == 0 { QType::U8 } else { QType::I8 })
                .per_channel_w_zero_points()
                .epilogue(kind)
                .seed(700 + i as u64);
            let (a, b) = (g.check(&native).await, g.check(&poly).await);
            assert_eq!(element_bits(&a), element_bits(&b), "{g:?}");
        }
    }
    t.done();
}

/// `ctx` with every layer on `dot4I8Packed` (8 x 8 block, 16-byte loads where rows allow):
/// the heuristic picks the unpacked formulation on a browser's CPU adapter, and the built-in
/// must stay covered there.
fn with_packed_dot4(ctx: &Context) -> Context {
    ctx.clone().with_tuning(Tuning::Fixed(KernelConfig {
        tile: Tile::Block8x8,
        vec4_loads: true,
        unpacked: false,
    }))
}

/// Random shapes, types and epilogues (the native proptest's space, fixed seeds).
#[wasm_bindgen_test]
async fn random_shapes() {
    let t = Test::start("gemm::random_shapes").await;
    let mut rng = Rng::new(31337);
    let kinds = [
        Kind::I32,
        Kind::F32,
        Kind::F16,
        Kind::RequantFloat,
        Kind::Fixed(FixedPointRounding::Single),
        Kind::Fixed(FixedPointRounding::Double),
        Kind::DequantRequant,
    ];
    let ty = |u: bool| if u { QType::U8 } else { QType::I8 };
    for i in 0..40 {
        let (m, n, k) = (
            rng.int(1, 69) as usize,
            rng.int(1, 69) as usize,
            rng.int(1, 149) as usize,
        );
        GemmTester::new()
            .shape(m, n, k)
            .a_type(ty(rng.int(0, 1) == 1))
            .w_type(ty(rng.int(0, 1) == 1))
            .per_channel_w_zero_points()
            .epilogue(kinds[i % kinds.len()])
            .seed(rng.next_u64())
            .check(&t.ctx)
            .await;
    }
    t.done();
}

/// Hand-built fixed-point multipliers at the edges of what validation accepts, and a
/// dequantization scale that overflows f32 (saturated by the quantizer, bounded by a clamp).
#[wasm_bindgen_test]
async fn edge_multipliers_and_overflowing_scales() {
    use wgpu_quant::{QuantizedMultiplier, RequantScaling};
    let t = Test::start("gemm::edge_multipliers_and_overflowing_scales").await;
    let ctx = &t.ctx;
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
        let n = multipliers.len();
        let a = rng.bytes(m * k);
        let w = rng.bytes(n * k);
        let bias: Vec<i32> = (0..n).map(|_| rng.int(-100_000, 100_000)).collect();
        let w_params = QuantParams::per_tensor(0.01, 0, QType::I8.full_range()).unwrap();
        let epilogue = Epilogue::Requant(Requant {
            scaling: RequantScaling::FixedPoint {
                multipliers,
                rounding,
            },
            out_qtype: QType::I8,
            out_zero_point: -3,
            clamp_min: -128,
            clamp_max: 127,
        });
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
        let input = ActivationInput::Static {
            qtype: QType::I8,
            zero_point: 7,
        };
        let layer =
            QLinear::new(ctx, weights, input, Some(bias.clone()), epilogue.clone()).unwrap();
        let got = layer.run(ctx, &a, m, None).await.unwrap();
        assert_matches_reference(&format!("{rounding:?}"), n, &got, &want, &inputs, &epilogue);
    }

    let (m, n, k) = (5, 6, 40);
    let a = rng.bytes(m * k);
    let w = rng.bytes(n * k);
    let params = QuantParams::per_tensor(0.01, 0, QType::I8.full_range()).unwrap();
    let d = Dequant {
        scales: DequantScales::PerChannel(vec![3e38]),
        bias: Some(vec![1.0, -1.0, 1e38, -1e38, 0.0, 3.0]),
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
        let got = layer.run(ctx, &a, m, None).await.unwrap();
        assert_matches_reference(&format!("{epilogue:?}"), n, &got, &want, &inputs, &epilogue);
    }
    t.done();
}

/// The accumulator bound is enforced in the browser too (a typed error, not a wrong number).
#[wasm_bindgen_test]
async fn layer_errors_are_typed() {
    let t = Test::start("gemm::layer_errors_are_typed").await;
    let ctx = &t.ctx;
    let k = 131_072;
    let params = QuantParams::per_tensor(0.01, 0, QType::I8.full_range()).unwrap();
    let w = QuantizedWeights::from_quantized(ctx, &vec![0u8; k], 1, k, params).unwrap();
    let input = ActivationInput::Static {
        qtype: QType::I8,
        zero_point: 0,
    };
    assert!(matches!(
        QLinear::new(ctx, w, input, None, Epilogue::I32),
        Err(Error::AccumulatorOverflow { k: 131_072, .. })
    ));
    ctx.flush().await.unwrap();
}
