//! The integer-arithmetic f32 → f16 twin equals `half::f16::from_f32`.

use half::f16;
use wgpu_quant::reference::f16::f32_to_f16_bits;

use crate::common::Rng;

fn agree(bits: u32) -> bool {
    let x = f32::from_bits(bits);
    let got = f32_to_f16_bits(x);
    let want = f16::from_f32(x).to_bits();
    // NaN stays NaN with its sign; payload rules are the same but compare classes to be
    // independent of half's hardware or software path.
    if x.is_nan() {
        (got & 0x7c00) == 0x7c00 && (got & 0x03ff) != 0 && (got >> 15) == (want >> 15)
    } else {
        got == want
    }
}

#[test]
fn edges_and_random_sample() {
    let edges = [
        0u32,
        0x8000_0000,
        0x7f80_0000,
        0xff80_0000,
        0x7fc0_0000,
        0x477f_e000,
        0x477f_f000,
        0x477f_efff,
        0x4780_0000,
        0x3380_0000,
        0x3380_0001,
        0x3300_0000,
        0x3300_0001,
        0x387f_e000,
        0x387f_f000,
        0x3880_0000,
        0x3f80_1000,
        0x3f80_3000,
        0x3f80_1001,
    ];
    for e in edges {
        assert!(agree(e) && agree(e ^ 0x8000_0000), "{:#010x}", e);
    }
    let mut rng = Rng::new(16);
    for _ in 0..2_000_000 {
        let b = rng.next_u32();
        assert!(agree(b), "{b:#010x}");
    }
}

/// All 2^32 inputs. `scripts/test.sh` runs it (`--include-ignored`).
#[test]
#[ignore = "exhaustive sweep; scripts/test.sh runs it with --include-ignored"]
fn exhaustive() {
    let handles: Vec<_> = (0..4u32)
        .map(|part| {
            std::thread::spawn(move || {
                let start = part << 30;
                (start..=start | 0x3fff_ffff).find(|&b| !agree(b))
            })
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), None);
    }
}
