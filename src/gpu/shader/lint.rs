//! The bit-exact lint: walks naga's IR of an assembled shader and reports every operation
//! a bit-exact path must not use (DESIGN.md, numerics contract).

use crate::error::Result;

use super::parse_and_validate;

mod check;
mod facts;

use facts::{Facts, FunctionWalk, Summary};

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
/// [`crate::Error::Shader`] when the source does not parse or validate.
pub fn check_bit_exact(name: &str, wgsl: &str, allow_contraction: bool) -> Result<Vec<Violation>> {
    let (module, info) = parse_and_validate(name, wgsl)?;
    Ok(bit_exact_violations(&module, &info, allow_contraction))
}
