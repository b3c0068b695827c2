//! The observers on arbitrary batches: no panic; NaN/Inf/empty input is a typed error; an
//! observed range has min <= max and yields valid params under every convention.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wgpu_quant::quant::calibrate::{
    Entropy, HistogramCollection, HistogramL2, MinMax, MovingAverageMinMax, Mse, Observer,
    Percentile, RangeEstimator,
};
use wgpu_quant::{Convention, Error, QType, QuantParams, Scheme};

/// `clips`: the estimator ends with onnxruntime's clip to the data range, which may invert a
/// range lying within one bin of zero (documented); params must still be valid.
fn check<E: RangeEstimator>(estimator: E, batches: &[Vec<f32>], clips: bool) {
    check_per_channel(estimator.clone(), batches);
    let mut obs = Observer::per_tensor(estimator);
    let mut observed = false;
    for (i, b) in batches.iter().enumerate() {
        let before = format!("{obs:?}");
        match obs.observe(b, &[b.len()]) {
            Ok(()) => observed = true,
            Err(e) => {
                // A failed observe changes nothing.
                assert_eq!(format!("{obs:?}"), before, "{e}");
                match e {
                    Error::EmptyInput { .. } | Error::NonFiniteInput { .. } => {
                        assert!(b.is_empty() || b.iter().any(|v| !v.is_finite()));
                    }
                    // Histograms refuse growth past MAX_HISTOGRAM_BINS and widths beyond f32.
                    Error::Calibration { .. } => {}
                    e => panic!("unexpected error {e}"),
                }
            }
        }
        // Every other batch ends a calibration call (per-call collection, onnxruntime mean).
        if i % 2 == 1 {
            obs.end_call();
        }
    }
    if !observed {
        assert!(obs.ranges().is_err());
        return;
    }
    let (lo, hi) = obs.ranges().unwrap()[0];
    assert!(lo <= hi || clips, "{lo} > {hi}");
    // `Observer::params` is `from_range` of the range widened to include 0; calling it once
    // and `from_range` for the rest keeps a unit from repeating the (quadratic) entropy
    // search seven times.
    let first = obs.params(Convention::Onnx, &Scheme::affine(QType::U8));
    let direct = QuantParams::from_range(
        Convention::Onnx,
        &Scheme::affine(QType::U8),
        lo.min(0.0),
        hi.max(0.0),
    );
    assert_eq!(first, direct);
    for convention in Convention::ALL {
        for scheme in [Scheme::affine(QType::U8), Scheme::symmetric(QType::I8)] {
            match QuantParams::from_range(convention, &scheme, lo.min(0.0), hi.max(0.0)) {
                Ok(p) => {
                    assert!(p.scale(0).is_normal() && p.scale(0) > 0.0);
                    assert!(p.range().contains(p.zero_point(0)));
                }
                // Only a range whose scale leaves the normal f32 range may be refused: too wide
                // (the width overflows) or so narrow that TFLite's amax / 127 underflows
                // (onnxruntime and torch have floors; TFLite does not).
                Err(Error::InvalidScale { .. }) => {
                    let amax = lo.abs().max(hi.abs());
                    assert!(amax > 1e30 || amax < 1e-30, "[{lo}, {hi}] {convention:?}");
                }
                // onnxruntime's f32 mean of per-batch extremes can overflow to ±Inf.
                Err(Error::NonFiniteInput { .. }) if !(lo.is_finite() && hi.is_finite()) => {}
                Err(e) => panic!("[{lo}, {hi}] {convention:?}: {e}"),
            }
        }
    }
}

/// Per channel: the batches cut into two channels (axis 1 of `[len / 2, 2]`); a failed
/// observe changes nothing, and a successful one gives one range per channel.
fn check_per_channel<E: RangeEstimator>(estimator: E, batches: &[Vec<f32>]) {
    let mut obs = Observer::per_channel(estimator, 1);
    let mut observed = false;
    for b in batches {
        let rows = b.len() / 2;
        let before = format!("{obs:?}");
        match obs.observe(&b[..rows * 2], &[rows, 2]) {
            Ok(()) => observed = true,
            Err(_) => assert_eq!(format!("{obs:?}"), before),
        }
    }
    if observed {
        let ranges = obs.ranges();
        assert!(ranges.as_ref().map_or(true, |r| r.len() == 2), "{ranges:?}");
    }
}

fuzz_target!(|data: Vec<Vec<f32>>| {
    let batches: Vec<Vec<f32>> = data
        .into_iter()
        .take(6)
        .map(|b| b.into_iter().take(512).collect())
        .collect();
    check(MinMax::new(), &batches, false);
    check(MinMax::symmetric(), &batches, false);
    check(
        Percentile::new(99.9, 64, true)
            .unwrap()
            .with_collection(HistogramCollection::PerCall),
        &batches,
        true,
    );
    check(
        Entropy::new(64, 16)
            .unwrap()
            .with_collection(HistogramCollection::PerCall),
        &batches,
        true,
    );
    check(
        Mse::new(64, 8)
            .unwrap()
            .with_collection(HistogramCollection::PerCall),
        &batches,
        false,
    );
    check(MovingAverageMinMax::torch(0.01).unwrap(), &batches, false);
    check(
        MovingAverageMinMax::onnxruntime(0.01, true).unwrap(),
        &batches,
        false,
    );
    check(Percentile::new(99.9, 64, true).unwrap(), &batches, true);
    check(Percentile::new(99.0, 64, false).unwrap(), &batches, true);
    check(Entropy::new(64, 16).unwrap(), &batches, true);
    check(HistogramL2::new(64).unwrap(), &batches, false);
    check(Mse::new(64, 8).unwrap(), &batches, false);
});
