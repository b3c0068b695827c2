//! What the lint tracks per value ([`Facts`]), per function ([`Summary`]), and how facts
//! flow through one function's expressions, locals and calls ([`FunctionWalk`]).

use super::{HOST_BOUNDED_FIELDS, constant_bool};

/// An f32 product that no barrier has rounded out of the compiler's sight: contractible
/// into an fma by an add, reassociable by another multiply (WGSL §15.7.5).
pub(super) const PRODUCT: u8 = 1;
/// An int-to-f32 conversion of an integer not proved to lie within ±2^24.
pub(super) const CONVERTED: u8 = 2;
/// An integer not proved (by the host's checks) to lie within ±2^24.
pub(super) const UNBOUNDED: u8 = 4;
/// An f32 sum or difference: another add makes a sum of three terms, which WGSL §15.7.5
/// lets an implementation reassociate.
pub(super) const SUM: u8 = 8;

/// What a value carries, as the union over every way it can be computed. `args` and
/// `converted_args` stand for whatever the caller passes as argument `i` (or its `f32`
/// conversion): a function is analysed once and its summary applied at each call.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Facts {
    pub(super) local: u8,
    pub(super) args: u64,
    pub(super) converted_args: u64,
}

impl Facts {
    pub(super) const NONE: Facts = Facts {
        local: 0,
        args: 0,
        converted_args: 0,
    };
    pub(super) fn local(bits: u8) -> Facts {
        Facts {
            local: bits,
            ..Facts::NONE
        }
    }
    pub(super) fn union(self, o: Facts) -> Facts {
        Facts {
            local: self.local | o.local,
            args: self.args | o.args,
            converted_args: self.converted_args | o.converted_args,
        }
    }
    pub(super) fn without(self, bits: u8) -> Facts {
        Facts {
            local: self.local & !bits,
            ..self
        }
    }
    /// The facts of `f32(x)` for an integer `x` with these facts.
    pub(super) fn converted(self) -> Facts {
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
pub(super) fn arg_bit(i: usize) -> u64 {
    1 << i.min(63)
}

/// Where a value must not arrive.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Sink {
    /// An operand of an f32 add or subtract.
    Add,
    /// An operand of an f32 multiply.
    Multiply,
}

/// A function's effect, for its callers.
#[derive(Clone, Copy, Default)]
pub(super) struct Summary {
    pub(super) ret: Facts,
    /// Bit i of `[add, multiply]`: argument i's value reaches that sink.
    pub(super) arg_sinks: [u64; 2],
    /// Bit i: the f32 conversion of integer argument i reaches that sink.
    pub(super) converted_sinks: [u64; 2],
}

pub(super) fn sink_index(s: Sink) -> usize {
    match s {
        Sink::Add => 0,
        Sink::Multiply => 1,
    }
}

/// The facts of every f32 and integer value of one function, and the violations found.
pub(super) struct FunctionWalk<'a> {
    pub(super) module: &'a naga::Module,
    pub(super) function: &'a naga::Function,
    pub(super) info: &'a naga::valid::FunctionInfo,
    pub(super) summaries: &'a [Summary],
    pub(super) globals: &'a [Facts],
    pub(super) entry_point: bool,
    pub(super) allow_contraction: bool,
    pub(super) facts: Vec<Facts>,
    pub(super) locals: Vec<Facts>,
    pub(super) call_results: Vec<Facts>,
    pub(super) summary: Summary,
    pub(super) stored_globals: Vec<Facts>,
    pub(super) found: Vec<String>,
}

impl FunctionWalk<'_> {
    pub(super) fn kind(&self, h: naga::Handle<naga::Expression>) -> Option<naga::ScalarKind> {
        self.info[h].ty.inner_with(&self.module.types).scalar_kind()
    }
    pub(super) fn is_float(&self, h: naga::Handle<naga::Expression>) -> bool {
        self.kind(h) == Some(naga::ScalarKind::Float)
    }
    pub(super) fn is_int(&self, h: naga::Handle<naga::Expression>) -> bool {
        matches!(
            self.kind(h),
            Some(naga::ScalarKind::Sint | naga::ScalarKind::Uint)
        )
    }
    pub(super) fn is_matrix(&self, h: naga::Handle<naga::Expression>) -> bool {
        matches!(
            self.info[h].ty.inner_with(&self.module.types),
            naga::TypeInner::Matrix { .. }
        )
    }
    /// A compile-time constant operand (a literal or a `const`).
    pub(super) fn is_constant(&self, h: naga::Handle<naga::Expression>) -> bool {
        use naga::Expression as E;
        match self.function.expressions[h] {
            E::Literal(_) | E::Constant(_) | E::ZeroValue(_) => true,
            E::Splat { value, .. } => self.is_constant(value),
            E::Compose { ref components, .. } => components.iter().all(|&c| self.is_constant(c)),
            _ => false,
        }
    }
    pub(super) fn literal_is_small(literal: &naga::Literal) -> bool {
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
    pub(super) fn pointer_root(
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
    pub(super) fn load_facts(&self, pointer: naga::Handle<naga::Expression>, int: bool) -> Facts {
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
    pub(super) fn transfer(&self, h: naga::Handle<naga::Expression>) -> Facts {
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

    pub(super) fn substitute(
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
    pub(super) fn propagate(&mut self) {
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

    pub(super) fn join_locals(into: &mut [Facts], other: &[Facts]) {
        for (a, b) in into.iter_mut().zip(other) {
            *a = a.union(*b);
        }
    }

    pub(super) fn walk_block(&mut self, block: &naga::Block) {
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
}
