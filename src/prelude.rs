//! The names most programs need: `use wgpu_quant::prelude::*;`.

pub use crate::error::{Error, Result};
pub use crate::gpu::Context;
pub use crate::io::{SafeTensorsFile, SafeTensorsWriter};
pub use crate::nn::{
    BiasMode, F32Model, FloatLinear, FloatModel, HostTensor, InputSpec, Linear, LinearConfig,
    OutputSpec, QuantConfig, QuantMode, QuantizedModel, Tensor, TensorSpec, argmax_rows,
};
pub use crate::quant::calibrate::{
    Calibrator, Entropy, HistogramL2, MinMax, MovingAverageMinMax, Mse, Observer, Percentile,
};
pub use crate::quant::convention::Convention;
pub use crate::quant::epilogue::Activation;
pub use crate::quant::fixed_point::FixedPointRounding;
pub use crate::quant::params::{QuantParams, Scheme};
pub use crate::quant::qtype::{QRange, QType};
pub use crate::reference::dynamic::{DynamicGranularity, DynamicScheme};
/// The wgpu this crate is built with (use it rather than a second copy).
pub use crate::wgpu;
