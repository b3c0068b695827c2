//! Reading and writing tensors in the [safetensors](https://huggingface.co/docs/safetensors)
//! format.
//!
//! [`SafeTensorsFile`] owns a file's bytes and hands out typed copies of its tensors, checked
//! against the dtype and shape the caller expects; [`SafeTensorsWriter`] collects named tensors
//! and string metadata and serializes them. Header parsing and validation (offsets, overflow,
//! coverage of the data section) are the `safetensors` crate's, the format's reference
//! implementation, so a truncated or corrupt file is an [`Error::Format`],
//! never a panic or an out-of-bounds read.
//!
//! Floats are read as f32 from `F32`, `F16` or `BF16` tensors; both 16-bit types widen to f32
//! exactly (every f16 and bf16 value, NaN payloads aside, is an f32 value). Integer tensors
//! (`I8`, `U8`, `I32`, `U32`, for quantized weights, zero points and packed data) are read only
//! as their own dtype. Every value is little-endian, as the format specifies.
//!
//! ```
//! use wgpu_quant::io::{SafeTensorsFile, SafeTensorsWriter};
//!
//! # fn main() -> wgpu_quant::Result<()> {
//! let mut writer = SafeTensorsWriter::new();
//! writer
//!     .add_f32("fc.weight", &[0.5, -1.0, 2.0, 0.25, 1.5, -3.0], &[2, 3])?
//!     .add_i8("fc.weight_q", &[1, -2, 127, -127, 0, 5], &[2, 3])?
//!     .add_metadata("source", "doc example");
//! let bytes = writer.to_bytes()?;
//!
//! let file = SafeTensorsFile::from_bytes(bytes)?;
//! assert_eq!(file.names(), ["fc.weight", "fc.weight_q"]);
//! assert_eq!(file.get_f32("fc.weight", &[2, 3])?[2], 2.0);
//! assert_eq!(file.get_i8("fc.weight_q", &[2, 3])?[2], 127);
//! assert!(matches!(
//!     file.get_f32("fc.weight", &[3, 2]),
//!     Err(wgpu_quant::Error::WrongShape { .. })
//! ));
//! # Ok(())
//! # }
//! ```

mod reader;
mod writer;

pub use reader::SafeTensorsFile;
pub use writer::SafeTensorsWriter;

use crate::Error;

/// Maps a `safetensors` error to [`Error::Format`], naming where it came from.
fn format_error(context: &str, err: &safetensors::SafeTensorError) -> Error {
    Error::Format(format!("{context}: {err}"))
}
