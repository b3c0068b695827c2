//! Tests: f16.
