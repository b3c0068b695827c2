//! What the adapter offers that the kernels care about.

/// How `dot4I8Packed` reaches the hardware.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DotProductPath {
    /// A native packed dot product: Vulkan's `OpSDot` (wgpu enables
    /// `VK_KHR_shader_integer_dot_product`, core in Vulkan 1.3, where the driver has it) or
    /// DX12's `dot4add_i8packed` (shader model 6.4).
    Native,
    /// naga's polyfill (unpack, four multiplies, adds): Metal, GL, and the browser.
    Polyfill,
}

impl DotProductPath {
    /// `"native"` or `"polyfill"`.
    pub fn as_str(self) -> &'static str {
        match self {
            DotProductPath::Native => "native",
            DotProductPath::Polyfill => "polyfill",
        }
    }
}

/// The outcome of the packed dot-product self-test run at context creation
/// ([`crate::gpu::Context::run_dot4_self_test`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Dot4SelfTest {
    /// Not run (a context over the caller's device, until it asks).
    NotRun,
    /// `dot4I8Packed` and `dot4U8Packed` gave the CPU's results on every edge value.
    Passed,
    /// A mismatch (the first one, with its operands) or the reason the test could not run;
    /// the context then uses the polyfill path.
    Failed(String),
}

impl Dot4SelfTest {
    /// `"not run"`, `"passed"` or `"failed"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Dot4SelfTest::NotRun => "not run",
            Dot4SelfTest::Passed => "passed",
            Dot4SelfTest::Failed(_) => "failed",
        }
    }
}

/// The adapter's relevant features and limits.
#[derive(Debug, Clone, PartialEq)]
pub struct Capabilities {
    /// Adapter name, when the context created the device.
    pub adapter_name: Option<String>,
    /// Backend, when known.
    pub backend: Option<wgpu::Backend>,
    /// Driver and its version string, when known.
    pub driver: Option<String>,
    /// The packed dot product's path (from the backend; wgpu does not report the Vulkan
    /// feature itself, so a pre-1.3 Vulkan driver without the extension reads as native
    /// here while naga polyfills it). [`crate::gpu::Context::capabilities`] reports
    /// `Polyfill` when the context runs the crate's own polyfill (self-test failed, or
    /// forced).
    pub dot_product: DotProductPath,
    /// The packed dot-product self-test's outcome ([`Dot4SelfTest::NotRun`] from
    /// [`Capabilities::of`]; the context fills it in).
    pub dot4_self_test: Dot4SelfTest,
    /// `shader-f16` enabled on the device (the f16 epilogue does not need it).
    pub shader_f16: bool,
    /// Subgroup operations enabled.
    pub subgroups: bool,
    /// Timestamp queries enabled (the benchmark uses them when present).
    pub timestamp_queries: bool,
    /// `max_storage_buffer_binding_size`.
    pub max_storage_buffer_binding_size: u64,
    /// `max_buffer_size`.
    pub max_buffer_size: u64,
    /// `max_compute_workgroups_per_dimension`.
    pub max_compute_workgroups_per_dimension: u32,
    /// `max_compute_workgroup_storage_size`.
    pub max_compute_workgroup_storage_size: u32,
    /// `max_compute_invocations_per_workgroup`.
    pub max_compute_invocations_per_workgroup: u32,
}

impl Capabilities {
    /// Reads the device's enabled features and limits, and the adapter info if known.
    pub fn of(device: &wgpu::Device, adapter: Option<&wgpu::AdapterInfo>) -> Self {
        let features = device.features();
        let limits = device.limits();
        let backend = adapter.map(|a| a.backend);
        Capabilities {
            adapter_name: adapter.map(|a| a.name.clone()),
            backend,
            driver: adapter.map(|a| format!("{} {}", a.driver, a.driver_info).trim().to_string()),
            dot_product: match backend {
                Some(wgpu::Backend::Vulkan | wgpu::Backend::Dx12) => DotProductPath::Native,
                _ => DotProductPath::Polyfill,
            },
            dot4_self_test: Dot4SelfTest::NotRun,
            shader_f16: features.contains(wgpu::Features::SHADER_F16),
            subgroups: features.contains(wgpu::Features::SUBGROUP),
            timestamp_queries: features.contains(wgpu::Features::TIMESTAMP_QUERY),
            max_storage_buffer_binding_size: limits.max_storage_buffer_binding_size,
            max_buffer_size: limits.max_buffer_size,
            max_compute_workgroups_per_dimension: limits.max_compute_workgroups_per_dimension,
            max_compute_workgroup_storage_size: limits.max_compute_workgroup_storage_size,
            max_compute_invocations_per_workgroup: limits.max_compute_invocations_per_workgroup,
        }
    }
}
