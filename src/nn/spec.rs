//! What a tensor holds, without the buffer: its element type ([`ElementType`]), its
//! quantization ([`Quantization`]: static params, or per-row params from a dynamic
//! quantizer) and its spec ([`TensorSpec`]), the thing layers compare to catch a mismatch.

use crate::error::{Error, Result};
use crate::quant::pack::words_per_row;
use crate::quant::params::QuantParams;
use crate::quant::qtype::QType;
use crate::reference::dynamic::{DynamicGranularity, DynamicScheme};

/// The element type of a tensor, and so its layout in the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ElementType {
    /// f32, `cols` per row.
    F32,
    /// f16, two per `u32` word, rows padded to whole words.
    F16,
    /// i32 accumulators, `cols` per row.
    I32,
    /// Quantized storage bytes of this type, four per word, rows padded to whole words.
    Quantized(QType),
}

impl ElementType {
    /// 32-bit words one row of `cols` elements occupies.
    pub fn words_per_row(self, cols: usize) -> usize {
        match self {
            ElementType::F32 | ElementType::I32 => cols,
            ElementType::F16 => cols.div_ceil(2),
            ElementType::Quantized(_) => words_per_row(cols),
        }
    }

    /// A short name for messages.
    pub fn name(self) -> &'static str {
        match self {
            ElementType::F32 => "f32",
            ElementType::F16 => "f16",
            ElementType::I32 => "i32",
            ElementType::Quantized(QType::I8) => "i8",
            ElementType::Quantized(QType::U8) => "u8",
        }
    }
}

/// How a quantized tensor's bytes map to real values.
#[derive(Debug, Clone, PartialEq)]
pub enum Quantization {
    /// Static params fixed when the model was built (per tensor).
    Static(QuantParams),
    /// Params computed on the GPU per row (or one for the tensor) by a dynamic quantizer;
    /// they travel with the tensor in its row-params buffer.
    Dynamic {
        /// The dynamic scheme that produced them.
        scheme: DynamicScheme,
        /// Per row or per tensor.
        granularity: DynamicGranularity,
    },
}

impl Quantization {
    /// Whether `self` and `other` quantize identically: the same scheme, or static params with
    /// the same scale bits, zero points, range and axis.
    pub fn same_as(&self, other: &Quantization) -> bool {
        match (self, other) {
            (Quantization::Static(a), Quantization::Static(b)) => same_params(a, b),
            (a, b) => a == b,
        }
    }

    /// A one-line description for messages.
    pub fn describe(&self) -> String {
        match self {
            Quantization::Static(p) => describe_params(p),
            Quantization::Dynamic {
                scheme,
                granularity,
            } => format!("dynamic {scheme:?} {granularity:?}"),
        }
    }
}

/// Params compared bit for bit (scale bits, zero points, range, axis).
pub fn same_params(a: &QuantParams, b: &QuantParams) -> bool {
    a.range() == b.range()
        && a.axis() == b.axis()
        && a.zero_points() == b.zero_points()
        && a.scales().len() == b.scales().len()
        && a.scales()
            .iter()
            .zip(b.scales())
            .all(|(x, y)| x.to_bits() == y.to_bits())
}

/// `scale = …, zero point = …, qtype [qmin, qmax]` (first channel and count when per axis).
pub fn describe_params(p: &QuantParams) -> String {
    let range = p.range();
    let where_ = match p.axis() {
        None => String::new(),
        Some(axis) => format!(" (axis {axis}, {} channels, first shown)", p.channels()),
    };
    format!(
        "{} [{}, {}] scale {:e} zero point {}{where_}",
        p.qtype().name(),
        range.qmin(),
        range.qmax(),
        p.scale(0),
        p.zero_point(0)
    )
}

/// What a tensor holds, without its data: columns, element type and quantization. Layers
/// declare the spec they take and the spec they produce.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorSpec {
    /// Elements per row.
    pub cols: usize,
    /// Element type.
    pub element: ElementType,
    /// The quantization, for quantized tensors.
    pub quantization: Option<Quantization>,
}

impl TensorSpec {
    /// f32 rows of `cols`.
    pub fn f32(cols: usize) -> Self {
        TensorSpec {
            cols,
            element: ElementType::F32,
            quantization: None,
        }
    }

    /// Statically quantized rows of `cols` with per-tensor `params`.
    pub fn quantized(cols: usize, params: QuantParams) -> Self {
        TensorSpec {
            cols,
            element: ElementType::Quantized(params.qtype()),
            quantization: Some(Quantization::Static(params)),
        }
    }

    /// Dynamically quantized rows of `cols`.
    pub fn dynamic(cols: usize, scheme: DynamicScheme, granularity: DynamicGranularity) -> Self {
        TensorSpec {
            cols,
            element: ElementType::Quantized(scheme.qtype()),
            quantization: Some(Quantization::Dynamic {
                scheme,
                granularity,
            }),
        }
    }

    /// A one-line description for messages.
    pub fn describe(&self) -> String {
        match &self.quantization {
            None => format!("{} x {}", self.element.name(), self.cols),
            Some(q) => format!("{} x {} ({})", self.element.name(), self.cols, q.describe()),
        }
    }

    /// Whether a tensor of spec `self` may be given where `expected` is required.
    pub fn matches(&self, expected: &TensorSpec) -> bool {
        self.cols == expected.cols
            && self.element == expected.element
            && match (&self.quantization, &expected.quantization) {
                (None, None) => true,
                (Some(a), Some(b)) => a.same_as(b),
                _ => false,
            }
    }

    /// [`Error::TensorMismatch`] unless `self` matches `expected`.
    ///
    /// # Errors
    /// [`Error::TensorMismatch`] naming both specs.
    pub fn check(&self, what: &str, expected: &TensorSpec) -> Result<()> {
        if self.matches(expected) {
            Ok(())
        } else {
            Err(Error::TensorMismatch {
                what: what.to_string(),
                expected: expected.describe(),
                found: self.describe(),
            })
        }
    }

    /// Bytes of `rows` rows, checked.
    ///
    /// # Errors
    /// [`Error::SizeOverflow`] when the size does not fit `u64`.
    pub fn bytes_for_rows(&self, rows: usize) -> Result<u64> {
        let words = self.element.words_per_row(self.cols);
        (words as u64)
            .checked_mul(rows as u64)
            .and_then(|w| w.checked_mul(4))
            .ok_or_else(|| Error::SizeOverflow {
                what: format!("{rows} rows of {}", self.describe()),
            })
    }

    pub(crate) fn is_dynamic(&self) -> bool {
        matches!(self.quantization, Some(Quantization::Dynamic { .. }))
    }
}
