//! The typed pipeline-cache key: every specialisation value of every kernel, so a pipeline
//! is built once per distinct variant and never per call.

use crate::error::Result;
use crate::gpu::shader::{ConstValue, assemble, build_pipeline};
use crate::quant::convention::{Convention, NanPolicy, RoundMode, ScaleOp};

/// One compiled kernel variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PipelineKey {
    /// Static quantize under a convention.
    Quantize {
        /// The convention (scale op, rounding, NaN policy).
        convention: Convention,
    },
    /// Dequantize of signed or unsigned storage.
    Dequantize {
        /// I8 storage (sign-extend) or U8.
        signed: bool,
    },
}

impl PipelineKey {
    /// The root source, entry point and constants of this variant.
    pub fn source(&self) -> (&'static str, &'static str, Vec<(&'static str, ConstValue)>) {
        match *self {
            PipelineKey::Quantize { convention } => (
                "quantize",
                "quantize",
                quantize_constants(convention, false),
            ),
            PipelineKey::Dequantize { signed } => (
                "quantize",
                "dequantize",
                quantize_constants(Convention::Onnx, signed),
            ),
        }
    }

    /// The assembled WGSL of this variant.
    ///
    /// # Errors
    /// [`crate::Error::Shader`] for an assembly error.
    pub fn wgsl(&self) -> Result<String> {
        let (root, _, constants) = self.source();
        assemble(root, &constants)
    }

    /// Whether this variant is a bit-exact path (checked by the IR walk in the tests).
    pub fn is_bit_exact(&self) -> bool {
        true
    }

    /// Whether the numerics contract accepts an fma contraction in this variant (only
    /// epilogues with a float bias after a float scale, rule 2).
    pub fn allows_contraction(&self) -> bool {
        false
    }

    /// Builds the pipeline.
    ///
    /// # Errors
    /// [`crate::Error::Shader`] or [`crate::Error::Gpu`].
    pub fn build(&self, device: &wgpu::Device) -> Result<wgpu::ComputePipeline> {
        let (_, entry, _) = self.source();
        build_pipeline(device, &format!("{self:?}"), &self.wgsl()?, entry)
    }

    /// Every variant, for validation tests.
    pub fn all() -> Vec<PipelineKey> {
        let mut keys: Vec<PipelineKey> = Convention::ALL
            .iter()
            .map(|&convention| PipelineKey::Quantize { convention })
            .collect();
        keys.extend([true, false].map(|signed| PipelineKey::Dequantize { signed }));
        keys
    }
}

fn quantize_constants(convention: Convention, signed: bool) -> Vec<(&'static str, ConstValue)> {
    vec![
        (
            "SCALE_OP",
            ConstValue::U32(match convention.scale_op() {
                ScaleOp::Divide => 0,
                ScaleOp::MultiplyByReciprocal => 1,
            }),
        ),
        (
            "ROUND_MODE",
            ConstValue::U32(match convention.round_mode() {
                RoundMode::HalfToEven => 0,
                RoundMode::HalfAwayFromZero => 1,
            }),
        ),
        (
            "NAN_TO_QMIN",
            ConstValue::Bool(convention.nan_policy() == NanPolicy::ToQmin),
        ),
        ("SIGNED_STORAGE", ConstValue::Bool(signed)),
    ]
}
