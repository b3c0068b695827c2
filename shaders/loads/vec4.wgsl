// Packed-operand loads, 16 bytes per access: rows must be whole vec4s (K words % 4 == 0)
// and bound from 16-byte-aligned offsets. Imported as `loads` by matmul_i8.
@group(0) @binding(1) var<storage, read> a: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read> w: array<vec4<u32>>;

fn load_a(i: u32) -> u32 {
    return a[i / 4u][i % 4u];
}

fn load_w(i: u32) -> u32 {
    return w[i / 4u][i % 4u];
}

fn load4_a(i: u32) -> vec4<u32> {
    return a[i / 4u];
}

fn load4_w(i: u32) -> vec4<u32> {
    return w[i / 4u];
}
