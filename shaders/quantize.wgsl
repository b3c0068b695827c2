// Static quantize and dequantize, per tensor or per axis.
// CPU twins: src/reference/quantize.rs `quantize`, `dequantize`.
// Layout: rows of `cols` elements, packed 4 storage bytes per u32, rows padded to whole words
// with zero bytes. Element `flat` belongs to channel `(flat / inner) % channels`.
#import common/quantize
#import common/pack

// Twin: src/gpu/quantize.rs `QuantizeUniforms`.
struct QuantizeUniforms {
    rows: u32,
    cols: u32,
    words_per_row: u32,
    inner: u32,
    channels: u32,
    qmin: i32,
    qmax: i32,
    dispatch_width: u32,
}

// Twin: src/gpu/quantize.rs `ChannelQuant`.
struct ChannelQuant {
    scale_bits: u32,
    inv_scale: f32,
    zero_point: i32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> uniforms: QuantizeUniforms;
@group(0) @binding(1) var<storage, read> channel_params: array<ChannelQuant>;
@group(0) @binding(2) var<storage, read_write> real_bits: array<u32>;
@group(0) @binding(3) var<storage, read_write> packed: array<u32>;

fn channel_of(flat: u32) -> u32 {
    return (flat / uniforms.inner) % uniforms.channels;
}

// One invocation per packed word.
@compute @workgroup_size(64)
fn quantize(@builtin(global_invocation_id) gid: vec3<u32>) {
    let word = gid.x + gid.y * uniforms.dispatch_width;
    if word >= uniforms.rows * uniforms.words_per_row {
        return;
    }
    let row = word / uniforms.words_per_row;
    let first_col = (word % uniforms.words_per_row) * 4u;
    var packed_word = 0u;
    for (var j = 0u; j < 4u; j++) {
        let col = first_col + j;
        if col < uniforms.cols {
            let flat = row * uniforms.cols + col;
            let p = channel_params[channel_of(flat)];
            let q = quantize_value(real_bits[flat], p.scale_bits, p.inv_scale, p.zero_point, uniforms.qmin, uniforms.qmax);
            packed_word |= storage_byte(q) << (8u * j);
        }
    }
    packed[word] = packed_word;
}

// One invocation per element: f32(f32(q - zp) * s).
@compute @workgroup_size(64)
fn dequantize(@builtin(global_invocation_id) gid: vec3<u32>) {
    let flat = gid.x + gid.y * uniforms.dispatch_width;
    if flat >= uniforms.rows * uniforms.cols {
        return;
    }
    let row = flat / uniforms.cols;
    let col = flat % uniforms.cols;
    let byte = (packed[row * uniforms.words_per_row + col / 4u] >> (8u * (col % 4u))) & 0xffu;
    var q = i32(byte);
    if SIGNED_STORAGE {
        q = (q ^ 0x80) - 0x80;
    }
    let p = channel_params[channel_of(flat)];
    real_bits[flat] = bitcast<u32>(f32(q - p.zero_point) * bitcast<f32>(p.scale_bits));
}
