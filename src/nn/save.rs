//! A quantized model to safetensors and back: every stage, packed weights as storage bytes,
//! biases, every param (scales as exact f32 bits), the convention and the layer list, so a
//! loaded model gives the same bits as the one saved.
//!
//! Layout: tensors `stage.{i}.…` per stage, and string metadata: `format`
//! (`wgpu-quant/quantized-model`), `format_version` (`1`), `convention`, `stages` (a comma
//! list of `quantize`, `dynamic`, `linear`), and per stage its settings.

use std::collections::HashMap;
use std::path::Path;

use crate::error::{Error, Result};
use crate::gpu::context::Context;
use crate::io::{SafeTensorsFile, SafeTensorsWriter};
use crate::nn::linear::{BiasMode, InputSpec, Linear, LinearParts, OutputSpec};
use crate::nn::model::{QuantMode, QuantizedModel, Stage, StageKind};
use crate::quant::convention::Convention;
use crate::quant::epilogue::Activation;
use crate::quant::fixed_point::FixedPointRounding;
use crate::quant::params::QuantParams;
use crate::quant::qtype::{QRange, QType};
use crate::reference::dynamic::{DynamicGranularity, DynamicScheme};

/// The `format` metadata value.
pub const FORMAT: &str = "wgpu-quant/quantized-model";
/// The `format_version` this crate writes and reads.
pub const FORMAT_VERSION: &str = "1";

fn bad(what: impl Into<String>) -> Error {
    Error::Format(what.into())
}

fn convention_name(c: Convention) -> &'static str {
    match c {
        Convention::Onnx => "onnx",
        Convention::PyTorch => "pytorch",
        Convention::TfLite => "tflite",
    }
}

fn parse_convention(s: &str) -> Result<Convention> {
    Convention::ALL
        .into_iter()
        .find(|c| convention_name(*c) == s)
        .ok_or_else(|| bad(format!("unknown convention {s:?}")))
}

fn scheme_name(s: DynamicScheme) -> &'static str {
    match s {
        DynamicScheme::SymmetricPerToken => "symmetric-per-token",
        DynamicScheme::OnnxLinear { qtype: QType::U8 } => "onnx-linear-u8",
        DynamicScheme::OnnxLinear { qtype: QType::I8 } => "onnx-linear-i8",
    }
}

fn parse_scheme(s: &str) -> Result<DynamicScheme> {
    Ok(match s {
        "symmetric-per-token" => DynamicScheme::SymmetricPerToken,
        "onnx-linear-u8" => DynamicScheme::OnnxLinear { qtype: QType::U8 },
        "onnx-linear-i8" => DynamicScheme::OnnxLinear { qtype: QType::I8 },
        _ => return Err(bad(format!("unknown dynamic scheme {s:?}"))),
    })
}

fn granularity_name(g: DynamicGranularity) -> &'static str {
    match g {
        DynamicGranularity::PerRow => "per-row",
        DynamicGranularity::PerTensor => "per-tensor",
    }
}

fn parse_granularity(s: &str) -> Result<DynamicGranularity> {
    match s {
        "per-row" => Ok(DynamicGranularity::PerRow),
        "per-tensor" => Ok(DynamicGranularity::PerTensor),
        _ => Err(bad(format!("unknown granularity {s:?}"))),
    }
}

/// Activations with float bounds as exact bit patterns.
fn activation_name(a: Activation) -> String {
    match a {
        Activation::None => "none".into(),
        Activation::Relu => "relu".into(),
        Activation::Relu6 => "relu6".into(),
        Activation::ReluN1To1 => "relu-n1-to-1".into(),
        Activation::Clamp { lo, hi } => format!("clamp:{:08x},{:08x}", lo.to_bits(), hi.to_bits()),
        Activation::ClampQuantized { lo, hi } => format!("clamp-quantized:{lo},{hi}"),
    }
}

fn parse_activation(s: &str) -> Result<Activation> {
    let pair = |rest: &str| -> Result<(String, String)> {
        rest.split_once(',')
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .ok_or_else(|| bad(format!("activation {s:?}")))
    };
    Ok(match s {
        "none" => Activation::None,
        "relu" => Activation::Relu,
        "relu6" => Activation::Relu6,
        "relu-n1-to-1" => Activation::ReluN1To1,
        _ if s.starts_with("clamp:") => {
            let (a, b) = pair(&s["clamp:".len()..])?;
            let bits =
                |v: &str| u32::from_str_radix(v, 16).map_err(|_| bad(format!("activation {s:?}")));
            Activation::Clamp {
                lo: f32::from_bits(bits(&a)?),
                hi: f32::from_bits(bits(&b)?),
            }
        }
        _ if s.starts_with("clamp-quantized:") => {
            let (a, b) = pair(&s["clamp-quantized:".len()..])?;
            let int = |v: &str| {
                v.parse::<i32>()
                    .map_err(|_| bad(format!("activation {s:?}")))
            };
            Activation::ClampQuantized {
                lo: int(&a)?,
                hi: int(&b)?,
            }
        }
        _ => return Err(bad(format!("unknown activation {s:?}"))),
    })
}

fn qtype_name(t: QType) -> &'static str {
    t.name()
}

fn parse_qtype(s: &str) -> Result<QType> {
    match s {
        "i8" => Ok(QType::I8),
        "u8" => Ok(QType::U8),
        _ => Err(bad(format!("unknown qtype {s:?}"))),
    }
}

/// Writes `prefix.scales`, `prefix.zero_points`, `prefix.range` and the qtype/axis metadata.
fn put_params(
    w: &mut SafeTensorsWriter,
    meta: &mut Vec<(String, String)>,
    prefix: &str,
    p: &QuantParams,
) -> Result<()> {
    w.add_f32(&format!("{prefix}.scales"), p.scales(), &[p.channels()])?;
    w.add_i32(
        &format!("{prefix}.zero_points"),
        p.zero_points(),
        &[p.channels()],
    )?;
    w.add_i32(
        &format!("{prefix}.range"),
        &[p.range().qmin(), p.range().qmax()],
        &[2],
    )?;
    meta.push((format!("{prefix}.qtype"), qtype_name(p.qtype()).into()));
    meta.push((
        format!("{prefix}.axis"),
        p.axis().map_or("none".into(), |a| a.to_string()),
    ));
    Ok(())
}

/// FNV-1a, 64 bits: a check that a saved model was not corrupted or edited (not a
/// cryptographic signature).
fn fnv1a(hash: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(hash, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The checksum over every tensor's name, dtype, shape and bytes and every metadata entry
/// but the checksum itself.
fn checksum(file: &SafeTensorsFile) -> Result<String> {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for name in file.names() {
        h = fnv1a(h, name.as_bytes());
        h = fnv1a(h, file.dtype(&name)?.as_bytes());
        for &d in file.shape(&name)? {
            h = fnv1a(h, &(d as u64).to_le_bytes());
        }
    }
    h = fnv1a(h, file.data_section());
    let mut meta: Vec<(&String, &String)> = file
        .metadata()
        .map(|m| m.iter().filter(|(k, _)| *k != "checksum").collect())
        .unwrap_or_default();
    meta.sort();
    for (k, v) in meta {
        h = fnv1a(fnv1a(h, k.as_bytes()), &[0]);
        h = fnv1a(fnv1a(h, v.as_bytes()), &[0]);
    }
    Ok(format!("fnv1a64:{h:016x}"))
}

struct Reader<'a> {
    file: &'a SafeTensorsFile,
    meta: &'a HashMap<String, String>,
}

impl Reader<'_> {
    fn meta(&self, key: &str) -> Result<&str> {
        self.meta
            .get(key)
            .map(String::as_str)
            .ok_or_else(|| bad(format!("metadata {key:?} is missing")))
    }

    fn usize(&self, key: &str) -> Result<usize> {
        self.meta(key)?
            .parse()
            .map_err(|_| bad(format!("metadata {key:?} is not a count")))
    }

    fn params(&self, prefix: &str) -> Result<QuantParams> {
        let qtype = parse_qtype(self.meta(&format!("{prefix}.qtype"))?)?;
        let axis = match self.meta(&format!("{prefix}.axis"))? {
            "none" => None,
            a => Some(
                a.parse()
                    .map_err(|_| bad(format!("{prefix}.axis = {a:?}")))?,
            ),
        };
        let name = format!("{prefix}.scales");
        let channels = self.file.shape(&name)?.first().copied().unwrap_or(0);
        let scales = self.file.get_f32(&name, &[channels])?;
        let zero_points = self
            .file
            .get_i32(&format!("{prefix}.zero_points"), &[channels])?;
        let range = self.file.get_i32(&format!("{prefix}.range"), &[2])?;
        let range = QRange::new(qtype, range[0], range[1])?;
        match axis {
            None => {
                if channels != 1 {
                    return Err(bad(format!(
                        "{prefix}: per-tensor params with {channels} scales"
                    )));
                }
                QuantParams::per_tensor(scales[0], zero_points[0], range)
            }
            Some(axis) => QuantParams::per_axis(axis, scales, zero_points, range),
        }
    }
}

impl QuantizedModel {
    /// The model as safetensors bytes (see the module docs for the layout).
    ///
    /// # Errors
    /// io errors.
    pub fn to_safetensors(&self) -> Result<Vec<u8>> {
        let mut w = SafeTensorsWriter::new();
        let mut meta: Vec<(String, String)> = vec![
            ("format".into(), FORMAT.into()),
            ("format_version".into(), FORMAT_VERSION.into()),
            (
                "convention".into(),
                convention_name(self.convention()).into(),
            ),
            ("max_batch".into(), self.max_batch().to_string()),
        ];
        let mut kinds = Vec::new();
        for (i, stage) in self.stages().iter().enumerate() {
            let prefix = format!("stage.{i}");
            match &stage.0 {
                StageKind::Quantize {
                    quantizer,
                    params,
                    convention,
                } => {
                    kinds.push("quantize");
                    meta.push((format!("{prefix}.cols"), quantizer.cols().to_string()));
                    meta.push((
                        format!("{prefix}.convention"),
                        convention_name(*convention).into(),
                    ));
                    put_params(&mut w, &mut meta, &format!("{prefix}.params"), params)?;
                }
                StageKind::DynamicQuantize { quantizer } => {
                    kinds.push("dynamic");
                    meta.push((format!("{prefix}.cols"), quantizer.cols().to_string()));
                    meta.push((
                        format!("{prefix}.scheme"),
                        scheme_name(quantizer.scheme()).into(),
                    ));
                    meta.push((
                        format!("{prefix}.granularity"),
                        granularity_name(quantizer.granularity()).into(),
                    ));
                }
                StageKind::Linear(l) => {
                    kinds.push("linear");
                    let p = l.parts();
                    let shape = [p.n, p.k];
                    match p.weight_params.qtype() {
                        QType::I8 => w.add_i8(
                            &format!("{prefix}.weight"),
                            bytemuck::cast_slice(&p.weight_bytes),
                            &shape,
                        )?,
                        QType::U8 => {
                            w.add_u8(&format!("{prefix}.weight"), &p.weight_bytes, &shape)?
                        }
                    };
                    put_params(
                        &mut w,
                        &mut meta,
                        &format!("{prefix}.weight_params"),
                        &p.weight_params,
                    )?;
                    if let Some(b) = &p.bias {
                        w.add_f32(&format!("{prefix}.bias"), b, &[p.n])?;
                    }
                    meta.push((format!("{prefix}.has_bias"), p.bias.is_some().to_string()));
                    meta.push((
                        format!("{prefix}.convention"),
                        convention_name(p.convention).into(),
                    ));
                    meta.push((
                        format!("{prefix}.activation"),
                        activation_name(p.activation),
                    ));
                    meta.push((
                        format!("{prefix}.bias_mode"),
                        match p.bias_mode {
                            BiasMode::Float => "float",
                            _ => "int32",
                        }
                        .into(),
                    ));
                    meta.push((
                        format!("{prefix}.rounding"),
                        match p.rounding {
                            FixedPointRounding::Single => "single",
                            FixedPointRounding::Double => "double",
                        }
                        .into(),
                    ));
                    match &p.input {
                        InputSpec::Static(params) => {
                            meta.push((format!("{prefix}.input"), "static".into()));
                            put_params(
                                &mut w,
                                &mut meta,
                                &format!("{prefix}.input_params"),
                                params,
                            )?;
                        }
                        InputSpec::Dynamic {
                            scheme,
                            granularity,
                        } => {
                            meta.push((format!("{prefix}.input"), "dynamic".into()));
                            meta.push((
                                format!("{prefix}.input_scheme"),
                                scheme_name(*scheme).into(),
                            ));
                            meta.push((
                                format!("{prefix}.input_granularity"),
                                granularity_name(*granularity).into(),
                            ));
                        }
                    }
                    let output = match &p.output {
                        OutputSpec::F32 => "f32",
                        OutputSpec::F16 => "f16",
                        OutputSpec::I32 => "i32",
                        OutputSpec::Quantized(params) => {
                            put_params(
                                &mut w,
                                &mut meta,
                                &format!("{prefix}.output_params"),
                                params,
                            )?;
                            "quantized"
                        }
                    };
                    meta.push((format!("{prefix}.output"), output.into()));
                }
            }
        }
        meta.push(("stages".into(), kinds.join(",")));
        match self.mode() {
            QuantMode::Static => meta.push(("mode".into(), "static".into())),
            QuantMode::Dynamic {
                scheme,
                granularity,
            } => {
                meta.push(("mode".into(), "dynamic".into()));
                meta.push(("mode_scheme".into(), scheme_name(scheme).into()));
                meta.push((
                    "mode_granularity".into(),
                    granularity_name(granularity).into(),
                ));
            }
        }
        for (k, v) in meta {
            w.add_metadata(k, v);
        }
        let sum = checksum(&SafeTensorsFile::from_bytes(w.to_bytes()?)?)?;
        w.add_metadata("checksum", sum);
        w.to_bytes()
    }

    /// Saves the model to a safetensors file.
    ///
    /// # Errors
    /// io errors.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let bytes = self.to_safetensors()?;
        std::fs::write(path.as_ref(), bytes).map_err(|e| Error::Io {
            path: path.as_ref().display().to_string(),
            message: e.to_string(),
        })
    }

    /// Loads a model saved by [`QuantizedModel::save`], with room for `max_batch` rows per
    /// run (`None`: the saved value). Every layer is rebuilt and re-checked.
    ///
    /// # Errors
    /// [`Error::Format`] for a file that is not a saved model (with what is missing or
    /// wrong), the io errors, and every check of [`Linear::from_parts`] and
    /// [`QuantizedModel::from_stages`].
    pub fn load(ctx: &Context, path: impl AsRef<Path>, max_batch: Option<usize>) -> Result<Self> {
        Self::from_safetensors(ctx, &SafeTensorsFile::load(path)?, max_batch)
    }

    /// As [`QuantizedModel::load`], from the bytes of a saved model.
    ///
    /// # Errors
    /// As [`QuantizedModel::load`].
    pub fn from_bytes(ctx: &Context, bytes: Vec<u8>, max_batch: Option<usize>) -> Result<Self> {
        Self::from_safetensors(ctx, &SafeTensorsFile::from_bytes(bytes)?, max_batch)
    }

    /// As [`QuantizedModel::load`], from a file already read.
    ///
    /// # Errors
    /// As [`QuantizedModel::load`].
    pub fn from_safetensors(
        ctx: &Context,
        file: &SafeTensorsFile,
        max_batch: Option<usize>,
    ) -> Result<Self> {
        let empty = HashMap::new();
        let r = Reader {
            file,
            meta: file.metadata().unwrap_or(&empty),
        };
        if r.meta("format")? != FORMAT {
            return Err(bad(format!(
                "format is {:?}, not {FORMAT:?}",
                r.meta("format")?
            )));
        }
        if r.meta("format_version")? != FORMAT_VERSION {
            return Err(bad(format!(
                "format_version {:?} is not the supported {FORMAT_VERSION:?}",
                r.meta("format_version")?
            )));
        }
        let expected = checksum(file)?;
        if r.meta("checksum")? != expected {
            return Err(bad(format!(
                "checksum {:?} does not match the content ({expected}): the file was corrupted or edited",
                r.meta("checksum")?
            )));
        }
        let convention = parse_convention(r.meta("convention")?)?;
        let max_batch = match max_batch {
            Some(m) => m,
            None => r.usize("max_batch")?,
        };
        let mode = match r.meta("mode")? {
            "static" => QuantMode::Static,
            "dynamic" => QuantMode::Dynamic {
                scheme: parse_scheme(r.meta("mode_scheme")?)?,
                granularity: parse_granularity(r.meta("mode_granularity")?)?,
            },
            m => return Err(bad(format!("unknown mode {m:?}"))),
        };
        let mut stages = Vec::new();
        for (i, kind) in r.meta("stages")?.split(',').enumerate() {
            let prefix = format!("stage.{i}");
            let key = |s: &str| format!("{prefix}.{s}");
            stages.push(match kind {
                "quantize" => {
                    let params = r.params(&key("params"))?;
                    let cols = r.usize(&key("cols"))?;
                    let stage_convention = parse_convention(r.meta(&key("convention"))?)?;
                    Stage::quantize(ctx, stage_convention, params, max_batch, cols)?
                }
                "dynamic" => {
                    let scheme = parse_scheme(r.meta(&key("scheme"))?)?;
                    let granularity = parse_granularity(r.meta(&key("granularity"))?)?;
                    let cols = r.usize(&key("cols"))?;
                    Stage::dynamic_quantize(ctx, scheme, granularity, max_batch, cols)?
                }
                "linear" => {
                    let name = key("weight");
                    let shape = file.shape(&name)?.to_vec();
                    let [n, k] = shape[..] else {
                        return Err(Error::WrongShape {
                            name,
                            expected: vec![0, 0],
                            found: shape,
                        });
                    };
                    let weight_params = r.params(&key("weight_params"))?;
                    let weight_bytes = match weight_params.qtype() {
                        QType::I8 => bytemuck::cast_slice(&file.get_i8(&name, &[n, k])?).to_vec(),
                        QType::U8 => file.get_u8(&name, &[n, k])?,
                    };
                    let bias = match r.meta(&key("has_bias"))? {
                        "true" => Some(file.get_f32(&key("bias"), &[n])?),
                        "false" => None,
                        s => return Err(bad(format!("{prefix}.has_bias = {s:?}"))),
                    };
                    let input = match r.meta(&key("input"))? {
                        "static" => InputSpec::Static(r.params(&key("input_params"))?),
                        "dynamic" => InputSpec::Dynamic {
                            scheme: parse_scheme(r.meta(&key("input_scheme"))?)?,
                            granularity: parse_granularity(r.meta(&key("input_granularity"))?)?,
                        },
                        s => return Err(bad(format!("{prefix}.input = {s:?}"))),
                    };
                    let output = match r.meta(&key("output"))? {
                        "f32" => OutputSpec::F32,
                        "f16" => OutputSpec::F16,
                        "i32" => OutputSpec::I32,
                        "quantized" => OutputSpec::Quantized(r.params(&key("output_params"))?),
                        s => return Err(bad(format!("{prefix}.output = {s:?}"))),
                    };
                    let parts = LinearParts {
                        n,
                        k,
                        weight_bytes,
                        weight_params,
                        bias,
                        convention: parse_convention(r.meta(&key("convention"))?)?,
                        input,
                        output,
                        activation: parse_activation(r.meta(&key("activation"))?)?,
                        bias_mode: match r.meta(&key("bias_mode"))? {
                            "float" => BiasMode::Float,
                            "int32" => BiasMode::Int32,
                            s => return Err(bad(format!("{prefix}.bias_mode = {s:?}"))),
                        },
                        rounding: match r.meta(&key("rounding"))? {
                            "single" => FixedPointRounding::Single,
                            "double" => FixedPointRounding::Double,
                            s => return Err(bad(format!("{prefix}.rounding = {s:?}"))),
                        },
                    };
                    Stage::linear(Linear::from_parts(ctx, parts)?)
                }
                other => return Err(bad(format!("unknown stage kind {other:?}"))),
            });
        }
        Self::from_stages(ctx, convention, mode, stages, max_batch)
    }
}
