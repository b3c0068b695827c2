//! Shader assembly: a small `#import` resolver over the crate's WGSL sources plus
//! host-injected constants, so one source file serves every specialisation.
//!
//! `#import common/divide` inlines `shaders/common/divide.wgsl` once (later imports of the
//! same file are no-ops); any other line starting with `#` is an error, as is an import of
//! an unknown file. Constants are prepended as `const NAME: type = value;`.

use crate::error::{Error, Result};

/// Every WGSL source, by import name.
pub const SOURCES: &[(&str, &str)] = &[
    (
        "common/divide",
        include_str!("../../shaders/common/divide.wgsl"),
    ),
    (
        "common/quantize",
        include_str!("../../shaders/common/quantize.wgsl"),
    ),
    (
        "common/pack",
        include_str!("../../shaders/common/pack.wgsl"),
    ),
    (
        "common/wide",
        include_str!("../../shaders/common/wide.wgsl"),
    ),
    ("common/add", include_str!("../../shaders/common/add.wgsl")),
    (
        "dynamic_quantize",
        include_str!("../../shaders/dynamic_quantize.wgsl"),
    ),
    ("divide", include_str!("../../shaders/divide.wgsl")),
    (
        "loads/scalar",
        include_str!("../../shaders/loads/scalar.wgsl"),
    ),
    ("loads/vec4", include_str!("../../shaders/loads/vec4.wgsl")),
    ("dot4_i8", include_str!("../../shaders/dot4_i8.wgsl")),
    ("peak", include_str!("../../shaders/peak.wgsl")),
    ("quantize", include_str!("../../shaders/quantize.wgsl")),
    ("matmul_i8", include_str!("../../shaders/matmul_i8.wgsl")),
    ("matmul_f32", include_str!("../../shaders/matmul_f32.wgsl")),
];

/// A specialisation constant's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConstValue {
    /// `u32`.
    U32(u32),
    /// `i32`.
    I32(i32),
    /// `bool`.
    Bool(bool),
}

impl ConstValue {
    fn declaration(self, name: &str) -> String {
        match self {
            ConstValue::U32(v) => format!("const {name}: u32 = {v}u;"),
            ConstValue::I32(v) => format!("const {name}: i32 = {v};"),
            ConstValue::Bool(v) => format!("const {name}: bool = {v};"),
        }
    }
}

fn source(name: &str) -> Option<&'static str> {
    SOURCES.iter().find(|(n, _)| *n == name).map(|(_, s)| *s)
}

fn resolve(
    name: &str,
    imports: &[(&str, &str)],
    out: &mut String,
    included: &mut Vec<String>,
) -> Result<()> {
    let text = source(name).ok_or_else(|| Error::Shader {
        name: name.into(),
        message: "no such shader source".into(),
    })?;
    included.push(name.to_string());
    for (line_no, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if let Some(rest) = trimmed.strip_prefix("#import ") {
            let requested = rest.trim();
            // A variant may map an import name to a concrete source (e.g. `loads`).
            let target = imports
                .iter()
                .find(|(from, _)| *from == requested)
                .map_or(requested, |(_, to)| *to);
            if !included.iter().any(|n| n == target) {
                resolve(target, imports, out, included).map_err(|e| match e {
                    Error::Shader { name: n, message } if n == target => Error::Shader {
                        name: name.into(),
                        message: format!("line {}: #import {target}: {message}", line_no + 1),
                    },
                    other => other,
                })?;
            }
        } else if trimmed.starts_with('#') {
            return Err(Error::Shader {
                name: name.into(),
                message: format!("line {}: unknown directive `{trimmed}`", line_no + 1),
            });
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    Ok(())
}

/// The WGSL of `root` with its imports inlined and `constants` declared first.
///
/// # Errors
/// [`Error::Shader`] for an unknown source, import or directive.
pub fn assemble(root: &str, constants: &[(&str, ConstValue)]) -> Result<String> {
    assemble_with_imports(root, constants, &[])
}

/// As [`assemble`], with `imports` mapping import names to concrete sources for this variant
/// (`#import loads` → `loads/vec4`).
///
/// # Errors
/// [`Error::Shader`] for an unknown source, import or directive.
pub fn assemble_with_imports(
    root: &str,
    constants: &[(&str, ConstValue)],
    imports: &[(&str, &str)],
) -> Result<String> {
    let mut out = String::new();
    for (name, value) in constants {
        out.push_str(&value.declaration(name));
        out.push('\n');
    }
    resolve(root, imports, &mut out, &mut Vec::new())?;
    Ok(out)
}

/// Parses and validates assembled WGSL with naga (all validation flags), as the device would.
///
/// # Errors
/// [`Error::Shader`] with naga's message.
pub fn validate(name: &str, wgsl: &str) -> Result<naga::Module> {
    parse_and_validate(name, wgsl).map(|(module, _)| module)
}

fn parse_and_validate(name: &str, wgsl: &str) -> Result<(naga::Module, naga::valid::ModuleInfo)> {
    let shader_error = |message: String| Error::Shader {
        name: name.into(),
        message,
    };
    let module =
        naga::front::wgsl::parse_str(wgsl).map_err(|e| shader_error(e.emit_to_string(wgsl)))?;
    let info = naga::valid::Validator::new(
        naga::valid::ValidationFlags::all(),
        naga::valid::Capabilities::all(),
    )
    .validate(&module)
    .map_err(|e| shader_error(e.emit_to_string(wgsl)))?;
    Ok((module, info))
}

/// Builds a compute pipeline from assembled WGSL inside a validation error scope.
///
/// # Errors
/// [`Error::Shader`] when naga rejects the source; [`Error::Gpu`] when the device does.
pub fn build_pipeline(
    device: &wgpu::Device,
    name: &str,
    wgsl: &str,
    entry_point: &str,
) -> Result<wgpu::ComputePipeline> {
    validate(name, wgsl)?;
    let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some(name),
        source: wgpu::ShaderSource::Wgsl(wgsl.into()),
    });
    let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: Some(name),
        layout: None,
        module: &module,
        entry_point: Some(entry_point),
        compilation_options: Default::default(),
        cache: None,
    });
    match pollster::block_on(scope.pop()) {
        Some(e) => Err(Error::Gpu(format!("pipeline {name}: {e}"))),
        None => Ok(pipeline),
    }
}

/// What the bit-exact walk found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The function or entry point.
    pub function: String,
    /// What was found.
    pub what: String,
}

/// The value of a boolean specialisation constant used as a condition, if it is one.
fn constant_bool(
    module: &naga::Module,
    function: &naga::Function,
    h: naga::Handle<naga::Expression>,
) -> Option<bool> {
    let literal = |e: &naga::Expression| match *e {
        naga::Expression::Literal(naga::Literal::Bool(b)) => Some(b),
        _ => None,
    };
    match function.expressions[h] {
        naga::Expression::Constant(c) => {
            literal(&module.global_expressions[module.constants[c].init])
        }
        ref e => literal(e),
    }
}

/// The expressions evaluated by live code (dead branches of constant `if`s skipped), and
/// the local variables that are assigned an f32 product there.
fn live_code(
    module: &naga::Module,
    function: &naga::Function,
    is_float_mul: &dyn Fn(naga::Handle<naga::Expression>) -> bool,
) -> (
    Vec<naga::Handle<naga::Expression>>,
    Vec<naga::Handle<naga::LocalVariable>>,
) {
    use naga::Statement as S;
    fn walk(
        module: &naga::Module,
        function: &naga::Function,
        is_float_mul: &dyn Fn(naga::Handle<naga::Expression>) -> bool,
        block: &naga::Block,
        live: &mut Vec<naga::Handle<naga::Expression>>,
        products: &mut Vec<naga::Handle<naga::LocalVariable>>,
    ) {
        for statement in block.iter() {
            match statement {
                S::Emit(range) => live.extend(range.clone()),
                S::If {
                    condition,
                    accept,
                    reject,
                } => match constant_bool(module, function, *condition) {
                    Some(true) => walk(module, function, is_float_mul, accept, live, products),
                    Some(false) => walk(module, function, is_float_mul, reject, live, products),
                    None => {
                        walk(module, function, is_float_mul, accept, live, products);
                        walk(module, function, is_float_mul, reject, live, products);
                    }
                },
                S::Block(b) => walk(module, function, is_float_mul, b, live, products),
                S::Loop {
                    body, continuing, ..
                } => {
                    walk(module, function, is_float_mul, body, live, products);
                    walk(module, function, is_float_mul, continuing, live, products);
                }
                S::Switch { cases, .. } => {
                    for case in cases {
                        walk(module, function, is_float_mul, &case.body, live, products);
                    }
                }
                S::Store { pointer, value } => {
                    if let naga::Expression::LocalVariable(lv) = function.expressions[*pointer] {
                        if is_float_mul(*value) {
                            products.push(lv);
                        }
                    }
                }
                _ => {}
            }
        }
    }
    let mut live = Vec::new();
    let mut products = Vec::new();
    // A local's initialiser counts as a store.
    for (lv, var) in function.local_variables.iter() {
        if var.init.is_some_and(is_float_mul) {
            products.push(lv);
        }
    }
    walk(
        module,
        function,
        is_float_mul,
        &function.body,
        &mut live,
        &mut products,
    );
    (live, products)
}

/// Walks naga's IR and reports every operation a bit-exact path must not use
/// (DESIGN.md, numerics contract): f32 division, `fma`, transcendentals, float
/// `dot`, `pack*norm`/`pack2x16float` helpers, float `min`/`max`/`clamp` (NaN behaviour is
/// backend-defined), and an f32 multiply whose result feeds an f32 add or subtract, directly
/// or through a local variable (a driver may contract the pair into one fma).
/// `allow_contraction` lifts only the last rule, for epilogues whose contract accepts either
/// rounding. Branches of an `if` on a constant that specialisation has made false are dead
/// and not checked.
pub fn bit_exact_violations(
    module: &naga::Module,
    info: &naga::valid::ModuleInfo,
    allow_contraction: bool,
) -> Vec<Violation> {
    use naga::{BinaryOperator as B, Expression as E, MathFunction as M, ScalarKind};
    let mut out = Vec::new();
    let mut walk = |name: &str, function: &naga::Function, finfo: &naga::valid::FunctionInfo| {
        let is_float = |h: naga::Handle<naga::Expression>| {
            finfo[h].ty.inner_with(&module.types).scalar_kind() == Some(ScalarKind::Float)
        };
        let is_float_mul = |h: naga::Handle<naga::Expression>| {
            matches!(
                function.expressions[h],
                E::Binary {
                    op: B::Multiply,
                    ..
                }
            ) && is_float(h)
        };
        let (live, products) = live_code(module, function, &is_float_mul);
        let is_product = |h: naga::Handle<naga::Expression>| {
            is_float_mul(h)
                || match function.expressions[h] {
                    E::Load { pointer } => matches!(
                        function.expressions[pointer],
                        E::LocalVariable(lv) if products.contains(&lv)
                    ),
                    _ => false,
                }
        };
        for h in live {
            let found = match function.expressions[h] {
                E::Binary {
                    op: B::Divide | B::Modulo,
                    ..
                } if is_float(h) => Some("f32 division or modulo".to_string()),
                E::Binary {
                    op: B::Add | B::Subtract,
                    left,
                    right,
                } if !allow_contraction
                    && is_float(h)
                    && (is_product(left) || is_product(right)) =>
                {
                    Some("f32 multiply feeding an add (contractible into fma)".to_string())
                }
                E::Math { fun, arg, .. } => match fun {
                    M::Fma
                    | M::Exp
                    | M::Exp2
                    | M::Log
                    | M::Log2
                    | M::Pow
                    | M::Sqrt
                    | M::InverseSqrt
                    | M::Sin
                    | M::Cos
                    | M::Tan
                    | M::Asin
                    | M::Acos
                    | M::Atan
                    | M::Atan2
                    | M::Sinh
                    | M::Cosh
                    | M::Tanh
                    | M::Asinh
                    | M::Acosh
                    | M::Atanh
                    | M::Ldexp
                    | M::Frexp
                    | M::Modf
                    | M::Length
                    | M::Distance
                    | M::Normalize
                    | M::Refract
                    | M::Reflect
                    | M::FaceForward
                    | M::SmoothStep
                    | M::Step
                    | M::Mix
                    | M::Pack4x8snorm
                    | M::Pack4x8unorm
                    | M::Pack2x16snorm
                    | M::Pack2x16unorm
                    | M::Pack2x16float
                    | M::Unpack4x8snorm
                    | M::Unpack4x8unorm
                    | M::Unpack2x16snorm
                    | M::Unpack2x16unorm
                    | M::Unpack2x16float
                    | M::QuantizeToF16 => Some(format!("{fun:?}")),
                    M::Dot | M::Min | M::Max | M::Clamp if is_float(arg) => {
                        Some(format!("float {fun:?}"))
                    }
                    _ => None,
                },
                _ => None,
            };
            if let Some(what) = found {
                out.push(Violation {
                    function: name.to_string(),
                    what,
                });
            }
        }
    };
    for (h, f) in module.functions.iter() {
        walk(f.name.as_deref().unwrap_or("?"), f, &info[h]);
    }
    for (i, ep) in module.entry_points.iter().enumerate() {
        walk(&ep.name, &ep.function, info.get_entry_point(i));
    }
    out
}

/// Parses, validates and walks WGSL, returning the bit-exact violations.
///
/// # Errors
/// [`Error::Shader`] when the source does not parse or validate.
pub fn check_bit_exact(name: &str, wgsl: &str, allow_contraction: bool) -> Result<Vec<Violation>> {
    let (module, info) = parse_and_validate(name, wgsl)?;
    Ok(bit_exact_violations(&module, &info, allow_contraction))
}
