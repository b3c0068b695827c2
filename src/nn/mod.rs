//! The inference API: typed GPU tensors, quantized linear layers that check what they are
//! given, a float model on the CPU, and a quantized model calibrated from it. Each piece has
//! a CPU twin (`reference`) that the GPU equals bit for bit.
//!
//! ```text
//! FloatModel (CPU, f32) --calibrate--> QuantizedModel = [Quantize | DynamicQuantize, Linear]*
//! ```

pub mod bias;
pub mod config;
pub mod f32_model;
pub mod float;
pub mod host;
pub mod layer_config;
pub mod linear;
pub mod model;
pub mod report;
pub mod save;
pub mod spec;
pub mod stage;
pub mod tensor;

pub use f32_model::F32Model;
pub use float::{FloatLinear, FloatModel, argmax_rows};
pub use host::{HostData, HostTensor};
pub use linear::{
    BiasMode, InputSpec, Linear, LinearConfig, LinearParts, OutputSpec, quantize_bias,
    widen_weight_scales_for_bias,
};
pub use model::{CalibrationReport, LayerReport, QuantConfig, QuantMode, QuantizedModel, Stage};
pub use tensor::{ElementType, Quantization, Tensor, TensorSpec};
