//! Shaders without a GPU: every assembled variant parses and validates under naga, no
//! bit-exact variant uses an operation the numerics contract forbids, and the checks can fail.

use wgpu_quant::Error;
use wgpu_quant::gpu::pipelines::PipelineKey;
use wgpu_quant::gpu::shader::{ConstValue, assemble, check_bit_exact, validate};

#[test]
fn every_variant_validates_and_is_bit_exact() {
    let keys = PipelineKey::all();
    assert!(keys.len() >= 5);
    for key in keys {
        let wgsl = key.wgsl().unwrap();
        validate(&format!("{key:?}"), &wgsl).unwrap_or_else(|e| panic!("{e}"));
        if key.is_bit_exact() {
            let violations =
                check_bit_exact(&format!("{key:?}"), &wgsl, key.allows_contraction()).unwrap();
            assert!(violations.is_empty(), "{key:?}: {violations:?}");
        }
    }
}

#[test]
fn the_walk_catches_each_forbidden_operation() {
    let cases = [
        ("fn f(a: f32, b: f32) -> f32 { return a / b; }", "division"),
        (
            "fn f(a: f32, b: f32) -> f32 { return fma(a, b, a); }",
            "Fma",
        ),
        ("fn f(a: f32) -> f32 { return exp(a); }", "Exp"),
        ("fn f(a: f32) -> f32 { return sqrt(a); }", "Sqrt"),
        (
            "fn f(a: f32, b: f32) -> f32 { return max(a, b); }",
            "float Max",
        ),
        (
            "fn f(a: f32) -> f32 { return clamp(a, 0.0, 1.0); }",
            "float Clamp",
        ),
        (
            "fn f(a: vec4<f32>) -> u32 { return pack4x8snorm(a); }",
            "Pack4x8snorm",
        ),
        (
            "fn f(a: f32, b: f32, c: f32) -> f32 { return a * b + c; }",
            "contractible",
        ),
        (
            "fn f(a: f32, b: f32, c: f32) -> f32 { return c - a * b; }",
            "contractible",
        ),
    ];
    for (src, expected) in cases {
        let v = check_bit_exact("case", src, false).unwrap();
        assert!(v.iter().any(|v| v.what.contains(expected)), "{src}: {v:?}");
    }
    // Integer division, integer max and a plain f32 multiply are fine.
    let ok = "fn f(a: i32, b: i32, x: f32) -> f32 { return f32(max(a / b, 0)) * x; }";
    assert_eq!(check_bit_exact("ok", ok, false).unwrap(), vec![]);
    // A branch that specialisation made dead is not checked.
    let dead =
        "const ON: bool = false; fn f(a: f32, b: f32) -> f32 { if ON { return a / b; } return a; }";
    assert_eq!(check_bit_exact("dead", dead, false).unwrap(), vec![]);
    // Contraction is allowed only where the contract accepts either rounding.
    let mad = "fn f(a: f32, b: f32, c: f32) -> f32 { return a * b + c; }";
    assert_eq!(check_bit_exact("mad", mad, true).unwrap(), vec![]);
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
