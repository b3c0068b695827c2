// Dynamic quantization of activations on the GPU, per row or per tensor: the range, the
// scale and the zero point are computed here, bit-identical to the CPU reference
// (src/reference/dynamic.rs, `dynamic_params` and `dynamic_quantize`).
//
// The range of a group is two maxima over bit patterns: of the positive finite values and of
// the magnitudes of the negative finite values. For non-negative floats bit order is value
// order, so an integer max gives an exact, flush-free max(0, max x) and -min(0, min x); NaN
// and ±Inf are skipped. Both start at 0 (= +0.0). `range_params` turns the two into the
// scale and zero point (exact division), and `quantize_value` applies the Onnx rule.
//
// Per row (`dynamic_row`): one workgroup of ROW_WORKGROUP invocations per row, one pass. Each
// invocation reduces a strided share of the row's words; the workgroup combines them with
// atomicMax in workgroup memory (zero-initialised); after a barrier invocation 0 derives the
// params once, writes the row's RowParams and shares the params in workgroup memory; after a
// second barrier every invocation quantizes its words.
//
// Per tensor, three passes over four slots: `dynamic_range` (atomicMax into slots 0 and 1),
// `dynamic_params` (one invocation; scale and zero point into slots 2 and 3) and
// `dynamic_quantize` (every packed word; the first word of each row also writes that row's
// RowParams {zero point, scale} for the GEMM).
//   SYMMETRIC: false = ONNX DynamicQuantizeLinear, true = absmax / 127 per token.
#import common/quantize
#import common/pack
#import common/add

// Twin: src/gpu/dynamic.rs `DynamicUniforms`.
struct DynamicUniforms {
    rows: u32,
    cols: u32,
    words_per_row: u32,
    pad0: u32,
    qmin: i32,
    qmax: i32,
    // Invocations per grid row (a 2-D grid above the per-dimension dispatch limit).
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

// Twin: src/gpu/dynamic.rs `WORKGROUP` (the per-tensor passes; ROW_WORKGROUP, injected, is
// the per-row kernel's).
const WORKGROUP: u32 = 64u;

// 2^-23: the per-token scale floor (PER_TOKEN_SCALE_FLOOR).
const SCALE_FLOOR_BITS: u32 = 0x34000000u;

// (max positive bits, max negative magnitude bits) of `range` with one more element.
fn add_to_range(range: vec2<u32>, bits: u32) -> vec2<u32> {
    let magnitude = bits & 0x7fffffffu;
    if magnitude >= 0x7f800000u {
        return range; // NaN or ±Inf
    }
    if (bits & 0x80000000u) == 0u {
        return vec2<u32>(max(range.x, magnitude), range.y);
    }
    return vec2<u32>(range.x, max(range.y, magnitude));
}

// The range of the elements of packed word `word_in_row` of `row`.
fn word_range(range: vec2<u32>, row: u32, word_in_row: u32) -> vec2<u32> {
    var r = range;
    for (var j = 0u; j < 4u; j++) {
        let col = word_in_row * 4u + j;
        if col < uniforms.cols {
            r = add_to_range(r, real_bits[row * uniforms.cols + col]);
        }
    }
    return r;
}

// Packed word `word_in_row` of `row`, quantized with (scale bits, zero point).
fn quantize_word(row: u32, word_in_row: u32, scale_bits: u32, zp: i32) -> u32 {
    var packed_word = 0u;
    for (var j = 0u; j < 4u; j++) {
        let col = word_in_row * 4u + j;
        if col < uniforms.cols {
            let q = quantize_value(real_bits[row * uniforms.cols + col], scale_bits, 0.0, zp, uniforms.qmin, uniforms.qmax);
            packed_word |= storage_byte(q) << (8u * j);
        }
    }
    return packed_word;
}

// (scale bits, zero point) of a group from its range (see the top of the file).
fn range_params(hi_bits: u32, neg_bits: u32) -> vec2<u32> {
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
        // A range wider than f32 (max - min rounds to +Inf) saturates its width to f32::MAX,
        // so the scale stays finite (twin: src/reference/dynamic.rs `dynamic_params`).
        let sum = add_nonneg_f32_exact_bits(hi_bits, neg_bits);
        let width = select(sum, 0x7f7fffffu, sum == 0x7f800000u);
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

var<workgroup> row_positive: atomic<u32>;
var<workgroup> row_negative: atomic<u32>;
var<workgroup> row_scale_zp: vec2<u32>;

// Per row, one pass: workgroup `row` reduces, derives and quantizes row `row`.
@compute @workgroup_size(ROW_WORKGROUP)
fn dynamic_row(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    // Uniform across the workgroup, so the barriers below stay in uniform control flow.
    let row = wid.x + wid.y * (uniforms.dispatch_width / ROW_WORKGROUP);
    if row >= uniforms.rows {
        return;
    }
    var range = vec2<u32>(0u, 0u);
    for (var word = lid; word < uniforms.words_per_row; word += ROW_WORKGROUP) {
        range = word_range(range, row, word);
    }
    atomicMax(&row_positive, range.x);
    atomicMax(&row_negative, range.y);
    workgroupBarrier();
    // Derived once (the exact divisions are the costly part on a CPU device), then shared.
    if lid == 0u {
        let params = range_params(atomicLoad(&row_positive), atomicLoad(&row_negative));
        row_scale_zp = params;
        row_params[row] = RowParams(bitcast<i32>(params.y), bitcast<f32>(params.x));
    }
    let params = workgroupUniformLoad(&row_scale_zp);
    let zp = bitcast<i32>(params.y);
    for (var word = lid; word < uniforms.words_per_row; word += ROW_WORKGROUP) {
        packed[row * uniforms.words_per_row + word] = quantize_word(row, word, params.x, zp);
    }
}

// Per tensor, pass 1: the range of every element into slots 0 and 1.
@compute @workgroup_size(WORKGROUP)
fn dynamic_range(@builtin(global_invocation_id) gid: vec3<u32>) {
    let word = gid.x + gid.y * uniforms.dispatch_width;
    if word >= uniforms.rows * uniforms.words_per_row {
        return;
    }
    let range = word_range(vec2<u32>(0u, 0u), word / uniforms.words_per_row, word % uniforms.words_per_row);
    atomicMax(&slots[0], range.x);
    atomicMax(&slots[1], range.y);
}

// Per tensor, pass 2: the tensor's scale and zero point into slots 2 and 3.
@compute @workgroup_size(1)
fn dynamic_params() {
    let params = range_params(atomicLoad(&slots[0]), atomicLoad(&slots[1]));
    atomicStore(&slots[2], params.x);
    atomicStore(&slots[3], params.y);
}

// Per tensor, pass 3: quantize every packed word.
@compute @workgroup_size(WORKGROUP)
fn dynamic_quantize(@builtin(global_invocation_id) gid: vec3<u32>) {
    let word = gid.x + gid.y * uniforms.dispatch_width;
    if word >= uniforms.rows * uniforms.words_per_row {
        return;
    }
    let row = word / uniforms.words_per_row;
    let word_in_row = word % uniforms.words_per_row;
    let scale_bits = atomicLoad(&slots[2]);
    let zp = bitcast<i32>(atomicLoad(&slots[3]));
    packed[word] = quantize_word(row, word_in_row, scale_bits, zp);
    if word_in_row == 0u {
        row_params[row] = RowParams(zp, bitcast<f32>(scale_bits));
    }
}
