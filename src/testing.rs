//! Testing GPU code headless, in CI without a GPU: one call gives a context on whatever
//! adapter exists (Mesa's lavapipe software Vulkan on a machine without a GPU), or a loud
//! skip, or (with `REQUIRE_GPU=1`, as CI sets it) an error, so a missing driver can never
//! pass a suite silently.
//!
//! ```no_run
//! # fn main() -> wgpu_quant::Result<()> {
//! let Some(ctx) = wgpu_quant::testing::gpu_or_skip("my_kernel_doubles")? else { return Ok(()) };
//! // ... record and check your own wgpu work on ctx.device() / ctx.queue() ...
//! # Ok(()) }
//! ```

use crate::error::{Error, Result};
use crate::gpu::context::Context;

/// The variable that turns a skip into an error.
pub const REQUIRE_GPU: &str = "REQUIRE_GPU";

/// A headless context, or `Ok(None)` after printing `SKIPPED <test>: …` when no adapter
/// exists; with `REQUIRE_GPU=1` a missing adapter is an error instead of a skip.
///
/// # Errors
/// [`Error::NoAdapter`] (or the device error) when `REQUIRE_GPU=1` and no context can be made.
pub fn gpu_or_skip(test: &str) -> Result<Option<Context>> {
    match Context::headless() {
        Ok(ctx) => Ok(Some(ctx)),
        Err(e) if gpu_required() => Err(match e {
            Error::NoAdapter(m) => Error::NoAdapter(format!("{REQUIRE_GPU}=1 and {test}: {m}")),
            other => other,
        }),
        Err(e) => {
            eprintln!("SKIPPED {test} (no GPU adapter; set {REQUIRE_GPU}=1 to fail instead): {e}");
            Ok(None)
        }
    }
}

/// Whether `REQUIRE_GPU=1` is set.
pub fn gpu_required() -> bool {
    std::env::var(REQUIRE_GPU).is_ok_and(|v| v == "1")
}
