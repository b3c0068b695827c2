//! The one integration-test binary: a module per area (faster to build than one binary each).

mod common;

mod bad_inputs;
mod calibrate;
mod divide;
mod dynamic;
mod examples;
mod f16;
mod faults;
mod fixed_point;
mod gemm_reference;
mod gpu_dynamic;
mod gpu_gemm;
mod gpu_matmul_f32;
mod gpu_quantize;
mod gpu_smoke;
mod io;
mod matmul_f32;
mod nn;
mod onnx_conformance;
#[allow(
    clippy::type_complexity,
    reason = "generated golden tables: one tuple per case"
)]
mod ort_ops_golden;
mod pack;
mod params;
mod scalar;
mod shaders;
mod stress;
