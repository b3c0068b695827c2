//! Packing: layout, padding, the u8 → i8 domain move, row sums, errors.

use wgpu_quant::quant::pack::{
    pack_bytes, pack_i8_domain, row_sums_i8_domain, to_i8_domain, unpack_bytes, words_per_row,
    zero_point_to_i8_domain,
};
use wgpu_quant::{Error, QType};

#[test]
fn little_endian_rows_padded_with_zero_bytes() {
    // 2 rows of 5: each row takes 2 words, the second holding 1 element and 3 zero bytes.
    let bytes = [1u8, 2, 3, 4, 5, 6, 7, 8, 9, 10];
    assert_eq!(words_per_row(5), 2);
    assert_eq!(
        pack_bytes(&bytes, 2, 5).unwrap(),
        vec![0x0403_0201, 0x0000_0005, 0x0908_0706, 0x0000_000a]
    );
    assert_eq!(
        unpack_bytes(&pack_bytes(&bytes, 2, 5).unwrap(), 2, 5).unwrap(),
        bytes
    );
}

#[test]
fn u8_enters_the_i8_domain_by_xor() {
    for b in 0..=255u8 {
        assert_eq!(i32::from(to_i8_domain(b, QType::U8)), i32::from(b) - 128);
        assert_eq!(to_i8_domain(b, QType::I8), b as i8);
    }
    assert_eq!(zero_point_to_i8_domain(128, QType::U8), 0);
    assert_eq!(zero_point_to_i8_domain(-5, QType::I8), -5);
    // Padding stays zero after the move: a 1-element u8 row packs 255 ^ 0x80 = 0x7f.
    assert_eq!(pack_i8_domain(&[255], QType::U8, 1, 1).unwrap(), vec![0x7f]);
}

#[test]
fn row_sums_in_the_i8_domain() {
    assert_eq!(
        row_sums_i8_domain(&[0, 255, 128, 1], QType::U8, 2, 2).unwrap(),
        vec![-1, -127]
    );
    assert_eq!(
        row_sums_i8_domain(&[0x80, 0x7f, 0xff], QType::I8, 1, 3).unwrap(),
        vec![-2]
    );
}

#[test]
fn shape_errors() {
    assert!(matches!(
        pack_bytes(&[1, 2, 3], 2, 2),
        Err(Error::ShapeMismatch {
            expected: 4,
            got: 3,
            ..
        })
    ));
    assert!(matches!(
        unpack_bytes(&[0], 2, 2),
        Err(Error::ShapeMismatch {
            expected: 2,
            got: 1,
            ..
        })
    ));
    assert!(matches!(
        row_sums_i8_domain(&[1], QType::I8, 1, 2),
        Err(Error::ShapeMismatch { .. })
    ));
}

/// Issue 10 §2: sizes that overflow, and zero columns with huge row counts, are typed errors
/// or empty results: never a panic, an abort or a loop over `rows`.
#[test]
fn huge_and_degenerate_shapes() {
    assert!(matches!(
        unpack_bytes(&[0], usize::MAX, 8),
        Err(Error::SizeOverflow { .. })
    ));
    assert!(matches!(
        unpack_bytes(&[0], 1 << 62, 16),
        Err(Error::SizeOverflow { .. })
    ));
    assert_eq!(unpack_bytes(&[], usize::MAX, 0).unwrap(), Vec::<u8>::new());
    assert_eq!(pack_bytes(&[], usize::MAX, 0).unwrap(), Vec::<u32>::new());
    assert!(matches!(
        pack_bytes(&[], usize::MAX, 2),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(
        row_sums_i8_domain(&[], QType::I8, usize::MAX, 0),
        Err(Error::SizeOverflow { .. })
    ));
    assert_eq!(
        row_sums_i8_domain(&[], QType::U8, 3, 0).unwrap(),
        vec![0, 0, 0]
    );
}
