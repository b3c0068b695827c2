//! The GPU context: the caller's `wgpu::Device` and `Queue`, or a headless pair.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

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
    /// Errors no scope caught (headless contexts), reported by the next wait.
    uncaptured: Arc<Mutex<Vec<String>>>,
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
    pub fn headless() -> Result<Self> {
        pollster::block_on(Self::headless_async())
    }

    /// Async form of [`Context::headless`].
    ///
    /// # Errors
    /// As [`Context::headless`].
    pub async fn headless_async() -> Result<Self> {
        // Reads WGPU_BACKEND and the other WGPU_* instance variables.
        let instance =
            wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
        let adapter = match std::env::var("WGPU_ADAPTER_NAME") {
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
        let uncaptured: Arc<Mutex<Vec<String>>> = Arc::default();
        let sink = uncaptured.clone();
        device.on_uncaptured_error(Arc::new(move |error: wgpu::Error| {
            if let Ok(mut errors) = sink.lock() {
                errors.push(error.to_string());
            }
        }));
        Ok(Context {
            device,
            queue,
            adapter_info: Some(adapter.get_info()),
            pipelines: Arc::default(),
            binding_limit: None,
            lost,
            uncaptured,
        })
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
        let pipeline = key.build(&self.device)?;
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
        crate::gpu::capabilities::Capabilities::of(&self.device, self.adapter_info.as_ref())
    }

    /// Blocks until all submitted work has finished.
    ///
    /// # Errors
    /// [`Error::Gpu`] when the device is lost or the wait fails.
    pub fn wait_idle(&self) -> Result<()> {
        self.check_alive()?;
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| Error::Gpu(format!("poll: {e}")))?;
        // An error outside every scope (a failed submit) must not let a readback return
        // stale data as if it were a result.
        let first = self
            .uncaptured
            .lock()
            .ok()
            .and_then(|mut e| e.drain(..).next());
        match first {
            Some(message) => Err(Error::Gpu(message)),
            None => self.check_alive(),
        }
    }
}
