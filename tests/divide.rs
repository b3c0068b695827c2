//! Tests: divide.
