//! The observers on arbitrary batches: no panic; NaN/Inf/empty input is a typed error; an
//! observed range has min <= max and yields valid params under every convention.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wgpu_quant::quant::calibrate::{
    Entropy, HistogramL2, MinMax, MovingAverageMinMax, Mse, Observer, Percentile, RangeEstimator,
};
use wgpu_quant::{Convention, Error, QType, Scheme};

fn check<E: RangeEstimator>(estimator: E, batches: &[Vec<f32>]) {
    let mut obs = Observer::per_tensor(estimator);
    let mut observed = false;
    for b in batches {
        match obs.observe(b, &[b.len()]) {
            Ok(()) => observed = true,
            Err(Error::EmptyInput { .. } | Error::NonFiniteInput { .. }) => {
                assert!(b.is_empty() || b.iter().any(|v| !v.is_finite()));
            }
            Err(e) => panic!("unexpected error {e}"),
        }
    }
    if !observed {
        assert!(obs.ranges().is_err());
        return;
    }
    let (lo, hi) = obs.ranges().unwrap()[0];
    assert!(lo <= hi, "{lo} > {hi}");
    for convention in Convention::ALL {
        for scheme in [Scheme::affine(QType::U8), Scheme::symmetric(QType::I8)] {
            if let Ok(p) = obs.params(convention, &scheme) {
                assert!(p.scale(0).is_normal() && p.scale(0) > 0.0);
                assert!(p.range().contains(p.zero_point(0)));
            }
        }
    }
}

fuzz_target!(|data: Vec<Vec<f32>>| {
    let batches: Vec<Vec<f32>> = data.into_iter().take(6).map(|b| b.into_iter().take(512).collect()).collect();
    check(MinMax::new(), &batches);
    check(MovingAverageMinMax::torch(0.01).unwrap(), &batches);
    check(MovingAverageMinMax::onnxruntime(0.01, true).unwrap(), &batches);
    check(Percentile::new(99.9, 64, true).unwrap(), &batches);
    check(Percentile::new(99.0, 64, false).unwrap(), &batches);
    check(Entropy::new(64, 16).unwrap(), &batches);
    check(HistogramL2::new(64).unwrap(), &batches);
    check(Mse::new(64, 8).unwrap(), &batches);
});
