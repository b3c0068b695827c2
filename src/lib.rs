//! # wgpu-quant
//!
//! INT8-quantized neural-network arithmetic on any GPU that wgpu reaches, with numerics
//! specified to the bit.
//!
//! Layers, top to bottom (data flows down, never back up):
//! 1. [`quant`]: the numerics core (CPU, no wgpu): quantization parameters for each
//!    [`Convention`], calibration observers, fixed-point multipliers, the exact division
//!    routine and packing.
//! 2. [`reference`](mod@reference): the scalar CPU twin of every shader, the normative definition of
//!    every GPU result.
//! 3. `shaders/`: WGSL compute kernels.
//! 4. [`gpu`]: the wgpu host layer, which encodes into the caller's command encoder or runs
//!    headless.
//!
//! The numerics contract: integer results are exact, and every float result is exact or
//! rounded by a single IEEE operation, so GPU output equals the CPU reference bit for bit on
//! every conforming adapter. See the README for the conventions and the contract in brief.

// On wasm32 wgpu's handles are neither Send nor Sync (the browser runs the crate on one
// thread), so the Arcs that make `Context` and the prepared layers Send + Sync on native
// hold non-Send values there; that is intended, not a data race.
#![cfg_attr(target_arch = "wasm32", allow(clippy::arc_with_non_send_sync))]

pub mod error;
pub mod gpu;
pub mod io;
pub mod nn;
pub mod prelude;
pub mod quant;
pub mod reference;
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;

pub use error::{Error, Result};
/// The `half` crate (f16 tensors).
pub use half;
/// The wgpu this crate is built against: use it (`wgpu_quant::wgpu`) to avoid pulling a
/// second, incompatible version.
pub use wgpu;

/// Compiles the README's examples as doc tests, so the entry point stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
pub use quant::convention::Convention;
pub use quant::epilogue::{
    Activation, Dequant, DequantRequant, DequantScales, Epilogue, Requant, RequantScaling,
};
pub use quant::fixed_point::{FixedPointRounding, QuantizedMultiplier};
pub use quant::params::{QuantParams, Scheme};
pub use quant::qtype::{QRange, QType};
