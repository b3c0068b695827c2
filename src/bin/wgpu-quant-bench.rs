//! `wgpu-quant-bench`: FP32 vs INT8 on the user's adapter: how fast, how accurate, and how
//! close to the adapter's measured peaks.
//!
//! `wgpu-quant-bench [--quick] [--runs N] [--json PATH] [--svg PATH] [--filter SUBSTR]`
//!
//! Order: adapter peaks (f32 fma, dot4I8Packed); GEMM FP32 vs INT8 (I32, DequantF32,
//! RequantFixedPoint epilogues); GEMV (M = 1); end to end (f32 in, f32 out: dynamic
//! quantization + INT8 GEMM with per-row dequantization, against the FP32 GEMM); and the SQNR
//! of every INT8 output against the FP32 output on the same calibrated data; then whole models
//! (section `model`: the digits MLP at batch 1 and 540, and an LLM-sized feed-forward block,
//! M = 128, 4096 → 11008 → 4096), FP32 vs static INT8 vs dynamic INT8, f32 in and f32 out,
//! each INT8 output checked bit for bit against the model's CPU reference. Each FP32/INT8
//! group runs interleaved in one process, after a warm-up, and reports the median of N runs.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use wgpu_quant::gpu::Context;
use wgpu_quant::gpu::buffers::{create, read_blocking, upload};
use wgpu_quant::gpu::dynamic::DynamicQuantizer;
use wgpu_quant::gpu::gemm::{ActivationInput, QLinear, QuantizedWeights};
use wgpu_quant::gpu::matmul_f32::F32Linear;
use wgpu_quant::gpu::peak::{PeakKernel, PeakKind};
use wgpu_quant::gpu::timer::GpuTimer;
use wgpu_quant::io::SafeTensorsFile;
use wgpu_quant::nn::{
    F32Model, FloatLinear, FloatModel, QuantConfig, QuantizedModel, Tensor, TensorSpec,
};
use wgpu_quant::quant::calibrate::{MinMax, Observer};
use wgpu_quant::quant::pack::{pack_bytes, unpack_bytes, words_per_row};
use wgpu_quant::reference::dynamic::{DynamicGranularity, DynamicScheme};
use wgpu_quant::reference::quantize::{dequantize, quantize};
use wgpu_quant::{
    Convention, Dequant, DequantScales, Epilogue, FixedPointRounding, QType, Requant, Result,
    Scheme,
};

struct Args {
    quick: bool,
    runs: usize,
    json: Option<String>,
    svg: Option<String>,
    filter: Option<String>,
}

fn parse_args() -> std::result::Result<Args, String> {
    let mut args = Args {
        quick: false,
        runs: 0,
        json: None,
        svg: None,
        filter: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match a.as_str() {
            "--quick" => args.quick = true,
            "--runs" => {
                let v = value("--runs")?;
                args.runs = v
                    .parse()
                    .ok()
                    .filter(|&r| r > 0)
                    .ok_or(format!("--runs: '{v}' is not a positive integer"))?;
            }
            "--json" => args.json = Some(value("--json")?),
            "--svg" => args.svg = Some(value("--svg")?),
            "--filter" => args.filter = Some(value("--filter")?),
            "-h" | "--help" => {
                println!(
                    "usage: wgpu-quant-bench [--quick] [--runs N] [--json PATH] [--svg PATH] [--filter SUBSTR]"
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument '{other}' (try --help)")),
        }
    }
    if args.runs == 0 {
        args.runs = if args.quick { 3 } else { 7 };
    }
    Ok(args)
}

/// One row of the results (and of the JSON).
#[derive(Debug, Clone)]
struct Record {
    op: &'static str,
    precision: &'static str,
    epilogue: &'static str,
    m: usize,
    n: usize,
    k: usize,
    runs: usize,
    median_ms: f64,
    min_ms: f64,
    max_ms: f64,
    gops: f64,
    gbps: f64,
    pct_of_peak: f64,
    sqnr_db: Option<f64>,
}

/// `SplitMix64` for reproducible data.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> f32 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) >> 40) as f32 / (1u64 << 24) as f32
    }
    /// Roughly normal (sum of four uniforms), scaled.
    fn normals(&mut self, n: usize, sigma: f32) -> Vec<f32> {
        (0..n)
            .map(|_| ((0..4).map(|_| self.next()).sum::<f32>() - 2.0) * sigma * 1.7)
            .collect()
    }
}

fn sqnr_db(reference: &[f32], got: &[f32]) -> f64 {
    let signal: f64 = reference.iter().map(|&r| f64::from(r) * f64::from(r)).sum();
    let noise: f64 = reference
        .iter()
        .zip(got)
        .map(|(&r, &g)| (f64::from(r) - f64::from(g)).powi(2))
        .sum();
    10.0 * (signal / noise.max(f64::MIN_POSITIVE)).log10()
}

fn stats(mut times: Vec<f64>) -> (f64, f64, f64) {
    times.sort_by(f64::total_cmp);
    (times[times.len() / 2], times[0], times[times.len() - 1])
}

/// One whole-model row (of the table and of the JSON's `model`): FP32, static INT8 and
/// dynamic INT8 on the same input, timed interleaved.
#[derive(Debug, Clone)]
struct ModelRecord {
    /// `digits-mlp` or `ffn`.
    name: &'static str,
    /// The layer widths, input first (`64-128-64-10`).
    shape: String,
    rows: usize,
    runs: usize,
    /// (median, min) ms per model.
    fp32: (f64, f64),
    static_int8: (f64, f64),
    dynamic_int8: (f64, f64),
    /// The GPU output equals `QuantizedModel::reference` bit for bit.
    static_bit_exact: bool,
    dynamic_bit_exact: bool,
    /// SQNR of the INT8 output against the FP32 model's GPU output.
    static_sqnr_db: f64,
    dynamic_sqnr_db: f64,
}

impl ModelRecord {
    fn static_ratio(&self) -> f64 {
        self.fp32.0 / self.static_int8.0
    }
    fn dynamic_ratio(&self) -> f64 {
        self.fp32.0 / self.dynamic_int8.0
    }
}

/// A float model and the three GPU models built from it.
struct ModelSet {
    name: &'static str,
    float: FloatModel,
    fp32: F32Model,
    static_int8: QuantizedModel,
    dynamic_int8: QuantizedModel,
}

impl ModelSet {
    /// Builds FP32, static INT8 and dynamic INT8 for up to `max_batch` rows, calibrating on
    /// `calibration` (`rows × input features`).
    fn build(
        ctx: &Context,
        name: &'static str,
        float: FloatModel,
        calibration: &[f32],
        rows: usize,
        max_batch: usize,
    ) -> Result<Self> {
        let start = Instant::now();
        let fp32 = F32Model::new(ctx, &float, max_batch)?;
        let config = QuantConfig::static_int8().max_batch(max_batch);
        let static_int8 = QuantizedModel::calibrate(ctx, &float, calibration, rows, &config)?;
        let config = QuantConfig::dynamic_int8().max_batch(max_batch);
        let dynamic_int8 = QuantizedModel::calibrate(ctx, &float, calibration, rows, &config)?;
        eprintln!(
            "  {name}: built and calibrated on {rows} rows in {:.1} s",
            start.elapsed().as_secs_f64()
        );
        Ok(ModelSet {
            name,
            float,
            fp32,
            static_int8,
            dynamic_int8,
        })
    }

    /// The layer widths, input first.
    fn shape(&self) -> String {
        let mut widths = vec![self.float.input_features()];
        widths.extend(self.float.layers().iter().map(|l| l.n));
        widths
            .iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join("-")
    }
}

/// The digits data file `name`: next to the sources the binary was built from, else under
/// the current directory.
fn digits_data(name: &str) -> PathBuf {
    let compiled = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("data/digits")
        .join(name);
    if compiled.exists() {
        compiled
    } else {
        PathBuf::from("data/digits").join(name)
    }
}

/// The digits MLP (64 → 128 → 64 → 10, `ReLU`) from `data/digits`, calibrated on the training
/// split, for up to 540 rows; and the test split (540 rows of 64).
fn digits_models(ctx: &Context) -> Result<(ModelSet, Vec<f32>, usize)> {
    let weights = SafeTensorsFile::load(digits_data("mlp.safetensors"))?;
    let float = FloatModel::sequential(
        &weights,
        &["fc1", "fc2", "fc3"],
        wgpu_quant::Activation::Relu,
    )?;
    let digits = SafeTensorsFile::load(digits_data("digits.safetensors"))?;
    let (x_train, train_shape) = digits.get_f32_any_shape("x_train")?;
    let (x_test, test_shape) = digits.get_f32_any_shape("x_test")?;
    let rows = test_shape[0];
    let set = ModelSet::build(ctx, "digits-mlp", float, &x_train, train_shape[0], rows)?;
    Ok((set, x_test, rows))
}

/// An LLM-sized feed-forward block, 4096 → 11008 (`ReLU`) → 4096 without biases, seeded
/// roughly-normal weights (σ = 1/√fan-in), calibrated on `calibration_rows` random rows, for up
/// to `rows` rows; and `rows` rows of other random input.
fn ffn_models(
    ctx: &Context,
    rows: usize,
    calibration_rows: usize,
    seed: u64,
) -> Result<(ModelSet, Vec<f32>)> {
    let (d, hidden) = (4096, 11008);
    let mut rng = Rng(seed);
    let up = FloatLinear::new(
        "up",
        rng.normals(hidden * d, 1.0 / (d as f32).sqrt()),
        hidden,
        d,
        None,
        wgpu_quant::Activation::Relu,
    )?;
    let down = FloatLinear::new(
        "down",
        rng.normals(d * hidden, 1.0 / (hidden as f32).sqrt()),
        d,
        hidden,
        None,
        wgpu_quant::Activation::None,
    )?;
    let float = FloatModel::new(vec![up, down])?;
    let calibration = rng.normals(calibration_rows * d, 1.0);
    let x = rng.normals(rows * d, 1.0);
    let set = ModelSet::build(ctx, "ffn", float, &calibration, calibration_rows, rows)?;
    Ok((set, x))
}

fn bits_equal(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}

struct Bench {
    ctx: Context,
    timer: GpuTimer,
    runs: usize,
    f32_peak: f64,
    dot4_peak: f64,
    records: Vec<Record>,
    models: Vec<ModelRecord>,
}

/// Records one run of a configuration into an encoder.
type Recorder<'a> = Box<dyn FnMut(&mut wgpu::CommandEncoder) -> Result<()> + 'a>;

/// One timed configuration: a recorder and what to report.
struct Case<'a> {
    precision: &'static str,
    epilogue: &'static str,
    weight_bytes: f64,
    sqnr: Option<f64>,
    record: Recorder<'a>,
}

impl Bench {
    fn time_group(
        &mut self,
        op: &'static str,
        (m, n, k): (usize, usize, usize),
        cases: &mut [Case<'_>],
    ) -> Result<()> {
        let times = {
            let mut recorders: Vec<&mut Recorder<'_>> =
                cases.iter_mut().map(|c| &mut c.record).collect();
            self.interleaved(&mut recorders)?
        };
        for (case, t) in cases.iter().zip(times) {
            let (median, min, max) = stats(t);
            let ops = 2.0 * (m * n * k) as f64;
            let gops = ops / (median * 1e-3) / 1e9;
            let peak = if case.precision == "f32" {
                self.f32_peak
            } else {
                self.dot4_peak
            };
            self.records.push(Record {
                op,
                precision: case.precision,
                epilogue: case.epilogue,
                m,
                n,
                k,
                runs: self.runs,
                median_ms: median,
                min_ms: min,
                max_ms: max,
                gops,
                gbps: case.weight_bytes / (median * 1e-3) / 1e9,
                pct_of_peak: 100.0 * gops / peak,
                sqnr_db: case.sqnr,
            });
            let r = self.records.last().expect("just pushed");
            eprintln!(
                "  {op} {m}x{n}x{k} {} {}: {:.3} ms, {:.1} GOP/s",
                r.precision, r.epilogue, r.median_ms, r.gops
            );
        }
        Ok(())
    }

    /// One warm-up run of each recorder, then `runs` rounds of one run each, interleaved;
    /// the times in ms, per recorder.
    fn interleaved(&self, recorders: &mut [&mut Recorder<'_>]) -> Result<Vec<Vec<f64>>> {
        for record in recorders.iter_mut() {
            self.timer.time(&self.ctx, &mut **record)?; // warm-up
        }
        let mut times = vec![Vec::with_capacity(self.runs); recorders.len()];
        for _ in 0..self.runs {
            for (i, record) in recorders.iter_mut().enumerate() {
                times[i].push(self.timer.time(&self.ctx, &mut **record)?);
            }
        }
        Ok(times)
    }

    /// A whole model at `rows` rows of `x`, f32 in and f32 out: FP32, static INT8 and dynamic
    /// INT8, each recorded with `encode` into the timed encoder from one input tensor to its
    /// own output tensor (every stage between, nothing else). Once, outside the timed runs,
    /// each INT8 output is compared bit for bit with the model's CPU reference.
    fn model(&mut self, set: &mut ModelSet, x: &[f32], rows: usize) -> Result<()> {
        let ctx = self.ctx.clone();
        let k = set.float.input_features();
        let input = Tensor::from_f32(&ctx, &x[..rows * k], rows, k)?;
        let mut y_fp32 = Tensor::new(&ctx, TensorSpec::f32(set.float.output_features()), rows)?;
        let mut y_static = Tensor::new(&ctx, set.static_int8.output_spec(), rows)?;
        let mut y_dynamic = Tensor::new(&ctx, set.dynamic_int8.output_spec(), rows)?;

        // Correctness, once, outside the timed runs.
        let mut encoder = ctx.device().create_command_encoder(&Default::default());
        set.fp32.encode(&ctx, &mut encoder, &input, &mut y_fp32)?;
        set.static_int8
            .encode(&ctx, &mut encoder, &input, &mut y_static)?;
        set.dynamic_int8
            .encode(&ctx, &mut encoder, &input, &mut y_dynamic)?;
        ctx.queue().submit([encoder.finish()]);
        let fp32_out = y_fp32.read_f32_blocking(&ctx)?;
        let static_out = y_static.read_f32_blocking(&ctx)?;
        let dynamic_out = y_dynamic.read_f32_blocking(&ctx)?;
        let start = Instant::now();
        let x = &x[..rows * k];
        let static_bit_exact = bits_equal(&static_out, &set.static_int8.reference(x, rows)?);
        let dynamic_bit_exact = bits_equal(&dynamic_out, &set.dynamic_int8.reference(x, rows)?);
        eprintln!(
            "  {} {rows} rows: CPU references in {:.1} s",
            set.name,
            start.elapsed().as_secs_f64()
        );

        let times = {
            let (fp32, st, dy) = (&mut set.fp32, &mut set.static_int8, &mut set.dynamic_int8);
            let (c1, c2, c3) = (ctx.clone(), ctx.clone(), ctx.clone());
            let input = &input;
            let mut fp32_case: Recorder<'_> = Box::new(|e| fp32.encode(&c1, e, input, &mut y_fp32));
            let mut static_case: Recorder<'_> =
                Box::new(|e| st.encode(&c2, e, input, &mut y_static));
            let mut dynamic_case: Recorder<'_> =
                Box::new(|e| dy.encode(&c3, e, input, &mut y_dynamic));
            self.interleaved(&mut [&mut fp32_case, &mut static_case, &mut dynamic_case])?
        };
        let [fp32, static_int8, dynamic_int8] = [0, 1, 2].map(|i| {
            let (median, min, _) = stats(times[i].clone());
            (median, min)
        });
        let record = ModelRecord {
            name: set.name,
            shape: set.shape(),
            rows,
            runs: self.runs,
            fp32,
            static_int8,
            dynamic_int8,
            static_bit_exact,
            dynamic_bit_exact,
            static_sqnr_db: sqnr_db(&fp32_out, &static_out),
            dynamic_sqnr_db: sqnr_db(&fp32_out, &dynamic_out),
        };
        eprintln!(
            "  {} {} x{rows}: FP32 {:.3} ms, static INT8 {:.3} ms ({:.2}x), dynamic INT8 {:.3} ms ({:.2}x)",
            record.name,
            record.shape,
            record.fp32.0,
            record.static_int8.0,
            record.static_ratio(),
            record.dynamic_int8.0,
            record.dynamic_ratio()
        );
        self.models.push(record);
        Ok(())
    }

    /// FP32 vs INT8 (static activations) at one shape: GEMM, or GEMV when `m == 1`.
    fn linear(&mut self, op: &'static str, m: usize, n: usize, k: usize, seed: u64) -> Result<()> {
        let ctx = self.ctx.clone();
        let mut rng = Rng(seed);
        let a = rng.normals(m * k, 1.0);
        let w = rng.normals(n * k, 1.0 / (k as f32).sqrt());
        let usage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC;

        let f32_layer = F32Linear::new(&ctx, &w, n, k, None)?;
        let a_f32 = upload(&ctx, "a f32", &a, wgpu::BufferUsages::STORAGE)?;
        let y_f32 = create(&ctx, "y f32", (m * n * 4) as u64, usage)?;
        let mut encoder = ctx.device().create_command_encoder(&Default::default());
        f32_layer.encode(&ctx, &mut encoder, m, &a_f32, &y_f32)?;
        ctx.queue().submit([encoder.finish()]);
        let reference: Vec<f32> =
            bytemuck::pod_collect_to_vec(&read_blocking(&ctx, &y_f32, (m * n * 4) as u64)?);

        let conv = Convention::Onnx;
        let mut obs = Observer::per_tensor(MinMax::new());
        obs.observe(&a, &[m, k])?;
        let a_params = obs.params(conv, &Scheme::affine(QType::U8))?;
        let a_q = quantize(conv, &a, &[m, k], &a_params)?;
        let a_buf = upload(
            &ctx,
            "a int8",
            &pack_bytes(&a_q, m, k)?,
            wgpu::BufferUsages::STORAGE,
        )?;
        let weights = QuantizedWeights::quantize(
            &ctx,
            &w,
            n,
            k,
            conv,
            MinMax::new(),
            &Scheme::symmetric(QType::I8),
        )?;
        let w_params = weights.params().clone();
        let mut out_obs = Observer::per_tensor(MinMax::new());
        out_obs.observe(&reference, &[m, n])?;
        let out_params = out_obs.params(Convention::TfLite, &Scheme::affine(QType::U8))?;
        let input = ActivationInput::Static {
            qtype: QType::U8,
            zero_point: a_params.zero_point(0),
        };
        let s_acc: Vec<f32> = (0..n)
            .map(|c| a_params.scale(0) * w_params.scale(c))
            .collect();

        let i32_layer = QLinear::new(&ctx, weights.clone(), input, None, Epilogue::I32)?;
        let f32_out = QLinear::new(
            &ctx,
            weights.clone(),
            input,
            None,
            Epilogue::DequantF32(Dequant::per_channel(&a_params, &w_params, None)?),
        )?;
        let requant = Requant::fixed_point(
            &a_params,
            &w_params,
            &out_params,
            wgpu_quant::Activation::None,
            FixedPointRounding::Single,
        )?;
        let q_layer = QLinear::new(&ctx, weights, input, None, Epilogue::Requant(requant))?;
        let y_i32 = create(&ctx, "y i32", (m * n * 4) as u64, usage)?;
        let y_deq = create(&ctx, "y dequant", (m * n * 4) as u64, usage)?;
        let y_q = create(&ctx, "y int8", (m * words_per_row(n) * 4) as u64, usage)?;

        // Accuracy, once, outside the timed runs.
        let mut encoder = ctx.device().create_command_encoder(&Default::default());
        i32_layer.encode(&ctx, &mut encoder, m, &a_buf, None, &y_i32)?;
        f32_out.encode(&ctx, &mut encoder, m, &a_buf, None, &y_deq)?;
        q_layer.encode(&ctx, &mut encoder, m, &a_buf, None, &y_q)?;
        ctx.queue().submit([encoder.finish()]);
        let acc: Vec<i32> =
            bytemuck::pod_collect_to_vec(&read_blocking(&ctx, &y_i32, (m * n * 4) as u64)?);
        let from_i32: Vec<f32> = acc
            .iter()
            .enumerate()
            .map(|(i, &v)| v as f32 * s_acc[i % n])
            .collect();
        let deq: Vec<f32> =
            bytemuck::pod_collect_to_vec(&read_blocking(&ctx, &y_deq, (m * n * 4) as u64)?);
        let q_words: Vec<u32> = bytemuck::pod_collect_to_vec(&read_blocking(
            &ctx,
            &y_q,
            (m * words_per_row(n) * 4) as u64,
        )?);
        let from_q = dequantize(&unpack_bytes(&q_words, m, n)?, &[m, n], &out_params)?;

        let (ctx2, ctx3, ctx4, ctx5) = (ctx.clone(), ctx.clone(), ctx.clone(), ctx.clone());
        let int8_bytes = (n * words_per_row(k) * 4) as f64;
        let mut cases = vec![
            Case {
                precision: "f32",
                epilogue: "none",
                weight_bytes: (n * k.next_multiple_of(4) * 4) as f64,
                sqnr: None,
                record: Box::new(|e| f32_layer.encode(&ctx2, e, m, &a_f32, &y_f32)),
            },
            Case {
                precision: "int8",
                epilogue: "I32",
                weight_bytes: int8_bytes,
                sqnr: Some(sqnr_db(&reference, &from_i32)),
                record: Box::new(|e| i32_layer.encode(&ctx3, e, m, &a_buf, None, &y_i32)),
            },
            Case {
                precision: "int8",
                epilogue: "DequantF32",
                weight_bytes: int8_bytes,
                sqnr: Some(sqnr_db(&reference, &deq)),
                record: Box::new(|e| f32_out.encode(&ctx4, e, m, &a_buf, None, &y_deq)),
            },
            Case {
                precision: "int8",
                epilogue: "RequantFixedPoint",
                weight_bytes: int8_bytes,
                sqnr: Some(sqnr_db(&reference, &from_q)),
                record: Box::new(|e| q_layer.encode(&ctx5, e, m, &a_buf, None, &y_q)),
            },
        ];
        if m == 1 {
            cases.truncate(3); // GEMV: weights streamed once; i32 and f32 outputs
        }
        self.time_group(op, (m, n, k), &mut cases)
    }

    /// End to end, f32 in and out: dynamic per-token quantization + INT8 GEMM with per-row
    /// dequantization, against the FP32 GEMM.
    fn end_to_end(&mut self, m: usize, n: usize, k: usize, seed: u64) -> Result<()> {
        let ctx = self.ctx.clone();
        let mut rng = Rng(seed);
        let a = rng.normals(m * k, 1.0);
        let w = rng.normals(n * k, 1.0 / (k as f32).sqrt());
        let usage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC;
        let f32_layer = F32Linear::new(&ctx, &w, n, k, None)?;
        let a_raw = upload(&ctx, "a f32", &a, wgpu::BufferUsages::STORAGE)?;
        let y_f32 = create(&ctx, "y f32", (m * n * 4) as u64, usage)?;
        let weights = QuantizedWeights::quantize(
            &ctx,
            &w,
            n,
            k,
            Convention::Onnx,
            MinMax::new(),
            &Scheme::symmetric(QType::I8),
        )?;
        let scales = weights.params().scales().to_vec();
        let epilogue = Epilogue::DequantF32(Dequant {
            scales: DequantScales::PerRowPerChannel {
                row_scales: vec![],
                channel_scales: scales,
            },
            bias: None,
            activation: wgpu_quant::Activation::None,
        });
        let layer = QLinear::new(
            &ctx,
            weights,
            ActivationInput::PerRow { qtype: QType::I8 },
            None,
            epilogue,
        )?;
        let packed = create(&ctx, "a int8", (m * words_per_row(k) * 4) as u64, usage)?;
        let rows = create(&ctx, "row params", (m * 8) as u64, usage)?;
        let y = create(&ctx, "y", (m * n * 4) as u64, usage)?;
        let dq = DynamicQuantizer::new(
            &ctx,
            DynamicScheme::SymmetricPerToken,
            DynamicGranularity::PerRow,
            m,
            k,
        )?;
        let mut encoder = ctx.device().create_command_encoder(&Default::default());
        f32_layer.encode(&ctx, &mut encoder, m, &a_raw, &y_f32)?;
        dq.encode(&ctx, &mut encoder, m, &a_raw, &packed, &rows)?;
        layer.encode(&ctx, &mut encoder, m, &packed, Some(&rows), &y)?;
        ctx.queue().submit([encoder.finish()]);
        let reference: Vec<f32> =
            bytemuck::pod_collect_to_vec(&read_blocking(&ctx, &y_f32, (m * n * 4) as u64)?);
        let got: Vec<f32> =
            bytemuck::pod_collect_to_vec(&read_blocking(&ctx, &y, (m * n * 4) as u64)?);
        let (ctx2, ctx3) = (ctx.clone(), ctx.clone());
        let mut cases = vec![
            Case {
                precision: "f32",
                epilogue: "none",
                weight_bytes: (n * k * 4) as f64,
                sqnr: None,
                record: Box::new(|e| f32_layer.encode(&ctx2, e, m, &a_raw, &y_f32)),
            },
            Case {
                precision: "int8",
                epilogue: "DynamicQuantize+DequantF32",
                weight_bytes: (n * words_per_row(k) * 4) as f64,
                sqnr: Some(sqnr_db(&reference, &got)),
                record: Box::new(|e| {
                    dq.encode(&ctx3, e, m, &a_raw, &packed, &rows)?;
                    layer.encode(&ctx3, e, m, &packed, Some(&rows), &y)
                }),
            },
        ];
        self.time_group("e2e", (m, n, k), &mut cases)
    }
}

fn json(
    records: &[Record],
    models: &[ModelRecord],
    adapter: &[(&str, String)],
    timing: &str,
    f32_peak: f64,
    dot4_peak: f64,
) -> String {
    let esc = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
    let mut out = String::from("{\n  \"adapter\": {");
    let fields: Vec<String> = adapter
        .iter()
        .map(|(k, v)| format!("\"{k}\": \"{}\"", esc(v)))
        .collect();
    out.push_str(&fields.join(", "));
    let _ = write!(
        out,
        "}},\n  \"timing\": \"{timing}\",\n  \"peaks\": {{\"f32_fma_gflops\": {f32_peak:.3}, \"dot4i8_gops\": {dot4_peak:.3}}},\n  \"results\": [\n"
    );
    let rows: Vec<String> = records
        .iter()
        .map(|r| {
            format!(
                "    {{\"op\": \"{}\", \"precision\": \"{}\", \"epilogue\": \"{}\", \"m\": {}, \"n\": {}, \"k\": {}, \"runs\": {}, \"median_ms\": {:.6}, \"min_ms\": {:.6}, \"max_ms\": {:.6}, \"gops\": {:.4}, \"gbps\": {:.4}, \"pct_of_peak\": {:.3}, \"sqnr_db\": {}}}",
                r.op, r.precision, r.epilogue, r.m, r.n, r.k, r.runs, r.median_ms, r.min_ms, r.max_ms, r.gops, r.gbps, r.pct_of_peak,
                r.sqnr_db.map_or("null".to_string(), |s| format!("{s:.3}"))
            )
        })
        .collect();
    out.push_str(&rows.join(",\n"));
    if !records.is_empty() {
        out.push('\n');
    }
    out.push_str("  ],\n  \"model\": [\n");
    let rows: Vec<String> = models
        .iter()
        .map(|r| {
            format!(
                "    {{\"name\": \"{}\", \"shape\": \"{}\", \"rows\": {}, \"runs\": {}, \"fp32_ms\": {:.6}, \"fp32_min_ms\": {:.6}, \"static_ms\": {:.6}, \"static_min_ms\": {:.6}, \"dynamic_ms\": {:.6}, \"dynamic_min_ms\": {:.6}, \"fp32_over_static\": {:.4}, \"fp32_over_dynamic\": {:.4}, \"static_bit_exact\": {}, \"dynamic_bit_exact\": {}, \"static_sqnr_db\": {:.3}, \"dynamic_sqnr_db\": {:.3}}}",
                r.name,
                r.shape,
                r.rows,
                r.runs,
                r.fp32.0,
                r.fp32.1,
                r.static_int8.0,
                r.static_int8.1,
                r.dynamic_int8.0,
                r.dynamic_int8.1,
                r.static_ratio(),
                r.dynamic_ratio(),
                r.static_bit_exact,
                r.dynamic_bit_exact,
                r.static_sqnr_db,
                r.dynamic_sqnr_db
            )
        })
        .collect();
    out.push_str(&rows.join(",\n"));
    if !models.is_empty() {
        out.push('\n');
    }
    out.push_str("  ]\n}\n");
    out
}

/// GOP/s against problem size (2·M·N·K, log scale): FP32 and INT8 GEMM and GEMV, with the
/// measured peaks as dashed lines.
fn svg(records: &[Record], f32_peak: f64, dot4_peak: f64, title: &str) -> String {
    let (w, h, left, right, top, bottom) = (820.0, 520.0, 70.0, 200.0, 40.0, 60.0);
    let series: [(&str, &str, &str, &str); 4] = [
        ("gemm", "f32", "none", "#1f77b4"),
        ("gemm", "int8", "I32", "#d62728"),
        ("gemv", "f32", "none", "#7fb3e0"),
        ("gemv", "int8", "I32", "#f4a3a3"),
    ];
    let pts = |op: &str, p: &str, e: &str| -> Vec<(f64, f64)> {
        let mut v: Vec<(f64, f64)> = records
            .iter()
            .filter(|r| r.op == op && r.precision == p && r.epilogue == e)
            .map(|r| ((2.0 * (r.m * r.n * r.k) as f64).log10(), r.gops))
            .collect();
        v.sort_by(|a, b| a.0.total_cmp(&b.0));
        v
    };
    let all: Vec<(f64, f64)> = series.iter().flat_map(|s| pts(s.0, s.1, s.2)).collect();
    let (xmin, xmax) = all
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.0), b.max(p.0)));
    let (xmin, xmax) = if all.is_empty() {
        (6.0, 12.0)
    } else {
        (xmin.floor(), xmax.ceil().max(xmin.floor() + 1.0))
    };
    let ymax = all
        .iter()
        .map(|p| p.1)
        .fold(dot4_peak.max(f32_peak), f64::max)
        * 1.1;
    let x = |v: f64| left + (v - xmin) / (xmax - xmin) * (w - left - right);
    let y = |v: f64| h - bottom - v / ymax * (h - top - bottom);
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    );
    let _ = writeln!(
        s,
        "<text x=\"{left}\" y=\"22\" font-size=\"14\">{title}</text>"
    );
    let _ = writeln!(
        s,
        "<line x1=\"{left}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"black\"/><line x1=\"{left}\" y1=\"{top}\" x2=\"{left}\" y2=\"{}\" stroke=\"black\"/>",
        h - bottom,
        w - right,
        h - bottom,
        h - bottom
    );
    let mut e = xmin;
    while e <= xmax + 1e-9 {
        let _ = writeln!(
            s,
            "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">1e{e}</text>",
            x(e),
            h - bottom + 18.0
        );
        e += 1.0;
    }
    for i in 0..=5 {
        let v = ymax * f64::from(i) / 5.0;
        let _ = writeln!(
            s,
            "<text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{v:.0}</text><line x1=\"{left}\" y1=\"{:.1}\" x2=\"{}\" y2=\"{:.1}\" stroke=\"#eee\"/>",
            left - 6.0,
            y(v) + 4.0,
            y(v),
            w - right,
            y(v)
        );
    }
    let _ = writeln!(
        s,
        "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">problem size, 2·M·N·K operations</text>",
        (left + w - right) / 2.0,
        h - 15.0
    );
    let _ = writeln!(
        s,
        "<text x=\"18\" y=\"{:.1}\" transform=\"rotate(-90 18 {:.1})\" text-anchor=\"middle\">GOP/s</text>",
        (top + h - bottom) / 2.0,
        (top + h - bottom) / 2.0
    );
    for (label, peak, color) in [
        ("dot4I8Packed peak", dot4_peak, "#d62728"),
        ("f32 fma peak", f32_peak, "#1f77b4"),
    ] {
        let _ = writeln!(
            s,
            "<line x1=\"{left}\" y1=\"{:.1}\" x2=\"{}\" y2=\"{:.1}\" stroke=\"{color}\" stroke-dasharray=\"6 4\"/><text x=\"{}\" y=\"{:.1}\" fill=\"{color}\">{label} {peak:.1}</text>",
            y(peak),
            w - right,
            y(peak),
            w - right + 6.0,
            y(peak) + 4.0
        );
    }
    for (i, (op, p, ep, color)) in series.iter().enumerate() {
        let v = pts(op, p, ep);
        if v.is_empty() {
            continue;
        }
        let path: Vec<String> = v
            .iter()
            .map(|&(a, b)| format!("{:.1},{:.1}", x(a), y(b)))
            .collect();
        let _ = writeln!(
            s,
            "<polyline points=\"{}\" fill=\"none\" stroke=\"{color}\" stroke-width=\"2\"/>",
            path.join(" ")
        );
        for &(a, b) in &v {
            let _ = writeln!(
                s,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3.5\" fill=\"{color}\"/>",
                x(a),
                y(b)
            );
        }
        let ly = h - bottom - 90.0 + 18.0 * i as f64;
        let _ = writeln!(
            s,
            "<line x1=\"{}\" y1=\"{ly}\" x2=\"{}\" y2=\"{ly}\" stroke=\"{color}\" stroke-width=\"2\"/><text x=\"{}\" y=\"{:.1}\">{} {}</text>",
            w - right + 6.0,
            w - right + 26.0,
            w - right + 30.0,
            ly + 4.0,
            op.to_uppercase(),
            if *p == "f32" { "FP32" } else { "INT8" }
        );
    }
    s.push_str("</svg>\n");
    s
}

/// The GEMM/GEMV/e2e table and the FP32/INT8 ratios.
fn print_records(records: &[Record]) {
    println!(
        "\n| op | M×N×K | precision | epilogue | median ms (min–max) | GOP/s | % of peak | GB/s weights | SQNR dB |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for r in records {
        println!(
            "| {} | {}×{}×{} | {} | {} | {:.3} ({:.3}–{:.3}) | {:.1} | {:.1} | {:.2} | {} |",
            r.op,
            r.m,
            r.n,
            r.k,
            r.precision,
            r.epilogue,
            r.median_ms,
            r.min_ms,
            r.max_ms,
            r.gops,
            r.pct_of_peak,
            r.gbps,
            r.sqnr_db.map_or("–".to_string(), |s| format!("{s:.1}"))
        );
    }
    println!("\nFP32 time / INT8 time, same shape, same run:");
    for r in records.iter().filter(|r| r.precision == "int8") {
        if let Some(f) = records
            .iter()
            .find(|f| f.precision == "f32" && f.op == r.op && (f.m, f.n, f.k) == (r.m, r.n, r.k))
        {
            println!(
                "  {} {}×{}×{} {}: {:.2}x",
                r.op,
                r.m,
                r.n,
                r.k,
                r.epilogue,
                f.median_ms / r.median_ms
            );
        }
    }
}

/// The whole-model table, the ratios, and the targets.
fn print_models(models: &[ModelRecord], runs: usize, timing: &str) {
    let exact = |b: bool| if b { "yes" } else { "NO" };
    println!(
        "\nWhole models, f32 in and f32 out ({timing}, median of {runs} interleaved runs after a warm-up; min in parentheses):\n"
    );
    println!(
        "| model | rows | FP32 ms | static INT8 ms | dynamic INT8 ms | FP32/static | FP32/dynamic | bit-exact static / dynamic | SQNR dB vs FP32 static / dynamic |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for r in models {
        println!(
            "| {} {} | {} | {:.3} ({:.3}) | {:.3} ({:.3}) | {:.3} ({:.3}) | {:.2}x | {:.2}x | {} / {} | {:.1} / {:.1} |",
            r.name,
            r.shape,
            r.rows,
            r.fp32.0,
            r.fp32.1,
            r.static_int8.0,
            r.static_int8.1,
            r.dynamic_int8.0,
            r.dynamic_int8.1,
            r.static_ratio(),
            r.dynamic_ratio(),
            exact(r.static_bit_exact),
            exact(r.dynamic_bit_exact),
            r.static_sqnr_db,
            r.dynamic_sqnr_db
        );
    }
    let all_exact = models
        .iter()
        .all(|r| r.static_bit_exact && r.dynamic_bit_exact);
    println!(
        "\nbit-exact: {} (every INT8 model's GPU output against QuantizedModel::reference)",
        exact(all_exact)
    );
    let verdict = |ok: bool| if ok { "met" } else { "NOT met" };
    println!("targets (FP32 time / INT8 time, same run):");
    for r in models.iter().filter(|r| r.name == "ffn") {
        println!(
            "  feed-forward {} x{}: static {:.2}x (target >= 2: {}), dynamic {:.2}x (target >= 1.5: {})",
            r.shape,
            r.rows,
            r.static_ratio(),
            verdict(r.static_ratio() >= 2.0),
            r.dynamic_ratio(),
            verdict(r.dynamic_ratio() >= 1.5)
        );
    }
    for r in models
        .iter()
        .filter(|r| r.name == "digits-mlp" && r.rows == 540)
    {
        println!(
            "  digits MLP x{}: static {:.2}x, dynamic {:.2}x (target: both > 1: {})",
            r.rows,
            r.static_ratio(),
            r.dynamic_ratio(),
            verdict(r.static_ratio() > 1.0 && r.dynamic_ratio() > 1.0)
        );
    }
}

fn run(args: &Args) -> Result<()> {
    let ctx = Context::headless()?;
    let caps = ctx.capabilities();
    let adapter = [
        ("name", caps.adapter_name.clone().unwrap_or_default()),
        (
            "backend",
            caps.backend.map(|b| format!("{b:?}")).unwrap_or_default(),
        ),
        ("driver", caps.driver.clone().unwrap_or_default()),
        ("dot_product", caps.dot_product.as_str().to_string()),
    ];
    println!(
        "adapter: {} ({}, driver {}, dot product {})",
        adapter[0].1, adapter[1].1, adapter[2].1, adapter[3].1
    );
    let timer = GpuTimer::new(&ctx)?;
    let timing = timer.source().as_str();
    println!(
        "timing: {timing}; median of {} runs after a warm-up; FP32/INT8 pairs interleaved",
        args.runs
    );

    // 1. Peaks.
    let workgroups = if args.quick { 512 } else { 2048 };
    // A peak is the best the adapter reaches: the fastest of several runs (lavapipe's
    // scheduling makes repeated runs bimodal), not their median.
    let peak = |kind| -> Result<f64> {
        let kernel = PeakKernel::new(&ctx, kind, workgroups)?;
        let mut record = |e: &mut wgpu::CommandEncoder| {
            kernel.encode(e);
            Ok(())
        };
        timer.time(&ctx, &mut record)?;
        let times: Vec<f64> = (0..args.runs.max(10))
            .map(|_| timer.time(&ctx, &mut record))
            .collect::<Result<_>>()?;
        Ok(kernel.ops() as f64 / (stats(times).1 * 1e-3) / 1e9)
    };
    let f32_peak = peak(PeakKind::F32Fma)?;
    let dot4_peak = peak(PeakKind::Dot4I8)?;
    println!(
        "peaks (fastest of {} runs): f32 fma {f32_peak:.1} GFLOP/s, dot4I8Packed {dot4_peak:.1} GOP/s (8 ops per dot4)",
        args.runs.max(10)
    );

    let mut bench = Bench {
        ctx: ctx.clone(),
        timer,
        runs: args.runs,
        f32_peak,
        dot4_peak,
        records: Vec::new(),
        models: Vec::new(),
    };
    let wanted = |name: &str| {
        args.filter
            .as_ref()
            .is_none_or(|f| name.contains(f.as_str()))
    };
    // (m, n, k)
    let mut gemm: Vec<(usize, usize, usize)> = vec![
        (256, 256, 256),
        (512, 512, 512),
        (1024, 1024, 1024),
        (128, 4096, 4096),
    ];
    let mut gemv: Vec<(usize, usize)> = vec![(1024, 1024), (4096, 4096)];
    let mut e2e: Vec<(usize, usize, usize)> = vec![(1024, 1024, 1024)];
    if !args.quick {
        gemm.extend([(2048, 2048, 2048), (128, 11008, 4096), (128, 4096, 11008)]);
        gemv.extend([(11008, 4096), (4096, 11008)]);
        e2e.push((128, 4096, 4096));
    }
    for (i, &(m, n, k)) in gemm.iter().enumerate() {
        if wanted(&format!("gemm {m}x{n}x{k}")) {
            eprintln!("gemm {m}x{n}x{k}");
            bench.linear("gemm", m, n, k, 100 + i as u64)?;
        }
    }
    for (i, &(n, k)) in gemv.iter().enumerate() {
        if wanted(&format!("gemv 1x{n}x{k}")) {
            eprintln!("gemv 1x{n}x{k}");
            bench.linear("gemv", 1, n, k, 200 + i as u64)?;
        }
    }
    for (i, &(m, n, k)) in e2e.iter().enumerate() {
        if wanted(&format!("e2e {m}x{n}x{k}")) {
            eprintln!("e2e {m}x{n}x{k}");
            bench.end_to_end(m, n, k, 300 + i as u64)?;
        }
    }

    if wanted("model digits-mlp") {
        eprintln!("model digits-mlp");
        let path = digits_data("mlp.safetensors");
        if path.exists() {
            let (mut set, x_test, rows) = digits_models(&ctx)?;
            bench.model(&mut set, &x_test, 1)?;
            bench.model(&mut set, &x_test, rows)?;
        } else {
            eprintln!(
                "  skipped: {} not found (data/digits is in the repository, not the crate)",
                path.display()
            );
        }
    }
    if wanted("model ffn") {
        eprintln!("model ffn 4096-11008-4096");
        // Calibration runs the float model (and, for the report, the CPU twin) on the CPU in
        // scalar f32: about half a second per row here, so --quick calibrates on fewer rows.
        let (rows, calibration_rows) = (128, if args.quick { 32 } else { 128 });
        let (mut set, x) = ffn_models(&ctx, rows, calibration_rows, 400)?;
        bench.model(&mut set, &x, rows)?;
    }

    if !bench.records.is_empty() {
        print_records(&bench.records);
    }
    if !bench.models.is_empty() {
        print_models(&bench.models, args.runs, timing);
    }
    if let Some(path) = &args.json {
        std::fs::write(
            path,
            json(
                &bench.records,
                &bench.models,
                &adapter,
                timing,
                f32_peak,
                dot4_peak,
            ),
        )
        .map_err(|e| wgpu_quant::Error::InvalidConfig {
            what: "--json".into(),
            value: path.clone(),
            reason: e.to_string(),
        })?;
        println!("wrote {path}");
    }
    if let Some(path) = &args.svg {
        let title = format!("wgpu-quant on {} ({timing})", adapter[0].1);
        std::fs::write(path, svg(&bench.records, f32_peak, dot4_peak, &title)).map_err(|e| {
            wgpu_quant::Error::InvalidConfig {
                what: "--svg".into(),
                value: path.clone(),
                reason: e.to_string(),
            }
        })?;
        println!("wrote {path}");
    }
    Ok(())
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("wgpu-quant-bench: {e}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wgpu-quant-bench: {e}");
            ExitCode::FAILURE
        }
    }
}
