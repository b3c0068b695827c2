// Dynamic quantization of activations on the GPU, per row or per tensor: the range, the
// scale and the zero point are computed here, bit-identical to the CPU reference
// (src/reference/dynamic.rs, `dynamic_params` and `dynamic_quantize`).
//
// Pass 1 (`dynamic_range`): per group, atomicMax over the bit patterns of the positive finite
// values (slot 0) and of the magnitudes of the negative finite values (slot 1). For
// non-negative floats bit order is value order, so this is an exact, flush-free max(0, max x)
// and -min(0, min x); NaN and ±Inf are skipped. The slots start at 0 (= +0.0).
// Pass 2 (`dynamic_params`): one invocation per group derives its scale and zero point
// (exact) into slots 2 and 3. Pass 3 (`dynamic_quantize`): every packed word quantizes four
// elements with the Onnx rule; the first word of each row also writes that row's
// RowParams {zero point, scale} for the GEMM. Each group owns four slots.
//   SYMMETRIC: false = ONNX DynamicQuantizeLinear, true = absmax / 127 per token.
#import common/quantize
#import common/pack
#import common/add

// Twin: src/gpu/dynamic.rs `DynamicUniforms`.
struct DynamicUniforms {
    rows: u32,
    cols: u32,
    words_per_row: u32,
    per_row: u32,
    qmin: i32,
    qmax: i32,
    dispatch_width: u32,
    pad: u32,
}

// Twin: src/gpu/gemm.rs `RowParams`.
struct RowParams {
    zero_point: i32,
    scale: f32,
}

@group(0) @binding(0) var<uniform> uniforms: DynamicUniforms;
@group(0) @binding(1) var<storage, read> real_bits: array<u32>;
@group(0) @binding(2) var<storage, read_write> slots: array<atomic<u32>>;
@group(0) @binding(3) var<storage, read_write> packed: array<u32>;
@group(0) @binding(4) var<storage, read_write> row_params: array<RowParams>;

// 2^-23: the per-token scale floor (PER_TOKEN_SCALE_FLOOR).
const SCALE_FLOOR_BITS: u32 = 0x34000000u;

fn group_of(row: u32) -> u32 {
    return select(0u, row, uniforms.per_row != 0u);
}

@compute @workgroup_size(64)
fn dynamic_range(@builtin(global_invocation_id) gid: vec3<u32>) {
    let word = gid.x + gid.y * uniforms.dispatch_width;
    if word >= uniforms.rows * uniforms.words_per_row {
        return;
    }
    let row = word / uniforms.words_per_row;
    let first_col = (word % uniforms.words_per_row) * 4u;
    var positive = 0u;
    var negative = 0u;
    for (var j = 0u; j < 4u; j++) {
        let col = first_col + j;
        if col < uniforms.cols {
            let bits = real_bits[row * uniforms.cols + col];
            let magnitude = bits & 0x7fffffffu;
            if magnitude < 0x7f800000u {
                if (bits & 0x80000000u) == 0u {
                    positive = max(positive, magnitude);
                } else {
                    negative = max(negative, magnitude);
                }
            }
        }
    }
    let g = group_of(row);
    atomicMax(&slots[4u * g], positive);
    atomicMax(&slots[4u * g + 1u], negative);
}

// (scale bits, zero point) of a group from its two slots.
fn group_params(g: u32) -> vec2<u32> {
    let hi_bits = atomicLoad(&slots[4u * g]);
    let neg_bits = atomicLoad(&slots[4u * g + 1u]);
    let qmin = uniforms.qmin;
    let qmax = uniforms.qmax;
    if SYMMETRIC {
        let absmax = max(hi_bits, neg_bits);
        let s = div_f32_exact_bits(absmax, bitcast<u32>(127.0));
        // Compare on bits: both non-negative, so bit order is value order (no flush).
        return vec2<u32>(select(SCALE_FLOOR_BITS, s, s > SCALE_FLOOR_BITS), 0u);
    }
    // An all-zero range has scale 1.0 (onnxruntime); its zero point then follows the same
    // formula: qmin - 0 / 1 = qmin.
    var scale_bits = bitcast<u32>(1.0);
    if hi_bits != 0u || neg_bits != 0u {
        let width = add_nonneg_f32_exact_bits(hi_bits, neg_bits);
        scale_bits = div_f32_exact_bits(width, bitcast<u32>(f32(qmax - qmin)));
    }
    // lo = -min(0, min x); +0.0 (not -0.0) when no value was negative.
    let lo_bits = select(0x80000000u | neg_bits, 0u, neg_bits == 0u);
    let initial = f32(qmin) - bitcast<f32>(div_f32_exact_bits(lo_bits, scale_bits));
    var clamped = select(initial, f32(qmin), initial < f32(qmin));
    clamped = select(clamped, f32(qmax), clamped > f32(qmax));
    let nan = (bitcast<u32>(initial) & 0x7fffffffu) > 0x7f800000u;
    let zp = select(i32(round(clamped)), qmin, nan);
    return vec2<u32>(scale_bits, bitcast<u32>(zp));
}

@compute @workgroup_size(64)
fn dynamic_params(@builtin(global_invocation_id) gid: vec3<u32>) {
    let g = gid.x;
    let groups = select(1u, uniforms.rows, uniforms.per_row != 0u);
    if g >= groups {
        return;
    }
    let params = group_params(g);
    atomicStore(&slots[4u * g + 2u], params.x);
    atomicStore(&slots[4u * g + 3u], params.y);
}

@compute @workgroup_size(64)
fn dynamic_quantize(@builtin(global_invocation_id) gid: vec3<u32>) {
    let word = gid.x + gid.y * uniforms.dispatch_width;
    if word >= uniforms.rows * uniforms.words_per_row {
        return;
    }
    let row = word / uniforms.words_per_row;
    let word_in_row = word % uniforms.words_per_row;
    let g = group_of(row);
    let scale_bits = atomicLoad(&slots[4u * g + 2u]);
    let zp = bitcast<i32>(atomicLoad(&slots[4u * g + 3u]));
    var packed_word = 0u;
    for (var j = 0u; j < 4u; j++) {
        let col = word_in_row * 4u + j;
        if col < uniforms.cols {
            let q = quantize_value(real_bits[row * uniforms.cols + col], scale_bits, 0.0, zp, uniforms.qmin, uniforms.qmax);
            packed_word |= storage_byte(q) << (8u * j);
        }
    }
    packed[word] = packed_word;
    if word_in_row == 0u {
        row_params[row] = RowParams(zp, bitcast<f32>(scale_bits));
    }
}
