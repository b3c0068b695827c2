// The page's WebGPU adapter in words. wgpu reports GPUAdapterInfo.description as the adapter
// name, and browsers often leave it empty; vendor and architecture are usually there.
export async function describeAdapter(fallbackName) {
  try {
    const adapter = await navigator.gpu.requestAdapter({ powerPreference: "high-performance" });
    if (!adapter) return fallbackName || "(none)";
    const i = adapter.info || (adapter.requestAdapterInfo ? await adapter.requestAdapterInfo() : {});
    const parts = [i.vendor, i.architecture, i.device, i.description].filter((s) => s);
    const fallback = i.isFallbackAdapter || adapter.isFallbackAdapter ? " (fallback adapter)" : "";
    return (parts.length ? parts.join(" / ") : fallbackName || "(unnamed)") + fallback;
  } catch (e) {
    return fallbackName || "(unnamed)";
  }
}

// wgpu's backend names, as a person reads them.
export function backendName(backend) {
  return backend === "BrowserWebGpu" ? "WebGPU (browser)" : backend;
}
