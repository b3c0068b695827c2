//! The digits demo: `examples/digits.rs` made async, with the model and the test data
//! compiled in (the page fetches nothing but its wasm).

use web_time::Instant;
use wgpu_quant::gpu::timer::GpuTimer;
use wgpu_quant::gpu::tune;
use wgpu_quant::nn::argmax_rows;
use wgpu_quant::prelude::*;

/// `data/digits/mlp.safetensors`: the 64-128-64-10 ReLU MLP, f32.
const MLP: &[u8] = include_bytes!("../../../data/digits/mlp.safetensors");
/// `data/digits/digits.safetensors`: train and test images (pixels / 16) and labels.
const DIGITS: &[u8] = include_bytes!("../../../data/digits/digits.safetensors");

/// Pixels per image (8×8).
pub const PIXELS: usize = 64;
/// Classes.
pub const CLASSES: usize = 10;
/// The float model's layers, in order.
pub const LAYERS: [&str; 3] = ["fc1", "fc2", "fc3"];
/// Calibration rows taken from the training split (as the native example).
const CALIBRATION_ROWS: usize = 512;

/// The three models.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    /// The FP32 baseline.
    Fp32,
    /// INT8 with static (calibrated) activation params.
    Static,
    /// INT8 with activations quantized per row on the GPU.
    Dynamic,
}

impl Which {
    /// All three, in table order.
    pub const ALL: [Which; 3] = [Which::Fp32, Which::Static, Which::Dynamic];

    /// The name the page shows.
    pub fn name(self) -> &'static str {
        match self {
            Which::Fp32 => "FP32",
            Which::Static => "INT8 static",
            Which::Dynamic => "INT8 dynamic",
        }
    }

    /// A short key for element ids (`fp32`, `static`, `dynamic`).
    pub fn key(self) -> &'static str {
        match self {
            Which::Fp32 => "fp32",
            Which::Static => "static",
            Which::Dynamic => "dynamic",
        }
    }
}

/// One model's figures on the test split (the native example's `Figures`, plus GPU time).
#[derive(Debug, Clone)]
pub struct Figures {
    /// Which model.
    pub which: Which,
    /// Test accuracy (fraction).
    pub accuracy: f64,
    /// Correct predictions.
    pub correct: usize,
    /// Fraction of test images whose prediction equals FP32's.
    pub agreement: f64,
    /// GPU output equals `model.reference` bit for bit (INT8 only).
    pub bit_exact: Option<bool>,
    /// Median wall time of `run` over the whole test split (upload, run, readback), ms.
    pub batch_ms: f64,
    /// Median wall time of a single-image `run`, ms.
    pub single_ms: f64,
    /// Median GPU time of the whole split, encoded between tensors already on the GPU
    /// (timestamp queries when the device has them, else wall time around submit and wait), ms.
    pub gpu_batch_ms: f64,
}

/// One model's answer for one image.
#[derive(Debug, Clone)]
pub struct Prediction {
    /// Which model.
    pub which: Which,
    /// The predicted class.
    pub class: usize,
    /// Softmax of the logits (display only).
    pub probabilities: Vec<f32>,
    /// The GPU logits equal the CPU reference bit for bit (INT8 only).
    pub bit_exact: Option<bool>,
}

/// The context, the three models and the test split.
pub struct Demo {
    ctx: Context,
    fp32: F32Model,
    static_int8: QuantizedModel,
    dynamic_int8: QuantizedModel,
    x_test: Vec<f32>,
    labels: Vec<i32>,
    rows: usize,
}

impl std::fmt::Debug for Demo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Demo")
            .field("rows", &self.rows)
            .finish_non_exhaustive()
    }
}

/// The compiled-in float model.
fn float_model() -> Result<FloatModel> {
    let weights = SafeTensorsFile::from_bytes(MLP.to_vec())?;
    FloatModel::sequential(&weights, &LAYERS, Activation::Relu)
}

fn bits_equal(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let e: Vec<f32> = logits.iter().map(|&l| (l - max).exp()).collect();
    let sum: f32 = e.iter().sum();
    e.iter().map(|v| v / sum).collect()
}

impl Demo {
    /// Loads the compiled-in model and data, and calibrates the two INT8 models on
    /// 512 training images, exactly as `examples/digits.rs` does.
    ///
    /// # Errors
    /// Loading, calibration and GPU errors.
    pub fn new(ctx: Context) -> Result<Demo> {
        Demo::build(ctx, float_model()?)
    }

    /// [`Demo::new`] after the autotune has measured the kernel candidates of each layer's
    /// shape on `ctx` ([`tune::autotune`], awaited: it never blocks a page), so the INT8
    /// layers take the measured winners. The autotune's records are in
    /// [`Context::tuning_report`]; it measures only the shape classes not measured yet.
    ///
    /// # Errors
    /// As [`Demo::new`]; GPU errors of the timed runs.
    pub async fn tuned(ctx: Context) -> Result<Demo> {
        let float = float_model()?;
        for layer in float.layers() {
            tune::autotune(&ctx, layer.n, layer.k).await?;
        }
        Demo::build(ctx, float)
    }

    fn build(ctx: Context, float: FloatModel) -> Result<Demo> {
        let digits = SafeTensorsFile::from_bytes(DIGITS.to_vec())?;
        let (x_train, train_shape) = digits.get_f32_any_shape("x_train")?;
        let (x_test, test_shape) = digits.get_f32_any_shape("x_test")?;
        let labels = digits.get_i32("y_test", &test_shape[..1])?;
        let (rows, calibration_rows) = (test_shape[0], train_shape[0].min(CALIBRATION_ROWS));
        let calibration = &x_train[..calibration_rows * PIXELS];

        let fp32 = F32Model::new(&ctx, &float, rows)?;
        let config = QuantConfig::static_int8().max_batch(rows);
        let static_int8 =
            QuantizedModel::calibrate(&ctx, &float, calibration, calibration_rows, &config)?;
        let config = QuantConfig::dynamic_int8().max_batch(rows);
        let dynamic_int8 =
            QuantizedModel::calibrate(&ctx, &float, calibration, calibration_rows, &config)?;
        Ok(Demo {
            ctx,
            fp32,
            static_int8,
            dynamic_int8,
            x_test,
            labels,
            rows,
        })
    }

    /// The context the models run on.
    pub fn context(&self) -> &Context {
        &self.ctx
    }

    /// The three models, for recording them into an encoder (the benchmark).
    pub fn models_mut(&mut self) -> (&mut F32Model, &mut QuantizedModel, &mut QuantizedModel) {
        (
            &mut self.fp32,
            &mut self.static_int8,
            &mut self.dynamic_int8,
        )
    }

    /// An INT8 model (`None` for [`Which::Fp32`]).
    pub fn quantized(&self, which: Which) -> Option<&QuantizedModel> {
        match which {
            Which::Fp32 => None,
            Which::Static => Some(&self.static_int8),
            Which::Dynamic => Some(&self.dynamic_int8),
        }
    }

    /// Test images.
    pub fn test_rows(&self) -> usize {
        self.rows
    }

    /// Test image `i` (64 pixels in [0, 1]) and its label.
    pub fn test_image(&self, i: usize) -> Option<(&[f32], i32)> {
        let pixels = self.x_test.get(i * PIXELS..(i + 1) * PIXELS)?;
        Some((pixels, self.labels[i]))
    }

    /// The static INT8 model's calibration report (params per layer, SQNR vs float).
    pub fn report(&self) -> String {
        self.static_int8
            .report()
            .map(|r| r.to_string())
            .unwrap_or_default()
    }

    /// Runs one model on `rows` rows of `x`.
    ///
    /// # Errors
    /// GPU and shape errors.
    pub async fn run(&mut self, which: Which, x: &[f32], rows: usize) -> Result<Vec<f32>> {
        match which {
            Which::Fp32 => self.fp32.run(&self.ctx, x, rows).await,
            Which::Static => self.static_int8.run(&self.ctx, x, rows).await,
            Which::Dynamic => self.dynamic_int8.run(&self.ctx, x, rows).await,
        }
    }

    fn reference(&self, which: Which, x: &[f32], rows: usize) -> Result<Option<Vec<f32>>> {
        match which {
            Which::Fp32 => Ok(None),
            Which::Static => self.static_int8.reference(x, rows).map(Some),
            Which::Dynamic => self.dynamic_int8.reference(x, rows).map(Some),
        }
    }

    /// Median wall time (ms) of `runs` runs of `rows` test rows, after one warm-up run.
    async fn time(&mut self, which: Which, rows: usize, runs: usize) -> Result<f64> {
        let x = self.x_test[..rows * PIXELS].to_vec();
        self.run(which, &x, rows).await?;
        let mut ms = Vec::with_capacity(runs);
        for _ in 0..runs {
            let start = Instant::now();
            self.run(which, &x, rows).await?;
            ms.push(start.elapsed().as_secs_f64() * 1e3);
        }
        Ok(median(ms))
    }

    /// Median GPU time (ms) of the whole test split, recorded between tensors that are
    /// already on the GPU (after one warm-up run).
    async fn gpu_time(&mut self, which: Which, runs: usize) -> Result<f64> {
        let ctx = self.ctx.clone();
        let timer = GpuTimer::new(&ctx)?;
        let input = Tensor::from_f32(&ctx, &self.x_test, self.rows, PIXELS)?;
        let spec = match which {
            Which::Fp32 => TensorSpec::f32(CLASSES),
            Which::Static => self.static_int8.output_spec(),
            Which::Dynamic => self.dynamic_int8.output_spec(),
        };
        let mut output = Tensor::new(&ctx, spec, self.rows)?;
        let mut ms = Vec::with_capacity(runs);
        for i in 0..=runs {
            let (fp32, st, dy) = (
                &mut self.fp32,
                &mut self.static_int8,
                &mut self.dynamic_int8,
            );
            let mut record = |e: &mut wgpu::CommandEncoder| match which {
                Which::Fp32 => fp32.encode(&ctx, e, &input, &mut output),
                Which::Static => st.encode(&ctx, e, &input, &mut output),
                Which::Dynamic => dy.encode(&ctx, e, &input, &mut output),
            };
            let t = timer.time_async(&ctx, &mut record).await?;
            if i > 0 {
                ms.push(t); // the first run is the warm-up
            }
        }
        Ok(median(ms))
    }

    /// How [`Figures::gpu_batch_ms`] is measured: `"gpu_timestamps"` or `"wall"`.
    ///
    /// # Errors
    /// [`Error::Gpu`] when the timer's query set cannot be created.
    pub fn timing_source(&self) -> Result<&'static str> {
        Ok(GpuTimer::new(&self.ctx)?.source().as_str())
    }

    /// Everything `examples/digits.rs` measures: accuracy, agreement with FP32, the bit-exact
    /// check against the CPU reference, and timings (`runs` timed runs per figure).
    ///
    /// # Errors
    /// GPU errors.
    pub async fn evaluate(&mut self, runs: usize) -> Result<Vec<Figures>> {
        let (rows, x_test) = (self.rows, self.x_test.clone());
        let mut predictions = Vec::new();
        let mut exact = Vec::new();
        for which in Which::ALL {
            let y = self.run(which, &x_test, rows).await?;
            exact.push(
                self.reference(which, &x_test, rows)?
                    .map(|r| bits_equal(&y, &r)),
            );
            predictions.push(argmax_rows(&y, CLASSES));
        }
        let mut figures = Vec::new();
        for (i, which) in Which::ALL.into_iter().enumerate() {
            let pred = &predictions[i];
            let correct = pred
                .iter()
                .zip(&self.labels)
                .filter(|(p, l)| **p as i32 == **l)
                .count();
            let agree = pred
                .iter()
                .zip(&predictions[0])
                .filter(|(a, b)| a == b)
                .count();
            figures.push(Figures {
                which,
                accuracy: correct as f64 / rows as f64,
                correct,
                agreement: agree as f64 / rows as f64,
                bit_exact: exact[i],
                batch_ms: self.time(which, rows, runs).await?,
                single_ms: self.time(which, 1, runs).await?,
                gpu_batch_ms: self.gpu_time(which, runs).await?,
            });
        }
        Ok(figures)
    }

    /// The three models' predictions for one image (64 pixels in [0, 1]).
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] for a wrong pixel count; GPU errors.
    pub async fn predict(&mut self, pixels: &[f32]) -> Result<Vec<Prediction>> {
        let mut out = Vec::new();
        for which in Which::ALL {
            let logits = self.run(which, pixels, 1).await?;
            let bit_exact = self
                .reference(which, pixels, 1)?
                .map(|r| bits_equal(&logits, &r));
            out.push(Prediction {
                which,
                class: argmax_rows(&logits, CLASSES)[0],
                probabilities: softmax(&logits),
                bit_exact,
            });
        }
        Ok(out)
    }
}
