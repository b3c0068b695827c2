//! The exact integer-arithmetic division equals IEEE `/` bit for bit (NaN payloads aside:
//! every NaN result is the canonical quiet NaN).

use proptest::prelude::*;
use wgpu_quant::quant::divide::{CANONICAL_NAN_BITS, div_f32_exact, div_f32_exact_bits};

use crate::common::Rng;

fn check(a: u32, b: u32) -> Result<(), String> {
    let want = f32::from_bits(a) / f32::from_bits(b);
    let got = div_f32_exact_bits(a, b);
    let ok = if want.is_nan() {
        got == CANONICAL_NAN_BITS
    } else {
        got == want.to_bits()
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{:e} / {:e}: got {:#010x} ({:e}), IEEE {:#010x} ({want:e})",
            f32::from_bits(a),
            f32::from_bits(b),
            got,
            f32::from_bits(got),
            want.to_bits()
        ))
    }
}

/// Special values, powers of two, subnormals at every scale, overflow and underflow edges.
fn edge_values() -> Vec<u32> {
    let mut v = vec![
        0,
        0x8000_0000,
        0x7f80_0000,
        0xff80_0000,
        0x7fc0_0000,
        0x7f80_0001,
        0xffc0_1234,
        1,
        2,
        3,
        0x007f_ffff,
        0x0040_0000,
        0x0080_0000,
        0x0080_0001,
        0x7f7f_ffff,
        0x7f7f_fffe,
        0x3f80_0000,
        0x3f80_0001,
        0x3f7f_ffff,
        0x4040_0000,
        0x4000_0000,
        0x3f00_0000,
        0x4b00_0000,
        0x4b7f_ffff,
        0x437f_0000,
        0x42fe_0000,
        0x3c80_8081,
    ];
    for e in 0..=254u32 {
        v.push(e << 23);
        v.push((e << 23) | 0x0055_5555);
    }
    for s in 0..23 {
        v.push(1 << s);
        v.push((1 << s) | 1);
    }
    let negatives: Vec<u32> = v.iter().map(|x| x ^ 0x8000_0000).collect();
    v.extend(negatives);
    v
}

#[test]
fn edge_cases_all_pairs() {
    let values = edge_values();
    let failures: Vec<String> = values
        .iter()
        .flat_map(|&a| values.iter().map(move |&b| check(a, b)))
        .filter_map(Result::err)
        .take(10)
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(values.len() > 1000);
}

/// Ties at the rounding point: quotients whose exact value lies half-way between two
/// floats cannot occur for a / b with 24-bit significands (the quotient of two odd
/// significands is never a half-integer multiple), but subnormal results can be exact
/// halves: 2^-149 / 2 is a tie that rounds to even (zero), 3·2^-149 / 2 rounds up to 2·2^-149.
#[test]
fn subnormal_ties_round_to_even() {
    assert_eq!(div_f32_exact(f32::from_bits(1), 2.0).to_bits(), 0);
    assert_eq!(div_f32_exact(f32::from_bits(3), 2.0).to_bits(), 2);
    assert_eq!(div_f32_exact(f32::from_bits(5), 2.0).to_bits(), 2);
    assert_eq!(div_f32_exact(f32::from_bits(7), 2.0).to_bits(), 4);
    assert_eq!(
        div_f32_exact(f32::from_bits(1), -2.0).to_bits(),
        0x8000_0000
    );
    // The results the quantizers need most: x / 255 and 1 / s.
    assert_eq!(div_f32_exact(6.0, 255.0), 6.0f32 / 255.0);
    assert_eq!(div_f32_exact(1.0, 0.1), 1.0f32 / 0.1);
}

fn random_sweep(seed: u64, pairs: usize) {
    let mut rng = Rng::new(seed);
    let mut failures = Vec::new();
    for i in 0..pairs {
        let (a, b) = match i % 4 {
            // Uniform bit patterns: every exponent, NaN, Inf, subnormals.
            0 => (rng.next_u32(), rng.next_u32()),
            // Similar magnitudes: quotients near 1, where rounding is subtle.
            1 => {
                let a = rng.next_u32() & 0x807f_ffff | 0x3f80_0000;
                (a, rng.next_u32() & 0x807f_ffff | 0x3f80_0000)
            }
            // Results near the subnormal range.
            2 => (
                rng.next_u32() & 0x83ff_ffff,
                (rng.next_u32() & 0x807f_ffff) | (rng.int(127, 200) as u32) << 23,
            ),
            // Results near overflow.
            _ => (
                rng.next_u32() & 0x807f_ffff | 0x7e00_0000,
                rng.next_u32() & 0x807f_ffff | (rng.int(0, 126) as u32) << 23,
            ),
        };
        if let Err(e) = check(a, b) {
            failures.push(e);
            if failures.len() == 10 {
                break;
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn random_pairs_sample() {
    random_sweep(0x5eed, 200_000);
}

/// The full sweep: 10^7 pairs. `scripts/test.sh` runs it (`--include-ignored`).
#[test]
#[ignore = "long sweep; scripts/test.sh runs it with --include-ignored"]
fn random_pairs_ten_million() {
    random_sweep(0xd1_71de, 10_000_000);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]
    #[test]
    fn any_bit_patterns(a in any::<u32>(), b in any::<u32>()) {
        prop_assert_eq!(check(a, b), Ok(()));
    }
}

mod add {
    //! The exact non-negative addition equals IEEE `+`.
    use proptest::prelude::*;
    use wgpu_quant::quant::add::add_nonneg_f32_exact_bits;

    use crate::common::Rng;

    fn check(a: u32, b: u32) -> Result<(), String> {
        let want = (f32::from_bits(a) + f32::from_bits(b)).to_bits();
        let got = add_nonneg_f32_exact_bits(a, b);
        if got == want {
            Ok(())
        } else {
            Err(format!(
                "{a:#010x} + {b:#010x}: got {got:#010x}, IEEE {want:#010x}"
            ))
        }
    }

    fn sweep(seed: u64, pairs: usize) {
        let mut rng = Rng::new(seed);
        for i in 0..pairs {
            let (a, b) = match i % 3 {
                0 => (rng.next_u32() % 0x7f80_0000, rng.next_u32() % 0x7f80_0000),
                // Close exponents: carries and ties.
                1 => {
                    let a = rng.next_u32() % 0x7f00_0000;
                    (a, (a & 0x7f80_0000) | (rng.next_u32() & 0x007f_ffff))
                }
                // Subnormals and the normal boundary.
                _ => (rng.next_u32() % 0x0100_0000, rng.next_u32() % 0x0100_0000),
            };
            check(a, b).unwrap();
        }
    }

    #[test]
    fn edges() {
        let v = [
            0u32,
            1,
            2,
            0x007f_ffff,
            0x0080_0000,
            0x0080_0001,
            0x3f80_0000,
            0x3f80_0001,
            0x4b80_0000,
            0x3380_0000,
            0x3400_0000,
            0x7f7f_ffff,
            0x7f7f_fffe,
            0x7f00_0000,
            0x0c00_0000,
        ];
        for &a in &v {
            for &b in &v {
                check(a, b).unwrap();
            }
        }
        for e in 0..255u32 {
            for f in [0u32, 1, 0x40_0000, 0x7f_ffff] {
                check(e << 23 | f, 0x3f80_0000).unwrap();
                check(e << 23 | f, e << 23 | 1).unwrap();
            }
        }
    }

    #[test]
    fn random_sample() {
        sweep(7, 300_000);
    }

    #[test]
    #[ignore = "long sweep; scripts/test.sh runs it with --include-ignored"]
    fn random_ten_million() {
        sweep(8, 10_000_000);
    }

    proptest! {
        #[test]
        fn any_non_negative(a in 0u32..0x7f80_0000, b in 0u32..0x7f80_0000) {
            prop_assert_eq!(check(a, b), Ok(()));
        }
    }
}
