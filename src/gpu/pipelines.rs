//! The typed pipeline-cache key: every specialisation value of every kernel, so a pipeline
//! is built once per distinct variant and never per call.

use crate::error::Result;
use crate::gpu::shader::{ConstValue, assemble_with_imports, build_pipeline};
use crate::quant::convention::{Convention, NanPolicy, RoundMode, ScaleOp};

/// One compiled kernel variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PipelineKey {
    /// Static quantize under a convention.
    Quantize {
        /// The convention (scale op, rounding, NaN policy).
        convention: Convention,
    },
    /// Dequantize of signed or unsigned storage.
    Dequantize {
        /// I8 storage (sign-extend) or U8.
        signed: bool,
    },
    /// Dequantize of an int32 tensor (no zero point): `f32(q) * s`.
    DequantizeI32,
    /// The int8 GEMM with one epilogue.
    MatmulI8(MatmulVariant),
    /// Dynamic quantization per row in one pass: a workgroup per row reduces its range,
    /// derives its scale and zero point and quantizes it.
    DynamicRow {
        /// Symmetric per-token (else ONNX `DynamicQuantizeLinear`).
        symmetric: bool,
        /// Invocations per workgroup (one workgroup per row).
        workgroup: u32,
    },
    /// Dynamic quantization per tensor, pass 1: the tensor's range.
    DynamicRange {
        /// Symmetric per-token (else ONNX `DynamicQuantizeLinear`).
        symmetric: bool,
    },
    /// Dynamic quantization per tensor, pass 2: the scale and zero point.
    DynamicParams {
        /// Symmetric per-token (else ONNX `DynamicQuantizeLinear`).
        symmetric: bool,
    },
    /// Dynamic quantization per tensor, pass 3: quantize.
    DynamicQuantize {
        /// Symmetric per-token (else ONNX `DynamicQuantizeLinear`).
        symmetric: bool,
    },
    /// Elementwise exact division.
    Divide,
    /// The FP32 baseline GEMM (not bit-exact: held to the written bound).
    MatmulF32 {
        /// Adds an f32 bias.
        has_bias: bool,
        /// The GEMV shape (M <= 3).
        gemv: bool,
        /// 16-byte loads of A (K % 4 == 0); else one f32 per load, any K.
        vec4: bool,
    },
}

/// The specialisation of `shaders/matmul_i8.wgsl`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MatmulVariant {
    /// The epilogue.
    pub epilogue: EpilogueKind,
    /// Activations stored as U8 (XOR into the I8 domain in the kernel).
    pub a_is_u8: bool,
    /// Dequantize with per-row activation scales (`s_a[m] * s_w[n]`).
    pub dynamic_rows: bool,
    /// One activation zero point per row (dynamic asymmetric quantization).
    pub per_row_zero_point: bool,
    /// An f32 bias after the dequantizing scale.
    pub float_bias: bool,
    /// 16-byte operand loads (rows of whole vec4s: `ceil(K/4) % 4 == 0`).
    pub vec4_loads: bool,
    /// Accumulate activation row sums (some weight zero point is not 0 in the I8 domain).
    pub row_sums: bool,
    /// Clamp the f32 values of a dequantizing epilogue (`DequantF32`/`DequantF16` with an
    /// activation); the bounds arrive as f32 bits in the uniforms' clamp fields.
    pub float_clamp: bool,
    /// The quantizer of [`EpilogueKind::DequantRequant`] (its `SCALE_OP` and `ROUND_MODE`).
    /// Every other epilogue ignores it and uses `Convention::Onnx`, so one pipeline serves.
    pub convention: Convention,
    /// Dot products from unpacked i32 multiply-adds instead of `dot4I8Packed` (the context's
    /// packed dot product failed its self-test, the fallback was forced, or the autotune
    /// found it faster on this adapter).
    pub dot4_polyfill: bool,
    /// The kernel shape: a GEMM register block, or a GEMV shape (for M <= 3).
    pub tile: Tile,
}

/// The kernel shape: for the GEMM (M > 3), a register block per invocation in an 8 x 8
/// workgroup; for the GEMV (M <= 3), how a workgroup divides the columns and K. Every shape
/// computes the same exact integer sums in another order of loads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Tile {
    /// GEMM: 4 rows x 4 columns per invocation (a 32 x 32 workgroup tile): few live
    /// registers.
    Block4x4,
    /// GEMM: 8 rows x 8 columns per invocation (a 64 x 64 workgroup tile): half the loads
    /// per dot product of 4 x 4, 64 accumulators (the winner on lavapipe, a CPU).
    Block8x8,
    /// GEMM: a 32 x 32 workgroup tile (4 x 4 per invocation) whose A and W rows are staged
    /// in workgroup memory once per workgroup per 16 bytes of K: packed words for
    /// `dot4I8Packed`, or (unpacked) each word unpacked to i32 once per workgroup instead of
    /// once per invocation (for adapters whose `dot4I8Packed` is a per-byte polyfill, as
    /// `SwiftShader`'s, and for GPUs, where it saves global loads).
    Staged4x4,
    /// GEMM: as [`Tile::Staged4x4`] with a 64 x 64 workgroup tile, 8 x 8 per invocation.
    Staged8x8,
    /// GEMV: 4 columns per invocation over all of K, 64 invocations per workgroup (256
    /// columns; the activation word serves 4 weight words).
    Gemv1x4,
    /// GEMV: 8 columns per invocation over all of K, 64 invocations per workgroup.
    Gemv1x8,
    /// GEMV: 4 columns per workgroup of 64, K interleaved across the invocations
    /// (adjacent invocations load adjacent words: coalesced), partial sums reduced in
    /// workgroup memory.
    GemvSplit4,
    /// GEMV: as [`Tile::GemvSplit4`] with 8 columns per workgroup.
    GemvSplit8,
    /// GEMV: 8 columns per workgroup of 64, each invocation a contiguous slice of K,
    /// partial sums reduced in workgroup memory.
    GemvSlice8,
}

impl Tile {
    /// Every shape, GEMM and GEMV.
    pub const ALL: [Tile; 9] = [
        Tile::Block4x4,
        Tile::Block8x8,
        Tile::Staged4x4,
        Tile::Staged8x8,
        Tile::Gemv1x4,
        Tile::Gemv1x8,
        Tile::GemvSplit4,
        Tile::GemvSplit8,
        Tile::GemvSlice8,
    ];
    /// The GEMM shapes.
    pub const GEMM: [Tile; 4] = [
        Tile::Block4x4,
        Tile::Block8x8,
        Tile::Staged4x4,
        Tile::Staged8x8,
    ];
    /// The GEMV shapes.
    pub const GEMV: [Tile; 5] = [
        Tile::Gemv1x4,
        Tile::Gemv1x8,
        Tile::GemvSplit4,
        Tile::GemvSplit8,
        Tile::GemvSlice8,
    ];

    /// Whether this is a GEMV shape (for M <= 3).
    pub fn is_gemv(self) -> bool {
        Tile::GEMV.contains(&self)
    }

    /// `(TILE_M, TILE_N)`: rows and columns per invocation (split GEMV shapes: per
    /// workgroup, each invocation holding partial sums of all of them).
    pub fn block(self) -> (u32, u32) {
        match self {
            Tile::Block4x4 | Tile::Staged4x4 => (4, 4),
            Tile::Block8x8 | Tile::Staged8x8 => (8, 8),
            Tile::Gemv1x4 | Tile::GemvSplit4 => (1, 4),
            Tile::Gemv1x8 | Tile::GemvSplit8 | Tile::GemvSlice8 => (1, 8),
        }
    }

    /// Whether the workgroup splits K (the split and slice GEMV shapes).
    pub fn splits_k(self) -> bool {
        matches!(self, Tile::GemvSplit4 | Tile::GemvSplit8 | Tile::GemvSlice8)
    }

    /// A short name (`"4x4"`, `"8x8"`, `"staged 8x8"`, `"gemv 1x4"`, `"gemv split 8"`,
    /// ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Tile::Block4x4 => "4x4",
            Tile::Block8x8 => "8x8",
            Tile::Staged4x4 => "staged 4x4",
            Tile::Staged8x8 => "staged 8x8",
            Tile::Gemv1x4 => "gemv 1x4",
            Tile::Gemv1x8 => "gemv 1x8",
            Tile::GemvSplit4 => "gemv split 4",
            Tile::GemvSplit8 => "gemv split 8",
            Tile::GemvSlice8 => "gemv slice 8",
        }
    }

    /// The shader sources of this shape: `(kernel, block)` for the imports of the same
    /// names in `shaders/matmul_i8.wgsl`.
    fn sources(self) -> (&'static str, &'static str) {
        match self {
            Tile::Block4x4 => ("matmul_i8/register", "matmul_i8/block4x4"),
            Tile::Block8x8 => ("matmul_i8/register", "matmul_i8/block8x8"),
            Tile::Staged4x4 => ("matmul_i8/staged4x4", "matmul_i8/block1x4"),
            Tile::Staged8x8 => ("matmul_i8/staged8x8", "matmul_i8/block1x4"),
            Tile::Gemv1x4 => ("matmul_i8/register", "matmul_i8/block1x4"),
            Tile::Gemv1x8 => ("matmul_i8/register", "matmul_i8/block1x8"),
            Tile::GemvSplit4 => ("matmul_i8/split4", "matmul_i8/block1x4"),
            Tile::GemvSplit8 | Tile::GemvSlice8 => ("matmul_i8/split8", "matmul_i8/block1x4"),
        }
    }
}

impl MatmulVariant {
    /// Whether this variant is a GEMV shape (for M <= 3).
    pub fn gemv(&self) -> bool {
        self.tile.is_gemv()
    }

    /// `(TILE_M, WORKGROUP_X, WORKGROUP_Y)`: rows per invocation and the workgroup shape.
    /// [`MatmulVariant::block`] adds the columns per invocation.
    pub fn tiling(&self) -> (u32, u32, u32) {
        let (tile_m, _, wg_x, wg_y) = self.block();
        (tile_m, wg_x, wg_y)
    }

    /// `(TILE_M, TILE_N, WORKGROUP_X, WORKGROUP_Y)`: the register block per invocation and
    /// the workgroup shape. [`MatmulVariant::extent`] gives the output block of a workgroup.
    pub fn block(&self) -> (u32, u32, u32, u32) {
        let (tile_m, tile_n) = self.tile.block();
        if self.tile.is_gemv() {
            (tile_m, tile_n, 64, 1)
        } else {
            (tile_m, tile_n, 8, 8)
        }
    }

    /// `(columns, rows)` of the output one workgroup computes.
    pub fn extent(&self) -> (u32, u32) {
        let (tile_m, tile_n, wg_x, wg_y) = self.block();
        if self.tile.splits_k() {
            (tile_n, tile_m)
        } else {
            (tile_n * wg_x, tile_m * wg_y)
        }
    }
}

/// The epilogue, as the kernel's `EPILOGUE` constant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EpilogueKind {
    /// `acc + bias` as i32.
    I32 = 0,
    /// f32 output.
    DequantF32 = 1,
    /// f16 output, two per word.
    DequantF16 = 2,
    /// Float requantization to packed int8.
    RequantFloat = 3,
    /// Fixed point, single rounding.
    RequantFixedSingle = 4,
    /// Fixed point, double rounding.
    RequantFixedDouble = 5,
    /// Dequantize to f32 (optional f32 bias), then quantize with the convention's scalar
    /// quantizer to packed int8.
    DequantRequant = 6,
}

impl EpilogueKind {
    /// Every kind.
    pub const ALL: [EpilogueKind; 7] = [
        EpilogueKind::I32,
        EpilogueKind::DequantF32,
        EpilogueKind::DequantF16,
        EpilogueKind::RequantFloat,
        EpilogueKind::RequantFixedSingle,
        EpilogueKind::RequantFixedDouble,
        EpilogueKind::DequantRequant,
    ];

    /// Whether the epilogue dequantizes (and so takes dynamic row scales and a float bias).
    pub fn dequantizes(self) -> bool {
        matches!(
            self,
            EpilogueKind::DequantF32 | EpilogueKind::DequantF16 | EpilogueKind::DequantRequant
        )
    }
}

impl PipelineKey {
    /// The root source, entry point and constants of this variant.
    pub fn source(&self) -> (&'static str, &'static str, Vec<(&'static str, ConstValue)>) {
        match *self {
            PipelineKey::Quantize { convention } => (
                "quantize",
                "quantize",
                quantize_constants(convention, false),
            ),
            PipelineKey::Dequantize { signed } => (
                "quantize",
                "dequantize",
                quantize_constants(Convention::Onnx, signed),
            ),
            PipelineKey::DequantizeI32 => ("dequantize_i32", "dequantize_i32", vec![]),
            PipelineKey::DynamicRow { symmetric, .. }
            | PipelineKey::DynamicRange { symmetric }
            | PipelineKey::DynamicParams { symmetric }
            | PipelineKey::DynamicQuantize { symmetric } => {
                let entry = match self {
                    PipelineKey::DynamicRow { .. } => "dynamic_row",
                    PipelineKey::DynamicRange { .. } => "dynamic_range",
                    PipelineKey::DynamicParams { .. } => "dynamic_params",
                    _ => "dynamic_quantize",
                };
                let mut constants = quantize_constants(Convention::Onnx, false);
                constants.push(("SYMMETRIC", ConstValue::Bool(symmetric)));
                let row_workgroup = match self {
                    PipelineKey::DynamicRow { workgroup, .. } => *workgroup,
                    _ => 64,
                };
                constants.push(("ROW_WORKGROUP", ConstValue::U32(row_workgroup)));
                ("dynamic_quantize", entry, constants)
            }
            PipelineKey::Divide => ("divide", "divide", vec![]),
            PipelineKey::MatmulF32 { has_bias, gemv, .. } => {
                let (tile_m, wg_x, wg_y) = if gemv { (1, 64, 1) } else { (8, 8, 8) };
                (
                    "matmul_f32",
                    "matmul_f32",
                    vec![
                        ("HAS_BIAS", ConstValue::Bool(has_bias)),
                        ("TILE_M", ConstValue::U32(tile_m)),
                        ("WORKGROUP_X", ConstValue::U32(wg_x)),
                        ("WORKGROUP_Y", ConstValue::U32(wg_y)),
                    ],
                )
            }
            PipelineKey::MatmulI8(v) => {
                let mut constants = vec![
                    ("EPILOGUE", ConstValue::U32(v.epilogue as u32)),
                    ("A_IS_U8", ConstValue::Bool(v.a_is_u8)),
                    ("DYNAMIC_ROWS", ConstValue::Bool(v.dynamic_rows)),
                    ("PER_ROW_ZERO_POINT", ConstValue::Bool(v.per_row_zero_point)),
                    // Constants an epilogue never reads are emitted canonically, so variants
                    // that differ only in them assemble to the same WGSL (linted once).
                    (
                        "HAS_FLOAT_BIAS",
                        ConstValue::Bool(v.float_bias && v.epilogue.dequantizes()),
                    ),
                    ("TILE_M", ConstValue::U32(v.block().0)),
                    ("TILE_N", ConstValue::U32(v.block().1)),
                    ("WORKGROUP_X", ConstValue::U32(v.block().2)),
                    ("WORKGROUP_Y", ConstValue::U32(v.block().3)),
                    ("VEC4", ConstValue::Bool(v.vec4_loads)),
                    (
                        "INTERLEAVED",
                        ConstValue::Bool(matches!(v.tile, Tile::GemvSplit4 | Tile::GemvSplit8)),
                    ),
                    ("ROW_SUMS", ConstValue::Bool(v.row_sums)),
                    (
                        "FLOAT_CLAMP",
                        ConstValue::Bool(
                            v.float_clamp
                                && matches!(
                                    v.epilogue,
                                    EpilogueKind::DequantF32 | EpilogueKind::DequantF16
                                ),
                        ),
                    ),
                    ("DOT4_POLYFILL", ConstValue::Bool(v.dot4_polyfill)),
                ];
                // The quantizer's SCALE_OP, ROUND_MODE and NAN_TO_QMIN (DequantRequant).
                constants.extend(
                    quantize_constants(
                        if v.epilogue == EpilogueKind::DequantRequant {
                            v.convention
                        } else {
                            Convention::Onnx
                        },
                        false,
                    )
                    .into_iter()
                    .filter(|(name, _)| *name != "SIGNED_STORAGE"),
                );
                ("matmul_i8", "matmul_i8", constants)
            }
        }
    }

    /// The assembled WGSL of this variant.
    ///
    /// # Errors
    /// [`crate::Error::Shader`] for an assembly error.
    pub fn wgsl(&self) -> Result<String> {
        let (root, _, constants) = self.source();
        let loads = match self {
            PipelineKey::MatmulI8(v) if v.vec4_loads => "loads/vec4",
            PipelineKey::MatmulF32 { vec4: true, .. } => "loads/vec4",
            _ => "loads/scalar",
        };
        let (kernel, block) = match self {
            PipelineKey::MatmulI8(v) => v.tile.sources(),
            _ => Tile::Block4x4.sources(),
        };
        assemble_with_imports(
            root,
            &constants,
            &[("loads", loads), ("kernel", kernel), ("block", block)],
        )
    }

    /// Whether this variant is a bit-exact path (checked by the IR walk in the tests).
    pub fn is_bit_exact(&self) -> bool {
        !matches!(self, PipelineKey::MatmulF32 { .. })
    }

    /// Whether the numerics contract accepts an fma contraction in this variant (only
    /// epilogues with a float bias after a float scale, rule 2).
    pub fn allows_contraction(&self) -> bool {
        matches!(self, PipelineKey::MatmulI8(v) if v.float_bias)
    }

    /// Builds the pipeline.
    ///
    /// # Errors
    /// [`crate::Error::Shader`] or [`crate::Error::Gpu`]; [`crate::Error::InvalidConfig`] for
    /// a variant outside [`PipelineKey::buildable`] (a dynamic row workgroup not in
    /// [`crate::gpu::dynamic::ROW_WORKGROUPS`]).
    pub fn build(&self, device: &wgpu::Device) -> Result<wgpu::ComputePipeline> {
        // Only the variants `buildable()` lists (and the lint has checked) may be built.
        if let PipelineKey::DynamicRow { workgroup, .. } = *self {
            if !crate::gpu::dynamic::ROW_WORKGROUPS.contains(&workgroup) {
                return Err(crate::error::Error::InvalidConfig {
                    what: "dynamic row workgroup".into(),
                    value: workgroup.to_string(),
                    reason: format!("must be one of {:?}", crate::gpu::dynamic::ROW_WORKGROUPS),
                });
            }
        }
        let (_, entry, _) = self.source();
        build_pipeline(device, &format!("{self:?}"), &self.wgsl()?, entry)
    }

    /// Every variant any public call can build: each field of each key takes every value of
    /// its type (`bool`: both, the enums: their `ALL`, a dynamic row workgroup: one of
    /// [`crate::gpu::dynamic::ROW_WORKGROUPS`]), with no hand-picked subset, so the shader
    /// lint and the validation tests cover everything `Context::pipeline` can be given. A new
    /// field of [`MatmulVariant`] does not compile here until it is enumerated, and the tests
    /// check the count against the product of the field domains.
    pub fn buildable() -> Vec<PipelineKey> {
        const BOOLS: [bool; 2] = [false, true];
        let mut keys: Vec<PipelineKey> = Convention::ALL
            .iter()
            .map(|&convention| PipelineKey::Quantize { convention })
            .collect();
        keys.extend(BOOLS.map(|signed| PipelineKey::Dequantize { signed }));
        keys.push(PipelineKey::DequantizeI32);
        for symmetric in BOOLS {
            for workgroup in crate::gpu::dynamic::ROW_WORKGROUPS {
                keys.push(PipelineKey::DynamicRow {
                    symmetric,
                    workgroup,
                });
            }
            keys.push(PipelineKey::DynamicRange { symmetric });
            keys.push(PipelineKey::DynamicParams { symmetric });
            keys.push(PipelineKey::DynamicQuantize { symmetric });
        }
        keys.push(PipelineKey::Divide);
        for bits in 0..1u32 << 3 {
            let bit = |i: u32| bits >> i & 1 != 0;
            keys.push(PipelineKey::MatmulF32 {
                has_bias: bit(0),
                gemv: bit(1),
                vec4: bit(2),
            });
        }
        // MatmulVariant: three enums and MATMUL_BOOL_FIELDS booleans, every combination.
        const MATMUL_BOOL_FIELDS: u32 = 8;
        for epilogue in EpilogueKind::ALL {
            for convention in Convention::ALL {
                for bits in 0..1u32 << MATMUL_BOOL_FIELDS {
                    let bit = |i: u32| bits >> i & 1 != 0;
                    keys.extend(Tile::ALL.map(|tile| {
                        PipelineKey::MatmulI8(MatmulVariant {
                            tile,
                            epilogue,
                            convention,
                            a_is_u8: bit(0),
                            dynamic_rows: bit(1),
                            per_row_zero_point: bit(2),
                            float_bias: bit(3),
                            vec4_loads: bit(4),
                            row_sums: bit(5),
                            float_clamp: bit(6),
                            dot4_polyfill: bit(7),
                        })
                    }));
                }
            }
        }
        keys
    }

    /// Every buildable variant ([`PipelineKey::buildable`]), for validation tests.
    pub fn all() -> Vec<PipelineKey> {
        Self::buildable()
    }
}

fn quantize_constants(convention: Convention, signed: bool) -> Vec<(&'static str, ConstValue)> {
    vec![
        (
            "SCALE_OP",
            ConstValue::U32(match convention.scale_op() {
                ScaleOp::Divide => 0,
                ScaleOp::MultiplyByReciprocal => 1,
            }),
        ),
        (
            "ROUND_MODE",
            ConstValue::U32(match convention.round_mode() {
                RoundMode::HalfToEven => 0,
                RoundMode::HalfAwayFromZero => 1,
            }),
        ),
        (
            "NAN_TO_QMIN",
            ConstValue::Bool(convention.nan_policy() == NanPolicy::ToQmin),
        ),
        ("SIGNED_STORAGE", ConstValue::Bool(signed)),
    ]
}
