//! Tests: matmul_f32.
