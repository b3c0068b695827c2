//! CPU twin of WGSL's `dot4I8Packed`.

/// `dot4I8Packed(a, b)`: the sum of the four signed byte products of two packed words,
/// byte `i` of each word being element `i` (little-endian). Exact in i32.
pub fn dot4_i8_packed(a: u32, b: u32) -> i32 {
    let a = a.to_le_bytes();
    let b = b.to_le_bytes();
    (0..4)
        .map(|i| i32::from(a[i] as i8) * i32::from(b[i] as i8))
        .sum()
}
