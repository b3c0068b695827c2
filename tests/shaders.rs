//! Shaders without a GPU: every buildable variant parses and validates under naga, no
//! bit-exact variant uses an operation the numerics contract forbids (followed through the
//! IR's values, README "How the bit-exact shaders stay exact under WGSL's rules"), and the
//! checks can fail: each forbidden pattern, written indirectly, is rejected.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use wgpu_quant::Convention;
use wgpu_quant::Error;
use wgpu_quant::gpu::dynamic::ROW_WORKGROUPS;
use wgpu_quant::gpu::pipelines::{EpilogueKind, MatmulVariant, PipelineKey, Tile};
use wgpu_quant::gpu::shader::{
    ConstValue, DOCUMENTED_FLOAT_COMPARISONS, SOURCES, assemble, bit_exact_violations,
    check_bit_exact, parse_and_validate, validate,
};

/// Lints every buildable variant: each distinct assembled source is parsed and validated
/// once (variants that differ only in constants their epilogue never reads assemble to the
/// same text), on every core.
#[test]
fn every_variant_validates_and_is_bit_exact() {
    let keys = PipelineKey::buildable();
    let mut by_text: HashMap<String, Vec<PipelineKey>> = HashMap::new();
    for key in &keys {
        by_text.entry(key.wgsl().unwrap()).or_default().push(*key);
    }
    let groups: Vec<(String, Vec<PipelineKey>)> = by_text.into_iter().collect();
    eprintln!(
        "{} buildable variants, {} distinct sources",
        keys.len(),
        groups.len()
    );
    let next = AtomicUsize::new(0);
    let failures = Mutex::new(Vec::new());
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some((wgsl, group)) = groups.get(i) else {
                        break;
                    };
                    let name = format!("{:?}", group[0]);
                    let (module, info) = match parse_and_validate(&name, wgsl) {
                        Ok(v) => v,
                        Err(e) => {
                            failures.lock().unwrap().push(format!("{e}"));
                            continue;
                        }
                    };
                    let mut linted = Vec::new();
                    for key in group.iter().filter(|k| k.is_bit_exact()) {
                        let allow = key.allows_contraction();
                        if linted.contains(&allow) {
                            continue;
                        }
                        linted.push(allow);
                        let violations = bit_exact_violations(&module, &info, allow);
                        if !violations.is_empty() {
                            failures
                                .lock()
                                .unwrap()
                                .push(format!("{key:?}: {violations:?}"));
                        }
                    }
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    assert!(
        failures.is_empty(),
        "{} failures, first: {}",
        failures.len(),
        failures[0]
    );
}

/// `buildable()` is every value of every field of every key: the count is the product of
/// the field domains, each field takes each value of its type, and no key repeats. The
/// destructuring below names every field, so a new field or variant does not compile here
/// until its domain is added.
#[test]
fn buildable_is_every_value_of_every_field() {
    let keys = PipelineKey::buildable();
    let unique: HashSet<PipelineKey> = keys.iter().copied().collect();
    assert_eq!(unique.len(), keys.len(), "a key repeats");
    // (variant, field) -> the values seen, as debug strings.
    let mut seen: HashMap<(&str, &str), HashSet<String>> = HashMap::new();
    let mut per_variant: HashMap<&str, usize> = HashMap::new();
    let mut note = |variant: &'static str, fields: &[(&'static str, String)]| {
        *per_variant.entry(variant).or_default() += 1;
        for (field, value) in fields {
            seen.entry((variant, field))
                .or_default()
                .insert(value.clone());
        }
    };
    for key in &keys {
        match *key {
            PipelineKey::Quantize { convention } => {
                note("Quantize", &[("convention", format!("{convention:?}"))])
            }
            PipelineKey::Dequantize { signed } => {
                note("Dequantize", &[("signed", signed.to_string())])
            }
            PipelineKey::MatmulI8(MatmulVariant {
                epilogue,
                a_is_u8,
                dynamic_rows,
                per_row_zero_point,
                float_bias,
                vec4_loads,
                row_sums,
                float_clamp,
                convention,
                dot4_polyfill,
                tile,
            }) => note(
                "MatmulI8",
                &[
                    ("epilogue", format!("{epilogue:?}")),
                    ("a_is_u8", a_is_u8.to_string()),
                    ("dynamic_rows", dynamic_rows.to_string()),
                    ("per_row_zero_point", per_row_zero_point.to_string()),
                    ("float_bias", float_bias.to_string()),
                    ("vec4_loads", vec4_loads.to_string()),
                    ("row_sums", row_sums.to_string()),
                    ("float_clamp", float_clamp.to_string()),
                    ("convention", format!("{convention:?}")),
                    ("dot4_polyfill", dot4_polyfill.to_string()),
                    ("tile", format!("{tile:?}")),
                ],
            ),
            PipelineKey::DynamicRow {
                symmetric,
                workgroup,
            } => note(
                "DynamicRow",
                &[
                    ("symmetric", symmetric.to_string()),
                    ("workgroup", workgroup.to_string()),
                ],
            ),
            PipelineKey::DynamicRange { symmetric } => {
                note("DynamicRange", &[("symmetric", symmetric.to_string())])
            }
            PipelineKey::DynamicParams { symmetric } => {
                note("DynamicParams", &[("symmetric", symmetric.to_string())])
            }
            PipelineKey::DynamicQuantize { symmetric } => {
                note("DynamicQuantize", &[("symmetric", symmetric.to_string())])
            }
            PipelineKey::DequantizeI32 => note("DequantizeI32", &[]),
            PipelineKey::Divide => note("Divide", &[]),
            PipelineKey::MatmulF32 {
                has_bias,
                gemv,
                vec4,
            } => note(
                "MatmulF32",
                &[
                    ("has_bias", has_bias.to_string()),
                    ("gemv", gemv.to_string()),
                    ("vec4", vec4.to_string()),
                ],
            ),
        }
    }
    // The domain of each field's type.
    let domain = |field: &str| match field {
        "convention" => Convention::ALL.len(),
        "epilogue" => EpilogueKind::ALL.len(),
        "workgroup" => ROW_WORKGROUPS.len(),
        "tile" => Tile::ALL.len(),
        _ => 2, // bool
    };
    let mut expected_total = 0;
    for (variant, count) in &per_variant {
        let mut product = 1;
        for ((v, field), values) in &seen {
            if v == variant {
                assert_eq!(values.len(), domain(field), "{variant}.{field}: {values:?}");
                product *= domain(field);
            }
        }
        assert_eq!(*count, product, "{variant}");
        expected_total += product;
    }
    assert_eq!(
        per_variant.len(),
        10,
        "every PipelineKey variant is buildable"
    );
    assert_eq!(keys.len(), expected_total);
    // 3 + 2 + 1 + 7·3·2^8·|Tile::ALL| + 2·3 + 3·2 + 1 + 2^3 today.
    assert_eq!(
        keys.len(),
        3 + 2 + 1 + 7 * 3 * 256 * Tile::ALL.len() + 6 + 6 + 1 + 8
    );
}

/// Forbidden patterns the walk must see through, each written indirectly. Every case must be
/// rejected with the given message fragment.
const REJECTED: &[(&str, &str, &str)] = &[
    // The direct forms.
    (
        "division",
        "fn f(a: f32, b: f32) -> f32 { return a / b; }",
        "division",
    ),
    (
        "fma",
        "fn f(a: f32, b: f32) -> f32 { return fma(a, b, a); }",
        "Fma",
    ),
    ("exp", "fn f(a: f32) -> f32 { return exp(a); }", "Exp"),
    ("sqrt", "fn f(a: f32) -> f32 { return sqrt(a); }", "Sqrt"),
    (
        "max",
        "fn f(a: f32, b: f32) -> f32 { return max(a, b); }",
        "float Max",
    ),
    (
        "clamp",
        "fn f(a: f32) -> f32 { return clamp(a, 0.0, 1.0); }",
        "float Clamp",
    ),
    (
        "pack",
        "fn f(a: vec4<f32>) -> u32 { return pack4x8snorm(a); }",
        "Pack4x8snorm",
    ),
    (
        "mad",
        "fn f(a: f32, b: f32, c: f32) -> f32 { return a * b + c; }",
        "contractible",
    ),
    (
        "msub",
        "fn f(a: f32, b: f32, c: f32) -> f32 { return c - a * b; }",
        "contractible",
    ),
    // Negated products.
    (
        "negated product",
        "fn f(a: f32, b: f32, c: f32) -> f32 { return -(a * b) + c; }",
        "contractible",
    ),
    // Through helper functions: a returned product, a product passed as an argument.
    (
        "helper return",
        "fn h(a: f32, b: f32) -> f32 { return a * b; }
         fn f(a: f32, b: f32, c: f32) -> f32 { return h(a, b) + c; }",
        "contractible",
    ),
    (
        "helper argument",
        "fn h(p: f32, c: f32) -> f32 { return p + c; }
         fn f(a: f32, b: f32, c: f32) -> f32 { return h(a * b, c); }",
        "contractible",
    ),
    (
        "helper chain",
        "fn g(p: f32) -> f32 { return -p; }
         fn h(p: f32) -> f32 { return g(p); }
         fn f(a: f32, b: f32, c: f32) -> f32 { return c - h(a * b); }",
        "contractible",
    ),
    // Struct fields, select, constructors.
    (
        "struct field",
        "struct S { p: f32, q: f32 }
         fn f(a: f32, b: f32, c: f32) -> f32 { let s = S(a * b, c); return s.p + c; }",
        "contractible",
    ),
    (
        "select",
        "fn f(a: f32, b: f32, c: f32, k: bool) -> f32 { return select(a, a * b, k) + c; }",
        "contractible",
    ),
    (
        "vector constructor",
        "fn f(a: f32, b: f32, c: f32) -> f32 { let v = vec2<f32>(a * b, c); return v.x + c; }",
        "contractible",
    ),
    (
        "vector product",
        "fn f(a: vec2<f32>, b: vec2<f32>, c: vec2<f32>) -> vec2<f32> { return a * b + c; }",
        "contractible",
    ),
    (
        "swizzle",
        "fn f(a: vec4<f32>, b: f32, c: f32) -> f32 { let v = a * b; return v.zw.y + c; }",
        "contractible",
    ),
    (
        "array constructor",
        "fn f(a: f32, b: f32, c: f32) -> f32 { let v = array<f32, 2>(c, a * b); return v[1] + c; }",
        "contractible",
    ),
    // Locals, loops, globals.
    (
        "local",
        "fn f(a: f32, b: f32, c: f32) -> f32 { var p = a * b; return p + c; }",
        "contractible",
    ),
    (
        "local in a loop",
        "fn f(a: f32, b: f32, c: f32) -> f32 {
             var s = c;
             var p = 0.0;
             for (var i = 0u; i < 4u; i++) { s = s + p; p = a * b; }
             return s;
         }",
        "contractible",
    ),
    (
        "local struct member",
        "struct S { p: f32, q: f32 }
         fn f(a: f32, b: f32, c: f32) -> f32 { var s: S; s.q = a * b; let t = s; return t.q + c; }",
        "contractible",
    ),
    (
        "private global",
        "var<private> g: f32;
         fn put(a: f32, b: f32) { g = a * b; }
         fn f(a: f32, b: f32, c: f32) -> f32 { put(a, b); return g + c; }",
        "contractible",
    ),
    // Bit reinterpretation is transparent (and a constant mask is a sign or abs idiom).
    (
        "bitcast round trip",
        "fn f(a: f32, b: f32, c: f32) -> f32 { return bitcast<f32>(bitcast<u32>(a * b)) + c; }",
        "contractible",
    ),
    (
        "sign flip on bits",
        "fn f(a: f32, b: f32, c: f32) -> f32 {
             return bitcast<f32>(bitcast<u32>(a * b) ^ 0x80000000u) + c;
         }",
        "contractible",
    ),
    // Sums of products.
    (
        "matrix times vector",
        "fn f(m: mat2x2<f32>, v: vec2<f32>) -> vec2<f32> { return m * v; }",
        "matrix product",
    ),
    (
        "vector times matrix",
        "fn f(m: mat3x3<f32>, v: vec3<f32>) -> vec3<f32> { return v * m; }",
        "matrix product",
    ),
    (
        "cross",
        "fn f(a: vec3<f32>, b: vec3<f32>) -> vec3<f32> { return cross(a, b); }",
        "Cross",
    ),
    (
        "dot",
        "fn f(a: vec3<f32>, b: vec3<f32>) -> f32 { return dot(a, b); }",
        "Dot",
    ),
    // Products of three factors (WGSL §15.7.5 allows reassociation).
    (
        "three factors",
        "fn f(a: f32, b: f32, c: f32) -> f32 { return a * (b * c); }",
        "three factors",
    ),
    (
        "three factors through a local",
        "fn f(a: i32, b: f32, c: f32) -> f32 { var s = b; s = s * c; return f32(a) * s; }",
        "three factors",
    ),
    (
        "three factors through a helper",
        "fn h(p: f32, x: f32) -> f32 { return p * x; }
         fn f(a: f32, b: f32, c: f32) -> f32 { return h(a * b, c); }",
        "three factors",
    ),
    (
        "three factors through bits",
        "fn q(bits: u32, inv: f32) -> f32 { return bitcast<f32>(bits) * inv; }
         fn f(a: f32, b: f32, c: f32) -> f32 { return q(bitcast<u32>(a * b), c); }",
        "three factors",
    ),
    (
        "three terms",
        "fn f(a: f32, b: f32, c: f32) -> f32 { return (a + b) - c; }",
        "three terms",
    ),
    (
        "three terms through a helper",
        "fn h(s: f32, c: f32) -> f32 { return s + c; }
         fn f(a: f32, b: f32, c: f32) -> f32 { return h(a - b, c); }",
        "three terms",
    ),
    // f32(int) of a value that may exceed 2^24.
    (
        "conversion feeding an add",
        "@group(0) @binding(0) var<storage, read> data: array<i32>;
         fn f(x: f32) -> f32 { return f32(data[0]) + x; }",
        "conversion of an integer",
    ),
    (
        "conversion of a product feeding an add",
        "struct P { zero_point: i32 }
         @group(0) @binding(0) var<uniform> p: P;
         fn f(x: f32) -> f32 { return f32(p.zero_point * p.zero_point) - x; }",
        "conversion of an integer",
    ),
    (
        "conversion through a helper",
        "@group(0) @binding(0) var<storage, read> data: array<i32>;
         fn h(i: i32, x: f32) -> f32 { return x + f32(i); }
         fn f(x: f32) -> f32 { return h(dot4I8Packed(u32(data[0]), 7u), x); }",
        "conversion of an integer",
    ),
    (
        "conversion reaching a multiply through a local",
        "@group(0) @binding(0) var<storage, read> data: array<i32>;
         fn f(x: f32) -> f32 { var c = f32(data[0]); return c * x; }",
        "other than directly",
    ),
    // Float comparisons outside the documented functions.
    (
        "comparison",
        "fn f(a: f32) -> f32 { return select(a, 0.0, a < 1.0); }",
        "float comparison",
    ),
];

#[test]
fn the_walk_catches_each_forbidden_pattern() {
    for (name, src, expected) in REJECTED {
        let v = check_bit_exact(name, src, false).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(
            v.iter().any(|v| v.what.contains(expected)),
            "{name}: expected {expected:?}, got {v:?}"
        );
    }
    // Indirection patterns stay rejected with contraction allowed only where the product
    // multiplies again.
    let three = "fn f(a: f32, b: f32, c: f32) -> f32 { return a * (b * c); }";
    assert!(!check_bit_exact("three", three, true).unwrap().is_empty());
}

/// The real dynamic and requantizing epilogues pass only because their products are rounded
/// out of sight before multiplying again: without `rounded(..)` the lint rejects them.
#[test]
fn the_real_epilogues_need_their_barriers() {
    let key = PipelineKey::MatmulI8(MatmulVariant {
        epilogue: EpilogueKind::DequantRequant,
        a_is_u8: false,
        dynamic_rows: true,
        per_row_zero_point: true,
        float_bias: false,
        vec4_loads: false,
        row_sums: true,
        float_clamp: false,
        convention: Convention::PyTorch,
        dot4_polyfill: false,
        tile: Tile::Gemv1x4,
    });
    let wgsl = key.wgsl().unwrap();
    assert_eq!(check_bit_exact("real", &wgsl, false).unwrap(), vec![]);
    for (barrier, bare) in [
        (
            "rounded(row_params(r).scale * scale)",
            "row_params(r).scale * scale",
        ),
        (
            "rounded(dequant_value(acc, r, ch))",
            "dequant_value(acc, r, ch)",
        ),
    ] {
        assert!(wgsl.contains(barrier), "{barrier}");
        let stripped = wgsl.replace(barrier, bare);
        let v = check_bit_exact("stripped", &stripped, false).unwrap();
        assert!(
            v.iter().any(|v| v.what.contains("three factors")),
            "{bare}: {v:?}"
        );
    }
}

/// What the walk accepts: the forms the real shaders use.
const ACCEPTED: &[(&str, &str)] = &[
    (
        "integer division, integer max, one f32 multiply",
        "fn f(a: i32, b: i32, x: f32) -> f32 { return f32(max(a / b, 0)) * x; }",
    ),
    (
        "a dead branch",
        "const ON: bool = false; fn f(a: f32, b: f32) -> f32 { if ON { return a / b; } return a; }",
    ),
    (
        "f32(acc) as a direct operand of one multiply",
        "@group(0) @binding(0) var<storage, read> data: array<i32>;
         fn f(x: f32) -> f32 { let acc = data[0] * 7; return f32(acc) * x; }",
    ),
    (
        "a host-bounded conversion feeding an add",
        "struct P { qmin: i32, zero_point: i32 }
         @group(0) @binding(0) var<uniform> p: P;
         fn f(x: f32) -> f32 { return f32(p.qmin - p.zero_point) - x; }",
    ),
    (
        "a product rounded out of sight by a runtime mask, then multiplied",
        "struct U { pad0: u32 }
         @group(0) @binding(0) var<uniform> u: U;
         fn f(a: f32, b: f32, c: f32) -> f32 {
             let p = bitcast<f32>(bitcast<u32>(a * b) ^ u.pad0);
             return p * c;
         }",
    ),
    (
        "a product compared, selected and stored as bits",
        "@group(0) @binding(0) var<storage, read_write> out: array<u32>;
         fn quantize_value(a: f32, b: f32) { let p = a * b; out[0] = bitcast<u32>(select(p, 1.0, p > 1.0)); }",
    ),
];

#[test]
fn the_walk_accepts_the_exact_forms() {
    for (name, src) in ACCEPTED {
        assert_eq!(check_bit_exact(name, src, false).unwrap(), vec![], "{name}");
    }
    // Contraction is allowed only where the contract accepts either rounding.
    let mad = "fn f(a: f32, b: f32, c: f32) -> f32 { return a * b + c; }";
    assert_eq!(check_bit_exact("mad", mad, true).unwrap(), vec![]);
}

/// The documented float comparisons name functions that exist in the shaders.
#[test]
fn documented_comparisons_exist() {
    let all: String = SOURCES.iter().map(|(_, s)| *s).collect();
    for (function, reason) in DOCUMENTED_FLOAT_COMPARISONS {
        assert!(all.contains(&format!("fn {function}(")), "{function}");
        assert!(!reason.is_empty());
    }
}

#[test]
fn resolver_imports_once_and_rejects_unknown_directives() {
    let wgsl = assemble(
        "quantize",
        &[
            ("SCALE_OP", ConstValue::U32(0)),
            ("ROUND_MODE", ConstValue::U32(0)),
            ("NAN_TO_QMIN", ConstValue::Bool(true)),
            ("SIGNED_STORAGE", ConstValue::Bool(true)),
        ],
    )
    .unwrap();
    assert_eq!(wgsl.matches("fn div_f32_exact_bits").count(), 1);
    assert!(wgsl.starts_with("const SCALE_OP: u32 = 0u;"));
    assert!(!wgsl.contains("#import"));
    assert!(matches!(
        assemble("no_such_kernel", &[]),
        Err(Error::Shader { .. })
    ));
    // Missing constants are caught by naga, not at run time.
    let bare = assemble("quantize", &[]).unwrap();
    assert!(matches!(validate("bare", &bare), Err(Error::Shader { .. })));
}
