// Dequantize of int32 tensors (onnxruntime's DequantizeLinear with int32 input, which has no
// zero point), per tensor or per axis. CPU twin: src/reference/quantize.rs `dequantize_i32`.
// Element `flat` of the row-major tensor belongs to channel `(flat / inner) % channels`.

// Twin: src/gpu/quantize.rs `DequantizeI32Uniforms`.
struct DequantizeI32Uniforms {
    elements: u32,
    inner: u32,
    channels: u32,
    dispatch_width: u32,
}

@group(0) @binding(0) var<uniform> uniforms: DequantizeI32Uniforms;
@group(0) @binding(1) var<storage, read> scale_bits: array<u32>;
@group(0) @binding(2) var<storage, read_write> real_bits: array<u32>;
@group(0) @binding(3) var<storage, read> q: array<i32>;

// One invocation per element: f32(q) * s. The conversion is the multiply's direct operand,
// so the value is rne(rne(f32(q)) * s), the reference's `q as f32 * s` (README, "Int→float
// conversion").
@compute @workgroup_size(64)
fn dequantize_i32(@builtin(global_invocation_id) gid: vec3<u32>) {
    let flat = gid.x + gid.y * uniforms.dispatch_width;
    if flat >= uniforms.elements {
        return;
    }
    let s = bitcast<f32>(scale_bits[(flat / uniforms.inner) % uniforms.channels]);
    real_bits[flat] = bitcast<u32>(f32(q[flat]) * s);
}
