//! What a [`crate::nn::Linear`] is built from: the input it takes ([`InputSpec`]), the output it
//! writes ([`OutputSpec`]), how its bias is applied ([`BiasMode`]), the whole recipe
//! ([`LinearConfig`]) and the quantized parts it ends up with ([`LinearParts`]).

use crate::nn::tensor::TensorSpec;
use crate::quant::calibrate::Calibrator;
use crate::quant::convention::Convention;
use crate::quant::epilogue::Activation;
use crate::quant::fixed_point::FixedPointRounding;
use crate::quant::params::{QuantParams, Scheme};
use crate::quant::qtype::QType;
use crate::reference::dynamic::{DynamicGranularity, DynamicScheme};

/// What a layer's input is.
#[derive(Debug, Clone, PartialEq)]
pub enum InputSpec {
    /// Statically quantized with these per-tensor params (from calibration).
    Static(QuantParams),
    /// Quantized at run time by a dynamic quantizer.
    Dynamic {
        /// The dynamic scheme.
        scheme: DynamicScheme,
        /// Per row or per tensor.
        granularity: DynamicGranularity,
    },
}

impl InputSpec {
    /// The spec of the input tensor for a layer of depth `k`.
    pub fn tensor_spec(&self, k: usize) -> TensorSpec {
        match self {
            InputSpec::Static(p) => TensorSpec::quantized(k, p.clone()),
            InputSpec::Dynamic {
                scheme,
                granularity,
            } => TensorSpec::dynamic(k, *scheme, *granularity),
        }
    }
}

/// What a layer writes.
#[derive(Debug, Clone, PartialEq)]
pub enum OutputSpec {
    /// f32 values.
    F32,
    /// f16 values (one rounding from the f32 result).
    F16,
    /// The i32 accumulators (plus the i32 bias).
    I32,
    /// Requantized with these per-tensor params, packed, ready for the next layer.
    Quantized(QuantParams),
}

impl OutputSpec {
    /// The spec of the output tensor for `n` channels.
    pub fn tensor_spec(&self, n: usize) -> TensorSpec {
        use crate::nn::tensor::ElementType;
        let element = match self {
            OutputSpec::F32 => ElementType::F32,
            OutputSpec::F16 => ElementType::F16,
            OutputSpec::I32 => ElementType::I32,
            OutputSpec::Quantized(p) => return TensorSpec::quantized(n, p.clone()),
        };
        TensorSpec {
            cols: n,
            element,
            quantization: None,
        }
    }
}

/// Where an f32 bias enters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BiasMode {
    /// [`BiasMode::Int32`] for static inputs, [`BiasMode::Float`] for dynamic ones (whose
    /// accumulator scale is only known at run time).
    #[default]
    Auto,
    /// Quantized once to i32 in the accumulator scale, `rne(b / f32(s_a * s_w[c]))`, and
    /// added to the accumulator (onnxruntime, TFLite).
    Int32,
    /// Added in f32 after dequantization and before any requantization (PyTorch fbgemm).
    /// Its result is `round(round(x * s) + b)` or the fused `fma(x, s, b)` (DESIGN.md rule 2).
    Float,
}

/// How a [`Linear`](crate::nn::Linear) is built: the convention, how weights are quantized, the input and
/// output, the activation and where the bias goes. Defaults: ONNX convention, per-channel
/// symmetric int8 MinMax weights, no activation, [`BiasMode::Auto`].
#[derive(Debug, Clone)]
pub struct LinearConfig {
    /// The numerics convention (quantize rounding, requantization, params derivation).
    pub convention: Convention,
    /// The calibrator for the weights.
    pub weight_calibrator: Calibrator,
    /// The weights' scheme (type, symmetry).
    pub weight_scheme: Scheme,
    /// One scale per output channel (else one for the tensor).
    pub per_channel: bool,
    /// The input.
    pub input: InputSpec,
    /// The output.
    pub output: OutputSpec,
    /// The activation applied to the output (every output kind but i32).
    pub activation: Activation,
    /// Where the bias enters.
    pub bias_mode: BiasMode,
    /// Fixed-point rounding for TfLite requantization.
    pub rounding: FixedPointRounding,
}

impl LinearConfig {
    /// The defaults with this input and output.
    pub fn new(input: InputSpec, output: OutputSpec) -> Self {
        LinearConfig {
            convention: Convention::Onnx,
            weight_calibrator: Calibrator::default(),
            weight_scheme: Scheme::symmetric(QType::I8),
            per_channel: true,
            input,
            output,
            activation: Activation::None,
            bias_mode: BiasMode::Auto,
            rounding: FixedPointRounding::Single,
        }
    }
    /// With a convention.
    pub fn convention(mut self, convention: Convention) -> Self {
        self.convention = convention;
        self
    }
    /// With an activation.
    pub fn activation(mut self, activation: Activation) -> Self {
        self.activation = activation;
        self
    }
    /// With a weight calibrator and scheme.
    pub fn weights(mut self, calibrator: impl Into<Calibrator>, scheme: Scheme) -> Self {
        self.weight_calibrator = calibrator.into();
        self.weight_scheme = scheme;
        self
    }
    /// Per-tensor weight params instead of per channel.
    pub fn per_tensor_weights(mut self) -> Self {
        self.per_channel = false;
        self
    }
    /// With a bias mode.
    pub fn bias_mode(mut self, mode: BiasMode) -> Self {
        self.bias_mode = mode;
        self
    }
    /// With a fixed-point rounding (TfLite).
    pub fn rounding(mut self, rounding: FixedPointRounding) -> Self {
        self.rounding = rounding;
        self
    }
}

/// Everything that defines a built layer, as saved and loaded.
#[derive(Debug, Clone)]
pub struct LinearParts {
    /// Output channels.
    pub n: usize,
    /// Reduction depth.
    pub k: usize,
    /// Quantized weights, `n × k` storage bytes.
    pub weight_bytes: Vec<u8>,
    /// Their params (per tensor or per axis 0).
    pub weight_params: QuantParams,
    /// The f32 bias, if any.
    pub bias: Option<Vec<f32>>,
    /// The convention.
    pub convention: Convention,
    /// Input.
    pub input: InputSpec,
    /// Output.
    pub output: OutputSpec,
    /// Activation.
    pub activation: Activation,
    /// Bias mode (resolved: never `Auto` once built).
    pub bias_mode: BiasMode,
    /// Fixed-point rounding (TfLite).
    pub rounding: FixedPointRounding,
}
