//! The numerics core: types, parameters, conventions, fixed point, exact division, packing
//! and calibration. CPU only; nothing here depends on wgpu, so it can be used on its own.

pub mod add;
pub mod calibrate;
pub mod convention;
pub mod divide;
pub mod epilogue;
pub mod fixed_point;
pub mod pack;
pub mod params;
pub mod qtype;
pub mod scalar;
