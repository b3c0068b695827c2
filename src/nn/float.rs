//! The float model on the CPU: the network as trained, which calibration runs on sample
//! inputs and which accuracy is measured against.

use crate::error::{Error, Result};
use crate::quant::epilogue::Activation;

/// One f32 linear layer `y = act(x × Wᵀ + b)`.
#[derive(Debug, Clone, PartialEq)]
pub struct FloatLinear {
    /// Name (the safetensors prefix, e.g. `fc1`).
    pub name: String,
    /// `W[n, k]`, row-major, one row per output channel.
    pub weight: Vec<f32>,
    /// Output channels.
    pub n: usize,
    /// Input features.
    pub k: usize,
    /// Optional bias, `n` values.
    pub bias: Option<Vec<f32>>,
    /// Activation after the bias.
    pub activation: Activation,
}

impl FloatLinear {
    /// A layer, checked: `weight` has `n × k` finite values, the bias `n`, the activation a
    /// real range.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`], [`Error::LengthMismatch`], [`Error::NonFiniteInput`],
    /// [`Error::EmptyDimension`], [`Error::InvalidConfig`] (activation).
    pub fn new(
        name: impl Into<String>,
        weight: Vec<f32>,
        n: usize,
        k: usize,
        bias: Option<Vec<f32>>,
        activation: Activation,
    ) -> Result<Self> {
        let name = name.into();
        crate::quant::pack::check_len(&format!("{name}.weight"), weight.len(), n, k)?;
        if n == 0 || k == 0 {
            return Err(Error::EmptyDimension {
                what: format!("{name}.weight [{n}, {k}]"),
            });
        }
        crate::error::check_finite(&format!("{name}.weight"), &weight)?;
        if let Some(b) = &bias {
            if b.len() != n {
                return Err(Error::LengthMismatch {
                    what: format!("{name}.bias (elements)"),
                    got: b.len(),
                    expected: n,
                });
            }
            crate::error::check_finite(&format!("{name}.bias"), b)?;
        }
        activation.float_range()?;
        Ok(FloatLinear {
            name,
            weight,
            n,
            k,
            bias,
            activation,
        })
    }

    /// `act(x × Wᵀ + b)` for `rows` rows of `k` in f32, accumulating in order along K.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`].
    pub fn forward(&self, x: &[f32], rows: usize) -> Result<Vec<f32>> {
        crate::quant::pack::check_len(&format!("{} input", self.name), x.len(), rows, self.k)?;
        let clamp = self.activation.float_range()?;
        let (n, k) = (self.n, self.k);
        let mut y = Vec::with_capacity(rows * n);
        for r in 0..rows {
            let row = &x[r * k..(r + 1) * k];
            for c in 0..n {
                let w = &self.weight[c * k..(c + 1) * k];
                let mut acc = 0.0f32;
                for (a, b) in row.iter().zip(w) {
                    acc += a * b;
                }
                if let Some(b) = &self.bias {
                    acc += b[c];
                }
                if let Some((lo, hi)) = clamp {
                    acc = if acc < lo { lo } else { acc };
                    acc = if acc > hi { hi } else { acc };
                }
                y.push(acc);
            }
        }
        Ok(y)
    }
}

/// A sequential float model of linear layers.
#[derive(Debug, Clone, PartialEq)]
pub struct FloatModel {
    layers: Vec<FloatLinear>,
}

impl FloatModel {
    /// A model from layers whose shapes chain (`k` of each = `n` of the one before).
    ///
    /// # Errors
    /// [`Error::EmptyInput`] for no layers; [`Error::DimensionMismatch`] naming the layers.
    pub fn new(layers: Vec<FloatLinear>) -> Result<Self> {
        if layers.is_empty() {
            return Err(Error::EmptyInput {
                what: "model layers".into(),
            });
        }
        // The fields are public: re-check every layer as `FloatLinear::new` would.
        for l in &layers {
            FloatLinear::new(
                l.name.clone(),
                l.weight.clone(),
                l.n,
                l.k,
                l.bias.clone(),
                l.activation,
            )?;
        }
        for pair in layers.windows(2) {
            if pair[1].k != pair[0].n {
                return Err(Error::DimensionMismatch {
                    what: format!("outputs of {} vs inputs of {}", pair[0].name, pair[1].name),
                    left: pair[0].n,
                    right: pair[1].k,
                });
            }
        }
        Ok(FloatModel { layers })
    }

    /// Loads `{name}.weight` (`[n, k]`) and, when present, `{name}.bias` (`[n]`) for each
    /// name from a safetensors file (f32, f16 or bf16), with `hidden` as the activation of
    /// every layer but the last.
    ///
    /// # Errors
    /// The io errors ([`Error::MissingTensor`], [`Error::WrongDtype`], [`Error::WrongShape`])
    /// and as [`FloatModel::new`].
    pub fn sequential(
        file: &crate::io::SafeTensorsFile,
        names: &[&str],
        hidden: Activation,
    ) -> Result<Self> {
        let mut layers = Vec::with_capacity(names.len());
        let available = file.names();
        for (i, name) in names.iter().enumerate() {
            let (weight, shape) = file.get_f32_any_shape(&format!("{name}.weight"))?;
            let [n, k] = shape[..] else {
                return Err(Error::WrongShape {
                    name: format!("{name}.weight"),
                    expected: vec![0, 0],
                    found: shape,
                });
            };
            let bias_name = format!("{name}.bias");
            let bias = if available.contains(&bias_name) {
                Some(file.get_f32(&bias_name, &[n])?)
            } else {
                None
            };
            let activation = if i + 1 == names.len() {
                Activation::None
            } else {
                hidden
            };
            layers.push(FloatLinear::new(*name, weight, n, k, bias, activation)?);
        }
        Self::new(layers)
    }

    /// The layers.
    pub fn layers(&self) -> &[FloatLinear] {
        &self.layers
    }
    /// Input features.
    pub fn input_features(&self) -> usize {
        self.layers[0].k
    }
    /// Output features.
    pub fn output_features(&self) -> usize {
        self.layers[self.layers.len() - 1].n
    }

    /// The model's output for `rows` rows.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`].
    pub fn forward(&self, x: &[f32], rows: usize) -> Result<Vec<f32>> {
        Ok(self.forward_trace(x, rows)?.pop().unwrap_or_default())
    }

    /// Every layer's output (after its activation), in order.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`].
    pub fn forward_trace(&self, x: &[f32], rows: usize) -> Result<Vec<Vec<f32>>> {
        let mut outputs: Vec<Vec<f32>> = Vec::with_capacity(self.layers.len());
        for layer in &self.layers {
            let input = outputs.last().map_or(x, Vec::as_slice);
            let y = layer.forward(input, rows)?;
            outputs.push(y);
        }
        Ok(outputs)
    }
}

/// The index of the largest value in each row of `cols` (the predicted class).
/// Rows of 0 columns have no prediction: the result is empty. A NaN never wins.
pub fn argmax_rows(values: &[f32], cols: usize) -> Vec<usize> {
    if cols == 0 {
        return Vec::new();
    }
    values
        .chunks(cols)
        .map(|row| {
            row.iter()
                .enumerate()
                .fold((0, f32::NEG_INFINITY), |best, (i, &v)| {
                    if v > best.1 { (i, v) } else { best }
                })
                .0
        })
        .collect()
}
