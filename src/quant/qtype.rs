//! Storage types and quantized ranges.

use crate::error::{Error, Result};

/// The storage type of a quantized tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QType {
    /// Signed 8-bit, storage range [-128, 127].
    I8,
    /// Unsigned 8-bit, storage range [0, 255].
    U8,
}

impl QType {
    /// The full storage range `(min, max)`.
    pub const fn storage_range(self) -> (i32, i32) {
        match self {
            QType::I8 => (-128, 127),
            QType::U8 => (0, 255),
        }
    }

    /// The full range as a [`QRange`].
    pub const fn full_range(self) -> QRange {
        let (qmin, qmax) = self.storage_range();
        QRange {
            qtype: self,
            qmin,
            qmax,
        }
    }

    /// The narrow symmetric range: [-127, 127] for I8 (TFLite's weight range), [0, 255] for U8.
    pub const fn narrow_range(self) -> QRange {
        match self {
            QType::I8 => QRange {
                qtype: self,
                qmin: -127,
                qmax: 127,
            },
            QType::U8 => self.full_range(),
        }
    }

    /// A short name for messages.
    pub const fn name(self) -> &'static str {
        match self {
            QType::I8 => "i8",
            QType::U8 => "u8",
        }
    }

    /// The offset that maps this type's values into the signed I8 domain:
    /// `i8_value = stored - offset`. U8 data enters the I8 domain by XOR 0x80, i.e. value - 128.
    pub const fn i8_domain_offset(self) -> i32 {
        match self {
            QType::I8 => 0,
            QType::U8 => 128,
        }
    }
}

/// A clamp range `[qmin, qmax]` inside a storage type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct QRange {
    qtype: QType,
    qmin: i32,
    qmax: i32,
}

impl QRange {
    /// A custom range; it must be non-empty and inside the storage range.
    ///
    /// # Errors
    /// [`Error::InvalidRange`] when `qmin > qmax` or either end is outside the type.
    pub fn new(qtype: QType, qmin: i32, qmax: i32) -> Result<Self> {
        let (lo, hi) = qtype.storage_range();
        if qmin > qmax || qmin < lo || qmax > hi {
            return Err(Error::InvalidRange {
                qtype: qtype.name(),
                qmin,
                qmax,
            });
        }
        Ok(QRange { qtype, qmin, qmax })
    }

    /// The storage type.
    pub const fn qtype(self) -> QType {
        self.qtype
    }
    /// Lowest representable quantized value.
    pub const fn qmin(self) -> i32 {
        self.qmin
    }
    /// Highest representable quantized value.
    pub const fn qmax(self) -> i32 {
        self.qmax
    }
    /// Whether `v` lies in the range.
    pub const fn contains(self, v: i32) -> bool {
        self.qmin <= v && v <= self.qmax
    }
}
