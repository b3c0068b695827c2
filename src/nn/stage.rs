//! One step of a quantized model ([`Stage`]): a static quantizer, a dynamic quantizer or a
//! linear layer, each with the spec of the tensor it takes and writes and its CPU twin.

use crate::error::{Error, Result};
use crate::gpu::context::Context;
use crate::gpu::dynamic::DynamicQuantizer;
use crate::gpu::quantize::Quantizer;
use crate::nn::host::HostTensor;
use crate::nn::linear::Linear;
use crate::nn::tensor::{Tensor, TensorSpec, describe_params};
use crate::quant::convention::Convention;
use crate::quant::params::QuantParams;
use crate::reference::dynamic::{DynamicGranularity, DynamicScheme};

/// One step of a quantized model: a static quantizer, a dynamic quantizer or a linear layer.
/// Built only through its constructors, so what a stage says it does is what its GPU kernel
/// was built to do.
#[derive(Debug)]
pub struct Stage(pub(crate) StageKind);

#[derive(Debug)]
pub(crate) enum StageKind {
    Quantize {
        quantizer: Quantizer,
        params: QuantParams,
        convention: Convention,
    },
    DynamicQuantize {
        quantizer: DynamicQuantizer,
    },
    Linear(Box<Linear>),
}

impl Stage {
    /// f32 → statically quantized with per-tensor `params` under `convention`, for up to
    /// `max_rows` rows of `cols`.
    ///
    /// # Errors
    /// [`Error::Mismatch`] for per-axis params; as [`Quantizer::new`].
    pub fn quantize(
        ctx: &Context,
        convention: Convention,
        params: QuantParams,
        max_rows: usize,
        cols: usize,
    ) -> Result<Self> {
        if params.axis().is_some() {
            return Err(Error::Mismatch(format!(
                "a model's quantize stage takes per-tensor params, got {}",
                describe_params(&params)
            )));
        }
        let quantizer = Quantizer::new(ctx, convention, &params, max_rows, cols)?;
        Ok(Stage(StageKind::Quantize {
            quantizer,
            params,
            convention,
        }))
    }

    /// f32 → dynamically quantized, for up to `max_rows` rows of `cols`.
    ///
    /// # Errors
    /// As [`DynamicQuantizer::new`].
    pub fn dynamic_quantize(
        ctx: &Context,
        scheme: DynamicScheme,
        granularity: DynamicGranularity,
        max_rows: usize,
        cols: usize,
    ) -> Result<Self> {
        Ok(Stage(StageKind::DynamicQuantize {
            quantizer: DynamicQuantizer::new(ctx, scheme, granularity, max_rows, cols)?,
        }))
    }

    /// A linear layer.
    pub fn linear(layer: Linear) -> Self {
        Stage(StageKind::Linear(Box::new(layer)))
    }

    /// The layer, for a linear stage.
    pub fn as_linear(&self) -> Option<&Linear> {
        match &self.0 {
            StageKind::Linear(l) => Some(l),
            _ => None,
        }
    }

    /// `"quantize"`, `"dynamic"` or `"linear"`.
    pub fn kind(&self) -> &'static str {
        match &self.0 {
            StageKind::Quantize { .. } => "quantize",
            StageKind::DynamicQuantize { .. } => "dynamic",
            StageKind::Linear(_) => "linear",
        }
    }

    /// The most rows a quantizer stage was built for (`None` for a layer: any).
    pub fn max_rows(&self) -> Option<usize> {
        match &self.0 {
            StageKind::Quantize { quantizer, .. } => Some(quantizer.max_rows()),
            StageKind::DynamicQuantize { quantizer } => Some(quantizer.max_rows()),
            StageKind::Linear(_) => None,
        }
    }

    /// The convention a quantize or linear stage follows (`None` for a dynamic quantizer,
    /// whose scheme fixes its arithmetic).
    pub fn convention(&self) -> Option<Convention> {
        match &self.0 {
            StageKind::Quantize { convention, .. } => Some(*convention),
            StageKind::DynamicQuantize { .. } => None,
            StageKind::Linear(l) => Some(l.parts().convention),
        }
    }

    /// The spec of the tensor this stage takes.
    pub fn input_spec(&self) -> TensorSpec {
        match &self.0 {
            StageKind::Quantize { quantizer, .. } => TensorSpec::f32(quantizer.cols()),
            StageKind::DynamicQuantize { quantizer } => TensorSpec::f32(quantizer.cols()),
            StageKind::Linear(l) => l.input_spec().clone(),
        }
    }
    /// The spec of the tensor this stage writes.
    pub fn output_spec(&self) -> TensorSpec {
        match &self.0 {
            StageKind::Quantize {
                quantizer, params, ..
            } => TensorSpec::quantized(quantizer.cols(), params.clone()),
            StageKind::DynamicQuantize { quantizer } => TensorSpec::dynamic(
                quantizer.cols(),
                quantizer.scheme(),
                quantizer.granularity(),
            ),
            StageKind::Linear(l) => l.output_spec().clone(),
        }
    }

    pub(crate) fn encode(
        &self,
        ctx: &Context,
        encoder: &mut wgpu::CommandEncoder,
        input: &Tensor,
        output: &mut Tensor,
    ) -> Result<()> {
        if let StageKind::Linear(l) = &self.0 {
            return l.encode(ctx, encoder, input, output);
        }
        input.spec().check("stage input", &self.input_spec())?;
        output.spec().check("stage output", &self.output_spec())?;
        let rows = input.rows();
        output.check_capacity("stage output", rows)?;
        match &self.0 {
            StageKind::Quantize { quantizer, .. } => {
                quantizer.encode(ctx, encoder, rows, input.buffer(), output.buffer())?;
            }
            StageKind::DynamicQuantize { quantizer } => {
                let row_params = output.row_params().ok_or_else(|| {
                    Error::Mismatch("dynamic output tensor without row params".into())
                })?;
                quantizer.encode(
                    ctx,
                    encoder,
                    rows,
                    input.buffer(),
                    output.buffer(),
                    row_params,
                )?;
            }
            StageKind::Linear(_) => {}
        }
        output.set_rows(rows)
    }

    pub(crate) fn reference(&self, input: &HostTensor) -> Result<HostTensor> {
        match &self.0 {
            StageKind::Quantize {
                params, convention, ..
            } => {
                input.spec.check("stage input", &self.input_spec())?;
                input.quantize(*convention, params)
            }
            StageKind::DynamicQuantize { quantizer } => {
                input.spec.check("stage input", &self.input_spec())?;
                input.dynamic_quantize(quantizer.scheme(), quantizer.granularity())
            }
            StageKind::Linear(l) => l.reference(input),
        }
    }
}
