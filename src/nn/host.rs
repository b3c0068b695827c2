//! Host (CPU) tensors: what the CPU twins of layers and models take and return. They carry
//! the same [`TensorSpec`] as GPU tensors, so the reference checks its inputs the same way.

use half::f16;

use crate::error::{Error, Result};
use crate::gpu::context::Context;
use crate::nn::tensor::{ElementType, Quantization, Tensor, TensorSpec};
use crate::quant::convention::Convention;
use crate::quant::params::QuantParams;
use crate::reference::dynamic::{DynamicGranularity, DynamicScheme, dynamic_quantize};

/// The values of a host tensor.
#[derive(Debug, Clone, PartialEq)]
pub enum HostData {
    /// f32 values.
    F32(Vec<f32>),
    /// f16 values.
    F16(Vec<f16>),
    /// i32 values.
    I32(Vec<i32>),
    /// Storage bytes, one per element, and for dynamic tensors one `(zero point, scale)` per
    /// row (empty for static ones).
    Quantized {
        /// One storage byte per element.
        bytes: Vec<u8>,
        /// Per-row params of a dynamically quantized tensor.
        row_params: Vec<(i32, f32)>,
    },
}

impl HostData {
    /// Empty data of the spec's element type.
    pub fn empty_like(spec: &TensorSpec) -> Self {
        match spec.element {
            ElementType::F32 => HostData::F32(Vec::new()),
            ElementType::F16 => HostData::F16(Vec::new()),
            ElementType::I32 => HostData::I32(Vec::new()),
            ElementType::Quantized(_) => HostData::Quantized {
                bytes: Vec::new(),
                row_params: Vec::new(),
            },
        }
    }

    /// The data as 32-bit patterns (f16 and bytes widened), for bit-for-bit comparison.
    pub fn bits(&self) -> Vec<u32> {
        match self {
            HostData::F32(v) => v.iter().map(|x| x.to_bits()).collect(),
            HostData::F16(v) => v.iter().map(|x| u32::from(x.to_bits())).collect(),
            HostData::I32(v) => v.iter().map(|&x| x as u32).collect(),
            HostData::Quantized { bytes, row_params } => bytes
                .iter()
                .map(|&b| u32::from(b))
                .chain(
                    row_params
                        .iter()
                        .flat_map(|&(z, s)| [z as u32, s.to_bits()]),
                )
                .collect(),
        }
    }
}

/// A matrix on the host with its spec.
#[derive(Debug, Clone, PartialEq)]
pub struct HostTensor {
    /// Columns, element type and quantization.
    pub spec: TensorSpec,
    /// Rows.
    pub rows: usize,
    /// The values, row-major.
    pub data: HostData,
}

impl HostTensor {
    /// f32 rows.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`].
    pub fn f32(data: Vec<f32>, rows: usize, cols: usize) -> Result<Self> {
        crate::quant::pack::check_len("host tensor", data.len(), rows, cols)?;
        Ok(HostTensor {
            spec: TensorSpec::f32(cols),
            rows,
            data: HostData::F32(data),
        })
    }

    /// The f32 values of an f32 tensor.
    ///
    /// # Errors
    /// [`Error::TensorMismatch`] for another element type.
    pub fn as_f32(&self) -> Result<&[f32]> {
        match &self.data {
            HostData::F32(v) => Ok(v),
            _ => Err(Error::TensorMismatch {
                what: "as_f32".into(),
                expected: "an f32 tensor".into(),
                found: self.spec.describe(),
            }),
        }
    }

    /// Statically quantizes an f32 tensor with per-tensor `params` under `convention` (the CPU
    /// twin of `shaders/quantize.wgsl`).
    ///
    /// # Errors
    /// [`Error::TensorMismatch`] unless f32; quantize errors.
    pub fn quantize(&self, convention: Convention, params: &QuantParams) -> Result<HostTensor> {
        let x = self.as_f32()?;
        let bytes = crate::reference::quantize::quantize(
            convention,
            x,
            &[self.rows, self.spec.cols],
            params,
        )?;
        Ok(HostTensor {
            spec: TensorSpec::quantized(self.spec.cols, params.clone()),
            rows: self.rows,
            data: HostData::Quantized {
                bytes,
                row_params: Vec::new(),
            },
        })
    }

    /// Dynamically quantizes an f32 tensor (the CPU twin of the dynamic quantizer), keeping
    /// one `(zero point, scale)` per row as the GPU does.
    ///
    /// # Errors
    /// [`Error::TensorMismatch`] unless f32; reference errors.
    pub fn dynamic_quantize(
        &self,
        scheme: DynamicScheme,
        granularity: DynamicGranularity,
    ) -> Result<HostTensor> {
        let x = self.as_f32()?;
        let q = dynamic_quantize(x, self.rows, self.spec.cols, scheme, granularity)?;
        let row_params = (0..self.rows)
            .map(|r| {
                let g = match granularity {
                    DynamicGranularity::PerRow => r,
                    DynamicGranularity::PerTensor => 0,
                };
                (q.zero_points[g], q.scales[g])
            })
            .collect();
        Ok(HostTensor {
            spec: TensorSpec::dynamic(self.spec.cols, scheme, granularity),
            rows: self.rows,
            data: HostData::Quantized {
                bytes: q.bytes,
                row_params,
            },
        })
    }

    /// Real values: f32 as is, f16 widened, quantized data dequantized with its params
    /// (`(q - zp) * s`), i32 as f32.
    pub fn to_f32(&self) -> Vec<f32> {
        match &self.data {
            HostData::F32(v) => v.clone(),
            HostData::F16(v) => v.iter().map(|x| x.to_f32()).collect(),
            HostData::I32(v) => v.iter().map(|&x| x as f32).collect(),
            HostData::Quantized { bytes, row_params } => {
                let cols = self.spec.cols.max(1);
                let qtype = match self.spec.element {
                    ElementType::Quantized(t) => t,
                    _ => return Vec::new(),
                };
                bytes
                    .iter()
                    .enumerate()
                    .map(|(i, &b)| {
                        let q = crate::reference::quantize::from_storage_byte(b, qtype);
                        let (zp, s) = match &self.spec.quantization {
                            Some(Quantization::Static(p)) => (p.zero_point(0), p.scale(0)),
                            _ => row_params.get(i / cols).copied().unwrap_or((0, 0.0)),
                        };
                        crate::quant::scalar::dequantize_value(q, s, zp)
                    })
                    .collect()
            }
        }
    }

    /// Blocking form of [`HostTensor::from_gpu`] (native only).
    ///
    /// # Errors
    /// As [`HostTensor::from_gpu`].
    #[cfg(not(target_arch = "wasm32"))]
    pub fn from_gpu_blocking(ctx: &Context, tensor: &Tensor) -> Result<HostTensor> {
        pollster::block_on(Self::from_gpu(ctx, tensor))
    }

    /// Reads a GPU tensor back into a host tensor with the same spec.
    ///
    /// # Errors
    /// GPU errors.
    pub async fn from_gpu(ctx: &Context, tensor: &Tensor) -> Result<HostTensor> {
        let spec = tensor.spec().clone();
        let data = match spec.element {
            ElementType::F32 => HostData::F32(tensor.read_f32(ctx).await?),
            ElementType::F16 => HostData::F16(tensor.read_f16(ctx).await?),
            ElementType::I32 => HostData::I32(tensor.read_i32(ctx).await?),
            ElementType::Quantized(_) => HostData::Quantized {
                bytes: tensor.read_quantized(ctx).await?,
                row_params: if tensor.row_params().is_some() {
                    tensor.read_row_params(ctx).await?
                } else {
                    Vec::new()
                },
            },
        };
        Ok(HostTensor {
            spec,
            rows: tensor.rows(),
            data,
        })
    }
}
