//! [`SafeTensorsWriter`]: collects named tensors and metadata, then serializes them.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::path::Path;

use half::{bf16, f16};
use safetensors::{Dtype, SafeTensorError, View};

use super::format_error;
use crate::{Error, Result};

/// The header key the format reserves for the string metadata; no tensor may use it.
const METADATA_KEY: &str = "__metadata__";

/// One tensor's dtype, shape and little-endian bytes.
#[derive(Debug, Clone)]
struct OwnedTensor {
    dtype: Dtype,
    shape: Vec<usize>,
    data: Vec<u8>,
}

impl View for &OwnedTensor {
    fn dtype(&self) -> Dtype {
        self.dtype
    }

    fn shape(&self) -> &[usize] {
        &self.shape
    }

    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.data)
    }

    fn data_len(&self) -> usize {
        self.data.len()
    }
}

/// Builds a safetensors file from named tensors and string metadata.
///
/// Each `add_*` copies the values, checks that their count matches the shape and that the name
/// is new, and returns `&mut Self` for chaining. The file orders tensors as the `safetensors`
/// crate does (by dtype alignment, then name), so the output does not depend on the order of
/// the `add_*` calls; the header's keys are in a hash order, so two serializations of the same
/// tensors may differ in header bytes but read back identically.
#[derive(Debug, Clone, Default)]
pub struct SafeTensorsWriter {
    tensors: Vec<(String, OwnedTensor)>,
    names: HashSet<String>,
    metadata: HashMap<String, String>,
}

impl SafeTensorsWriter {
    /// An empty writer.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an `F32` tensor.
    ///
    /// # Errors
    ///
    /// See [`add_raw`](Self::add_raw).
    pub fn add_f32(&mut self, name: &str, data: &[f32], shape: &[usize]) -> Result<&mut Self> {
        let bytes = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.push(name, Dtype::F32, data.len(), shape, bytes)
    }

    /// Adds an `F16` tensor.
    ///
    /// # Errors
    ///
    /// See [`add_raw`](Self::add_raw).
    pub fn add_f16(&mut self, name: &str, data: &[f16], shape: &[usize]) -> Result<&mut Self> {
        let bytes = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.push(name, Dtype::F16, data.len(), shape, bytes)
    }

    /// Adds a `BF16` tensor.
    ///
    /// # Errors
    ///
    /// See [`add_raw`](Self::add_raw).
    pub fn add_bf16(&mut self, name: &str, data: &[bf16], shape: &[usize]) -> Result<&mut Self> {
        let bytes = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.push(name, Dtype::BF16, data.len(), shape, bytes)
    }

    /// Adds an `I8` tensor.
    ///
    /// # Errors
    ///
    /// See [`add_raw`](Self::add_raw).
    pub fn add_i8(&mut self, name: &str, data: &[i8], shape: &[usize]) -> Result<&mut Self> {
        let bytes = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.push(name, Dtype::I8, data.len(), shape, bytes)
    }

    /// Adds a `U8` tensor.
    ///
    /// # Errors
    ///
    /// See [`add_raw`](Self::add_raw).
    pub fn add_u8(&mut self, name: &str, data: &[u8], shape: &[usize]) -> Result<&mut Self> {
        self.push(name, Dtype::U8, data.len(), shape, data.to_vec())
    }

    /// Adds an `I32` tensor.
    ///
    /// # Errors
    ///
    /// See [`add_raw`](Self::add_raw).
    pub fn add_i32(&mut self, name: &str, data: &[i32], shape: &[usize]) -> Result<&mut Self> {
        let bytes = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.push(name, Dtype::I32, data.len(), shape, bytes)
    }

    /// Adds a `U32` tensor (for example packed int8 rows, four values per word).
    ///
    /// # Errors
    ///
    /// See [`add_raw`](Self::add_raw).
    pub fn add_u32(&mut self, name: &str, data: &[u32], shape: &[usize]) -> Result<&mut Self> {
        let bytes = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.push(name, Dtype::U32, data.len(), shape, bytes)
    }

    /// Adds a tensor of any dtype the format names (`"F64"`, `"I16"`, `"BOOL"`, ...) from its
    /// little-endian bytes.
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidConfig`] when `dtype` is not a dtype the format names or is narrower
    ///   than a byte, when the name is `__metadata__` (reserved by the format) or was already
    ///   added, or when the shape's element count overflows `usize`.
    /// - [`Error::ShapeMismatch`] when the data does not hold exactly the shape's elements.
    pub fn add_raw(
        &mut self,
        name: &str,
        dtype: &str,
        data: &[u8],
        shape: &[usize],
    ) -> Result<&mut Self> {
        let parsed = parse_dtype(dtype).ok_or_else(|| Error::InvalidConfig {
            what: format!("dtype of tensor {name:?}"),
            value: dtype.to_string(),
            reason: "not a byte-sized safetensors dtype (F64, F32, F16, BF16, I64, I32, I16, I8, U64, U32, U16, U8, BOOL)"
                .to_string(),
        })?;
        let width = parsed.bitsize() / 8;
        if !data.len().is_multiple_of(width) {
            return Err(Error::ShapeMismatch {
                what: format!("tensor {name:?} ({dtype}, {width} bytes per element)"),
                shape: shape.to_vec(),
                expected: element_count(name, shape)?,
                got: data.len() / width,
            });
        }
        self.push(name, parsed, data.len() / width, shape, data.to_vec())
    }

    /// Sets string metadata `key` to `value` (stored in the header's `__metadata__`),
    /// replacing any earlier value for `key`.
    pub fn add_metadata(&mut self, key: impl Into<String>, value: impl Into<String>) -> &mut Self {
        self.metadata.insert(key.into(), value.into());
        self
    }

    /// The number of tensors added so far.
    #[must_use]
    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    /// Whether no tensor has been added.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }

    /// Serializes the tensors and metadata to the bytes of a safetensors file.
    ///
    /// # Errors
    ///
    /// [`Error::Format`] when the `safetensors` crate refuses the data (for example a header
    /// above its 100 MB limit).
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        safetensors::serialize(self.views(), self.metadata_option())
            .map_err(|e| format_error("cannot serialize tensors", &e))
    }

    /// Writes the file to `path`, through a temporary file in the same directory renamed into
    /// place, so an existing file is never left half-written.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the file cannot be written; [`Error::Format`] as for
    /// [`to_bytes`](Self::to_bytes).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        safetensors::serialize_to_file(self.views(), self.metadata_option(), path).map_err(|e| {
            match e {
                SafeTensorError::IoError(io) => Error::Io {
                    path: path.display().to_string(),
                    message: io.to_string(),
                },
                other => format_error(
                    &format!("cannot serialize tensors to {}", path.display()),
                    &other,
                ),
            }
        })
    }

    /// Checks and records one tensor.
    fn push(
        &mut self,
        name: &str,
        dtype: Dtype,
        len: usize,
        shape: &[usize],
        data: Vec<u8>,
    ) -> Result<&mut Self> {
        if name == METADATA_KEY {
            return Err(Error::InvalidConfig {
                what: "tensor name".to_string(),
                value: name.to_string(),
                reason: "reserved by the safetensors format for the string metadata".to_string(),
            });
        }
        if self.names.contains(name) {
            return Err(Error::InvalidConfig {
                what: "tensor name".to_string(),
                value: name.to_string(),
                reason: "a tensor with this name was already added".to_string(),
            });
        }
        let expected = element_count(name, shape)?;
        if expected != len {
            return Err(Error::ShapeMismatch {
                what: format!("tensor {name:?}"),
                shape: shape.to_vec(),
                expected,
                got: len,
            });
        }
        self.names.insert(name.to_string());
        self.tensors.push((
            name.to_string(),
            OwnedTensor {
                dtype,
                shape: shape.to_vec(),
                data,
            },
        ));
        Ok(self)
    }

    fn views(&self) -> impl Iterator<Item = (&str, &OwnedTensor)> {
        self.tensors.iter().map(|(name, t)| (name.as_str(), t))
    }

    fn metadata_option(&self) -> Option<HashMap<String, String>> {
        (!self.metadata.is_empty()).then(|| self.metadata.clone())
    }
}

/// The element count of `shape`, or [`Error::InvalidConfig`] when it overflows `usize`.
fn element_count(name: &str, shape: &[usize]) -> Result<usize> {
    shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| Error::InvalidConfig {
            what: format!("shape of tensor {name:?}"),
            value: format!("{shape:?}"),
            reason: "its element count overflows usize".to_string(),
        })
}

/// The byte-sized dtypes [`SafeTensorsWriter::add_raw`] accepts, by the format's names.
fn parse_dtype(name: &str) -> Option<Dtype> {
    Some(match name {
        "BOOL" => Dtype::BOOL,
        "U8" => Dtype::U8,
        "I8" => Dtype::I8,
        "I16" => Dtype::I16,
        "U16" => Dtype::U16,
        "F16" => Dtype::F16,
        "BF16" => Dtype::BF16,
        "I32" => Dtype::I32,
        "U32" => Dtype::U32,
        "F32" => Dtype::F32,
        "F64" => Dtype::F64,
        "I64" => Dtype::I64,
        "U64" => Dtype::U64,
        _ => return None,
    })
}
