//! Kernel selection per adapter: which register block, which loads and which dot-product
//! formulation the integer GEMM and GEMV run, chosen by a heuristic from the adapter's
//! device type, fixed by the caller, or measured by a short autotune and cached per
//! context (so per adapter, shared by the context's clones).
//!
//! Every candidate is the same exact integer arithmetic in another order of loads, so every
//! choice gives the same bits (the tests run each one against the reference). Measuring is
//! async ([`autotune`], [`crate::gpu::gemm::QLinear::tune`]): it never blocks a browser.
//! Building a layer stays synchronous and never measures: it takes the cached winner of its
//! shape class when there is one, else the heuristic.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};
use crate::gpu::context::Context;
use crate::gpu::gemm::{ActivationInput, GEMV_MAX_ROWS, QLinear, QuantizedWeights};
use crate::gpu::pipelines::Tile;
use crate::quant::epilogue::Epilogue;
use crate::quant::params::QuantParams;
use crate::quant::qtype::QType;

/// One kernel formulation of a shape class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KernelConfig {
    /// The kernel shape: a GEMM register block or workgroup tile ([`Tile::GEMM`]), or a
    /// GEMV shape ([`Tile::GEMV`]). [`Tuning::Fixed`] applies the loads and the dot-product
    /// formulation to both kernels and the shape to the kernel of its kind (the other takes
    /// the heuristic's shape).
    pub tile: Tile,
    /// 16-byte loads where the rows allow them (`ceil(K/4) % 4 == 0`); else one word per
    /// load (some compilers, `SwiftShader`'s among them, run those faster).
    pub vec4_loads: bool,
    /// Unpacked i32 multiply-adds instead of `dot4I8Packed` (for adapters whose built-in is
    /// slow; forced on when the context runs the polyfill).
    pub unpacked: bool,
}

impl std::fmt::Display for KernelConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} {}",
            self.tile.as_str(),
            if self.vec4_loads { "vec4" } else { "scalar" },
            if self.unpacked { "unpacked" } else { "dot4" }
        )
    }
}

/// The kernels a layer runs: one for M > [`GEMV_MAX_ROWS`], one for the GEMV shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LayerKernels {
    /// The GEMM kernel (`tile` one of [`Tile::GEMM`]).
    pub gemm: KernelConfig,
    /// The GEMV kernel (for M <= [`GEMV_MAX_ROWS`]; `tile` one of [`Tile::GEMV`]).
    pub gemv: KernelConfig,
    /// Where the choice came from.
    pub source: ChoiceSource,
}

/// Where a layer's kernel choice came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChoiceSource {
    /// From the adapter's device type, unmeasured.
    Heuristic,
    /// Fixed by the caller ([`Tuning::Fixed`]).
    Fixed,
    /// Measured on this adapter by the autotune.
    Measured,
}

/// How a context chooses kernels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Tuning {
    /// Layers take the measured winner of their shape class when the autotune has run for
    /// it ([`autotune`], [`crate::gpu::gemm::QLinear::tune`]), else the heuristic. Nothing is
    /// measured unless asked. The default.
    #[default]
    Auto,
    /// The heuristic only; the autotune calls measure nothing.
    Heuristic,
    /// This formulation for every layer's GEMM and GEMV: its loads and dot-product
    /// formulation for both, its shape for the kernel of its kind, the heuristic's shape for
    /// the other (16-byte loads only where the rows allow them; the polyfill where the
    /// context forces it).
    Fixed(KernelConfig),
}

/// What the autotune measures separately: the GEMV or GEMM shape, and the depth and width
/// in powers of two, whether 16-byte loads apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShapeClass {
    /// The GEMV shape (M <= [`GEMV_MAX_ROWS`]).
    pub gemv: bool,
    /// `ceil(log2(K))`.
    pub k_log2: u32,
    /// `ceil(log2(N))`.
    pub n_log2: u32,
    /// Rows are whole vec4s (`ceil(K/4) % 4 == 0`).
    pub vec4_able: bool,
}

impl ShapeClass {
    /// The class of an `N × K` layer in the GEMV or GEMM shape.
    pub fn of(gemv: bool, n: usize, k: usize) -> Self {
        let log2 = |v: usize| usize::BITS - v.max(1).saturating_sub(1).leading_zeros();
        ShapeClass {
            gemv,
            k_log2: log2(k),
            n_log2: log2(n),
            vec4_able: k.div_ceil(4).is_multiple_of(4),
        }
    }
}

/// One measured shape class: every candidate's best time and the winner.
#[derive(Debug, Clone, PartialEq)]
pub struct TuneRecord {
    /// The adapter it was measured on.
    pub adapter: String,
    /// The shape class.
    pub class: ShapeClass,
    /// The shape it was timed at, `(M, N, K)`.
    pub shape: (usize, usize, usize),
    /// Each candidate and its best time in ms (a candidate whose first timed run took over
    /// 3x the best time so far is timed once).
    pub timings: Vec<(KernelConfig, f64)>,
    /// The fastest.
    pub winner: KernelConfig,
}

/// A context's tuning policy and its cache of measured winners (shared by its clones).
#[derive(Debug, Clone, Default)]
pub struct TuneState {
    policy: Tuning,
    cache: Arc<Mutex<BTreeMap<ShapeClass, TuneRecord>>>,
}

impl TuneState {
    /// The policy.
    pub fn policy(&self) -> Tuning {
        self.policy
    }

    /// The same cache under another policy.
    pub fn with_policy(&self, policy: Tuning) -> Self {
        TuneState {
            policy,
            cache: self.cache.clone(),
        }
    }

    fn cached(&self, class: ShapeClass) -> Option<KernelConfig> {
        self.cache
            .lock()
            .ok()
            .and_then(|c| c.get(&class).map(|r| r.winner))
    }

    /// Every measured shape class, in order.
    pub fn report(&self) -> Vec<TuneRecord> {
        self.cache
            .lock()
            .map(|c| c.values().cloned().collect())
            .unwrap_or_default()
    }
}

/// The unmeasured choice for the context's adapter: an 8 x 8 block with 16-byte loads on a
/// CPU (lavapipe, llvmpipe: every load is a per-lane scalar loop there, so loads per dot
/// product decide), 4 x 4 with 16-byte loads on GPUs, and 8 x 8 with one-word loads where
/// the device type is unknown or virtual. A browser's CPU adapter (Chromium's `SwiftShader`,
/// which WebGPU reports as a CPU) gets 8 x 8 with one-word loads and unpacked multiply-adds:
/// Tint emulates `dot4I8Packed` there byte by byte, and the autotune picked that formulation
/// in every large GEMM class (the heuristic's lavapipe choice ran 1.16-1.48x slower). The GEMV takes 16-byte loads and `dot4I8Packed` everywhere: on GPUs with
/// K split across a workgroup of 64 in interleaved loads (adjacent invocations read adjacent
/// 16 bytes, which a GPU coalesces), elsewhere 8 columns per invocation over all of K (on
/// lavapipe every load is a per-lane gather and the activation word, the same in every
/// lane, is loaded once for 8 weight words; the split shapes ran 1.3-1.8x slower there).
pub fn heuristic(ctx: &Context) -> (KernelConfig, KernelConfig) {
    let device_type = ctx.adapter_info().map(|a| a.device_type);
    let in_browser = ctx
        .adapter_info()
        .is_some_and(|a| a.backend == wgpu::Backend::BrowserWebGpu);
    let gemm = match device_type {
        Some(wgpu::DeviceType::Cpu) if in_browser => KernelConfig {
            tile: Tile::Block8x8,
            vec4_loads: false,
            unpacked: true,
        },
        Some(wgpu::DeviceType::Cpu) => KernelConfig {
            tile: Tile::Block8x8,
            vec4_loads: true,
            unpacked: false,
        },
        Some(wgpu::DeviceType::DiscreteGpu | wgpu::DeviceType::IntegratedGpu) | None => {
            KernelConfig {
                tile: Tile::Block4x4,
                vec4_loads: true,
                unpacked: false,
            }
        }
        Some(wgpu::DeviceType::VirtualGpu | wgpu::DeviceType::Other) => KernelConfig {
            tile: Tile::Block8x8,
            vec4_loads: false,
            unpacked: false,
        },
    };
    let gemv = KernelConfig {
        tile: match device_type {
            Some(wgpu::DeviceType::DiscreteGpu | wgpu::DeviceType::IntegratedGpu) | None => {
                Tile::GemvSplit8
            }
            _ => Tile::Gemv1x8,
        },
        vec4_loads: true,
        unpacked: false,
    };
    (gemm, gemv)
}

/// The kernels an `N × K` layer built now on `ctx` runs: the policy's choice, with 16-byte
/// loads dropped where the rows are not whole vec4s and the polyfill forced where the
/// context runs it.
pub fn choose(ctx: &Context, n: usize, k: usize) -> LayerKernels {
    let state = ctx.tuning_state();
    let (h_gemm, h_gemv) = heuristic(ctx);
    let (gemm, gemv, source) = match state.policy() {
        Tuning::Fixed(c) => (c, c, ChoiceSource::Fixed),
        Tuning::Heuristic => (h_gemm, h_gemv, ChoiceSource::Heuristic),
        Tuning::Auto => {
            let gemm = state.cached(ShapeClass::of(false, n, k));
            let gemv = state.cached(ShapeClass::of(true, n, k));
            let source = if gemm.is_some() || gemv.is_some() {
                ChoiceSource::Measured
            } else {
                ChoiceSource::Heuristic
            };
            (gemm.unwrap_or(h_gemm), gemv.unwrap_or(h_gemv), source)
        }
    };
    fit(ctx, k, LayerKernels { gemm, gemv, source })
}

/// `kernels` made valid for a layer of depth `k` on `ctx`: a shape of the wrong kind in a
/// slot replaced by the heuristic's (a GEMV shape asked for the GEMM, or the reverse, as
/// [`Tuning::Fixed`] and the autotune's candidates give one config for both), 16-byte loads
/// dropped where the rows are not whole vec4s, and the polyfill forced where the context
/// runs it.
pub fn fit(ctx: &Context, k: usize, kernels: LayerKernels) -> LayerKernels {
    let (h_gemm, h_gemv) = heuristic(ctx);
    let fit = |c: KernelConfig, gemv: bool| KernelConfig {
        tile: match (c.tile.is_gemv(), gemv) {
            (true, false) => h_gemm.tile,
            (false, true) => h_gemv.tile,
            _ => c.tile,
        },
        vec4_loads: c.vec4_loads && k.div_ceil(4).is_multiple_of(4),
        unpacked: c.unpacked || ctx.dot4_polyfill(),
    };
    LayerKernels {
        gemm: fit(kernels.gemm, false),
        gemv: fit(kernels.gemv, true),
        source: kernels.source,
    }
}

/// The candidates of a shape class on `ctx`: every shape of its kind ([`Tile::GEMM`] or
/// [`Tile::GEMV`]), both loads (where the rows allow 16-byte ones), both dot-product
/// formulations (unless the polyfill is forced).
pub fn candidates(ctx: &Context, class: ShapeClass) -> Vec<KernelConfig> {
    let tiles: &[Tile] = if class.gemv { &Tile::GEMV } else { &Tile::GEMM };
    let loads: &[bool] = if class.vec4_able {
        &[true, false]
    } else {
        &[false]
    };
    let dots: &[bool] = if ctx.dot4_polyfill() {
        &[true]
    } else {
        &[false, true]
    };
    let mut out = Vec::new();
    for &tile in tiles {
        for &vec4_loads in loads {
            for &unpacked in dots {
                out.push(KernelConfig {
                    tile,
                    vec4_loads,
                    unpacked,
                });
            }
        }
    }
    out
}

/// Work (2·M·N·K) the GEMM timing aims at per run: about 10 ms on lavapipe.
const GEMM_TIMING_OPS: f64 = 2.5e8;
/// The fewest rows a GEMM class is timed at, whatever its width: two 8-row register blocks.
/// At 4 rows (where a wide layer's share of [`GEMM_TIMING_OPS`] would land) the 4 x 4 block
/// wins because the 8 x 8 one computes half empty rows, and the class, which serves every
/// batch above the GEMV's rows, would then run the narrower block at 128 rows too (measured:
/// 4.4 against 8.1 GOP/s for 128 x 4096 x 11008 on lavapipe).
const GEMM_TIMING_MIN_ROWS: usize = 16;
// The GEMM kernel only runs above the GEMV's rows, so it must be timed there.
const _: () = assert!(GEMM_TIMING_MIN_ROWS > GEMV_MAX_ROWS);
/// Timed runs per candidate after one warm-up (the best counts).
const TIMED_RUNS: usize = 2;
/// A candidate whose first timed run takes over this many times the best time so far is not
/// timed again (some shapes run 3-10x slower than the winner on some adapters: the staged
/// unpacked GEMM on lavapipe, for instance).
const CLEAR_LOSER: f64 = 3.0;

/// Measures the candidates of `layer`'s two shape classes (those not cached yet) on `ctx`
/// with its own weights and epilogue, caches the winners and returns the kernels a layer
/// of that shape now gets. Under [`Tuning::Heuristic`] or [`Tuning::Fixed`] it measures
/// nothing and returns their choice. A warm-up and up to 2 timed runs per candidate (16
/// GEMM and 20 GEMV candidates where 16-byte loads apply): a few seconds for a
/// 1024 x 1024 layer on lavapipe, most of it building pipelines.
///
/// # Errors
/// GPU errors of the timed runs; [`Error::SizeOverflow`] for buffer sizes.
pub async fn tune_layer(ctx: &Context, layer: &QLinear) -> Result<LayerKernels> {
    let (n, k) = (layer.weights().n(), layer.weights().k());
    if ctx.tuning_state().policy() != Tuning::Auto {
        return Ok(choose(ctx, n, k));
    }
    let adapter = ctx
        .adapter_info()
        .map_or_else(|| "unknown adapter".to_string(), |a| a.name.clone());
    for gemv in [false, true] {
        let class = ShapeClass::of(gemv, n, k);
        if ctx.tuning_state().cached(class).is_some() {
            continue;
        }
        let m = if gemv {
            1
        } else {
            let per_row = 2.0 * n as f64 * k as f64;
            ((GEMM_TIMING_OPS / per_row) as usize).clamp(GEMM_TIMING_MIN_ROWS, 1024)
        };
        let timer = crate::gpu::timer::GpuTimer::new(ctx)?;
        let mut timings: Vec<(KernelConfig, f64)> = Vec::new();
        for config in candidates(ctx, class) {
            let kernels = LayerKernels {
                gemm: config,
                gemv: config,
                source: ChoiceSource::Measured,
            };
            let candidate = layer.with_kernels(ctx, kernels)?;
            let (input, rows, output) = candidate.scratch_buffers(ctx, m)?;
            let leader = timings.iter().map(|t| t.1).fold(f64::INFINITY, f64::min);
            let mut best = f64::INFINITY;
            for run in 0..=TIMED_RUNS {
                let ms = timer
                    .time_async(ctx, &mut |encoder| {
                        candidate.encode(ctx, encoder, m, &input, rows.as_ref(), &output)
                    })
                    .await?;
                if run > 0 {
                    best = best.min(ms);
                    if best > CLEAR_LOSER * leader {
                        // Clearly slower than the leader: one timed run is enough.
                        break;
                    }
                }
            }
            timings.push((config, best));
        }
        let winner = timings
            .iter()
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .map(|t| t.0)
            .ok_or_else(|| Error::Gpu("the autotune had no candidate".into()))?;
        let record = TuneRecord {
            adapter: adapter.clone(),
            class,
            shape: (m, n, k),
            timings,
            winner,
        };
        if let Ok(mut cache) = ctx.tuning_state().cache.lock() {
            cache.insert(class, record);
        }
    }
    Ok(choose(ctx, n, k))
}

/// Measures the shape classes of an `N × K` layer on `ctx` (as [`tune_layer`], with a
/// throwaway layer of deterministic weights and the i32 epilogue), so that layers built
/// afterwards, a [`crate::nn::Linear`] included, take the winners.
///
/// # Errors
/// As [`tune_layer`]; [`Error::EmptyDimension`] for `k == 0`.
pub async fn autotune(ctx: &Context, n: usize, k: usize) -> Result<LayerKernels> {
    if ctx.tuning_state().policy() != Tuning::Auto
        || (ctx
            .tuning_state()
            .cached(ShapeClass::of(false, n, k))
            .is_some()
            && ctx
                .tuning_state()
                .cached(ShapeClass::of(true, n, k))
                .is_some())
    {
        return Ok(choose(ctx, n, k));
    }
    let len = n.checked_mul(k).ok_or_else(|| Error::SizeOverflow {
        what: format!("{n} x {k} weights"),
    })?;
    // Bytes in the narrow range [-127, 127], from a fixed sequence.
    let data: Vec<u8> = (0..len)
        .map(|i| ((i.wrapping_mul(2_654_435_761) >> 7) % 255) as u8 ^ 0x80)
        .map(|b| if b == 0x80 { 0 } else { b })
        .collect();
    let params = QuantParams::per_tensor(1.0, 0, QType::I8.narrow_range())?;
    let weights = QuantizedWeights::from_quantized(ctx, &data, n, k, params)?;
    let input = ActivationInput::Static {
        qtype: QType::I8,
        zero_point: 0,
    };
    let layer = QLinear::new(ctx, weights, input, None, Epilogue::I32)?;
    tune_layer(ctx, &layer).await
}

/// Blocking form of [`autotune`] (native only).
///
/// # Errors
/// As [`autotune`].
#[cfg(not(target_arch = "wasm32"))]
pub fn autotune_blocking(ctx: &Context, n: usize, k: usize) -> Result<LayerKernels> {
    pollster::block_on(autotune(ctx, n, k))
}
