//! The scalar CPU reference: the normative definition of every result the GPU produces.
//!
//! One file per kernel family, each the twin of a shader with the same name and the same
//! order of operations. Tests compare GPU output with these functions using `==`.

pub mod bounds;
pub mod dot;
pub mod dynamic;
pub mod f16;
pub mod gemm;
pub mod matmul_f32;
pub mod quantize;
pub mod wide;
