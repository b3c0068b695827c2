//! Tests: calibrate.
