//! Tests: dynamic.
