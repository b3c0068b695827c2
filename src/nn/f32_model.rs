//! The FP32 baseline of a float model on the GPU: the same layers in f32 (the crate's FP32
//! GEMM, held to its written error bound), to compare accuracy and speed with INT8 on the
//! same adapter.

use crate::error::Result;
use crate::gpu::context::Context;
use crate::gpu::matmul_f32::F32Linear;
use crate::nn::float::FloatModel;
use crate::nn::tensor::{Tensor, TensorSpec};

/// A float model on the GPU in f32, f32 in and f32 out.
#[derive(Debug)]
pub struct F32Model {
    layers: Vec<F32Linear>,
    intermediates: Vec<Tensor>,
    input: Tensor,
    output: Tensor,
}

impl F32Model {
    /// Uploads every layer of `float` with its bias and activation, and allocates the
    /// intermediate tensors once for `max_batch` rows.
    ///
    /// # Errors
    /// GPU and allocation errors.
    pub fn new(ctx: &Context, float: &FloatModel, max_batch: usize) -> Result<Self> {
        let layers = float
            .layers()
            .iter()
            .map(|l| {
                F32Linear::new(ctx, &l.weight, l.n, l.k, l.bias.as_deref())?
                    .with_activation(l.activation)
            })
            .collect::<Result<Vec<_>>>()?;
        let intermediates = float.layers()[..float.layers().len() - 1]
            .iter()
            .map(|l| Tensor::new(ctx, TensorSpec::f32(l.n), max_batch))
            .collect::<Result<Vec<_>>>()?;
        Ok(F32Model {
            layers,
            intermediates,
            input: Tensor::new(ctx, TensorSpec::f32(float.input_features()), max_batch)?,
            output: Tensor::new(ctx, TensorSpec::f32(float.output_features()), max_batch)?,
        })
    }

    /// Records the model from `input` to `output` (f32 tensors) into the caller's encoder.
    ///
    /// # Errors
    /// [`Error::TensorMismatch`](crate::Error::TensorMismatch), [`Error::CapacityExceeded`](crate::Error::CapacityExceeded), GPU errors.
    pub fn encode(
        &mut self,
        ctx: &Context,
        encoder: &mut wgpu::CommandEncoder,
        input: &Tensor,
        output: &mut Tensor,
    ) -> Result<()> {
        encode_layers(
            &self.layers,
            &mut self.intermediates,
            ctx,
            encoder,
            input,
            output,
        )
    }

    /// Runs `rows` rows and returns the output.
    ///
    /// # Errors
    /// As [`F32Model::encode`], plus [`Error::ShapeMismatch`](crate::Error::ShapeMismatch) for `x`.
    pub async fn run(&mut self, ctx: &Context, x: &[f32], rows: usize) -> Result<Vec<f32>> {
        self.input.write_f32(ctx, x, rows)?;
        let (stages, intermediates) = (&self.layers, &mut self.intermediates);
        let (input, output) = (&self.input, &mut self.output);
        ctx.submit("F32Model::run", |encoder| {
            encode_layers(stages, intermediates, ctx, encoder, input, output)
        })?;
        self.output.read_f32(ctx).await
    }

    /// Blocking form of [`F32Model::run`] (native only).
    ///
    /// # Errors
    /// As [`F32Model::run`].
    #[cfg(not(target_arch = "wasm32"))]
    pub fn run_blocking(&mut self, ctx: &Context, x: &[f32], rows: usize) -> Result<Vec<f32>> {
        pollster::block_on(self.run(ctx, x, rows))
    }
}

fn encode_layers(
    layers: &[F32Linear],
    intermediates: &mut [Tensor],
    ctx: &Context,
    encoder: &mut wgpu::CommandEncoder,
    input: &Tensor,
    output: &mut Tensor,
) -> Result<()> {
    crate::nn::tensor::chain_steps(
        layers,
        intermediates,
        input,
        output,
        |layer, source, target| {
            source
                .spec()
                .check("F32Model layer input", &TensorSpec::f32(layer.k()))?;
            target
                .spec()
                .check("F32Model layer output", &TensorSpec::f32(layer.n()))?;
            let rows = source.rows();
            target.check_capacity("F32Model layer output", rows)?;
            layer.encode(ctx, encoder, rows, source.buffer(), target.buffer())?;
            target.set_rows(rows)
        },
    )
}
