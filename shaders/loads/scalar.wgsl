// Packed-operand loads, one u32 per access (any K). Imported as `loads` by matmul_i8.
@group(0) @binding(1) var<storage, read> a: array<u32>;
@group(0) @binding(2) var<storage, read> w: array<u32>;

fn load_a(i: u32) -> u32 {
    return a[i];
}

fn load_w(i: u32) -> u32 {
    return w[i];
}

fn load4_a(i: u32) -> vec4<u32> {
    return vec4<u32>(a[i], a[i + 1u], a[i + 2u], a[i + 3u]);
}

fn load4_w(i: u32) -> vec4<u32> {
    return vec4<u32>(w[i], w[i + 1u], w[i + 2u], w[i + 3u]);
}
