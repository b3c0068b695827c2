// Elementwise exact division, a[i] / b[i] on bit patterns: exposes common/divide for tests
// and for callers that need IEEE quotients on any GPU.
// CPU twin: src/quant/divide.rs `div_f32_exact_bits`.
#import common/divide

struct DivideUniforms {
    len: u32,
    dispatch_width: u32,
}

@group(0) @binding(0) var<uniform> uniforms: DivideUniforms;
@group(0) @binding(1) var<storage, read> dividend: array<u32>;
@group(0) @binding(2) var<storage, read> divisor: array<u32>;
@group(0) @binding(3) var<storage, read_write> quotient: array<u32>;

@compute @workgroup_size(64)
fn divide(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x + gid.y * uniforms.dispatch_width;
    if i < uniforms.len {
        quotient[i] = div_f32_exact_bits(dividend[i], divisor[i]);
    }
}
