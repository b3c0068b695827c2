//! Tests: fixed_point.
