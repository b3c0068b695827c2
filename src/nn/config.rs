//! How a float model becomes a quantized one: [`QuantConfig`] (conventions, calibrators,
//! schemes, static or dynamic mode, capacity, bias mode) and [`QuantMode`].

use crate::nn::linear::BiasMode;
use crate::quant::calibrate::Calibrator;
use crate::quant::convention::Convention;
use crate::quant::fixed_point::FixedPointRounding;
use crate::quant::params::Scheme;
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
