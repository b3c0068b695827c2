//! The GPU context: the caller's `wgpu::Device` and `Queue`, or a headless pair.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::ThreadId;

use crate::error::{Error, Result};
use crate::gpu::pipelines::PipelineKey;

/// A device and queue the crate encodes work for.
///
/// Cloning is cheap (wgpu handles are reference counted); `Context` is `Send + Sync`.
#[derive(Debug, Clone)]
pub struct Context {
    device: wgpu::Device,
    queue: wgpu::Queue,
    adapter_info: Option<wgpu::AdapterInfo>,
    pipelines: Arc<Mutex<HashMap<PipelineKey, wgpu::ComputePipeline>>>,
    binding_limit: Option<u64>,
    /// Why the device was lost, once a device-lost callback has fired.
    lost: Arc<Mutex<Option<String>>>,
    /// Errors no scope caught (headless contexts), per thread that caused them (wgpu reports
    /// an error on the calling thread), reported by that thread's next wait.
    uncaptured: Arc<Mutex<HashMap<ThreadId, Vec<String>>>>,
    /// A one-binding layout for checking a caller's buffer up front (destroyed, another
    /// device) by binding it, inside an error scope.
    probe_layout: Arc<OnceLock<wgpu::BindGroupLayout>>,
    /// The integer GEMM computes its dot products from unpacked i32 multiply-adds instead
    /// of `dot4I8Packed` (the packed dot product failed its self-test, or forced).
    dot4_polyfill: bool,
    /// The outcome of the packed dot-product self-test.
    dot4_self_test: crate::gpu::capabilities::Dot4SelfTest,
    /// Error-scope pops that had not resolved when their call returned (in a browser they
    /// resolve on the event loop), settled by the next [`Context::flush`].
    pending_scopes: PendingScopes,
    /// How the integer kernels are chosen, and the autotune's measured winners.
    tuning: crate::gpu::tune::TuneState,
}

/// The pops [`Context::settle`] could not settle at once.
#[derive(Clone, Default)]
struct PendingScopes(Arc<Mutex<Vec<ScopeFuture>>>);

impl std::fmt::Debug for PendingScopes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.0.lock().map(|p| p.len()).unwrap_or(0);
        write!(f, "PendingScopes({n})")
    }
}

/// An error-scope pop, already turned into the message it would report.
#[cfg(not(target_arch = "wasm32"))]
pub(crate) type ScopeFuture = std::pin::Pin<Box<dyn Future<Output = Option<String>> + Send>>;
/// An error-scope pop, already turned into the message it would report.
#[cfg(target_arch = "wasm32")]
pub(crate) type ScopeFuture = std::pin::Pin<Box<dyn Future<Output = Option<String>>>>;

/// The process-wide `wgpu::Instance` every headless context is created on (built on first
/// use from the `WGPU_*` environment variables, e.g. `WGPU_BACKEND`).
///
/// One instance matters: wgpu looks a resource up by its index in the registry of the
/// instance that created it, so a buffer of *another instance* cannot be told apart from one
/// of this instance (wgpu panics on the lookup, which the crate catches, or finds an
/// unrelated buffer). Between devices of one instance, wgpu reports the mismatch and the
/// crate returns [`Error::BufferUnusable`]. Embedders that create several devices should
/// create them on one instance too (this one, if they like).
pub fn shared_instance() -> wgpu::Instance {
    #[cfg(not(target_arch = "wasm32"))]
    {
        static INSTANCE: OnceLock<wgpu::Instance> = OnceLock::new();
        INSTANCE
            .get_or_init(|| {
                wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env())
            })
            .clone()
    }
    #[cfg(target_arch = "wasm32")]
    {
        wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env())
    }
}

/// One thread's turn to request an adapter (see [`Context::headless_async`]); released on
/// drop.
struct AdapterTurn;

static ADAPTER_TURN_TAKEN: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

impl AdapterTurn {
    fn take() -> Self {
        use std::sync::atomic::Ordering;
        while ADAPTER_TURN_TAKEN
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            std::thread::yield_now();
        }
        AdapterTurn
    }
}

impl Drop for AdapterTurn {
    fn drop(&mut self) {
        ADAPTER_TURN_TAKEN.store(false, std::sync::atomic::Ordering::Release);
    }
}

impl Context {
    /// Wraps the caller's device and queue, for embedding in an existing wgpu application.
    pub fn from_wgpu(device: wgpu::Device, queue: wgpu::Queue) -> Self {
        Context {
            device,
            queue,
            adapter_info: None,
            pipelines: Arc::default(),
            binding_limit: None,
            lost: Arc::default(),
            uncaptured: Arc::default(),
            probe_layout: Arc::default(),
            dot4_polyfill: false,
            dot4_self_test: crate::gpu::capabilities::Dot4SelfTest::NotRun,
            pending_scopes: PendingScopes::default(),
            tuning: crate::gpu::tune::TuneState::default(),
        }
    }

    /// Creates a headless device on the default adapter.
    ///
    /// Honours `WGPU_BACKEND` (e.g. `vulkan`) and `WGPU_ADAPTER_NAME` (a case-insensitive
    /// substring of the adapter's name), and requests the adapter's own limits.
    ///
    /// # Errors
    /// [`Error::NoAdapter`] when no adapter (or none matching `WGPU_ADAPTER_NAME`) exists;
    /// [`Error::Gpu`] when the device request fails.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn headless() -> Result<Self> {
        pollster::block_on(Self::headless_async())
    }

    /// The adapter `WGPU_ADAPTER_NAME` names (a substring, any backend), else wgpu's choice
    /// under `WGPU_POWER_PREF` (high performance by default).
    async fn pick_adapter(instance: &wgpu::Instance) -> Result<wgpu::Adapter> {
        Ok(match std::env::var("WGPU_ADAPTER_NAME") {
            Ok(wanted) => {
                let wanted = wanted.to_lowercase();
                let adapters = instance.enumerate_adapters(wgpu::Backends::all()).await;
                let names: Vec<String> = adapters.iter().map(|a| a.get_info().name).collect();
                adapters
                    .into_iter()
                    .find(|a| a.get_info().name.to_lowercase().contains(&wanted))
                    .ok_or_else(|| {
                        Error::NoAdapter(format!(
                            "WGPU_ADAPTER_NAME={wanted:?} matches none of {names:?}"
                        ))
                    })?
            }
            Err(_) => instance
                .request_adapter(&wgpu::RequestAdapterOptions {
                    power_preference: wgpu::PowerPreference::from_env()
                        .unwrap_or(wgpu::PowerPreference::HighPerformance),
                    ..Default::default()
                })
                .await
                .map_err(|e| Error::NoAdapter(e.to_string()))?,
        })
    }

    /// Creates a device on the default adapter without blocking: the constructor for the
    /// browser (WebGPU), and the async form of `Context::headless` on native. In a browser
    /// the environment variables are absent and the page's WebGPU adapter is used.
    ///
    /// # Errors
    /// [`Error::NoAdapter`] when no adapter (or none matching `WGPU_ADAPTER_NAME`) exists;
    /// [`Error::Gpu`] when the device request fails.
    pub async fn headless_async() -> Result<Self> {
        let instance = shared_instance();
        // wgpu-hal's GL backend panics (EGL `make_current`: BadAccess) when two threads
        // enumerate adapters at once, which every request does: requests take turns. The turn
        // is an atomic flag, not a mutex guard, so this future stays `Send`; a thread waits
        // only while another thread's request (which completes without waiting on native)
        // runs. A browser has one thread: never contended there.
        let adapter = {
            let _turn = AdapterTurn::take();
            Self::pick_adapter(&instance).await?
        };
        let wanted =
            wgpu::Features::TIMESTAMP_QUERY | wgpu::Features::SHADER_F16 | wgpu::Features::SUBGROUP;
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("wgpu-quant headless"),
                required_features: adapter.features() & wanted,
                required_limits: adapter.limits(),
                ..Default::default()
            })
            .await
            .map_err(|e| Error::Gpu(format!("request_device: {e}")))?;
        let lost: Arc<Mutex<Option<String>>> = Arc::default();
        // This device is ours: record a loss instead of aborting, and keep errors that no
        // scope caught from reaching wgpu's default handler, which panics.
        let flag = lost.clone();
        device.set_device_lost_callback(move |reason, message| {
            if let Ok(mut l) = flag.lock() {
                *l = Some(format!("{reason:?}: {message}"));
            }
        });
        let uncaptured: Arc<Mutex<HashMap<ThreadId, Vec<String>>>> = Arc::default();
        let sink = uncaptured.clone();
        device.on_uncaptured_error(Arc::new(move |error: wgpu::Error| {
            // wgpu calls this on the thread whose call failed: file it there, so another
            // thread's wait never returns it (errors belong to the call that caused them).
            if let Ok(mut errors) = sink.lock() {
                errors
                    .entry(std::thread::current().id())
                    .or_default()
                    .push(error.to_string());
            }
        }));
        let mut ctx = Context {
            device,
            queue,
            adapter_info: Some(adapter.get_info()),
            pipelines: Arc::default(),
            binding_limit: None,
            lost,
            uncaptured,
            probe_layout: Arc::default(),
            dot4_polyfill: false,
            dot4_self_test: crate::gpu::capabilities::Dot4SelfTest::NotRun,
            pending_scopes: PendingScopes::default(),
            tuning: crate::gpu::tune::TuneState::default(),
        };
        ctx.run_dot4_self_test_async().await;
        Ok(ctx)
    }

    /// Runs the packed dot-product self-test ([`crate::gpu::dot4::self_test`]) and records
    /// its outcome: when `dot4I8Packed` or `dot4U8Packed` disagrees with the CPU on an edge
    /// value, or the test cannot run, the context switches to the polyfill path (the integer
    /// GEMM then computes its dot products from unpacked i32 multiply-adds). A context made
    /// by [`Context::headless_async`] runs it at creation; a context over the caller's device
    /// ([`Context::from_wgpu`]) runs it when the caller asks. Layers built before keep the
    /// path they were built with.
    pub async fn run_dot4_self_test_async(&mut self) -> &crate::gpu::capabilities::Dot4SelfTest {
        use crate::gpu::capabilities::Dot4SelfTest;
        self.dot4_self_test = match crate::gpu::dot4::self_test(self).await {
            Ok(None) => Dot4SelfTest::Passed,
            Ok(Some(mismatch)) => Dot4SelfTest::Failed(mismatch),
            Err(e) => Dot4SelfTest::Failed(format!("the self-test could not run: {e}")),
        };
        self.dot4_polyfill = !matches!(self.dot4_self_test, Dot4SelfTest::Passed);
        &self.dot4_self_test
    }

    /// Blocking form of [`Context::run_dot4_self_test_async`] (native only).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn run_dot4_self_test(&mut self) -> &crate::gpu::capabilities::Dot4SelfTest {
        pollster::block_on(self.run_dot4_self_test_async())
    }

    /// The same context with the integer GEMM's dot products forced onto the polyfill path
    /// (`true`) or back onto `dot4I8Packed` (`false`), whatever the self-test said: layers
    /// built on the returned context use it. Both paths give the same bits.
    pub fn with_dot4_polyfill(mut self, polyfill: bool) -> Self {
        self.dot4_polyfill = polyfill;
        self
    }

    /// The same context (sharing its cache of measured winners) with another kernel-choice
    /// policy: layers built on the returned context use it.
    pub fn with_tuning(mut self, tuning: crate::gpu::tune::Tuning) -> Self {
        self.tuning = self.tuning.with_policy(tuning);
        self
    }

    /// How layers built on this context choose their kernels.
    pub fn tuning(&self) -> crate::gpu::tune::Tuning {
        self.tuning.policy()
    }

    /// The policy and the cache of measured winners.
    pub fn tuning_state(&self) -> &crate::gpu::tune::TuneState {
        &self.tuning
    }

    /// Every shape class the autotune has measured on this context's adapter: the
    /// candidates' times and the winner.
    pub fn tuning_report(&self) -> Vec<crate::gpu::tune::TuneRecord> {
        self.tuning.report()
    }

    /// Whether the integer GEMM computes its dot products without `dot4I8Packed`.
    pub fn dot4_polyfill(&self) -> bool {
        self.dot4_polyfill
    }

    /// The outcome of the packed dot-product self-test.
    pub fn dot4_self_test(&self) -> &crate::gpu::capabilities::Dot4SelfTest {
        &self.dot4_self_test
    }

    /// The layout [`crate::gpu::buffers::check_buffer`] binds a caller's buffer with to
    /// learn, inside an error scope, whether this device can use it.
    pub(crate) fn probe_layout(&self) -> Result<wgpu::BindGroupLayout> {
        if let Some(l) = self.probe_layout.get() {
            return Ok(l.clone());
        }
        let layout = crate::gpu::buffers::captured(self, "buffer probe layout", |device| {
            device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                label: Some("wgpu-quant buffer probe"),
                entries: &[wgpu::BindGroupLayoutEntry {
                    binding: 0,
                    visibility: wgpu::ShaderStages::COMPUTE,
                    ty: wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Storage { read_only: true },
                        has_dynamic_offset: false,
                        min_binding_size: None,
                    },
                    count: None,
                }],
            })
        })?;
        Ok(self.probe_layout.get_or_init(|| layout).clone())
    }

    /// The device.
    pub fn device(&self) -> &wgpu::Device {
        &self.device
    }
    /// The queue.
    pub fn queue(&self) -> &wgpu::Queue {
        &self.queue
    }
    /// The adapter's description, when the context created the device itself.
    pub fn adapter_info(&self) -> Option<&wgpu::AdapterInfo> {
        self.adapter_info.as_ref()
    }

    /// [`Error::DeviceLost`] once the device has been destroyed or lost (headless contexts
    /// register a device-lost callback; a context over the caller's device learns of a loss
    /// through [`Context::mark_lost`] or through the errors wgpu then reports).
    ///
    /// # Errors
    /// [`Error::DeviceLost`] with the reason.
    pub fn check_alive(&self) -> Result<()> {
        match self.lost.lock().map(|l| l.clone()) {
            Ok(None) => Ok(()),
            Ok(Some(reason)) => Err(Error::DeviceLost(reason)),
            Err(_) => Err(Error::DeviceLost("lost-state lock poisoned".into())),
        }
    }

    /// Records that the device is lost (for embedders that handle wgpu's device-lost
    /// callback themselves); every later op returns [`Error::DeviceLost`].
    pub fn mark_lost(&self, reason: impl Into<String>) {
        if let Ok(mut l) = self.lost.lock() {
            *l = Some(reason.into());
        }
    }

    /// The pipeline for `key`, built on first use and cached for the context's lifetime.
    ///
    /// # Errors
    /// [`Error::Shader`] or [`Error::Gpu`] when the pipeline cannot be built.
    pub fn pipeline(&self, key: PipelineKey) -> Result<wgpu::ComputePipeline> {
        self.check_alive()?;
        let mut cache = self
            .pipelines
            .lock()
            .map_err(|_| Error::Gpu("pipeline cache lock poisoned".into()))?;
        if let Some(p) = cache.get(&key) {
            return Ok(p.clone());
        }
        // build_pipeline catches validation errors; the capture adds out-of-memory and
        // internal errors (a driver failing to compile), so none reaches wgpu's handler.
        let pipeline =
            crate::gpu::buffers::captured(self, &format!("pipeline {key:?}"), |device| {
                key.build(device)
            })??;
        self.check_alive()?;
        cache.insert(key, pipeline.clone());
        Ok(pipeline)
    }

    /// The same context with a smaller storage-binding limit than the device's, so the
    /// splitting of large tensors can be exercised cheaply (tests) or kept below a budget.
    /// The effective limit is the smaller of the two, rounded down to a multiple of 256.
    pub fn with_binding_limit(mut self, bytes: u64) -> Self {
        self.binding_limit = Some(bytes);
        self
    }

    /// The storage-binding limit the ops split tensors by.
    pub fn binding_limit(&self) -> u64 {
        let device = self.device.limits().max_storage_buffer_binding_size;
        let limit = self.binding_limit.map_or(device, |b| b.min(device));
        (limit / 256 * 256).max(256)
    }

    /// The adapter's features and limits as the kernels see them.
    pub fn capabilities(&self) -> crate::gpu::capabilities::Capabilities {
        let mut caps =
            crate::gpu::capabilities::Capabilities::of(&self.device, self.adapter_info.as_ref());
        caps.dot4_self_test = self.dot4_self_test.clone();
        if self.dot4_polyfill {
            caps.dot_product = crate::gpu::capabilities::DotProductPath::Polyfill;
        }
        caps
    }

    /// Encodes with `record` and submits, without waiting: a validation, out-of-memory or
    /// internal error scope is pushed on this thread around the encoding and the submit, so
    /// another thread's failure is never reported here, nor this one's there. On native the
    /// errors are known when it returns; in a browser they arrive later and the next
    /// [`Context::flush`] (every async readback and run calls it) reports them.
    ///
    /// # Errors
    /// What `record` returns; [`Error::Gpu`] for a wgpu error of the encoding or the submit.
    pub fn submit(
        &self,
        what: &str,
        record: impl FnOnce(&mut wgpu::CommandEncoder) -> Result<()>,
    ) -> Result<()> {
        crate::gpu::buffers::captured(self, what, |device| {
            let mut encoder = device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some(what) });
            record(&mut encoder)?;
            self.queue.submit([encoder.finish()]);
            Ok(())
        })?
    }

    /// Settles error-scope pops: each is polled once (on native wgpu they are always ready,
    /// so nothing waits) and one still pending (a browser's promise) is kept for the next
    /// [`Context::flush`].
    ///
    /// # Errors
    /// [`Error::Gpu`] with the first message of a pop that was ready.
    pub(crate) fn settle(&self, pops: Vec<ScopeFuture>) -> Result<()> {
        let mut first = None;
        let mut waker_cx = std::task::Context::from_waker(std::task::Waker::noop());
        for mut pop in pops {
            match pop.as_mut().poll(&mut waker_cx) {
                std::task::Poll::Ready(message) => first = first.or(message),
                std::task::Poll::Pending => {
                    if let Ok(mut pending) = self.pending_scopes.0.lock() {
                        pending.push(pop);
                    }
                }
            }
        }
        first.map_or(Ok(()), |message| Err(Error::Gpu(message)))
    }

    /// Reports the errors of this context's earlier calls that were not known when they
    /// returned: error scopes still pending (a browser's), and errors no scope caught that
    /// wgpu filed for this thread (a failed submit). Every async readback and model run
    /// calls it after its work completed, so a result is never returned over an error.
    ///
    /// # Errors
    /// [`Error::Gpu`] with the first such error; [`Error::DeviceLost`].
    pub async fn flush(&self) -> Result<()> {
        let pending: Vec<ScopeFuture> = self
            .pending_scopes
            .0
            .lock()
            .map(|mut p| std::mem::take(&mut *p))
            .unwrap_or_default();
        let mut first = None;
        for pop in pending {
            let message = pop.await;
            first = first.or(message);
        }
        if first.is_none() {
            first = self.uncaptured.lock().ok().and_then(|mut e| {
                let mine = e.remove(&std::thread::current().id())?;
                mine.into_iter().next()
            });
        }
        match first {
            Some(message) => Err(Error::Gpu(message)),
            None => self.check_alive(),
        }
    }

    /// Waits, without blocking a browser's event loop, until all work submitted so far has
    /// finished, then [`Context::flush`]es. On native wgpu learns of completion only by
    /// polling, so polling this future waits on the device.
    ///
    /// # Errors
    /// [`Error::Gpu`] when the wait fails or an earlier call's error surfaces;
    /// [`Error::DeviceLost`].
    pub async fn wait(&self) -> Result<()> {
        self.check_alive()?;
        #[cfg(not(target_arch = "wasm32"))]
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| Error::Gpu(format!("poll: {e}")))?;
        #[cfg(target_arch = "wasm32")]
        {
            let (done, signal) = crate::gpu::buffers::oneshot();
            self.queue.on_submitted_work_done(move || signal(()));
            done.await;
        }
        self.flush().await
    }

    /// Blocks until all submitted work has finished (native only; [`Context::wait`] is the
    /// async form).
    ///
    /// # Errors
    /// [`Error::Gpu`] when the device is lost or the wait fails.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn wait_idle(&self) -> Result<()> {
        pollster::block_on(self.wait())
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;

    /// Contexts made on several threads at once all work (adapter requests take turns), and
    /// the async constructor stays `Send` (it can be spawned on a multi-threaded executor).
    #[test]
    fn contexts_from_several_threads_at_once() {
        fn is_send<T: Send>(_: &T) {}
        is_send(&Context::headless_async());
        let threads: Vec<_> = (0..4)
            .map(|_| std::thread::spawn(|| Context::headless().map(|c| c.adapter_info().is_some())))
            .collect();
        for t in threads {
            match t.join().expect("a thread panicked") {
                Ok(has_info) => assert!(has_info),
                Err(Error::NoAdapter(_)) => {} // no adapter on this machine: nothing to race
                Err(e) => panic!("{e}"),
            }
        }
    }

    /// An error-scope pop that resolves on its second poll, as a browser's promise does
    /// (native wgpu's pops are ready at once, so only this reaches the deferred path).
    fn late_pop(message: &'static str) -> ScopeFuture {
        let mut polled = false;
        Box::pin(std::future::poll_fn(move |cx| {
            if polled {
                std::task::Poll::Ready(Some(message.to_string()))
            } else {
                polled = true;
                cx.waker().wake_by_ref();
                std::task::Poll::Pending
            }
        }))
    }

    #[test]
    fn a_pending_scope_error_is_reported_by_the_next_flush_and_only_once() -> Result<()> {
        let Some(ctx) = crate::testing::gpu_or_skip("pending scope")? else {
            return Ok(());
        };
        ctx.settle(vec![late_pop("late validation error")])?;
        match pollster::block_on(ctx.flush()) {
            Err(Error::Gpu(m)) => assert_eq!(m, "late validation error"),
            other => panic!("flush returned {other:?}"),
        }
        pollster::block_on(ctx.flush())
    }

    #[test]
    fn a_readback_after_a_pending_scope_error_returns_the_error_not_the_data() -> Result<()> {
        let Some(ctx) = crate::testing::gpu_or_skip("pending scope readback")? else {
            return Ok(());
        };
        let usage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC;
        let buffer = crate::gpu::buffers::upload(&ctx, "data", &[1u32, 2, 3, 4], usage)?;
        ctx.settle(vec![late_pop("an earlier call failed")])?;
        let read = pollster::block_on(crate::gpu::buffers::read(&ctx, &buffer, 16));
        assert!(
            matches!(&read, Err(Error::Gpu(m)) if m == "an earlier call failed"),
            "{read:?}"
        );
        let again = pollster::block_on(crate::gpu::buffers::read(&ctx, &buffer, 16))?;
        assert_eq!(again, bytemuck::cast_slice::<u32, u8>(&[1, 2, 3, 4]));
        Ok(())
    }

    #[test]
    fn a_ready_scope_error_is_returned_at_once() -> Result<()> {
        let Some(ctx) = crate::testing::gpu_or_skip("ready scope")? else {
            return Ok(());
        };
        let ready: ScopeFuture = Box::pin(async { Some("now".to_string()) });
        assert!(matches!(ctx.settle(vec![ready]), Err(Error::Gpu(m)) if m == "now"));
        pollster::block_on(ctx.flush())
    }
}
