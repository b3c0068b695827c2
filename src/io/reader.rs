//! [`SafeTensorsFile`]: typed, checked access to the tensors of one safetensors file.

use std::collections::HashMap;
use std::path::Path;

use half::{bf16, f16};
use safetensors::tensor::{Metadata, TensorInfo};
use safetensors::{Dtype, SafeTensors};

use super::format_error;
use crate::{Error, Result};

/// The dtypes [`SafeTensorsFile::get_f32`] accepts, as its errors name them.
const FLOAT_DTYPES: &str = "F32, F16 or BF16";

/// A safetensors file held in memory: its bytes and its validated header.
///
/// Construction parses and validates the whole header (every tensor's dtype, shape and
/// offsets, and that the data section is exactly covered), so the accessors only check that a
/// tensor is the dtype and shape the caller expects. Each accessor returns an owned copy
/// decoded from little-endian bytes, so the file's alignment does not matter.
#[derive(Debug, Clone)]
pub struct SafeTensorsFile {
    bytes: Vec<u8>,
    /// Offset of the data section in `bytes` (8 + header length).
    data_start: usize,
    header: Metadata,
}

impl SafeTensorsFile {
    /// Reads and validates the file at `path`.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the file cannot be read; [`Error::Format`] (naming the path) when
    /// its bytes are not a valid safetensors file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| Error::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        Self::from_bytes(bytes).map_err(|e| match e {
            Error::Format(message) => Error::Format(format!("{}: {message}", path.display())),
            other => other,
        })
    }

    /// Validates `bytes` as a safetensors file and takes ownership of them.
    ///
    /// # Errors
    ///
    /// [`Error::Format`] when the bytes are truncated, the header is not valid UTF-8 JSON of
    /// the format's schema, or the declared offsets, shapes and dtypes are inconsistent with
    /// each other or with the data section.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self> {
        let (header_len, header) = SafeTensors::read_metadata(&bytes)
            .map_err(|e| format_error("not a valid safetensors file", &e))?;
        // read_metadata checked that 8 + header_len + data length == bytes.len().
        let data_start = header_len
            .checked_add(8)
            .filter(|&start| start <= bytes.len())
            .ok_or_else(|| Error::Format("header length exceeds the file".to_string()))?;
        Ok(Self {
            bytes,
            data_start,
            header,
        })
    }

    /// The raw data section (every tensor's bytes, after the header), for integrity checks.
    #[must_use]
    pub fn data_section(&self) -> &[u8] {
        &self.bytes[self.data_start..]
    }

    /// The names of every tensor in the file, sorted.
    #[must_use]
    pub fn names(&self) -> Vec<String> {
        let mut names = self.header.offset_keys();
        names.sort_unstable();
        names
    }

    /// The number of tensors in the file.
    #[must_use]
    pub fn len(&self) -> usize {
        self.header.offset_keys().len()
    }

    /// Whether the file holds no tensors.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the file holds a tensor called `name`.
    #[must_use]
    pub fn contains(&self, name: &str) -> bool {
        self.header.info(name).is_some()
    }

    /// The file's free-form string metadata (the header's `__metadata__`), if it has any.
    #[must_use]
    pub fn metadata(&self) -> Option<&HashMap<String, String>> {
        self.header.metadata().as_ref()
    }

    /// The shape of tensor `name`.
    ///
    /// # Errors
    ///
    /// [`Error::MissingTensor`] when the file has no such tensor.
    pub fn shape(&self, name: &str) -> Result<&[usize]> {
        Ok(&self.info(name)?.shape)
    }

    /// The dtype of tensor `name`, as the format spells it (`F32`, `BF16`, `I8`, ...).
    ///
    /// # Errors
    ///
    /// [`Error::MissingTensor`] when the file has no such tensor.
    pub fn dtype(&self, name: &str) -> Result<String> {
        Ok(self.info(name)?.dtype.to_string())
    }

    /// Tensor `name` as f32, which must have shape `expected_shape`. `F32` is copied; `F16` and
    /// `BF16` are widened exactly.
    ///
    /// # Errors
    ///
    /// [`Error::MissingTensor`], [`Error::WrongDtype`] (a dtype other than F32, F16 or BF16),
    /// [`Error::WrongShape`].
    pub fn get_f32(&self, name: &str, expected_shape: &[usize]) -> Result<Vec<f32>> {
        let (info, data) = self.checked(name, &[Dtype::F32, Dtype::F16, Dtype::BF16])?;
        check_shape(name, info, expected_shape)?;
        Ok(decode_f32(info.dtype, data))
    }

    /// Tensor `name` as f32 with whatever shape the file gives it, returned alongside.
    ///
    /// # Errors
    ///
    /// [`Error::MissingTensor`], [`Error::WrongDtype`] (a dtype other than F32, F16 or BF16).
    pub fn get_f32_any_shape(&self, name: &str) -> Result<(Vec<f32>, Vec<usize>)> {
        let (info, data) = self.checked(name, &[Dtype::F32, Dtype::F16, Dtype::BF16])?;
        Ok((decode_f32(info.dtype, data), info.shape.clone()))
    }

    /// Tensor `name` as raw f16 values (dtype `F16` only), with shape `expected_shape`.
    ///
    /// # Errors
    ///
    /// [`Error::MissingTensor`], [`Error::WrongDtype`], [`Error::WrongShape`].
    pub fn get_f16(&self, name: &str, expected_shape: &[usize]) -> Result<Vec<f16>> {
        let data = self.raw(name, Dtype::F16, expected_shape)?;
        Ok(data
            .chunks_exact(2)
            .map(|b| f16::from_le_bytes([b[0], b[1]]))
            .collect())
    }

    /// Tensor `name` as i8 (dtype `I8` only), with shape `expected_shape`.
    ///
    /// # Errors
    ///
    /// [`Error::MissingTensor`], [`Error::WrongDtype`], [`Error::WrongShape`].
    pub fn get_i8(&self, name: &str, expected_shape: &[usize]) -> Result<Vec<i8>> {
        let data = self.raw(name, Dtype::I8, expected_shape)?;
        Ok(data.iter().map(|&b| i8::from_le_bytes([b])).collect())
    }

    /// Tensor `name` as u8 (dtype `U8` only), with shape `expected_shape`.
    ///
    /// # Errors
    ///
    /// [`Error::MissingTensor`], [`Error::WrongDtype`], [`Error::WrongShape`].
    pub fn get_u8(&self, name: &str, expected_shape: &[usize]) -> Result<Vec<u8>> {
        Ok(self.raw(name, Dtype::U8, expected_shape)?.to_vec())
    }

    /// Tensor `name` as i32 (dtype `I32` only), with shape `expected_shape`.
    ///
    /// # Errors
    ///
    /// [`Error::MissingTensor`], [`Error::WrongDtype`], [`Error::WrongShape`].
    pub fn get_i32(&self, name: &str, expected_shape: &[usize]) -> Result<Vec<i32>> {
        let data = self.raw(name, Dtype::I32, expected_shape)?;
        Ok(data
            .chunks_exact(4)
            .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect())
    }

    /// Tensor `name` as u32 (dtype `U32` only), with shape `expected_shape`.
    ///
    /// # Errors
    ///
    /// [`Error::MissingTensor`], [`Error::WrongDtype`], [`Error::WrongShape`].
    pub fn get_u32(&self, name: &str, expected_shape: &[usize]) -> Result<Vec<u32>> {
        let data = self.raw(name, Dtype::U32, expected_shape)?;
        Ok(data
            .chunks_exact(4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect())
    }

    /// The header entry of `name`, or [`Error::MissingTensor`].
    fn info(&self, name: &str) -> Result<&TensorInfo> {
        self.header.info(name).ok_or_else(|| Error::MissingTensor {
            name: name.to_string(),
            available: self.names(),
        })
    }

    /// The header entry and data bytes of `name`, whose dtype must be one of `accepted`.
    fn checked(&self, name: &str, accepted: &[Dtype]) -> Result<(&TensorInfo, &[u8])> {
        let info = self.info(name)?;
        if !accepted.contains(&info.dtype) {
            let expected = if accepted.len() == 1 {
                accepted[0].to_string()
            } else {
                FLOAT_DTYPES.to_string()
            };
            return Err(Error::WrongDtype {
                name: name.to_string(),
                found: info.dtype.to_string(),
                expected,
            });
        }
        let (start, end) = info.data_offsets;
        // Validated at construction; checked again so a logic error cannot become a panic.
        let data = self
            .data_start
            .checked_add(start)
            .zip(self.data_start.checked_add(end))
            .and_then(|(s, e)| self.bytes.get(s..e))
            .ok_or_else(|| {
                Error::Format(format!(
                    "tensor {name:?}: offsets {start}..{end} outside the data"
                ))
            })?;
        Ok((info, data))
    }

    /// The data bytes of `name`, which must have dtype `dtype` and shape `expected_shape`.
    fn raw(&self, name: &str, dtype: Dtype, expected_shape: &[usize]) -> Result<&[u8]> {
        let (info, data) = self.checked(name, &[dtype])?;
        check_shape(name, info, expected_shape)?;
        Ok(data)
    }
}

/// [`Error::WrongShape`] unless the tensor's shape is `expected`.
fn check_shape(name: &str, info: &TensorInfo, expected: &[usize]) -> Result<()> {
    if info.shape == expected {
        Ok(())
    } else {
        Err(Error::WrongShape {
            name: name.to_string(),
            expected: expected.to_vec(),
            found: info.shape.clone(),
        })
    }
}

/// Decodes little-endian F32, F16 or BF16 bytes to f32 (the 16-bit types widen exactly).
fn decode_f32(dtype: Dtype, data: &[u8]) -> Vec<f32> {
    match dtype {
        Dtype::F16 => data
            .chunks_exact(2)
            .map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        Dtype::BF16 => data
            .chunks_exact(2)
            .map(|b| bf16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        _ => data
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
    }
}
