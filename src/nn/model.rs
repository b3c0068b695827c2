//! The quantized model: a sequence of stages (quantize, dynamic quantize, linear) built once
//! from a float model and calibration data, run many times with f32 in and f32 out.
//!
//! Every stage's input spec equals the previous stage's output spec by construction, and the
//! model checks the chain again when it is built, so a zero point that differs between two
//! layers is an error at build time, never a wrong number.

use crate::error::{Error, Result};
use crate::gpu::context::Context;
use crate::gpu::dynamic::DynamicQuantizer;
use crate::gpu::quantize::Quantizer;
use crate::nn::float::FloatModel;
use crate::nn::host::HostTensor;
use crate::nn::linear::{BiasMode, InputSpec, Linear, LinearConfig, OutputSpec};
use crate::nn::tensor::{Quantization, Tensor, TensorSpec, describe_params};
use crate::quant::calibrate::{Calibrator, Observer};
use crate::quant::convention::Convention;
use crate::quant::fixed_point::FixedPointRounding;
use crate::quant::params::{QuantParams, Scheme};
use crate::quant::qtype::QType;
use crate::reference::dynamic::{DynamicGranularity, DynamicScheme};

/// Static (params from calibration) or dynamic (params computed per run on the GPU).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuantMode {
    /// Activation params fixed by calibration; layers requantize into the next layer's
    /// params on the GPU.
    Static,
    /// Activations quantized at run time before each layer; layers output f32.
    Dynamic {
        /// The dynamic scheme.
        scheme: DynamicScheme,
        /// Per row (per token) or per tensor.
        granularity: DynamicGranularity,
    },
}

/// How a float model becomes a quantized one.
#[derive(Debug, Clone)]
pub struct QuantConfig {
    /// The numerics convention.
    pub convention: Convention,
    /// Static or dynamic.
    pub mode: QuantMode,
    /// Weight calibrator (default MinMax).
    pub weight_calibrator: Calibrator,
    /// Weight scheme (default symmetric int8).
    pub weight_scheme: Scheme,
    /// Per-channel weights (default true).
    pub per_channel: bool,
    /// Activation calibrator for static mode (default MinMax).
    pub activation_calibrator: Calibrator,
    /// Activation scheme for static mode (default affine int8).
    pub activation_scheme: Scheme,
    /// Where biases enter (default [`BiasMode::Auto`]).
    pub bias_mode: BiasMode,
    /// TfLite fixed-point rounding.
    pub rounding: FixedPointRounding,
    /// Rows per calibration batch (each batch is one observer update).
    pub calibration_batch: usize,
    /// The most rows one run may have; intermediate tensors are allocated for it once.
    pub max_batch: usize,
    /// Calibration rows the report measures each layer's error on (default 64; 0 skips the
    /// report). The report runs the CPU reference, whose cost grows with the model.
    pub report_rows: usize,
}

impl QuantConfig {
    /// Static int8: ONNX convention, per-channel symmetric int8 weights, affine int8
    /// activations calibrated with MinMax, i32 biases, requantization on the GPU.
    pub fn static_int8() -> Self {
        QuantConfig {
            convention: Convention::Onnx,
            mode: QuantMode::Static,
            weight_calibrator: Calibrator::default(),
            weight_scheme: Scheme::symmetric(QType::I8),
            per_channel: true,
            activation_calibrator: Calibrator::default(),
            activation_scheme: Scheme::affine(QType::I8),
            bias_mode: BiasMode::Auto,
            rounding: FixedPointRounding::Single,
            calibration_batch: 64,
            max_batch: 1024,
            report_rows: 64,
        }
    }

    /// Dynamic int8 (W8A8): per-channel symmetric int8 weights, activations quantized per row
    /// at run time (symmetric absmax / 127), f32 biases after dequantization.
    pub fn dynamic_int8() -> Self {
        QuantConfig {
            mode: QuantMode::Dynamic {
                scheme: DynamicScheme::SymmetricPerToken,
                granularity: DynamicGranularity::PerRow,
            },
            ..Self::static_int8()
        }
    }

    /// With a convention.
    pub fn convention(mut self, convention: Convention) -> Self {
        self.convention = convention;
        self
    }
    /// With an activation calibrator (static mode).
    pub fn activation_calibrator(mut self, calibrator: impl Into<Calibrator>) -> Self {
        self.activation_calibrator = calibrator.into();
        self
    }
    /// With an activation scheme (static mode).
    pub fn activation_scheme(mut self, scheme: Scheme) -> Self {
        self.activation_scheme = scheme;
        self
    }
    /// With a weight calibrator and scheme.
    pub fn weights(mut self, calibrator: impl Into<Calibrator>, scheme: Scheme) -> Self {
        self.weight_calibrator = calibrator.into();
        self.weight_scheme = scheme;
        self
    }
    /// With a maximum batch.
    pub fn max_batch(mut self, rows: usize) -> Self {
        self.max_batch = rows;
        self
    }
    /// Static or dynamic.
    pub fn mode(mut self, mode: QuantMode) -> Self {
        self.mode = mode;
        self
    }
    /// Per-tensor weight params instead of per channel.
    pub fn per_tensor_weights(mut self) -> Self {
        self.per_channel = false;
        self
    }
    /// With a fixed-point rounding (TfLite requantization).
    pub fn rounding(mut self, rounding: FixedPointRounding) -> Self {
        self.rounding = rounding;
        self
    }
    /// With a calibration batch size (rows per observer update).
    pub fn calibration_batch(mut self, rows: usize) -> Self {
        self.calibration_batch = rows;
        self
    }
    /// With the number of rows the calibration report measures (0: no report).
    pub fn report_rows(mut self, rows: usize) -> Self {
        self.report_rows = rows;
        self
    }
    /// With a bias mode.
    pub fn bias_mode(mut self, mode: BiasMode) -> Self {
        self.bias_mode = mode;
        self
    }
}

/// One step of a quantized model: a static quantizer, a dynamic quantizer or a linear layer.
/// Built only through its constructors, so what a stage says it does is what its GPU kernel
/// was built to do.
#[derive(Debug)]
pub struct Stage(pub(crate) StageKind);

#[derive(Debug)]
pub(crate) enum StageKind {
    Quantize {
        quantizer: Quantizer,
        params: QuantParams,
        convention: Convention,
    },
    DynamicQuantize {
        quantizer: DynamicQuantizer,
    },
    Linear(Box<Linear>),
}

impl Stage {
    /// f32 → statically quantized with per-tensor `params` under `convention`, for up to
    /// `max_rows` rows of `cols`.
    ///
    /// # Errors
    /// [`Error::Mismatch`] for per-axis params; as [`Quantizer::new`].
    pub fn quantize(
        ctx: &Context,
        convention: Convention,
        params: QuantParams,
        max_rows: usize,
        cols: usize,
    ) -> Result<Self> {
        if params.axis().is_some() {
            return Err(Error::Mismatch(format!(
                "a model's quantize stage takes per-tensor params, got {}",
                describe_params(&params)
            )));
        }
        let quantizer = Quantizer::new(ctx, convention, &params, max_rows, cols)?;
        Ok(Stage(StageKind::Quantize {
            quantizer,
            params,
            convention,
        }))
    }

    /// f32 → dynamically quantized, for up to `max_rows` rows of `cols`.
    ///
    /// # Errors
    /// As [`DynamicQuantizer::new`].
    pub fn dynamic_quantize(
        ctx: &Context,
        scheme: DynamicScheme,
        granularity: DynamicGranularity,
        max_rows: usize,
        cols: usize,
    ) -> Result<Self> {
        Ok(Stage(StageKind::DynamicQuantize {
            quantizer: DynamicQuantizer::new(ctx, scheme, granularity, max_rows, cols)?,
        }))
    }

    /// A linear layer.
    pub fn linear(layer: Linear) -> Self {
        Stage(StageKind::Linear(Box::new(layer)))
    }

    /// The layer, for a linear stage.
    pub fn as_linear(&self) -> Option<&Linear> {
        match &self.0 {
            StageKind::Linear(l) => Some(l),
            _ => None,
        }
    }

    /// `"quantize"`, `"dynamic"` or `"linear"`.
    pub fn kind(&self) -> &'static str {
        match &self.0 {
            StageKind::Quantize { .. } => "quantize",
            StageKind::DynamicQuantize { .. } => "dynamic",
            StageKind::Linear(_) => "linear",
        }
    }

    /// The most rows a quantizer stage was built for (`None` for a layer: any).
    pub fn max_rows(&self) -> Option<usize> {
        match &self.0 {
            StageKind::Quantize { quantizer, .. } => Some(quantizer.max_rows()),
            StageKind::DynamicQuantize { quantizer } => Some(quantizer.max_rows()),
            StageKind::Linear(_) => None,
        }
    }

    /// The convention a quantize or linear stage follows (`None` for a dynamic quantizer,
    /// whose scheme fixes its arithmetic).
    pub fn convention(&self) -> Option<Convention> {
        match &self.0 {
            StageKind::Quantize { convention, .. } => Some(*convention),
            StageKind::DynamicQuantize { .. } => None,
            StageKind::Linear(l) => Some(l.parts().convention),
        }
    }

    /// The spec of the tensor this stage takes.
    pub fn input_spec(&self) -> TensorSpec {
        match &self.0 {
            StageKind::Quantize { quantizer, .. } => TensorSpec::f32(quantizer.cols()),
            StageKind::DynamicQuantize { quantizer } => TensorSpec::f32(quantizer.cols()),
            StageKind::Linear(l) => l.input_spec().clone(),
        }
    }
    /// The spec of the tensor this stage writes.
    pub fn output_spec(&self) -> TensorSpec {
        match &self.0 {
            StageKind::Quantize {
                quantizer, params, ..
            } => TensorSpec::quantized(quantizer.cols(), params.clone()),
            StageKind::DynamicQuantize { quantizer } => TensorSpec::dynamic(
                quantizer.cols(),
                quantizer.scheme(),
                quantizer.granularity(),
            ),
            StageKind::Linear(l) => l.output_spec().clone(),
        }
    }

    fn encode(
        &self,
        ctx: &Context,
        encoder: &mut wgpu::CommandEncoder,
        input: &Tensor,
        output: &mut Tensor,
    ) -> Result<()> {
        if let StageKind::Linear(l) = &self.0 {
            return l.encode(ctx, encoder, input, output);
        }
        input.spec().check("stage input", &self.input_spec())?;
        output.spec().check("stage output", &self.output_spec())?;
        let rows = input.rows();
        output.check_capacity("stage output", rows)?;
        match &self.0 {
            StageKind::Quantize { quantizer, .. } => {
                quantizer.encode(ctx, encoder, rows, input.buffer(), output.buffer())?;
            }
            StageKind::DynamicQuantize { quantizer } => {
                let row_params = output.row_params().ok_or_else(|| {
                    Error::Mismatch("dynamic output tensor without row params".into())
                })?;
                quantizer.encode(
                    ctx,
                    encoder,
                    rows,
                    input.buffer(),
                    output.buffer(),
                    row_params,
                )?;
            }
            StageKind::Linear(_) => {}
        }
        output.set_rows(rows)
    }

    fn reference(&self, input: &HostTensor) -> Result<HostTensor> {
        match &self.0 {
            StageKind::Quantize {
                params, convention, ..
            } => {
                input.spec.check("stage input", &self.input_spec())?;
                input.quantize(*convention, params)
            }
            StageKind::DynamicQuantize { quantizer } => {
                input.spec.check("stage input", &self.input_spec())?;
                input.dynamic_quantize(quantizer.scheme(), quantizer.granularity())
            }
            StageKind::Linear(l) => l.reference(input),
        }
    }
}

/// A quantized sequential model on the GPU, f32 in and f32 out.
#[derive(Debug)]
pub struct QuantizedModel {
    convention: Convention,
    mode: QuantMode,
    stages: Vec<Stage>,
    /// The output of every stage but the last, allocated once for `max_batch` rows.
    intermediates: Vec<Tensor>,
    /// The model's own input and output tensors for `run`.
    input: Tensor,
    output: Tensor,
    max_batch: usize,
    report: Option<CalibrationReport>,
}

impl QuantizedModel {
    /// Calibrates `float` on `samples` (`rows × input features`, f32) and builds the
    /// quantized model under `config`: weights per `config`'s weight calibrator and scheme;
    /// in static mode, every layer's input range observed with the activation calibrator
    /// (one observer per tensor between layers, so each layer's output params are the next
    /// layer's input params); in dynamic mode, quantizers before every layer.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] for the samples, [`Error::EmptyInput`] for no samples,
    /// calibration errors, and as [`QuantizedModel::from_stages`].
    pub fn calibrate(
        ctx: &Context,
        float: &FloatModel,
        samples: &[f32],
        rows: usize,
        config: &QuantConfig,
    ) -> Result<Self> {
        let k0 = float.input_features();
        crate::quant::pack::check_len("calibration samples", samples.len(), rows, k0)?;
        if rows == 0 {
            return Err(Error::EmptyInput {
                what: "calibration samples".into(),
            });
        }
        crate::error::check_finite("calibration samples", samples)?;
        if config.calibration_batch == 0 {
            return Err(Error::InvalidConfig {
                what: "calibration_batch".into(),
                value: "0".into(),
                reason: "must be at least 1 row".into(),
            });
        }
        let layers = float.layers();
        // One observer per tensor: the model input and each layer's output.
        let mut observers: Vec<Observer<Calibrator>> = (0..=layers.len())
            .map(|_| Observer::per_tensor(config.activation_calibrator.clone()))
            .collect();
        if config.mode == QuantMode::Static {
            for start in (0..rows).step_by(config.calibration_batch) {
                let end = (start + config.calibration_batch).min(rows);
                let x = &samples[start * k0..end * k0];
                let trace = float.forward_trace(x, end - start)?;
                observers[0].observe(x, &[end - start, k0])?;
                for (i, y) in trace.iter().enumerate() {
                    observers[i + 1].observe(y, &[end - start, layers[i].n])?;
                }
            }
            observers.iter_mut().for_each(Observer::end_call);
        }
        let mut stages = Vec::new();
        let last = layers.len() - 1;
        for (i, layer) in layers.iter().enumerate() {
            let input = match config.mode {
                QuantMode::Static => {
                    let params =
                        observers[i].params(config.convention, &config.activation_scheme)?;
                    if i == 0 {
                        stages.push(Stage::quantize(
                            ctx,
                            config.convention,
                            params.clone(),
                            config.max_batch,
                            layer.k,
                        )?);
                    }
                    InputSpec::Static(params)
                }
                QuantMode::Dynamic {
                    scheme,
                    granularity,
                } => {
                    stages.push(Stage::dynamic_quantize(
                        ctx,
                        scheme,
                        granularity,
                        config.max_batch,
                        layer.k,
                    )?);
                    InputSpec::Dynamic {
                        scheme,
                        granularity,
                    }
                }
            };
            let output = match (config.mode, i == last) {
                (QuantMode::Static, false) => OutputSpec::Quantized(
                    observers[i + 1].params(config.convention, &config.activation_scheme)?,
                ),
                _ => OutputSpec::F32,
            };
            let mut linear_config = LinearConfig::new(input, output)
                .convention(config.convention)
                .activation(layer.activation)
                .weights(config.weight_calibrator.clone(), config.weight_scheme)
                .bias_mode(config.bias_mode)
                .rounding(config.rounding);
            if !config.per_channel {
                linear_config = linear_config.per_tensor_weights();
            }
            let linear = Linear::new(
                ctx,
                &layer.weight,
                layer.n,
                layer.k,
                layer.bias.as_deref(),
                linear_config,
            )
            .map_err(|e| in_layer(&layer.name, e))?;
            stages.push(Stage::linear(linear));
        }
        let mut model = Self::from_stages(
            ctx,
            config.convention,
            config.mode,
            stages,
            config.max_batch,
        )?;
        let report_rows = rows.min(config.report_rows);
        if report_rows > 0 {
            model.report = Some(CalibrationReport::measure(
                &model,
                float,
                &samples[..report_rows * k0],
                report_rows,
            )?);
        }
        Ok(model)
    }

    /// A model from stages, checking that each stage takes exactly what the one before it
    /// writes, that the model takes f32 and gives f32, and allocating the intermediate
    /// tensors once for `max_batch` rows.
    ///
    /// # Errors
    /// [`Error::EmptyInput`] for no stages; [`Error::TensorMismatch`] naming the two stages
    /// whose specs differ (a zero point or scale that differs between layers included);
    /// allocation errors.
    pub fn from_stages(
        ctx: &Context,
        convention: Convention,
        mode: QuantMode,
        stages: Vec<Stage>,
        max_batch: usize,
    ) -> Result<Self> {
        let (Some(first), Some(last)) = (stages.first(), stages.last()) else {
            return Err(Error::EmptyInput {
                what: "model stages".into(),
            });
        };
        let input_spec = first.input_spec();
        let output_spec = last.output_spec();
        for (name, spec) in [("model input", &input_spec), ("model output", &output_spec)] {
            if spec.element != crate::nn::tensor::ElementType::F32 {
                return Err(Error::TensorMismatch {
                    what: name.into(),
                    expected: "f32".into(),
                    found: spec.describe(),
                });
            }
        }
        for (i, stage) in stages.iter().enumerate() {
            if let Some(rows) = stage.max_rows() {
                if rows < max_batch {
                    return Err(Error::CapacityExceeded {
                        what: format!(
                            "stage {i} ({}) built for fewer rows than the model",
                            stage.kind()
                        ),
                        rows: max_batch,
                        capacity: rows,
                    });
                }
            }
            if let Some(c) = stage.convention() {
                if c != convention {
                    return Err(Error::Mismatch(format!(
                        "stage {i} ({}) follows {c:?}, the model {convention:?}",
                        stage.kind()
                    )));
                }
            }
            let dynamic_input = match stage.input_spec().quantization {
                Some(Quantization::Dynamic {
                    scheme,
                    granularity,
                }) => Some((scheme, granularity)),
                _ => None,
            };
            let dynamic_stage = match &stage.0 {
                StageKind::DynamicQuantize { quantizer } => {
                    Some((quantizer.scheme(), quantizer.granularity()))
                }
                _ => dynamic_input,
            };
            let agrees = match (mode, dynamic_stage) {
                (QuantMode::Static, None) => true,
                (
                    QuantMode::Dynamic {
                        scheme,
                        granularity,
                    },
                    Some(found),
                ) => found == (scheme, granularity),
                (QuantMode::Dynamic { .. }, None) => !matches!(stage.0, StageKind::Quantize { .. }),
                (QuantMode::Static, Some(_)) => false,
            };
            if !agrees {
                return Err(Error::Mismatch(format!(
                    "stage {i} ({}) does not belong to a {mode:?} model",
                    stage.kind()
                )));
            }
        }
        for (i, pair) in stages.windows(2).enumerate() {
            pair[0].output_spec().check(
                &format!("stage {} output feeding stage {}", i, i + 1),
                &pair[1].input_spec(),
            )?;
        }
        let intermediates = stages[..stages.len() - 1]
            .iter()
            .map(|s| Tensor::new(ctx, s.output_spec(), max_batch))
            .collect::<Result<Vec<_>>>()?;
        Ok(QuantizedModel {
            convention,
            mode,
            input: Tensor::new(ctx, input_spec, max_batch)?,
            output: Tensor::new(ctx, output_spec, max_batch)?,
            stages,
            intermediates,
            max_batch,
            report: None,
        })
    }

    /// Records the whole model into the caller's encoder: `input` (f32 rows) to `output`
    /// (f32 rows), through the model's own intermediate tensors.
    ///
    /// # Errors
    /// [`Error::TensorMismatch`] for a tensor of the wrong spec; [`Error::CapacityExceeded`]
    /// above `max_batch`; GPU errors.
    pub fn encode(
        &mut self,
        ctx: &Context,
        encoder: &mut wgpu::CommandEncoder,
        input: &Tensor,
        output: &mut Tensor,
    ) -> Result<()> {
        encode_chain(
            &self.stages,
            &mut self.intermediates,
            ctx,
            encoder,
            input,
            output,
        )
    }

    /// Runs `rows` rows of f32 input and returns the f32 output.
    ///
    /// # Errors
    /// As [`QuantizedModel::encode`], plus [`Error::ShapeMismatch`] for `x`.
    pub async fn run(&mut self, ctx: &Context, x: &[f32], rows: usize) -> Result<Vec<f32>> {
        self.input.write_f32(ctx, x, rows)?;
        let (stages, intermediates) = (&self.stages, &mut self.intermediates);
        let (input, output) = (&self.input, &mut self.output);
        ctx.submit("QuantizedModel::run", |encoder| {
            encode_chain(stages, intermediates, ctx, encoder, input, output)
        })?;
        self.output.read_f32(ctx).await
    }

    /// Blocking form of [`QuantizedModel::run`] (native only).
    ///
    /// # Errors
    /// As [`QuantizedModel::run`].
    #[cfg(not(target_arch = "wasm32"))]
    pub fn run_blocking(&mut self, ctx: &Context, x: &[f32], rows: usize) -> Result<Vec<f32>> {
        pollster::block_on(self.run(ctx, x, rows))
    }

    /// The CPU twin of the whole model: the output the GPU equals bit for bit.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] for `x`; reference errors.
    pub fn reference(&self, x: &[f32], rows: usize) -> Result<Vec<f32>> {
        let trace = self.reference_trace(x, rows)?;
        trace
            .last()
            .map(|t| t.as_f32().map(<[f32]>::to_vec))
            .unwrap_or_else(|| Ok(Vec::new()))
    }

    /// Every stage's output on the CPU reference, in order.
    ///
    /// # Errors
    /// As [`QuantizedModel::reference`].
    pub fn reference_trace(&self, x: &[f32], rows: usize) -> Result<Vec<HostTensor>> {
        let cols = self.stages[0].input_spec().cols;
        let mut current = HostTensor::f32(x.to_vec(), rows, cols)?;
        let mut trace = Vec::with_capacity(self.stages.len());
        for stage in &self.stages {
            current = stage.reference(&current)?;
            trace.push(current.clone());
        }
        Ok(trace)
    }

    /// Autotunes every linear layer on `ctx` ([`Linear::tune`]): each shape class is
    /// measured once per context, then every layer runs its winners. The outputs keep their
    /// bits. Returns each layer's kernels, in order.
    ///
    /// # Errors
    /// GPU errors of the timed runs.
    pub async fn tune(&mut self, ctx: &Context) -> Result<Vec<crate::gpu::tune::LayerKernels>> {
        let mut chosen = Vec::new();
        for stage in &mut self.stages {
            if let StageKind::Linear(layer) = &mut stage.0 {
                chosen.push(layer.tune(ctx).await?);
            }
        }
        Ok(chosen)
    }

    /// Blocking form of [`QuantizedModel::tune`] (native only).
    ///
    /// # Errors
    /// As [`QuantizedModel::tune`].
    #[cfg(not(target_arch = "wasm32"))]
    pub fn tune_blocking(&mut self, ctx: &Context) -> Result<Vec<crate::gpu::tune::LayerKernels>> {
        pollster::block_on(self.tune(ctx))
    }

    /// The stages.
    pub fn stages(&self) -> &[Stage] {
        &self.stages
    }
    /// The linear layers, in order.
    pub fn layers(&self) -> impl Iterator<Item = &Linear> {
        self.stages.iter().filter_map(Stage::as_linear)
    }
    /// The convention.
    pub fn convention(&self) -> Convention {
        self.convention
    }
    /// Static or dynamic.
    pub fn mode(&self) -> QuantMode {
        self.mode
    }
    /// The most rows one run may have.
    pub fn max_batch(&self) -> usize {
        self.max_batch
    }
    /// The spec of the input tensor `encode` takes.
    pub fn input_spec(&self) -> TensorSpec {
        self.stages[0].input_spec()
    }
    /// The spec of the output tensor `encode` writes.
    pub fn output_spec(&self) -> TensorSpec {
        self.stages[self.stages.len() - 1].output_spec()
    }
    /// Input features (columns of the f32 input).
    pub fn input_features(&self) -> usize {
        self.input_spec().cols
    }
    /// Output features (columns of the f32 output).
    pub fn output_features(&self) -> usize {
        self.output_spec().cols
    }
    /// What calibration chose and how far each layer lands from the float model; `None` for
    /// a model not built by [`QuantizedModel::calibrate`] (loaded, or from stages) and when
    /// [`QuantConfig::report_rows`] is 0.
    pub fn report(&self) -> Option<&CalibrationReport> {
        self.report.as_ref()
    }
}

/// Records `stages` from `input` to `output` through `intermediates` (one per stage but the
/// last).
fn encode_chain(
    stages: &[Stage],
    intermediates: &mut [Tensor],
    ctx: &Context,
    encoder: &mut wgpu::CommandEncoder,
    input: &Tensor,
    output: &mut Tensor,
) -> Result<()> {
    crate::nn::tensor::chain_steps(
        stages,
        intermediates,
        input,
        output,
        |stage, source, target| stage.encode(ctx, encoder, source, target),
    )
}

fn in_layer(name: &str, e: Error) -> Error {
    match e {
        Error::Mismatch(m) => Error::Mismatch(format!("layer {name}: {m}")),
        other => other,
    }
}

/// Per layer: the params calibration chose and the layer output's error against the float
/// model on the calibration samples.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerReport {
    /// The float layer's name.
    pub name: String,
    /// `[n, k]`.
    pub shape: [usize; 2],
    /// The weights' params in brief.
    pub weights: String,
    /// The input's quantization in brief.
    pub input: String,
    /// The output's spec in brief.
    pub output: String,
    /// Signal-to-quantization-noise ratio of the layer's (dequantized) output against the
    /// float model's, in dB.
    pub sqnr_db: f64,
    /// The largest absolute difference from the float output.
    pub max_abs_error: f32,
}

/// The calibration report: one [`LayerReport`] per linear layer.
#[derive(Debug, Clone, PartialEq)]
pub struct CalibrationReport {
    /// The layers, in order.
    pub layers: Vec<LayerReport>,
    /// Rows the errors were measured on.
    pub rows: usize,
}

impl CalibrationReport {
    fn measure(model: &QuantizedModel, float: &FloatModel, x: &[f32], rows: usize) -> Result<Self> {
        let trace = model.reference_trace(x, rows)?;
        let float_trace = float.forward_trace(x, rows)?;
        let mut layers = Vec::new();
        let mut index = 0;
        for (stage, out) in model.stages.iter().zip(&trace) {
            let Some(l) = stage.as_linear() else { continue };
            let expected = &float_trace[index];
            let got = out.to_f32();
            let (mut signal, mut noise, mut max_abs) = (0.0f64, 0.0f64, 0.0f32);
            for (&e, &g) in expected.iter().zip(&got) {
                signal += f64::from(e) * f64::from(e);
                let d = f64::from(g) - f64::from(e);
                noise += d * d;
                max_abs = max_abs.max((g - e).abs());
            }
            let sqnr_db = if noise == 0.0 {
                f64::INFINITY
            } else {
                10.0 * (signal / noise).log10()
            };
            let input = match l.input() {
                InputSpec::Static(p) => describe_params(p),
                InputSpec::Dynamic {
                    scheme,
                    granularity,
                } => format!("dynamic {scheme:?} {granularity:?}"),
            };
            let wp = l.weight_params();
            layers.push(LayerReport {
                name: float.layers()[index].name.clone(),
                shape: [l.n(), l.k()],
                weights: format!(
                    "{} {}, scales {:e}..{:e}",
                    wp.qtype().name(),
                    if wp.axis().is_some() {
                        "per channel"
                    } else {
                        "per tensor"
                    },
                    wp.scales().iter().copied().fold(f32::INFINITY, f32::min),
                    wp.scales().iter().copied().fold(0.0, f32::max),
                ),
                input,
                output: l.output_spec().describe(),
                sqnr_db,
                max_abs_error: max_abs,
            });
            index += 1;
        }
        Ok(CalibrationReport { layers, rows })
    }
}

impl std::fmt::Display for CalibrationReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "calibration report ({} rows):", self.rows)?;
        for l in &self.layers {
            writeln!(
                f,
                "  {} [{} x {}]: SQNR {:.1} dB, max |error| {:.4}\n    weights {}\n    input   {}\n    output  {}",
                l.name,
                l.shape[0],
                l.shape[1],
                l.sqnr_db,
                l.max_abs_error,
                l.weights,
                l.input,
                l.output
            )?;
        }
        Ok(())
    }
}
