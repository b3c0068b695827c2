//! The quantized linear layer: built from f32 weights (or already-quantized ones), it knows
//! the tensor it takes and the tensor it produces, checks both on every call, and has a CPU
//! twin ([`Linear::reference`]) whose result the GPU equals bit for bit.

use crate::error::{Error, Result};
use crate::gpu::context::Context;
use crate::gpu::gemm::{ActivationInput, QLinear, QuantizedWeights};
use crate::nn::host::{HostData, HostTensor};
use crate::nn::tensor::{Quantization, Tensor, TensorSpec, describe_params};
use crate::quant::calibrate::Observer;
use crate::quant::convention::Convention;
use crate::quant::epilogue::{
    Activation, Dequant, DequantRequant, DequantScales, Epilogue, Requant,
};
use crate::quant::params::QuantParams;
use crate::quant::qtype::QType;
use crate::reference::gemm::{
    GemmInputs, GemmOutput, QMatrix, matmul_i8, matmul_i8_fused_alternative,
};

pub use crate::nn::bias::{
    DYNAMIC_WEIGHT_SCALE_FLOOR, floor_weight_scales, quantize_bias, widen_weight_scales_for_bias,
};
pub use crate::nn::layer_config::{BiasMode, InputSpec, LinearConfig, LinearParts, OutputSpec};

/// A quantized linear layer on the GPU: `y = act(x × Wᵀ + b)` with quantized `x` and `W`.
#[derive(Debug)]
pub struct Linear {
    parts: LinearParts,
    bias_i32: Option<Vec<i32>>,
    epilogue: Epilogue,
    input_spec: TensorSpec,
    output_spec: TensorSpec,
    gpu: QLinear,
}

fn invalid(what: &str, value: impl std::fmt::Debug, reason: &str) -> Error {
    Error::InvalidConfig {
        what: what.into(),
        value: format!("{value:?}"),
        reason: reason.into(),
    }
}

impl Linear {
    /// Quantizes f32 weights `W[n, k]` (row-major, one row per output channel) with the
    /// config's calibrator and scheme, and builds the layer.
    ///
    /// # Errors
    /// Shape and calibration errors ([`Error::ShapeMismatch`], [`Error::NonFiniteInput`]),
    /// and as [`Linear::from_parts`].
    pub fn new(
        ctx: &Context,
        weights: &[f32],
        n: usize,
        k: usize,
        bias: Option<&[f32]>,
        config: LinearConfig,
    ) -> Result<Self> {
        let parts = Self::quantize_parts(weights, n, k, bias, config)?;
        Self::from_parts(ctx, parts)
    }

    /// The CPU half of [`Linear::new`]: quantized weights and the resolved settings.
    ///
    /// # Errors
    /// As [`Linear::new`].
    pub fn quantize_parts(
        weights: &[f32],
        n: usize,
        k: usize,
        bias: Option<&[f32]>,
        config: LinearConfig,
    ) -> Result<LinearParts> {
        crate::quant::pack::check_len("weights", weights.len(), n, k)?;
        if n == 0 || k == 0 {
            return Err(Error::EmptyDimension {
                what: format!("weights [{n}, {k}]"),
            });
        }
        let mut observer = if config.per_channel {
            Observer::per_channel(config.weight_calibrator.clone(), 0)
        } else {
            Observer::per_tensor(config.weight_calibrator.clone())
        };
        observer.observe(weights, &[n, k])?;
        let mut weight_params = observer.params(config.convention, &config.weight_scheme)?;
        let i32_bias = match config.bias_mode {
            BiasMode::Auto | BiasMode::Int32 => matches!(config.input, InputSpec::Static(_)),
            BiasMode::Float => false,
        };
        if let (true, Some(b), InputSpec::Static(a)) = (i32_bias, bias, &config.input) {
            weight_params = widen_weight_scales_for_bias(&weight_params, a, b)?;
        }
        if matches!(config.input, InputSpec::Dynamic { .. }) {
            weight_params = floor_weight_scales(&weight_params, DYNAMIC_WEIGHT_SCALE_FLOOR)?;
        }
        let weight_bytes = crate::reference::quantize::quantize(
            config.convention,
            weights,
            &[n, k],
            &weight_params,
        )?;
        Ok(LinearParts {
            n,
            k,
            weight_bytes,
            weight_params,
            bias: bias.map(<[f32]>::to_vec),
            convention: config.convention,
            input: config.input,
            output: config.output,
            activation: config.activation,
            bias_mode: config.bias_mode,
            rounding: config.rounding,
        })
    }

    /// Builds the layer from quantized weights and settings (what [`Linear::new`] and the
    /// model loader call): checks every param against every other, resolves the bias and
    /// the epilogue, and uploads.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`], [`Error::LengthMismatch`] (bias), [`Error::Mismatch`]
    /// (per-axis activation params, an i32 bias with a dynamic input),
    /// [`Error::InvalidConfig`] (an activation on i32 outputs), [`Error::BiasOverflow`],
    /// [`Error::AccumulatorOverflow`], scale errors and GPU errors.
    pub fn from_parts(ctx: &Context, mut parts: LinearParts) -> Result<Self> {
        let (bias_i32, epilogue) = Self::resolve(&mut parts)?;
        let input_spec = parts.input.tensor_spec(parts.k);
        let output_spec = parts.output.tensor_spec(parts.n);
        let weights = QuantizedWeights::from_quantized(
            ctx,
            &parts.weight_bytes,
            parts.n,
            parts.k,
            parts.weight_params.clone(),
        )?;
        let input = match &parts.input {
            InputSpec::Static(p) => ActivationInput::Static {
                qtype: p.qtype(),
                zero_point: p.zero_point(0),
            },
            InputSpec::Dynamic { scheme, .. } => ActivationInput::PerRow {
                qtype: scheme.qtype(),
            },
        };
        let gpu = QLinear::new(ctx, weights, input, bias_i32.clone(), epilogue.clone())?;
        Ok(Linear {
            parts,
            bias_i32,
            epilogue,
            input_spec,
            output_spec,
            gpu,
        })
    }

    /// Checks the parts against each other and derives the i32 bias and the epilogue.
    fn resolve(parts: &mut LinearParts) -> Result<(Option<Vec<i32>>, Epilogue)> {
        let (n, k) = (parts.n, parts.k);
        crate::quant::pack::check_len("weights", parts.weight_bytes.len(), n, k)?;
        parts.weight_params.check_shape(&[n, k])?;
        if let Some(b) = &parts.bias {
            if b.len() != n {
                return Err(Error::LengthMismatch {
                    what: "bias (elements, one per output channel)".into(),
                    got: b.len(),
                    expected: n,
                });
            }
            crate::error::check_finite("bias", b)?;
        }
        if let InputSpec::Static(p) = &parts.input {
            if p.axis().is_some() {
                return Err(Error::Mismatch(format!(
                    "layer input params must be per tensor, got {}",
                    describe_params(p)
                )));
            }
        }
        if let OutputSpec::Quantized(p) = &parts.output {
            if p.axis().is_some() {
                return Err(Error::Mismatch(format!(
                    "layer output params must be per tensor, got {}",
                    describe_params(p)
                )));
            }
        }
        let dynamic = matches!(parts.input, InputSpec::Dynamic { .. });
        parts.bias_mode = match (parts.bias_mode, dynamic) {
            (BiasMode::Auto, false) => BiasMode::Int32,
            (BiasMode::Auto, true) => BiasMode::Float,
            (BiasMode::Int32, true) if parts.bias.is_some() => {
                return Err(Error::Mismatch(
                    "an i32 bias needs the activation scale at build time; a dynamic input has it only at run time (use BiasMode::Float)".into(),
                ));
            }
            (mode, _) => mode,
        };
        let w = &parts.weight_params;
        let act = parts.activation;
        let float_bias = match parts.bias_mode {
            BiasMode::Float => parts.bias.clone(),
            _ => None,
        };
        let bias_i32 = match (&parts.input, parts.bias_mode, &parts.bias) {
            (InputSpec::Static(a), BiasMode::Int32, Some(b)) => Some(quantize_bias(b, a, w)?),
            _ => None,
        };
        let dequant = |input: &InputSpec| -> Result<Dequant> {
            match input {
                InputSpec::Static(a) => Dequant::per_channel(a, w, float_bias.clone()),
                InputSpec::Dynamic { .. } => Ok(Dequant {
                    scales: DequantScales::PerRowPerChannel {
                        row_scales: Vec::new(),
                        channel_scales: w.scales().to_vec(),
                    },
                    bias: float_bias.clone(),
                    activation: Activation::None,
                }),
            }
        };
        let epilogue = match &parts.output {
            OutputSpec::I32 => {
                if act != Activation::None {
                    return Err(invalid(
                        "activation",
                        act,
                        "i32 outputs take no activation (the accumulator is returned as is)",
                    ));
                }
                if float_bias.is_some() {
                    return Err(Error::Mismatch(
                        "i32 outputs cannot add an f32 bias; use BiasMode::Int32 with a static input".into(),
                    ));
                }
                Epilogue::I32
            }
            OutputSpec::F32 => Epilogue::DequantF32(dequant(&parts.input)?.with_activation(act)),
            OutputSpec::F16 => Epilogue::DequantF16(dequant(&parts.input)?.with_activation(act)),
            OutputSpec::Quantized(out) => match (&parts.input, parts.bias_mode) {
                (InputSpec::Static(a), BiasMode::Int32 | BiasMode::Auto) => {
                    match parts.convention {
                        Convention::TfLite => {
                            Epilogue::Requant(Requant::fixed_point(a, w, out, act, parts.rounding)?)
                        }
                        c => Epilogue::Requant(Requant::float(c, a, w, out, act)?),
                    }
                }
                (input, _) => Epilogue::DequantRequant(DequantRequant::new(
                    parts.convention,
                    dequant(input)?,
                    out,
                    act,
                )?),
            },
        };
        Ok((bias_i32, epilogue))
    }

    /// Records `output = layer(input)` into the caller's encoder, after checking both tensors
    /// against the layer: element type, columns and quantization must be exactly what the
    /// layer was built for, and the output must have room for the input's rows.
    ///
    /// # Errors
    /// [`Error::TensorMismatch`] naming both sides; [`Error::CapacityExceeded`]; GPU errors.
    pub fn encode(
        &self,
        ctx: &Context,
        encoder: &mut wgpu::CommandEncoder,
        input: &Tensor,
        output: &mut Tensor,
    ) -> Result<()> {
        input.spec().check("Linear input", &self.input_spec)?;
        output.spec().check("Linear output", &self.output_spec)?;
        let rows = input.rows();
        output.check_capacity("Linear output", rows)?;
        self.gpu.encode(
            ctx,
            encoder,
            rows,
            input.buffer(),
            input.row_params(),
            output.buffer(),
        )?;
        output.set_rows(rows)
    }

    /// Runs the layer on `input` and returns a new output tensor once the GPU has finished,
    /// without blocking.
    ///
    /// # Errors
    /// As [`Linear::encode`].
    pub async fn run(&self, ctx: &Context, input: &Tensor) -> Result<Tensor> {
        let mut output = Tensor::new(ctx, self.output_spec.clone(), input.rows())?;
        ctx.submit("Linear::run", |encoder| {
            self.encode(ctx, encoder, input, &mut output)
        })?;
        ctx.wait().await?;
        Ok(output)
    }

    /// Blocking form of [`Linear::run`] (native only).
    ///
    /// # Errors
    /// As [`Linear::run`].
    #[cfg(not(target_arch = "wasm32"))]
    pub fn run_blocking(&self, ctx: &Context, input: &Tensor) -> Result<Tensor> {
        pollster::block_on(self.run(ctx, input))
    }

    /// The CPU twin: the result the GPU must equal bit for bit. With an f32 bias after the
    /// f32 scale (`BiasMode::Float`, every dynamic layer) a driver may fuse the two, and the
    /// GPU's element equals this or [`Linear::reference_fused_alternative`] (DESIGN.md rule 2).
    ///
    /// # Errors
    /// [`Error::TensorMismatch`] when `input` is not what the layer takes; reference errors.
    pub fn reference(&self, input: &HostTensor) -> Result<HostTensor> {
        self.run_reference(input, false)?
            .ok_or_else(|| Error::Mismatch("reference produced no output".into()))
    }

    /// The result with every f32 `x * s + b` fused into one rounding, or `None` when the
    /// layer has no f32 bias (its result is then unique).
    ///
    /// # Errors
    /// As [`Linear::reference`].
    pub fn reference_fused_alternative(&self, input: &HostTensor) -> Result<Option<HostTensor>> {
        self.run_reference(input, true)
    }

    fn run_reference(&self, input: &HostTensor, fused: bool) -> Result<Option<HostTensor>> {
        input.spec.check("Linear input", &self.input_spec)?;
        let HostData::Quantized { bytes, row_params } = &input.data else {
            return Err(Error::TensorMismatch {
                what: "Linear input".into(),
                expected: self.input_spec.describe(),
                found: input.spec.describe(),
            });
        };
        let rows = input.rows;
        let (zero_points, epilogue) = match &self.parts.input {
            InputSpec::Static(p) => (vec![p.zero_point(0)], self.epilogue.clone()),
            InputSpec::Dynamic { .. } => {
                if row_params.len() != rows {
                    return Err(Error::LengthMismatch {
                        what: "row params (one per row)".into(),
                        got: row_params.len(),
                        expected: rows,
                    });
                }
                let scales: Vec<f32> = row_params.iter().map(|p| p.1).collect();
                let zps: Vec<i32> = row_params.iter().map(|p| p.0).collect();
                (zps, with_row_scales(&self.epilogue, scales))
            }
        };
        let inputs = GemmInputs {
            a: QMatrix {
                data: bytes,
                qtype: self.input_spec_qtype(),
                rows,
                cols: self.parts.k,
            },
            a_zero_points: if rows == 0 { &[] } else { &zero_points },
            w: QMatrix {
                data: &self.parts.weight_bytes,
                qtype: self.parts.weight_params.qtype(),
                rows: self.parts.n,
                cols: self.parts.k,
            },
            w_zero_points: self.parts.weight_params.zero_points(),
            bias: self.bias_i32.as_deref().unwrap_or(&[]),
        };
        let output = if rows == 0 {
            if fused {
                return Ok(None);
            }
            None
        } else if fused {
            match matmul_i8_fused_alternative(&inputs, &epilogue)? {
                None => return Ok(None),
                Some(out) => Some(out),
            }
        } else {
            Some(matmul_i8(&inputs, &epilogue)?)
        };
        let data = match output {
            None => HostData::empty_like(&self.output_spec),
            Some(GemmOutput::I32(v)) => HostData::I32(v),
            Some(GemmOutput::F32(v)) => HostData::F32(v),
            Some(GemmOutput::F16(v)) => HostData::F16(v),
            Some(GemmOutput::Quantized { bytes, .. }) => HostData::Quantized {
                bytes,
                row_params: Vec::new(),
            },
        };
        Ok(Some(HostTensor {
            spec: self.output_spec.clone(),
            rows,
            data,
        }))
    }

    fn input_spec_qtype(&self) -> QType {
        match &self.parts.input {
            InputSpec::Static(p) => p.qtype(),
            InputSpec::Dynamic { scheme, .. } => scheme.qtype(),
        }
    }

    /// Output channels.
    pub fn n(&self) -> usize {
        self.parts.n
    }
    /// Reduction depth.
    pub fn k(&self) -> usize {
        self.parts.k
    }
    /// Everything the layer was built from (weights, params, bias, settings).
    pub fn parts(&self) -> &LinearParts {
        &self.parts
    }
    /// The quantized weights, `n × k` storage bytes (row-major).
    pub fn weight_bytes(&self) -> &[u8] {
        &self.parts.weight_bytes
    }
    /// The weights' params.
    pub fn weight_params(&self) -> &QuantParams {
        &self.parts.weight_params
    }
    /// The f32 bias the layer was given.
    pub fn bias(&self) -> Option<&[f32]> {
        self.parts.bias.as_deref()
    }
    /// The bias quantized to i32 in the accumulator scale, when it is added as i32.
    pub fn bias_i32(&self) -> Option<&[i32]> {
        self.bias_i32.as_deref()
    }
    /// The input the layer takes.
    pub fn input(&self) -> &InputSpec {
        &self.parts.input
    }
    /// The output the layer writes.
    pub fn output(&self) -> &OutputSpec {
        &self.parts.output
    }
    /// The spec of the tensor the layer takes.
    pub fn input_spec(&self) -> &TensorSpec {
        &self.input_spec
    }
    /// The spec of the tensor the layer writes.
    pub fn output_spec(&self) -> &TensorSpec {
        &self.output_spec
    }
    /// The epilogue it applies (all per-channel values folded).
    pub fn epilogue(&self) -> &Epilogue {
        &self.epilogue
    }
    /// The low-level layer underneath.
    pub fn qlinear(&self) -> &QLinear {
        &self.gpu
    }
    /// The kernels the layer runs (GEMM and GEMV: tile, loads, dot-product formulation) and
    /// where the choice came from: the context's heuristic, a fixed choice, or the autotune
    /// ([`crate::gpu::tune::autotune`] before building takes the measured winners).
    pub fn kernel(&self) -> crate::gpu::tune::LayerKernels {
        self.gpu.kernel()
    }
    /// Measures the kernel candidates of this layer's shape on `ctx` (unless the context has
    /// measured that shape class already), caches the winners in the context and switches the
    /// layer to them ([`QLinear::tune`]). Every candidate gives the same bits, so the result
    /// is unchanged; only the speed is. Awaited, never blocking.
    ///
    /// # Errors
    /// GPU errors of the timed runs.
    pub async fn tune(&mut self, ctx: &Context) -> Result<crate::gpu::tune::LayerKernels> {
        self.gpu.tune(ctx).await
    }
    /// Blocking form of [`Linear::tune`] (native only).
    ///
    /// # Errors
    /// As [`Linear::tune`].
    #[cfg(not(target_arch = "wasm32"))]
    pub fn tune_blocking(&mut self, ctx: &Context) -> Result<crate::gpu::tune::LayerKernels> {
        pollster::block_on(self.tune(ctx))
    }
    /// The activation.
    pub fn activation(&self) -> Activation {
        self.parts.activation
    }
}

/// The epilogue with the run's per-row activation scales filled in (dynamic inputs).
fn with_row_scales(epilogue: &Epilogue, scales: Vec<f32>) -> Epilogue {
    let fill = |d: &Dequant| -> Dequant {
        let mut d = d.clone();
        if let DequantScales::PerRowPerChannel { row_scales, .. } = &mut d.scales {
            *row_scales = scales.clone();
        }
        d
    };
    match epilogue {
        Epilogue::DequantF32(d) => Epilogue::DequantF32(fill(d)),
        Epilogue::DequantF16(d) => Epilogue::DequantF16(fill(d)),
        Epilogue::DequantRequant(r) => {
            let mut r = r.clone();
            r.dequant = fill(&r.dequant);
            Epilogue::DequantRequant(r)
        }
        other => other.clone(),
    }
}

impl Quantization {
    /// The static params, if static.
    pub fn static_params(&self) -> Option<&QuantParams> {
        match self {
            Quantization::Static(p) => Some(p),
            Quantization::Dynamic { .. } => None,
        }
    }
}
