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
    (
        "matmul_i8/register",
        include_str!("../../shaders/matmul_i8/register.wgsl"),
    ),
    (
        "matmul_i8/split4",
        include_str!("../../shaders/matmul_i8/split4.wgsl"),
    ),
    (
        "matmul_i8/split8",
        include_str!("../../shaders/matmul_i8/split8.wgsl"),
    ),
    (
        "matmul_i8/staged4x4",
        include_str!("../../shaders/matmul_i8/staged4x4.wgsl"),
    ),
    (
        "matmul_i8/staged8x8",
        include_str!("../../shaders/matmul_i8/staged8x8.wgsl"),
    ),
    (
        "matmul_i8/block1x8",
        include_str!("../../shaders/matmul_i8/block1x8.wgsl"),
    ),
    (
        "matmul_i8/block1x4",
        include_str!("../../shaders/matmul_i8/block1x4.wgsl"),
    ),
    (
        "matmul_i8/block4x4",
        include_str!("../../shaders/matmul_i8/block4x4.wgsl"),
    ),
    (
        "matmul_i8/block8x8",
        include_str!("../../shaders/matmul_i8/block8x8.wgsl"),
    ),
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

/// As [`validate`], also returning naga's analysis (the input of [`bit_exact_violations`]),
/// so one parse serves validation and every lint of the same source.
///
/// # Errors
/// [`Error::Shader`] with naga's message.
pub fn parse_and_validate(
    name: &str,
    wgsl: &str,
) -> Result<(naga::Module, naga::valid::ModuleInfo)> {
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
    // The caller ([`crate::gpu::context::Context::pipeline`]) captures wgpu's errors.
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
    Ok(pipeline)
}

/// What the bit-exact walk found.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Violation {
    /// The function or entry point.
    pub function: String,
    /// What was found.
    pub what: String,
}

/// Functions whose float comparisons are documented as safe under WGSL's finite-math
/// assumption (WGSL §15.7.2: an implementation may assume no infinity or NaN is present, so
/// a comparison with one is indeterminate). Any other function of a bit-exact path that
/// compares floats is a violation. Each entry says why its comparisons are safe.
pub const DOCUMENTED_FLOAT_COMPARISONS: &[(&str, &str)] = &[
    (
        "quantize_value",
        "the clamp `scaled < lo`, `clamped > hi`: `scaled` is finite, because an infinite \
         quotient, and a reciprocal product whose exponents show |x * inv_s| >= 2^24, are \
         replaced on their bits by ±2^24 before any float operation; lo and hi are small \
         integers; a NaN input takes the same road and its result is replaced after the \
         comparisons by the bit test `is_nan_bits(x_bits)`",
    ),
    (
        "round_half_away_from_zero",
        "`abs(fraction) >= 0.5` on a finite value: its caller clamped it to [qmin - zp, \
         qmax - zp] first (NaN is replaced by the caller's bit test)",
    ),
    (
        "float_activation",
        "the float clamp of a dequantized value: lo and hi are host-checked finite bounds, \
         and `f32(acc) * s (+ b)` is never NaN; it is infinite only past f32 (scales above \
         2^96), where the README says what the crate relies on",
    ),
    (
        "requant_value",
        "the clamp of `f32(acc) * M`: |acc| < 2^31 and M is a host-checked normal scale, so \
         the product is finite unless M > 2^96 (README: overflow past f32)",
    ),
    (
        "range_params",
        "`initial < f32(qmin)`: initial = qmin - lo / scale is finite (|lo| <= width, \
         scale >= width / 255); a NaN is caught by the bit test right after",
    ),
];

/// Integer struct fields the host validates to small ranges before any dispatch (zero
/// points, clamp bounds, the quantized range): an `f32(..)` of them is exact (|x| < 2^24).
pub const HOST_BOUNDED_FIELDS: &[&str] = &[
    "zero_point",
    "out_zero_point",
    "clamp_min",
    "clamp_max",
    "qmin",
    "qmax",
];

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

/// The statements and expressions of live code (dead branches of constant `if`s skipped).
struct Live<'a> {
    expressions: Vec<naga::Handle<naga::Expression>>,
    statements: Vec<&'a naga::Statement>,
}

fn live_code<'a>(module: &naga::Module, function: &'a naga::Function) -> Live<'a> {
    use naga::Statement as S;
    fn walk<'a>(
        module: &naga::Module,
        function: &'a naga::Function,
        block: &'a naga::Block,
        live: &mut Live<'a>,
    ) {
        for statement in block.iter() {
            live.statements.push(statement);
            match statement {
                S::Emit(range) => live.expressions.extend(range.clone()),
                S::If {
                    condition,
                    accept,
                    reject,
                } => match constant_bool(module, function, *condition) {
                    Some(true) => walk(module, function, accept, live),
                    Some(false) => walk(module, function, reject, live),
                    None => {
                        walk(module, function, accept, live);
                        walk(module, function, reject, live);
                    }
                },
                S::Block(b) => walk(module, function, b, live),
                S::Loop {
                    body, continuing, ..
                } => {
                    walk(module, function, body, live);
                    walk(module, function, continuing, live);
                }
                S::Switch { cases, .. } => {
                    for case in cases {
                        walk(module, function, &case.body, live);
                    }
                }
                _ => {}
            }
        }
    }
    let mut live = Live {
        expressions: Vec::new(),
        statements: Vec::new(),
    };
    walk(module, function, &function.body, &mut live);
    live
}

/// An f32 product that no barrier has rounded out of the compiler's sight: contractible
/// into an fma by an add, reassociable by another multiply (WGSL §15.7.5).
const PRODUCT: u8 = 1;
/// An int-to-f32 conversion of an integer not proved to lie within ±2^24.
const CONVERTED: u8 = 2;
/// An integer not proved (by the host's checks) to lie within ±2^24.
const UNBOUNDED: u8 = 4;
/// An f32 sum or difference: another add makes a sum of three terms, which WGSL §15.7.5
/// lets an implementation reassociate.
const SUM: u8 = 8;

/// What a value carries, as the union over every way it can be computed. `args` and
/// `converted_args` stand for whatever the caller passes as argument `i` (or its `f32`
/// conversion): a function is analysed once and its summary applied at each call.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Facts {
    local: u8,
    args: u64,
    converted_args: u64,
}

impl Facts {
    const NONE: Facts = Facts {
        local: 0,
        args: 0,
        converted_args: 0,
    };
    fn local(bits: u8) -> Facts {
        Facts {
            local: bits,
            ..Facts::NONE
        }
    }
    fn union(self, o: Facts) -> Facts {
        Facts {
            local: self.local | o.local,
            args: self.args | o.args,
            converted_args: self.converted_args | o.converted_args,
        }
    }
    fn without(self, bits: u8) -> Facts {
        Facts {
            local: self.local & !bits,
            ..self
        }
    }
    /// The facts of `f32(x)` for an integer `x` with these facts.
    fn converted(self) -> Facts {
        Facts {
            local: if self.local & UNBOUNDED != 0 {
                CONVERTED
            } else {
                0
            },
            args: 0,
            converted_args: self.args,
        }
    }
}

/// The bit of argument `i` in a [`Facts`] mask; arguments from 63 on share the last bit (a
/// safe over-approximation: their flows are merged).
fn arg_bit(i: usize) -> u64 {
    1 << i.min(63)
}

/// Where a value must not arrive.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Sink {
    /// An operand of an f32 add or subtract.
    Add,
    /// An operand of an f32 multiply.
    Multiply,
}

/// A function's effect, for its callers.
#[derive(Clone, Copy, Default)]
struct Summary {
    ret: Facts,
    /// Bit i of `[add, multiply]`: argument i's value reaches that sink.
    arg_sinks: [u64; 2],
    /// Bit i: the f32 conversion of integer argument i reaches that sink.
    converted_sinks: [u64; 2],
}

fn sink_index(s: Sink) -> usize {
    match s {
        Sink::Add => 0,
        Sink::Multiply => 1,
    }
}

/// The facts of every f32 and integer value of one function, and the violations found.
struct FunctionWalk<'a> {
    module: &'a naga::Module,
    function: &'a naga::Function,
    info: &'a naga::valid::FunctionInfo,
    summaries: &'a [Summary],
    globals: &'a [Facts],
    entry_point: bool,
    allow_contraction: bool,
    facts: Vec<Facts>,
    locals: Vec<Facts>,
    call_results: Vec<Facts>,
    summary: Summary,
    stored_globals: Vec<Facts>,
    found: Vec<String>,
}

impl FunctionWalk<'_> {
    fn kind(&self, h: naga::Handle<naga::Expression>) -> Option<naga::ScalarKind> {
        self.info[h].ty.inner_with(&self.module.types).scalar_kind()
    }
    fn is_float(&self, h: naga::Handle<naga::Expression>) -> bool {
        self.kind(h) == Some(naga::ScalarKind::Float)
    }
    fn is_int(&self, h: naga::Handle<naga::Expression>) -> bool {
        matches!(
            self.kind(h),
            Some(naga::ScalarKind::Sint | naga::ScalarKind::Uint)
        )
    }
    fn is_matrix(&self, h: naga::Handle<naga::Expression>) -> bool {
        matches!(
            self.info[h].ty.inner_with(&self.module.types),
            naga::TypeInner::Matrix { .. }
        )
    }
    /// A compile-time constant operand (a literal or a `const`).
    fn is_constant(&self, h: naga::Handle<naga::Expression>) -> bool {
        use naga::Expression as E;
        match self.function.expressions[h] {
            E::Literal(_) | E::Constant(_) | E::ZeroValue(_) => true,
            E::Splat { value, .. } => self.is_constant(value),
            E::Compose { ref components, .. } => components.iter().all(|&c| self.is_constant(c)),
            _ => false,
        }
    }
    fn literal_is_small(literal: &naga::Literal) -> bool {
        use naga::Literal as L;
        const LIMIT: i64 = 1 << 24;
        match *literal {
            L::I32(v) => i64::from(v).abs() <= LIMIT,
            L::U32(v) => i64::from(v) <= LIMIT,
            L::I64(v) => v.checked_abs().is_some_and(|v| v <= LIMIT),
            L::U64(v) => v <= LIMIT as u64,
            L::AbstractInt(v) => v.checked_abs().is_some_and(|v| v <= LIMIT),
            _ => true,
        }
    }
    /// The root variable of a pointer expression and the struct member it last selects.
    fn pointer_root(
        &self,
        mut h: naga::Handle<naga::Expression>,
    ) -> (naga::Handle<naga::Expression>, Option<String>) {
        use naga::Expression as E;
        let mut field = None;
        loop {
            match self.function.expressions[h] {
                E::Access { base, .. } => h = base,
                E::AccessIndex { base, index } => {
                    if field.is_none() {
                        let ty = self.info[base].ty.inner_with(&self.module.types);
                        let pointee = match *ty {
                            naga::TypeInner::Pointer { base, .. } => {
                                Some(&self.module.types[base].inner)
                            }
                            ref other => Some(other),
                        };
                        if let Some(naga::TypeInner::Struct { members, .. }) = pointee {
                            field = Some(members[index as usize].name.clone().unwrap_or_default());
                        } else {
                            field = Some(String::new());
                        }
                    }
                    h = base;
                }
                _ => return (h, field),
            }
        }
    }
    fn load_facts(&self, pointer: naga::Handle<naga::Expression>, int: bool) -> Facts {
        use naga::Expression as E;
        let (root, field) = self.pointer_root(pointer);
        let unbounded = if int { UNBOUNDED } else { 0 };
        match self.function.expressions[root] {
            E::LocalVariable(lv) => self.locals[lv.index()],
            E::FunctionArgument(i) if !self.entry_point => Facts {
                args: arg_bit(i as usize),
                ..Facts::NONE
            },
            E::GlobalVariable(g) => {
                let space = self.module.global_variables[g].space;
                let host_bounded = matches!(
                    space,
                    naga::AddressSpace::Uniform | naga::AddressSpace::Storage { .. }
                ) && field
                    .as_deref()
                    .is_some_and(|f| HOST_BOUNDED_FIELDS.contains(&f));
                let base = self.globals[g.index()];
                if host_bounded {
                    base
                } else {
                    base.union(Facts::local(unbounded))
                }
            }
            _ => Facts::local(unbounded),
        }
    }

    /// The facts of one expression from those of its operands.
    fn transfer(&self, h: naga::Handle<naga::Expression>) -> Facts {
        use naga::{BinaryOperator as B, Expression as E, MathFunction as M};
        let f = |x: naga::Handle<naga::Expression>| self.facts[x.index()];
        let int = self.is_int(h);
        let unbounded = Facts::local(if int { UNBOUNDED } else { 0 });
        match self.function.expressions[h] {
            E::Literal(ref l) => {
                if Self::literal_is_small(l) {
                    Facts::NONE
                } else {
                    unbounded
                }
            }
            E::Constant(c) => match self.module.global_expressions[self.module.constants[c].init] {
                E::Literal(ref l) if !Self::literal_is_small(l) => unbounded,
                _ => Facts::NONE,
            },
            E::ZeroValue(_) => Facts::NONE,
            E::FunctionArgument(i) => {
                if self.entry_point {
                    unbounded
                } else {
                    Facts {
                        args: arg_bit(i as usize),
                        ..Facts::NONE
                    }
                }
            }
            E::Load { pointer } => self.load_facts(pointer, int),
            E::Access { base, .. } | E::AccessIndex { base, .. } => f(base),
            E::Splat { value, .. } => f(value),
            E::Swizzle { vector, .. } => f(vector),
            E::Compose { ref components, .. } => components
                .iter()
                .fold(Facts::NONE, |acc, &c| acc.union(f(c))),
            E::Unary { expr, .. } => f(expr),
            E::Select { accept, reject, .. } => f(accept).union(f(reject)),
            E::Binary { op, left, right } => {
                if self.is_float(h) {
                    match op {
                        B::Multiply => Facts::local(PRODUCT),
                        B::Add | B::Subtract => Facts::local(SUM),
                        _ => Facts::NONE,
                    }
                } else if int {
                    match op {
                        B::Add | B::Subtract => f(left).union(f(right)),
                        // A mask with a constant keeps what it masks (sign and abs idioms);
                        // one with a runtime value is opaque to the compiler.
                        B::And | B::InclusiveOr | B::ExclusiveOr => {
                            if self.is_constant(right) {
                                f(left)
                            } else if self.is_constant(left) {
                                f(right)
                            } else {
                                unbounded
                            }
                        }
                        _ => unbounded,
                    }
                } else {
                    Facts::NONE
                }
            }
            E::As {
                expr,
                kind,
                convert,
            } => {
                let from_int = self.is_int(expr);
                match (convert, kind) {
                    // Bit reinterpretation carries what the bits carry.
                    (None, naga::ScalarKind::Float) => f(expr).without(UNBOUNDED),
                    (None, _) if self.is_float(expr) => f(expr).union(unbounded),
                    (None, _) => f(expr),
                    (Some(_), naga::ScalarKind::Float) if from_int => f(expr).converted(),
                    (Some(_), naga::ScalarKind::Float) => Facts::NONE,
                    (Some(_), _) if from_int => f(expr),
                    (Some(_), _) => unbounded,
                }
            }
            E::Math {
                fun,
                arg,
                arg1,
                arg2,
                ..
            } => {
                if int && matches!(fun, M::Min | M::Max | M::Clamp | M::Abs) {
                    [Some(arg), arg1, arg2]
                        .into_iter()
                        .flatten()
                        .fold(Facts::NONE, |acc, a| acc.union(f(a)))
                } else {
                    unbounded
                }
            }
            E::CallResult(_) => self.call_results[h.index()],
            _ => unbounded,
        }
    }

    fn substitute(
        &self,
        summary_facts: Facts,
        arguments: &[naga::Handle<naga::Expression>],
    ) -> Facts {
        let mut out = Facts::local(summary_facts.local);
        for (i, &a) in arguments.iter().enumerate() {
            if summary_facts.args & arg_bit(i) != 0 {
                out = out.union(self.facts[a.index()]);
            }
            if summary_facts.converted_args & arg_bit(i) != 0 {
                out = out.union(self.facts[a.index()].converted());
            }
        }
        out
    }

    /// The facts of every value, flow-sensitively: statements in order, each local variable
    /// holding what its last store gave it, both arms of a non-constant `if` joined, loops
    /// iterated to a fixed point. An expression's facts are the union over its visits.
    fn propagate(&mut self) {
        for (h, e) in self.function.expressions.iter() {
            if e.needs_pre_emit() {
                self.facts[h.index()] = self.transfer(h);
            }
        }
        for (lv, var) in self.function.local_variables.iter() {
            if let Some(init) = var.init {
                self.locals[lv.index()] = self.facts[init.index()];
            }
        }
        self.walk_block(&self.function.body);
    }

    fn join_locals(into: &mut [Facts], other: &[Facts]) {
        for (a, b) in into.iter_mut().zip(other) {
            *a = a.union(*b);
        }
    }

    fn walk_block(&mut self, block: &naga::Block) {
        use naga::{Expression as E, Statement as S};
        for statement in block.iter() {
            match *statement {
                S::Emit(ref range) => {
                    for h in range.clone() {
                        let f = self.transfer(h);
                        self.facts[h.index()] = self.facts[h.index()].union(f);
                    }
                }
                S::If {
                    condition,
                    ref accept,
                    ref reject,
                } => match constant_bool(self.module, self.function, condition) {
                    Some(true) => self.walk_block(accept),
                    Some(false) => self.walk_block(reject),
                    None => {
                        let entry = self.locals.clone();
                        self.walk_block(accept);
                        let accepted = std::mem::replace(&mut self.locals, entry);
                        self.walk_block(reject);
                        Self::join_locals(&mut self.locals, &accepted);
                    }
                },
                S::Block(ref b) => self.walk_block(b),
                S::Loop {
                    ref body,
                    ref continuing,
                    ..
                } => {
                    for _ in 0..64 {
                        let entry = self.locals.clone();
                        self.walk_block(body);
                        self.walk_block(continuing);
                        Self::join_locals(&mut self.locals, &entry);
                        if self.locals == entry {
                            break;
                        }
                    }
                }
                S::Switch { ref cases, .. } => {
                    let entry = self.locals.clone();
                    let mut joined = entry.clone();
                    for case in cases {
                        self.locals = entry.clone();
                        self.walk_block(&case.body);
                        Self::join_locals(&mut joined, &self.locals);
                    }
                    self.locals = joined;
                }
                S::Store { pointer, value } => {
                    let v = self.facts[value.index()];
                    let (root, _) = self.pointer_root(pointer);
                    match self.function.expressions[root] {
                        // A store to the whole variable replaces what it held; to a part of
                        // it, adds to it.
                        E::LocalVariable(lv) if root == pointer => self.locals[lv.index()] = v,
                        E::LocalVariable(lv) => {
                            self.locals[lv.index()] = self.locals[lv.index()].union(v);
                        }
                        E::GlobalVariable(g) => {
                            self.stored_globals[g.index()] =
                                self.stored_globals[g.index()].union(Facts::local(v.local));
                        }
                        _ => {}
                    }
                }
                S::Call {
                    function,
                    ref arguments,
                    result: Some(result),
                } => {
                    let r = self.substitute(self.summaries[function.index()].ret, arguments);
                    self.call_results[result.index()] = self.call_results[result.index()].union(r);
                    self.facts[result.index()] = self.facts[result.index()].union(r);
                }
                S::Return { value: Some(v) } => {
                    self.summary.ret = self.summary.ret.union(self.facts[v.index()]);
                }
                _ => {}
            }
        }
    }

    fn sink(&mut self, sink: Sink, facts: Facts, via: &str) {
        let i = sink_index(sink);
        self.summary.arg_sinks[i] |= facts.args;
        self.summary.converted_sinks[i] |= facts.converted_args;
        if facts.local & PRODUCT != 0 {
            match sink {
                Sink::Add if !self.allow_contraction => self.found.push(format!(
                    "f32 multiply feeding an add (contractible into fma){via}"
                )),
                Sink::Add => {}
                Sink::Multiply => self.found.push(format!(
                    "f32 product of three factors (reassociable, WGSL §15.7.5){via}"
                )),
            }
        }
        if facts.local & SUM != 0 && sink == Sink::Add {
            self.found.push(format!(
                "f32 sum of three terms (reassociable, WGSL §15.7.5){via}"
            ));
        }
        if facts.local & CONVERTED != 0 {
            self.found.push(format!(
                "f32 conversion of an integer that may exceed 2^24 feeding {}{via}",
                match sink {
                    Sink::Add => "an add",
                    Sink::Multiply => "a multiply other than directly",
                }
            ));
        }
    }

    fn check(&mut self, name: &str, live: &Live) {
        use naga::{BinaryOperator as B, Expression as E, MathFunction as M, Statement as S};
        let comparisons_documented = DOCUMENTED_FLOAT_COMPARISONS.iter().any(|(f, _)| *f == name);
        for &h in &live.expressions {
            let found = match self.function.expressions[h] {
                E::Binary {
                    op: B::Divide | B::Modulo,
                    ..
                } if self.is_float(h) => Some("f32 division or modulo".to_string()),
                E::Binary {
                    op: B::Add | B::Subtract,
                    left,
                    right,
                } if self.is_float(h) => {
                    for x in [left, right] {
                        self.sink(Sink::Add, self.facts[x.index()], "");
                    }
                    None
                }
                E::Binary {
                    op: B::Multiply,
                    left,
                    right,
                } if self.is_float(left) || self.is_float(right) => {
                    if self.is_matrix(left) || self.is_matrix(right) {
                        Some("float matrix product (a sum of products)".to_string())
                    } else {
                        for x in [left, right] {
                            let mut facts = self.facts[x.index()];
                            // `f32(acc) * s` with the conversion as a direct operand: the
                            // contract's single conversion, then one rounded multiply.
                            if matches!(
                                self.function.expressions[x],
                                E::As {
                                    convert: Some(_),
                                    ..
                                }
                            ) {
                                facts = Facts {
                                    converted_args: 0,
                                    ..facts.without(CONVERTED)
                                };
                            }
                            self.sink(Sink::Multiply, facts, "");
                        }
                        None
                    }
                }
                E::Binary {
                    op:
                        B::Less | B::LessEqual | B::Greater | B::GreaterEqual | B::Equal | B::NotEqual,
                    left,
                    ..
                } if self.is_float(left) && !comparisons_documented => Some(
                    "float comparison (WGSL §15.7.2 lets an implementation assume no NaN or \
                     infinity: guard with a bit test, or document it)"
                        .to_string(),
                ),
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
                    M::Dot | M::Cross | M::Determinant | M::Inverse | M::Outer
                        if self.is_float(arg) =>
                    {
                        Some(format!("float {fun:?} (sums of products)"))
                    }
                    M::Min | M::Max | M::Clamp if self.is_float(arg) => {
                        Some(format!("float {fun:?}"))
                    }
                    _ => None,
                },
                _ => None,
            };
            if let Some(what) = found {
                self.found.push(what);
            }
        }
        for statement in &live.statements {
            if let S::Call {
                function,
                ref arguments,
                ..
            } = **statement
            {
                let callee = self.summaries[function.index()];
                let callee_name = self.module.functions[function]
                    .name
                    .clone()
                    .unwrap_or_default();
                for sink in [Sink::Add, Sink::Multiply] {
                    let i = sink_index(sink);
                    for (a, &arg) in arguments.iter().enumerate() {
                        let facts = self.facts[arg.index()];
                        if callee.arg_sinks[i] & arg_bit(a) != 0 {
                            self.sink(sink, facts, &format!(" (argument {a} of `{callee_name}`)"));
                        }
                        if callee.converted_sinks[i] & arg_bit(a) != 0 {
                            self.sink(
                                sink,
                                facts.converted(),
                                &format!(" (argument {a} of `{callee_name}`)"),
                            );
                        }
                    }
                }
            }
        }
    }
}

/// Walks naga's IR and reports every operation a bit-exact path must not use
/// (DESIGN.md, numerics contract; README, "How the bit-exact shaders stay exact under
/// WGSL's rules"). It follows values, not spellings: each f32 and integer value carries
/// facts through negation, `select`, vector/array/struct constructors and member accesses,
/// swizzles, bit reinterpretation, local variables (flow-sensitively: a store replaces what
/// the variable held, the arms of an `if` are joined, loops run to a fixed point), global
/// variables (every store of the entry point's call tree) and function arguments and returns
/// (a summary per function, applied at each call). It reports:
/// - f32 division or modulo, `fma`, transcendentals, `pack*norm`/`pack2x16float` and
///   friends, float `min`/`max`/`clamp` (NaN behaviour is backend-defined), float
///   `dot`/`cross`/`outer`/`determinant`/`inverse` and matrix products (sums of products);
/// - an f32 product reaching an f32 add or subtract (a driver may contract the pair into one
///   fma), unless `allow_contraction` (rule 2 epilogues, whose contract accepts either
///   rounding);
/// - an f32 product reaching another multiply: a product of three factors, which WGSL
///   §15.7.5 lets an implementation reassociate. A product is rounded out of the compiler's
///   sight only by an integer operation with a runtime operand on its bits (e.g.
///   `bitcast<f32>(bitcast<u32>(p) ^ uniforms.pad0)`, with `pad0` always 0);
/// - an f32 sum reaching another add or subtract: a sum of three terms, reassociable too;
/// - an `f32(x)` of an integer not proved to lie within ±2^24 (WGSL §15.7.6 leaves the
///   rounding direction open, and may differ per occurrence) whose value reaches an add, or
///   a multiply other than as its direct operand (the contract's `f32(acc) * s` is that
///   direct form; comparisons and selects are fine). Integers are bounded when they are
///   small literals, host-checked fields ([`HOST_BOUNDED_FIELDS`]) of uniform or storage
///   buffers, or sums, differences, selects, `min`/`max`/`clamp`/`abs` of bounded values;
/// - a float comparison outside [`DOCUMENTED_FLOAT_COMPARISONS`] (WGSL §15.7.2 lets an
///   implementation assume no NaN or infinity).
///
/// Branches of an `if` on a constant that specialisation has made false are dead and not
/// checked. Pointer arguments are not followed (no bit-exact shader uses them).
pub fn bit_exact_violations(
    module: &naga::Module,
    info: &naga::valid::ModuleInfo,
    allow_contraction: bool,
) -> Vec<Violation> {
    // Memory carries a value between functions only within one invocation, so each entry
    // point is walked with the functions it reaches; a module without entry points (a
    // library, a test case) with all of them.
    let mut out = Vec::new();
    let every_function = vec![true; module.functions.len()];
    if module.entry_points.is_empty() {
        out.extend(walk_to_fixed_point(
            module,
            info,
            allow_contraction,
            &every_function,
            None,
        ));
    }
    for (i, ep) in module.entry_points.iter().enumerate() {
        let reached = reachable(module, &ep.function);
        out.extend(walk_to_fixed_point(
            module,
            info,
            allow_contraction,
            &reached,
            Some(i),
        ));
    }
    out.sort();
    out.dedup();
    out
}

/// The functions `root` calls, directly or not.
fn reachable(module: &naga::Module, root: &naga::Function) -> Vec<bool> {
    fn calls(block: &naga::Block, out: &mut Vec<naga::Handle<naga::Function>>) {
        use naga::Statement as S;
        for statement in block.iter() {
            match statement {
                S::Call { function, .. } => out.push(*function),
                S::If { accept, reject, .. } => {
                    calls(accept, out);
                    calls(reject, out);
                }
                S::Block(b) => calls(b, out),
                S::Loop {
                    body, continuing, ..
                } => {
                    calls(body, out);
                    calls(continuing, out);
                }
                S::Switch { cases, .. } => {
                    for case in cases {
                        calls(&case.body, out);
                    }
                }
                _ => {}
            }
        }
    }
    let mut reached = vec![false; module.functions.len()];
    let mut stack = Vec::new();
    calls(&root.body, &mut stack);
    while let Some(f) = stack.pop() {
        if !reached[f.index()] {
            reached[f.index()] = true;
            calls(&module.functions[f].body, &mut stack);
        }
    }
    reached
}

fn walk_to_fixed_point(
    module: &naga::Module,
    info: &naga::valid::ModuleInfo,
    allow_contraction: bool,
    functions: &[bool],
    entry_point: Option<usize>,
) -> Vec<Violation> {
    // Globals written in one function and read in another: iterate to a fixed point.
    let mut globals = vec![Facts::NONE; module.global_variables.len()];
    for _ in 0..8 {
        let (out, stored) = walk_module(
            module,
            info,
            allow_contraction,
            &globals,
            functions,
            entry_point,
        );
        if stored == globals {
            return out;
        }
        globals = stored;
    }
    walk_module(
        module,
        info,
        allow_contraction,
        &globals,
        functions,
        entry_point,
    )
    .0
}

fn walk_module(
    module: &naga::Module,
    info: &naga::valid::ModuleInfo,
    allow_contraction: bool,
    globals: &[Facts],
    functions: &[bool],
    entry_point: Option<usize>,
) -> (Vec<Violation>, Vec<Facts>) {
    let mut out = Vec::new();
    let mut summaries: Vec<Summary> = Vec::with_capacity(module.functions.len());
    let mut stored = globals.to_vec();
    let mut run = |name: &str,
                   function: &naga::Function,
                   finfo: &naga::valid::FunctionInfo,
                   summaries: &[Summary],
                   entry_point: bool|
     -> Summary {
        let live = live_code(module, function);
        let n = function.expressions.len();
        let mut walk = FunctionWalk {
            module,
            function,
            info: finfo,
            summaries,
            globals,
            entry_point,
            allow_contraction,
            facts: vec![Facts::NONE; n],
            locals: vec![Facts::NONE; function.local_variables.len()],
            call_results: vec![Facts::NONE; n],
            summary: Summary::default(),
            stored_globals: vec![Facts::NONE; module.global_variables.len()],
            found: Vec::new(),
        };
        walk.propagate();
        walk.check(name, &live);
        for (s, w) in stored.iter_mut().zip(&walk.stored_globals) {
            *s = s.union(*w);
        }
        out.extend(walk.found.into_iter().map(|what| Violation {
            function: name.to_string(),
            what,
        }));
        walk.summary
    };
    // naga rejects calls to functions declared later, so callees come first.
    for (h, f) in module.functions.iter() {
        let summary = if functions[h.index()] {
            run(
                f.name.as_deref().unwrap_or("?"),
                f,
                &info[h],
                &summaries,
                false,
            )
        } else {
            Summary::default()
        };
        summaries.push(summary);
    }
    if let Some(i) = entry_point {
        let ep = &module.entry_points[i];
        run(
            &ep.name,
            &ep.function,
            info.get_entry_point(i),
            &summaries,
            true,
        );
    }
    (out, stored)
}

/// Parses, validates and walks WGSL, returning the bit-exact violations.
///
/// # Errors
/// [`Error::Shader`] when the source does not parse or validate.
pub fn check_bit_exact(name: &str, wgsl: &str, allow_contraction: bool) -> Result<Vec<Violation>> {
    let (module, info) = parse_and_validate(name, wgsl)?;
    Ok(bit_exact_violations(&module, &info, allow_contraction))
}
