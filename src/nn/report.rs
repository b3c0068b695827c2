//! What calibration chose, per layer, and how far each quantized layer's output lands from
//! the float model's ([`CalibrationReport`]).

use crate::error::Result;
use crate::nn::float::FloatModel;
use crate::nn::linear::InputSpec;
use crate::nn::model::QuantizedModel;
use crate::nn::tensor::describe_params;

/// Per layer: the params calibration chose and the layer output's error against the float
/// model on the calibration samples.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerReport {
    /// The float layer's name.
    pub name: String,
    /// `[n, k]`.
    pub shape: [usize; 2],
    /// The weights' params in brief.
    pub weights: String,
    /// The input's quantization in brief.
    pub input: String,
    /// The output's spec in brief.
    pub output: String,
    /// Signal-to-quantization-noise ratio of the layer's (dequantized) output against the
    /// float model's, in dB.
    pub sqnr_db: f64,
    /// The largest absolute difference from the float output.
    pub max_abs_error: f32,
}

/// The calibration report: one [`LayerReport`] per linear layer.
#[derive(Debug, Clone, PartialEq)]
pub struct CalibrationReport {
    /// The layers, in order.
    pub layers: Vec<LayerReport>,
    /// Rows the errors were measured on.
    pub rows: usize,
}

impl CalibrationReport {
    pub(crate) fn measure(
        model: &QuantizedModel,
        float: &FloatModel,
        x: &[f32],
        rows: usize,
    ) -> Result<Self> {
        let trace = model.reference_trace(x, rows)?;
        let float_trace = float.forward_trace(x, rows)?;
        let mut layers = Vec::new();
        let mut index = 0;
        for (stage, out) in model.stages().iter().zip(&trace) {
            let Some(l) = stage.as_linear() else { continue };
            let expected = &float_trace[index];
            let got = out.to_f32();
            let (mut signal, mut noise, mut max_abs) = (0.0f64, 0.0f64, 0.0f32);
            for (&e, &g) in expected.iter().zip(&got) {
                signal += f64::from(e) * f64::from(e);
                let d = f64::from(g) - f64::from(e);
                noise += d * d;
                max_abs = max_abs.max((g - e).abs());
            }
            let sqnr_db = if noise == 0.0 {
                f64::INFINITY
            } else {
                10.0 * (signal / noise).log10()
            };
            let input = match l.input() {
                InputSpec::Static(p) => describe_params(p),
                InputSpec::Dynamic {
                    scheme,
                    granularity,
                } => format!("dynamic {scheme:?} {granularity:?}"),
            };
            let wp = l.weight_params();
            layers.push(LayerReport {
                name: float.layers()[index].name.clone(),
                shape: [l.n(), l.k()],
                weights: format!(
                    "{} {}, scales {:e}..{:e}",
                    wp.qtype().name(),
                    if wp.axis().is_some() {
                        "per channel"
                    } else {
                        "per tensor"
                    },
                    wp.scales().iter().copied().fold(f32::INFINITY, f32::min),
                    wp.scales().iter().copied().fold(0.0, f32::max),
                ),
                input,
                output: l.output_spec().describe(),
                sqnr_db,
                max_abs_error: max_abs,
            });
            index += 1;
        }
        Ok(CalibrationReport { layers, rows })
    }
}

impl std::fmt::Display for CalibrationReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "calibration report ({} rows):", self.rows)?;
        for l in &self.layers {
            writeln!(
                f,
                "  {} [{} x {}]: SQNR {:.1} dB, max |error| {:.4}\n    weights {}\n    input   {}\n    output  {}",
                l.name,
                l.shape[0],
                l.shape[1],
                l.sqnr_db,
                l.max_abs_error,
                l.weights,
                l.input,
                l.output
            )?;
        }
        Ok(())
    }
}
