//! The quantized model: a sequence of stages (quantize, dynamic quantize, linear) built once
//! from a float model and calibration data, run many times with f32 in and f32 out.
//!
//! Every stage's input spec equals the previous stage's output spec by construction, and the
//! model checks the chain again when it is built, so a zero point that differs between two
//! layers is an error at build time, never a wrong number.

use crate::error::{Error, Result};
use crate::gpu::context::Context;
use crate::nn::float::FloatModel;
use crate::nn::host::HostTensor;
use crate::nn::linear::{InputSpec, Linear, LinearConfig, OutputSpec};
use crate::nn::tensor::{Quantization, Tensor, TensorSpec};
use crate::quant::calibrate::{Calibrator, Observer};
use crate::quant::convention::Convention;

pub use crate::nn::config::{QuantConfig, QuantMode};
pub use crate::nn::report::{CalibrationReport, LayerReport};
pub use crate::nn::stage::Stage;
pub(crate) use crate::nn::stage::StageKind;

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
