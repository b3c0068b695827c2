//! Packing 8-bit tensors into `u32` words, the layout every kernel reads.
//!
//! Element `j` of a row is byte `j % 4` of word `j / 4` (little-endian), and every row is
//! padded to a multiple of 4 elements with zero bytes, so a row is `ceil(K / 4)` words and
//! both operands of a dot product are contiguous along K.
//!
//! U8 data enters the I8 domain by XOR-ing each byte with 0x80 (value - 128, exact) with the
//! zero point shifted by -128, so one signed kernel serves i8×i8, u8×u8 and u8×i8.
//! Padding is applied after the XOR, so padded bytes are 0 in the I8 domain; the kernel's
//! row sums and zero-point terms therefore count only the K real elements.

use crate::error::{Error, Result};
use crate::quant::qtype::QType;

/// Rejects `len != rows * cols`.
pub(crate) fn check_len(what: &str, len: usize, rows: usize, cols: usize) -> Result<()> {
    let expected = rows.checked_mul(cols).ok_or_else(|| Error::ShapeMismatch {
        what: what.into(),
        shape: vec![rows, cols],
        expected: usize::MAX,
        got: len,
    })?;
    if len == expected {
        Ok(())
    } else {
        Err(Error::ShapeMismatch {
            what: what.into(),
            shape: vec![rows, cols],
            expected,
            got: len,
        })
    }
}

/// Number of `u32` words per packed row of `cols` elements.
pub const fn words_per_row(cols: usize) -> usize {
    cols.div_ceil(4)
}

/// `x` as an I8-domain value: unchanged for I8, `x - 128` (XOR 0x80) for U8.
pub const fn to_i8_domain(byte: u8, qtype: QType) -> i8 {
    match qtype {
        QType::I8 => byte as i8,
        QType::U8 => (byte ^ 0x80) as i8,
    }
}

/// A zero point moved into the I8 domain (`zp - 128` for U8).
pub const fn zero_point_to_i8_domain(zero_point: i32, qtype: QType) -> i32 {
    zero_point - qtype.i8_domain_offset()
}

/// Packs raw bytes row by row (`rows × cols`, row-major) into words without changing them.
/// Used for kernel outputs, whose bytes are in the output's own storage type.
///
/// # Errors
/// [`Error::ShapeMismatch`] when `bytes.len() != rows * cols`.
pub fn pack_bytes(bytes: &[u8], rows: usize, cols: usize) -> Result<Vec<u32>> {
    check_len("pack_bytes input", bytes.len(), rows, cols)?;
    if cols == 0 {
        // Rows of no elements are no words (and `rows` may be anything: do not loop over it).
        return Ok(Vec::new());
    }
    let wpr = words_per_row(cols);
    let mut out = vec![0u32; rows * wpr];
    for r in 0..rows {
        for c in 0..cols {
            out[r * wpr + c / 4] |= u32::from(bytes[r * cols + c]) << (8 * (c % 4));
        }
    }
    Ok(out)
}

/// Unpacks `rows × cols` raw bytes from packed words (the inverse of [`pack_bytes`]).
///
/// # Errors
/// [`Error::ShapeMismatch`] when `words` is shorter than `rows * ceil(cols / 4)`;
/// [`Error::SizeOverflow`] when `rows * cols` overflows usize.
pub fn unpack_bytes(words: &[u32], rows: usize, cols: usize) -> Result<Vec<u8>> {
    let wpr = words_per_row(cols);
    let overflow = || Error::SizeOverflow {
        what: format!("unpack_bytes: {rows} rows * {cols} columns overflows usize"),
    };
    let needed = rows.checked_mul(wpr).ok_or_else(overflow)?;
    if words.len() < needed {
        return Err(Error::ShapeMismatch {
            what: "packed words".into(),
            shape: vec![rows, wpr],
            expected: needed,
            got: words.len(),
        });
    }
    // rows * wpr words exist, so rows * cols <= 4 * words.len() bytes: checked anyway.
    let total = rows.checked_mul(cols).ok_or_else(overflow)?;
    if total == 0 {
        return Ok(Vec::new());
    }
    let mut out = Vec::with_capacity(total);
    for r in 0..rows {
        for c in 0..cols {
            out.push((words[r * wpr + c / 4] >> (8 * (c % 4))) as u8);
        }
    }
    Ok(out)
}

/// Packs a quantized matrix into I8-domain words (XOR 0x80 for U8), rows padded with zeros.
///
/// # Errors
/// [`Error::ShapeMismatch`] when `bytes.len() != rows * cols`.
pub fn pack_i8_domain(bytes: &[u8], qtype: QType, rows: usize, cols: usize) -> Result<Vec<u32>> {
    let moved: Vec<u8> = bytes
        .iter()
        .map(|&b| to_i8_domain(b, qtype) as u8)
        .collect();
    pack_bytes(&moved, rows, cols)
}

/// Sum of each row's I8-domain values: `Σ_k w[n, k]`, computed once at weight upload.
///
/// # Errors
/// [`Error::ShapeMismatch`] when `bytes.len() != rows * cols`; [`Error::SizeOverflow`] when
/// `cols = 0` and `rows` sums cannot be allocated.
pub fn row_sums_i8_domain(
    bytes: &[u8],
    qtype: QType,
    rows: usize,
    cols: usize,
) -> Result<Vec<i32>> {
    check_len("row_sums input", bytes.len(), rows, cols)?;
    if cols == 0 {
        // One zero sum per row: `rows` is not bounded by the data here, so allocate fallibly.
        let mut sums = Vec::new();
        sums.try_reserve_exact(rows)
            .map_err(|e| Error::SizeOverflow {
                what: format!("row_sums: {rows} rows of 0 columns: {e}"),
            })?;
        sums.resize(rows, 0);
        return Ok(sums);
    }
    Ok((0..rows)
        .map(|r| {
            bytes[r * cols..(r + 1) * cols]
                .iter()
                .map(|&b| i32::from(to_i8_domain(b, qtype)))
                .sum()
        })
        .collect())
}

/// The bytes of an `i8` slice (a reinterpretation, no copy).
pub fn i8_as_bytes(data: &[i8]) -> &[u8] {
    bytemuck::cast_slice(data)
}
