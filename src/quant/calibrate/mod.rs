//! Calibration observers (filled in below).
