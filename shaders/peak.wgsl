// Adapter peak microkernels, the denominators of the benchmark's "% of peak". Not a bit-exact
// path: they measure throughput only.
//
// This file holds what every peak kernel shares: the uniforms, the bindings, the dot4 step
// and the fill kernel. src/gpu/peak.rs generates each throughput and read kernel's entry
// point for its shape (chains, steps per loop iteration, workgroup size) and appends it,
// after declaring WORKGROUP_SIZE first:
//
// - f32 fma / dot4: 8 or 16 independent accumulator chains per invocation, written out as
//   separate variables (no arrays, which a compiler may keep in memory and index
//   dynamically), each advanced 4 or 16 steps per loop iteration (the loop's own overhead,
//   large on a CPU's SIMD emulation, is paid once per step of every chain). Every chain feeds
//   the final sum, which is written only when it equals a run-time value (`magic`) it
//   practically never equals: nothing can be eliminated, and no memory traffic is added.
// - read: each workgroup streams its own contiguous block of `stream` with vec4<u32> loads
//   (adjacent invocations read adjacent 16-byte words, the pattern a GPU coalesces and a CPU
//   prefetches), summed into 4 independent accumulators.

// Twin of `PeakUniforms` in src/gpu/peak.rs.
struct PeakUniforms {
    // Seeds the chains (never a compile-time constant).
    seed: u32,
    // The bit pattern the final sum is compared with (0xffffffff: a NaN, never the f32 sum;
    // an integer sum may equal it by chance, and then one word is written, harmlessly).
    magic: u32,
    // f32 chains: a <- fma(a, mul, add), converging to add / (1 - mul) with mul = 0.999,
    // so every value stays normal (no denormal slow paths).
    mul: f32,
    add: f32,
}

@group(0) @binding(0) var<uniform> params: PeakUniforms;
@group(0) @binding(1) var<storage, read_write> sink: array<u32>;
@group(0) @binding(2) var<storage, read> stream: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read_write> fill: array<vec4<u32>>;

// One step of a dot4 chain: the accumulator is also the packed operand, so the chain is
// truly dependent and no product can be hoisted out of the loop.
fn dot4_step(a: i32, b: u32) -> i32 {
    return dot4I8Packed(bitcast<u32>(a), b) + a;
}

// Fills `fill` (the buffer `peak_read` streams) with data that differs per word, so the pages
// are real and distinct before they are read.
@compute @workgroup_size(WORKGROUP_SIZE)
fn peak_fill(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) n: vec3<u32>) {
    let i = gid.x + gid.y * n.x * WORKGROUP_SIZE;
    if (i < arrayLength(&fill)) {
        fill[i] = vec4<u32>(i, i ^ params.seed, i * 3u, ~i);
    }
}
