//! Tests: gemm_reference.
