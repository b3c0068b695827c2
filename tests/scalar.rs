//! Tests: scalar.
