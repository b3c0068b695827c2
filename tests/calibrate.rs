//! Calibration observers: golden values from onnxruntime itself, and invariants.

use proptest::prelude::*;
use wgpu_quant::quant::calibrate::{
    Entropy, HistogramL2, MinMax, MovingAverageMinMax, Mse, Observer, Percentile, RangeEstimator,
    numpy_pairwise_sum_f32,
};
use wgpu_quant::{Convention, Error, QType, Scheme};

use crate::common::Rng;

/// The generator of `scripts/golden/ort_calibration.py`: exact f32 values from an LCG.
fn golden_batches(
    seed: u64,
    count: usize,
    size: usize,
    tail_every: u64,
    shift: i32,
) -> Vec<Vec<f32>> {
    let mut state = seed;
    (0..count)
        .map(|b| {
            (0..size)
                .map(|_| {
                    state = state
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    let u = ((state >> 40) & 0xff_ffff) as i64 - (1 << 23);
                    let mut x = u as f32 * 2f32.powi(-(shift + 20));
                    if tail_every != 0 && (state >> 8).is_multiple_of(tail_every) {
                        x *= 16.0;
                    }
                    x * (1.0 + b as f32)
                })
                .collect()
        })
        .collect()
}

/// `(case, method, lo bits, hi bits)` printed by `scripts/golden/ort_calibration.py`
/// (onnxruntime 1.31.1, numpy 2.4.6).
const ORT_GOLDEN: &[(&str, &str, u32, u32)] = &[
    (
        "uniform_one_batch",
        "percentile_sym",
        0xc0ffdca0,
        0x40ffdca0,
    ),
    (
        "uniform_one_batch",
        "percentile_sym_99",
        0xc0fd7ccc,
        0x40fd7ccc,
    ),
    (
        "uniform_one_batch",
        "percentile_asym_99",
        0xc0fdfca5,
        0x40fcfca8,
    ),
    (
        "uniform_one_batch",
        "entropy_2048_128",
        0xc0fff8a6,
        0x40fffc9e,
    ),
    (
        "uniform_one_batch",
        "entropy_512_64",
        0xc0fff8a6,
        0x40fffc9e,
    ),
    ("uniform_one_batch", "ort_mean", 0xc0fff8a6, 0x40fffc9e),
    (
        "tails_three_batches",
        "percentile_sym",
        0xc33c3476,
        0x433b110c,
    ),
    (
        "tails_three_batches",
        "percentile_sym_99",
        0xc1b4256b,
        0x41b4256b,
    ),
    (
        "tails_three_batches",
        "percentile_asym_99",
        0xc19fddc0,
        0x41cc24d8,
    ),
    (
        "tails_three_batches",
        "entropy_2048_128",
        0xc187a140,
        0x41881890,
    ),
    (
        "tails_three_batches",
        "entropy_512_64",
        0xc1f07f98,
        0x41f25cd8,
    ),
    ("tails_three_batches", "ort_mean", 0xc2f61491, 0x42eec3eb),
    (
        "narrow_four_batches",
        "percentile_sym",
        0xbfffd8e3,
        0x3fffd8e3,
    ),
    (
        "narrow_four_batches",
        "percentile_sym_99",
        0xbff5da23,
        0x3ff5da23,
    ),
    (
        "narrow_four_batches",
        "percentile_asym_99",
        0xbff663f8,
        0x3ff5d400,
    ),
    (
        "narrow_four_batches",
        "entropy_2048_128",
        0xbfffdc54,
        0x3ffffa48,
    ),
    (
        "narrow_four_batches",
        "entropy_512_64",
        0xbfffdc54,
        0x3ffffa48,
    ),
    ("narrow_four_batches", "ort_mean", 0xbf9fe0e5, 0x3f9fefee),
];

fn golden_case(name: &str) -> Vec<Vec<f32>> {
    match name {
        "uniform_one_batch" => golden_batches(1, 1, 4000, 0, 0),
        "tails_three_batches" => golden_batches(2, 3, 3000, 97, 1),
        "narrow_four_batches" => golden_batches(3, 4, 2000, 0, 4),
        other => panic!("unknown golden case {other}"),
    }
}

fn observe_all<E: RangeEstimator>(estimator: E, batches: &[Vec<f32>]) -> (f32, f32) {
    let mut obs = Observer::per_tensor(estimator);
    for b in batches {
        obs.observe(b, &[b.len()]).expect("observe");
    }
    obs.ranges().expect("range")[0]
}

#[test]
fn onnxruntime_golden_ranges() {
    let mut mismatches = Vec::new();
    for &(case, method, lo, hi) in ORT_GOLDEN {
        let data = golden_case(case);
        let got = match method {
            "percentile_sym" => observe_all(Percentile::onnxruntime_default(), &data),
            "percentile_sym_99" => observe_all(Percentile::new(99.0, 2048, true).unwrap(), &data),
            "percentile_asym_99" => observe_all(Percentile::new(99.0, 2048, false).unwrap(), &data),
            "entropy_2048_128" => observe_all(Entropy::tensorrt_default(), &data),
            "entropy_512_64" => observe_all(Entropy::new(512, 64).unwrap(), &data),
            "ort_mean" => observe_all(
                MovingAverageMinMax::onnxruntime(0.01, false).unwrap(),
                &data,
            ),
            other => panic!("unknown method {other}"),
        };
        let want = (f32::from_bits(lo), f32::from_bits(hi));
        if got.0.to_bits() != lo || got.1.to_bits() != hi {
            mismatches.push(format!(
                "{case}/{method}: got {got:?}, onnxruntime {want:?}"
            ));
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

#[test]
fn numpy_pairwise_sum_shapes() {
    // Below 8 elements: in order. 1e8 + 1 - 1e8 in f32 loses the 1.
    assert_eq!(numpy_pairwise_sum_f32(&[1e8, 1.0, -1e8]), 0.0);
    // 8..=128: eight accumulators; the pairing keeps the small values.
    let mut v = vec![1.0f32; 16];
    v[0] = 1e8;
    v[8] = -1e8;
    assert_eq!(numpy_pairwise_sum_f32(&v), 14.0);
    // Above 128 the halves are summed separately; an exactly representable sum is exact.
    let v: Vec<f32> = (0..1000).map(|i| i as f32).collect();
    assert_eq!(numpy_pairwise_sum_f32(&v), 499_500.0);
}

#[test]
fn minmax_streams_and_per_channel() {
    let mut obs = Observer::per_channel(MinMax::new(), 1);
    // shape [2, 3]: channel c holds elements c and c + 3.
    obs.observe(&[1.0, -2.0, 0.5, 3.0, 4.0, -0.5], &[2, 3])
        .unwrap();
    obs.observe(&[-1.0, 0.0, 0.0, 0.0, 9.0, 0.0], &[2, 3])
        .unwrap();
    assert_eq!(
        obs.ranges().unwrap(),
        vec![(-1.0, 3.0), (-2.0, 9.0), (-0.5, 0.5)]
    );
    // A changed channel count is an error naming both counts.
    assert!(matches!(
        obs.observe(&[0.0; 4], &[2, 2]),
        Err(Error::LengthMismatch {
            got: 2,
            expected: 3,
            ..
        })
    ));
}

#[test]
fn torch_ema_follows_the_formula() {
    let mut est = MovingAverageMinMax::torch(0.01).unwrap();
    est.update(&[-1.0, 2.0]).unwrap();
    est.update(&[-3.0, 4.0]).unwrap();
    let (lo, hi) = est.range().unwrap();
    assert_eq!(lo, -1.0f32 + 0.01f32 * (-3.0 - -1.0));
    assert_eq!(hi, 2.0f32 + 0.01f32 * (4.0 - 2.0));
}

#[test]
fn ort_ema_merges_calls() {
    let mut est = MovingAverageMinMax::onnxruntime(0.5, false).unwrap();
    est.update(&[-2.0, 2.0]).unwrap();
    est.update(&[-4.0, 6.0]).unwrap();
    est.end_call(); // first call: means (-3, 4)
    assert_eq!(est.range().unwrap(), (-3.0, 4.0));
    est.update(&[-1.0, 8.0]).unwrap();
    est.end_call(); // EMA: -3 + 0.5 * (-1 + 3) = -2; 4 + 0.5 * (8 - 4) = 6
    assert_eq!(est.range().unwrap(), (-2.0, 6.0));
}

#[test]
fn bad_calibration_input_is_a_typed_error() {
    let mut obs = Observer::per_tensor(MinMax::new());
    assert!(matches!(
        obs.observe(&[], &[0]),
        Err(Error::EmptyInput { .. })
    ));
    assert!(matches!(
        obs.observe(&[1.0, f32::NAN], &[2]),
        Err(Error::NonFiniteInput { index: 1, .. })
    ));
    assert!(matches!(
        obs.observe(&[f32::NEG_INFINITY], &[1]),
        Err(Error::NonFiniteInput { index: 0, .. })
    ));
    assert!(matches!(
        obs.observe(&[1.0, 2.0], &[3]),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(obs.ranges(), Err(Error::EmptyInput { .. })));
    let mut per_axis = Observer::per_channel(MinMax::new(), 2);
    assert!(matches!(
        per_axis.observe(&[1.0, 2.0], &[2]),
        Err(Error::AxisOutOfRange { axis: 2, rank: 1 })
    ));
    assert!(matches!(
        Percentile::new(0.0, 2048, true),
        Err(Error::InvalidConfig { .. })
    ));
    assert!(matches!(
        Percentile::new(100.5, 2048, true),
        Err(Error::InvalidConfig { .. })
    ));
    assert!(matches!(
        Percentile::new(99.0, 0, true),
        Err(Error::InvalidConfig { .. })
    ));
    assert!(matches!(
        Entropy::new(128, 256),
        Err(Error::InvalidConfig { .. })
    ));
    assert!(matches!(
        Entropy::new(0, 0),
        Err(Error::InvalidConfig { .. })
    ));
    assert!(matches!(
        HistogramL2::new(0),
        Err(Error::InvalidConfig { .. })
    ));
    assert!(matches!(
        Mse::new(2048, 2048),
        Err(Error::InvalidConfig { .. })
    ));
    assert!(matches!(
        MovingAverageMinMax::torch(0.0),
        Err(Error::InvalidConfig { .. })
    ));
}

#[test]
fn percentile_and_entropy_clip_a_lone_outlier() {
    let mut rng = Rng::new(7);
    let mut data = rng.normals(20_000, 1.0);
    data[123] = 1000.0;
    let one = std::slice::from_ref(&data);
    assert_eq!(observe_all(MinMax::new(), one).1, 1000.0);
    // Entropy over ±1000 in 2048 bins cannot cut below 64 bins (≈ 62.5), hence 200.
    for (name, (lo, hi)) in [
        (
            "percentile",
            observe_all(Percentile::new(99.9, 2048, true).unwrap(), one),
        ),
        ("entropy", observe_all(Entropy::tensorrt_default(), one)),
    ] {
        assert!(
            hi > 1.0 && hi < 200.0,
            "{name}: hi = {hi} should clip the outlier"
        );
        assert!(lo < -1.0 && lo > -200.0, "{name}: lo = {lo}");
    }
}

/// MSE trims a long thin tail: on Laplace data it ends well inside [min, max].
#[test]
fn mse_trims_a_heavy_tail() {
    let mut rng = Rng::new(11);
    let data: Vec<f32> = (0..50_000)
        .map(|_| {
            let u = rng.uniform(1e-7, 1.0);
            let sign = if rng.next_u32() & 1 == 0 { -1.0 } else { 1.0 };
            -u.ln() * sign
        })
        .collect();
    let one = std::slice::from_ref(&data);
    let (min, max) = observe_all(MinMax::new(), one);
    let (lo, hi) = observe_all(Mse::default_config(), one);
    let amax = (-min).max(max);
    // Symmetric: lo = -amax, which may lie below the data min on the shorter side.
    assert_eq!(lo, -hi);
    assert!(
        hi < 0.9 * amax && hi > 2.0,
        "amax = {hi}, data absmax = {amax}"
    );
}

/// torch's L2 search is greedy and stops at the first increase, so it keeps a sparse
/// extreme tail (one sample 300 bins out costs more to clip than it saves) but trims a dense
/// one: 1 % of the data spread uniformly over ±50 around N(0, 1). For that tail the L2
/// optimum is where the clipping cost `10 (50 - T)^3 / 3` and the step error
/// `50000 (2T / 256)^2 / 12` have equal slopes, T ≈ 49.2; the search must trim to near it.
#[test]
fn histogram_l2_trims_a_dense_tail() {
    let mut rng = Rng::new(12);
    let mut data = rng.normals(49_500, 1.0);
    data.extend((0..500).map(|_| rng.uniform(-50.0, 50.0)));
    let one = std::slice::from_ref(&data);
    let (min, max) = observe_all(MinMax::new(), one);
    let (lo, hi) = observe_all(HistogramL2::torch_default(), one);
    // It moves whichever side has more to cut, so one side may stay put.
    assert!(
        lo >= min && hi <= max && lo < -45.0 && hi > 45.0,
        "[{lo}, {hi}] vs [{min}, {max}]"
    );
    assert!(hi < max || lo > min, "nothing trimmed: [{lo}, {hi}]");
}

#[test]
fn mse_on_non_negative_data_is_unsigned() {
    let data: Vec<f32> = (0..5000).map(|i| (i % 100) as f32 * 0.01).collect();
    let (lo, hi) = observe_all(Mse::default_config(), &[data]);
    assert_eq!(lo, 0.0);
    assert!(hi > 0.5 && hi <= 1.0, "hi = {hi}");
}

fn all_observer_ranges(data: &[f32]) -> Vec<(&'static str, (f32, f32))> {
    let one = [data.to_vec()];
    vec![
        ("minmax", observe_all(MinMax::new(), &one)),
        (
            "torch_ema",
            observe_all(MovingAverageMinMax::torch(0.01).unwrap(), &one),
        ),
        (
            "ort_mean",
            observe_all(MovingAverageMinMax::onnxruntime(0.01, false).unwrap(), &one),
        ),
        (
            "percentile",
            observe_all(Percentile::onnxruntime_default(), &one),
        ),
        ("entropy", observe_all(Entropy::new(256, 32).unwrap(), &one)),
        (
            "histogram_l2",
            observe_all(HistogramL2::new(256).unwrap(), &one),
        ),
        ("mse", observe_all(Mse::new(256, 16).unwrap(), &one)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Every observer's params: the range includes 0 (zero is exactly representable: the
    /// zero point lies in the range), the scale is normal, and per-channel on one channel
    /// equals per-tensor.
    #[test]
    fn observer_params_invariants(
        data in prop::collection::vec(-50.0f32..50.0, 1..300),
        convention in prop::sample::select(Convention::ALL.to_vec()),
        symmetric in any::<bool>(),
    ) {
        let scheme = if symmetric { Scheme::symmetric(QType::I8) } else { Scheme::affine(QType::U8) };
        for (name, (lo, hi)) in all_observer_ranges(&data) {
            prop_assert!(lo <= hi, "{name}: {lo} > {hi}");
            // No case is out of scope here: every observer range of finite data gives params
            // under every convention and these two schemes, so an error is a failure.
            let params = wgpu_quant::QuantParams::from_range(convention, &scheme, lo, hi)
                .map_err(|e| TestCaseError::fail(format!("{name} [{lo}, {hi}] {convention:?}: {e}")))?;
            prop_assert!(params.scale(0).is_normal() && params.scale(0) > 0.0);
            prop_assert!(params.range().contains(params.zero_point(0)), "{name}");
        }
        let mut per_tensor = Observer::per_tensor(MinMax::new());
        let mut per_channel = Observer::per_channel(MinMax::new(), 0);
        per_tensor.observe(&data, &[data.len()]).unwrap();
        per_channel.observe(&data, &[1, data.len()]).unwrap();
        // Both must succeed: comparing two errors (`.ok()` on each side) would pass silently.
        let t = per_tensor.params(convention, &scheme).unwrap();
        let c = per_channel.params(convention, &scheme).unwrap();
        prop_assert_eq!(c.channels(), 1);
        prop_assert_eq!(
            t,
            wgpu_quant::QuantParams::per_tensor(c.scale(0), c.zero_point(0), c.range()).unwrap()
        );
    }
}

/// Found by the `observers` fuzz target: onnxruntime's clip-to-data rule inverts the
/// percentile range of a single tiny value; params still follow onnxruntime (range widened
/// to include 0: scale 1.0, zero point 0).
#[test]
fn inverted_percentile_range_gives_onnxruntime_params() {
    let mut obs = Observer::per_tensor(Percentile::onnxruntime_default());
    obs.observe(&[6.4e-44], &[1]).unwrap();
    let (lo, hi) = obs.ranges().unwrap()[0];
    assert!(lo > hi, "[{lo}, {hi}]");
    let p = obs
        .params(Convention::Onnx, &Scheme::affine(QType::U8))
        .unwrap();
    assert_eq!((p.scale(0), p.zero_point(0)), (1.0, 0));
}

/// Found by the `observers` fuzz target: onnxruntime's histogram grows without bound when a
/// first batch spans a tiny range and a later one a huge value (it would ask numpy for
/// ~10^38 edges). Here that is a typed error, and the observer keeps its earlier state.
#[test]
fn unbounded_histogram_growth_is_refused() {
    let mut pct = Observer::per_tensor(Percentile::onnxruntime_default());
    pct.observe(&[1.0, 1.000_000_1], &[2]).unwrap();
    assert!(
        matches!(pct.observe(&[1e30], &[1]), Err(Error::Calibration { what, .. }) if what.contains("bins"))
    );
    assert!(pct.ranges().is_ok());
    let mut ent = Observer::per_tensor(Entropy::tensorrt_default());
    ent.observe(&[1e-30], &[1]).unwrap();
    assert!(matches!(
        ent.observe(&[1e30], &[1]),
        Err(Error::Calibration { .. })
    ));
    assert!(ent.ranges().is_ok());
}

/// Found by the `observers` fuzz target: values near ±1.7e38 make the histogram's width
/// overflow f32 (numpy refuses such a range too); a typed error, never an infinite range.
#[test]
fn histogram_wider_than_f32_is_refused() {
    let mut ent = Observer::per_tensor(Entropy::tensorrt_default());
    ent.observe(&[-1.6e38], &[1]).unwrap(); // width 3.2e38 still fits f32
    let err = ent.observe(&[-1.72e38], &[1]).unwrap_err();
    assert!(matches!(err, Error::Calibration { .. }), "{err}");
    // A CPU calibration failure never claims an adapter problem.
    assert!(!err.to_string().contains("adapter"), "{err}");
    assert_eq!(ent.ranges().unwrap().len(), 1);
}

/// Issue 10 §1: a bin count is capped where the calibrator is built, with the reason.
#[test]
fn histogram_bin_counts_are_capped_at_construction() {
    use wgpu_quant::quant::calibrate::MAX_HISTOGRAM_BINS;
    let over = MAX_HISTOGRAM_BINS + 1;
    for (name, result) in [
        ("percentile", Percentile::new(99.0, over, true).map(|_| ())),
        (
            "percentile huge",
            Percentile::new(99.0, usize::MAX, false).map(|_| ()),
        ),
        ("entropy", Entropy::new(over, 128).map(|_| ())),
        ("entropy huge", Entropy::new(usize::MAX, 128).map(|_| ())),
        ("mse", Mse::new(over, 128).map(|_| ())),
        (
            "histogram_l2",
            HistogramL2::new(HistogramL2::MAX_BINS + 1).map(|_| ()),
        ),
        (
            "histogram_l2 huge",
            HistogramL2::new(usize::MAX).map(|_| ()),
        ),
    ] {
        let err = result.unwrap_err();
        assert!(
            matches!(&err, Error::InvalidConfig { reason, .. } if reason.contains("quadratic")),
            "{name}: {err}"
        );
    }
    assert!(Percentile::new(99.0, MAX_HISTOGRAM_BINS, true).is_ok());
    assert!(Entropy::new(MAX_HISTOGRAM_BINS, 128).is_ok());
    assert!(Mse::new(MAX_HISTOGRAM_BINS, 128).is_ok());
    assert!(HistogramL2::new(HistogramL2::MAX_BINS).is_ok());
}

/// Issue 10 §2/§3: shapes whose element count overflows, rank 0, axes out of range and zero
/// channels are typed errors (they used to panic or wrap).
#[test]
fn observer_shapes_are_checked() {
    use wgpu_quant::quant::calibrate::split_channels;
    for shape in [
        vec![usize::MAX, 2],
        vec![1 << 33, 1 << 33],
        vec![usize::MAX, usize::MAX, 0],
    ] {
        // An overflowing count is refused even when a zero elsewhere would wrap it to 0.
        let mut t = Observer::per_tensor(MinMax::new());
        let mut c = Observer::per_channel(MinMax::new(), 0);
        assert!(
            matches!(t.observe(&[1.0], &shape), Err(Error::SizeOverflow { .. })),
            "{shape:?}"
        );
        assert!(
            matches!(c.observe(&[1.0], &shape), Err(Error::SizeOverflow { .. })),
            "{shape:?}"
        );
        assert!(matches!(
            split_channels(&[1.0], &shape, 0),
            Err(Error::SizeOverflow { .. })
        ));
    }
    // Rank 0: a scalar of one element; per tensor it is observed, per channel it has no axis.
    let mut t = Observer::per_tensor(MinMax::new());
    t.observe(&[2.5], &[]).unwrap();
    assert_eq!(t.ranges().unwrap(), vec![(2.5, 2.5)]);
    let mut c = Observer::per_channel(MinMax::new(), 0);
    assert_eq!(
        c.observe(&[2.5], &[]),
        Err(Error::AxisOutOfRange { axis: 0, rank: 0 })
    );
    assert_eq!(
        split_channels(&[1.0, 2.0], &[2], 1),
        Err(Error::AxisOutOfRange { axis: 1, rank: 1 })
    );
    assert!(matches!(
        split_channels(&[], &[3, 0], 1),
        Err(Error::EmptyDimension { .. })
    ));
    assert!(matches!(
        split_channels(&[1.0], &[2, 0], 1),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(
        split_channels(&[1.0, 2.0, 3.0], &[2, 2], 0),
        Err(Error::ShapeMismatch { .. })
    ));
    assert_eq!(
        split_channels(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3], 1).unwrap(),
        vec![vec![1.0, 4.0], vec![2.0, 5.0], vec![3.0, 6.0]]
    );
}

/// Issue 10 §3: a per-channel observe that fails on a later channel leaves every channel as
/// it was (it used to update the channels before the failing one).
#[test]
fn failed_per_channel_observe_changes_nothing() {
    for estimator in [
        wgpu_quant::quant::calibrate::Calibrator::from(Percentile::onnxruntime_default()),
        Entropy::tensorrt_default().into(),
        Mse::default_config().into(),
    ] {
        let mut obs = Observer::per_channel(estimator, 0);
        // Two channels of two values each; both span a tiny range.
        obs.observe(&[1.0, 1.000_000_1, 1e-30, 2e-30], &[2, 2])
            .unwrap();
        let before = format!("{obs:?}");
        let ranges = obs.ranges().unwrap();
        // Channel 0 takes its values; channel 1's huge value would grow its histogram past
        // the cap: the whole observe fails.
        let err = obs.observe(&[1.0, 0.5, 1e30, 1e-30], &[2, 2]).unwrap_err();
        assert!(matches!(err, Error::Calibration { .. }), "{err}");
        assert_eq!(
            format!("{obs:?}"),
            before,
            "a failed observe changed the observer"
        );
        assert_eq!(obs.ranges().unwrap(), ranges);
    }
}

/// The histogram helpers are total: zero bins, empty input and inconsistent histograms are
/// typed errors, not panics.
#[test]
fn histogram_helpers_refuse_degenerate_input() {
    use wgpu_quant::quant::calibrate::OrtHistogram;
    use wgpu_quant::quant::calibrate::{bin_values, entropy_threshold};
    let mut none = None;
    assert!(OrtHistogram::collect_value(&mut none, &[1.0], 0).is_err());
    assert!(OrtHistogram::collect_value(&mut none, &[], 8).is_err());
    assert!(OrtHistogram::collect_absolute_value(&mut none, &[f32::NAN], 8).is_err());
    assert!(none.is_none());
    assert!(bin_values(&mut [], &[0.0], [1.0].into_iter()).is_err());
    assert!(bin_values(&mut [0, 0], &[0.0, 1.0], [1.0].into_iter()).is_err());
    let empty = OrtHistogram {
        counts: vec![],
        edges: vec![],
        min: 0.0,
        max: 0.0,
        threshold: 0.0,
    };
    assert!(entropy_threshold(&empty, 1).is_err());
    let mut h = None;
    OrtHistogram::collect_value(&mut h, &[-1.0, 0.5, 1.0], 8).unwrap();
    let h = h.unwrap();
    assert!(entropy_threshold(&h, 0).is_err());
    assert!(entropy_threshold(&h, 9).is_err());
    assert!(entropy_threshold(&h, 8).is_ok());
}

/// onnxruntime `MinMaxCalibrater(symmetric=True)`: `±max(|min|, |max|)`.
#[test]
fn minmax_symmetric_is_onnxruntimes_range() {
    let mut est = MinMax::symmetric();
    assert!(est.range().is_err());
    est.update(&[-3.0, 1.0]).unwrap();
    assert_eq!(est.range().unwrap(), (-3.0, 3.0));
    est.update(&[5.5, 0.0]).unwrap();
    assert_eq!(est.range().unwrap(), (-5.5, 5.5));
    let mut obs = Observer::per_channel(MinMax::symmetric(), 1);
    obs.observe(&[1.0, -2.0, 0.0, 0.25], &[2, 2]).unwrap();
    assert_eq!(obs.ranges().unwrap(), vec![(-1.0, 1.0), (-2.0, 2.0)]);
}

/// onnxruntime flattens the arrays of one `collect_data` call into one histogram update:
/// per-call collection of a call equals one observe of the concatenated data, and a call per
/// batch equals per-observe collection (the golden values pin that mode).
#[test]
fn per_call_histogram_collection_flattens_a_call() {
    use wgpu_quant::quant::calibrate::{Calibrator, HistogramCollection};
    let data = golden_case("tails_three_batches");
    let flat: Vec<f32> = data.concat();
    let estimators: Vec<(&str, Calibrator, Calibrator)> = vec![
        (
            "percentile_sym",
            Percentile::onnxruntime_default().into(),
            Percentile::onnxruntime_default()
                .with_collection(HistogramCollection::PerCall)
                .into(),
        ),
        (
            "percentile_asym",
            Percentile::new(99.0, 2048, false).unwrap().into(),
            Percentile::new(99.0, 2048, false)
                .unwrap()
                .with_collection(HistogramCollection::PerCall)
                .into(),
        ),
        (
            "entropy",
            Entropy::new(512, 64).unwrap().into(),
            Entropy::new(512, 64)
                .unwrap()
                .with_collection(HistogramCollection::PerCall)
                .into(),
        ),
        (
            "mse",
            Mse::default_config().into(),
            Mse::default_config()
                .with_collection(HistogramCollection::PerCall)
                .into(),
        ),
    ];
    for (name, per_observe, per_call) in estimators {
        // One call holding all batches == one observe of the flattened data.
        let mut one_call = Observer::per_tensor(per_call.clone());
        for b in &data {
            one_call.observe(b, &[b.len()]).unwrap();
        }
        let pending = one_call.ranges().unwrap();
        one_call.end_call();
        let mut flat_obs = Observer::per_tensor(per_observe.clone());
        flat_obs.observe(&flat, &[flat.len()]).unwrap();
        assert_eq!(
            one_call.ranges().unwrap(),
            flat_obs.ranges().unwrap(),
            "{name}"
        );
        assert_eq!(pending, flat_obs.ranges().unwrap(), "{name}: pending call");
        // A call per batch == per-observe merging.
        let mut calls = Observer::per_tensor(per_call);
        let mut merged = Observer::per_tensor(per_observe);
        for b in &data {
            calls.observe(b, &[b.len()]).unwrap();
            calls.end_call();
            merged.observe(b, &[b.len()]).unwrap();
        }
        assert_eq!(calls.ranges().unwrap(), merged.ranges().unwrap(), "{name}");
    }
    // The modes differ where the merge order matters: growing batches merged per observe
    // re-bin the old counts; flattened, every value is binned once over the final range.
    let mut a = Percentile::new(99.0, 2048, false).unwrap();
    let mut b = Percentile::new(99.0, 2048, false)
        .unwrap()
        .with_collection(HistogramCollection::PerCall);
    for batch in &data {
        a.update(batch).unwrap();
        b.update(batch).unwrap();
    }
    assert!(b.histogram().is_none(), "the call has not ended");
    b.end_call();
    let (ha, hb) = (a.histogram().unwrap(), b.histogram().unwrap());
    assert_eq!(ha.counts.iter().sum::<u64>(), hb.counts.iter().sum::<u64>());
    assert_ne!(ha.counts, hb.counts);
}

/// A per-call observe whose call would grow the histogram past the cap fails at observe time
/// (the call's range is checked), and leaves the pending call unchanged.
#[test]
fn per_call_collection_fails_at_observe_time() {
    use wgpu_quant::quant::calibrate::HistogramCollection;
    let mut obs = Observer::per_tensor(
        Percentile::onnxruntime_default().with_collection(HistogramCollection::PerCall),
    );
    obs.observe(&[1.0, 1.000_000_1], &[2]).unwrap();
    obs.end_call();
    let before = obs.ranges().unwrap();
    obs.observe(&[1.0], &[1]).unwrap();
    assert!(matches!(
        obs.observe(&[1e30], &[1]),
        Err(Error::Calibration { .. })
    ));
    obs.end_call();
    assert_eq!(obs.ranges().unwrap(), before);
}

/// torch's `_non_linear_param_search` ends in f32 tensor arithmetic:
/// `bw = (max - min) / bins`, `new_min = min + bw * start`, `new_max = min + bw * (end + 1)`.
/// The range must be exactly that for some `start <= end`, and on some data the f64 form of
/// the same step differs (the crate used to compute it in f64: an ulp off).
#[test]
fn histogram_l2_final_range_is_torchs_f32_arithmetic() {
    let bins = 2048usize;
    let mut differs = 0;
    for seed in 0..12u64 {
        let mut rng = Rng::new(100 + seed);
        let scale = 0.37 + seed as f32 * 1.13;
        let mut data = rng.normals(6000, scale);
        data.push(-3.3 * scale - 0.01 * seed as f32);
        data.push(2.9 * scale + 0.07);
        let one = std::slice::from_ref(&data);
        let (min, max) = observe_all(MinMax::new(), one);
        let (lo, hi) = observe_all(HistogramL2::torch_default(), one);
        let bw = (max - min) / bins as f32;
        let f32_at = |i: usize| min + bw * i as f32;
        let f64_at = |i: usize| {
            let (a, b) = (f64::from(min), f64::from(max));
            (a + (b - a) / bins as f64 * i as f64) as f32
        };
        let start = (0..bins).find(|&i| f32_at(i) == lo);
        let end1 = (1..=bins).find(|&i| f32_at(i) == hi);
        let (Some(start), Some(end1)) = (start, end1) else {
            panic!("seed {seed}: [{lo}, {hi}] is not torch's f32 range over [{min}, {max}]");
        };
        assert!(start < end1, "seed {seed}");
        if f64_at(start) != lo || f64_at(end1) != hi {
            differs += 1;
        }
    }
    assert!(differs > 0, "no case tells f32 from f64; pick other data");
}

/// Found by the `observers` fuzz target: the frameworks' f32 moving averages overflow for
/// values near ±`f32::MAX` (then Inf - Inf = NaN across calls). The update that would do so is
/// a typed error and changes nothing; the range is never NaN or infinite.
#[test]
fn moving_average_overflow_is_refused() {
    let huge = [-3.0e38f32, 3.0e38];
    let mut ort = Observer::per_tensor(MovingAverageMinMax::onnxruntime(0.5, true).unwrap());
    ort.observe(&huge, &[2]).unwrap();
    let before = format!("{ort:?}");
    // Two batches of -3e38 in one call: their f32 sum overflows, so the mean would be -Inf.
    let err = ort.observe(&huge, &[2]).unwrap_err();
    assert!(matches!(err, Error::Calibration { .. }), "{err}");
    assert_eq!(format!("{ort:?}"), before);
    ort.end_call();
    assert_eq!(ort.ranges().unwrap(), vec![(-3.0e38, 3.0e38)]);
    let mut torch = Observer::per_tensor(MovingAverageMinMax::torch(1.0).unwrap());
    torch.observe(&[-f32::MAX, 0.0], &[2]).unwrap();
    // min + 1.0 * (f32::MAX - min) overflows: new - old = 2 * f32::MAX.
    let err = torch.observe(&[f32::MAX], &[1]).unwrap_err();
    assert!(matches!(err, Error::Calibration { .. }), "{err}");
    assert_eq!(torch.ranges().unwrap(), vec![(-f32::MAX, 0.0)]);
    for (lo, hi) in [ort.ranges().unwrap()[0], torch.ranges().unwrap()[0]] {
        assert!(lo.is_finite() && hi.is_finite());
    }
}
