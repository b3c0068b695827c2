//! The wgpu host layer: a context over the caller's device and queue (or a headless one),
//! shader assembly, a typed pipeline cache and the GPU ops. Ops record into the caller's
//! `wgpu::CommandEncoder`; blocking helpers sit on top for headless use.

pub mod buffers;
pub mod capabilities;
pub mod context;
pub mod divide;
pub mod dot4;
pub mod dynamic;
pub mod gemm;
pub mod matmul_f32;
pub mod peak;
pub mod pipelines;
pub mod quantize;
pub mod shader;
pub mod timer;
pub mod tune;

pub use context::Context;
