//! Section `model`: whole models, f32 in and f32 out: the digits MLP (64 → 128 → 64 → 10) at
//! batch 1 and 540, and an LLM-sized feed-forward block (M = 128, 4096 → 11008 → 4096); FP32
//! vs static INT8 vs dynamic INT8, interleaved, each INT8 output checked bit for bit against
//! the model's CPU reference once, outside the timed runs.

use std::path::PathBuf;
use std::time::Instant;

use wgpu_quant::Result;
use wgpu_quant::gpu::Context;
use wgpu_quant::io::SafeTensorsFile;
use wgpu_quant::nn::{
    F32Model, FloatLinear, FloatModel, QuantConfig, QuantizedModel, Tensor, TensorSpec,
};

use crate::measure::{Bench, Recorder, Rng, Ui, bits_equal, sqnr_db, stats};
use crate::report::ModelRecord;

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
        ui: &Ui,
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
        ui.log(&format!(
            "  {name}: built and calibrated on {rows} rows in {:.1} s",
            start.elapsed().as_secs_f64()
        ));
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
fn digits_models(ctx: &Context, ui: &Ui) -> Result<(ModelSet, Vec<f32>, usize)> {
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
    let set = ModelSet::build(ctx, ui, "digits-mlp", float, &x_train, train_shape[0], rows)?;
    Ok((set, x_test, rows))
}

/// An LLM-sized feed-forward block, 4096 → 11008 (`ReLU`) → 4096 without biases, seeded
/// roughly-normal weights (σ = 1/√fan-in), calibrated on `calibration_rows` random rows, for up
/// to `rows` rows; and `rows` rows of other random input.
fn ffn_models(
    ctx: &Context,
    ui: &Ui,
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
    let set = ModelSet::build(ctx, ui, "ffn", float, &calibration, calibration_rows, rows)?;
    Ok((set, x))
}

impl Bench {
    /// A whole model at `rows` rows of `x`, f32 in and f32 out: FP32, static INT8 and dynamic
    /// INT8, each recorded with `encode` into the timed encoder from one input tensor to its
    /// own output tensor (every stage between, nothing else). Once, outside the timed runs,
    /// each INT8 output is compared bit for bit with the model's CPU reference.
    ///
    /// # Errors
    /// Model, encoding, readback or timing errors.
    fn model(&mut self, set: &mut ModelSet, x: &[f32], rows: usize) -> Result<()> {
        let ctx = self.ctx.clone();
        if self.tune {
            set.static_int8.tune_blocking(&ctx)?;
            set.dynamic_int8.tune_blocking(&ctx)?;
        }
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
        self.ui.log(&format!(
            "  {} {rows} rows: CPU references in {:.1} s",
            set.name,
            start.elapsed().as_secs_f64()
        ));

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
            fp32_ms: fp32.0,
            fp32_min_ms: fp32.1,
            static_ms: static_int8.0,
            static_min_ms: static_int8.1,
            dynamic_ms: dynamic_int8.0,
            dynamic_min_ms: dynamic_int8.1,
            fp32_over_static: fp32.0 / static_int8.0,
            fp32_over_dynamic: fp32.0 / dynamic_int8.0,
            static_bit_exact,
            dynamic_bit_exact,
            static_sqnr_db: sqnr_db(&fp32_out, &static_out),
            dynamic_sqnr_db: sqnr_db(&fp32_out, &dynamic_out),
        };
        self.ui.log(&format!(
            "  {} {} x{rows}: FP32 {:.3} ms, static INT8 {:.3} ms ({:.2}x), dynamic INT8 {:.3} ms ({:.2}x)",
            record.name,
            record.shape,
            record.fp32_ms,
            record.static_ms,
            record.fp32_over_static,
            record.dynamic_ms,
            record.fp32_over_dynamic
        ));
        self.models.push(record);
        Ok(())
    }

    /// The digits MLP at batch 1 and at its whole test split (skipped, saying so, when
    /// `data/digits` is absent: it is in the repository, not the published crate).
    ///
    /// # Errors
    /// As [`Bench::model`].
    pub fn digits(&mut self) -> Result<()> {
        let path = digits_data("mlp.safetensors");
        if !path.exists() {
            self.ui.log(&format!(
                "  skipped: {} not found (data/digits is in the repository, not the crate)",
                path.display()
            ));
            return Ok(());
        }
        let (mut set, x_test, rows) = digits_models(&self.ctx, &self.ui)?;
        self.model(&mut set, &x_test, 1)?;
        self.model(&mut set, &x_test, rows)
    }

    /// The feed-forward block at 128 rows. Calibration runs the float model (and, for the
    /// report, the CPU twin) on the CPU in scalar f32, about half a second per row here, so
    /// `quick` calibrates on 32 rows instead of 128.
    ///
    /// # Errors
    /// As [`Bench::model`].
    pub fn ffn(&mut self, quick: bool) -> Result<()> {
        let (rows, calibration_rows) = (128, if quick { 32 } else { 128 });
        let (mut set, x) = ffn_models(&self.ctx, &self.ui, rows, calibration_rows, 400)?;
        self.model(&mut set, &x, rows)
    }
}
