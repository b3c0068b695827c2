//! The lint's checks on one function's live code: where facts must not arrive, and the
//! operations a bit-exact path must not use.

use super::DOCUMENTED_FLOAT_COMPARISONS;
use super::Live;
use super::facts::{CONVERTED, Facts, FunctionWalk, PRODUCT, SUM, Sink, arg_bit, sink_index};

impl FunctionWalk<'_> {
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

    pub(super) fn check(&mut self, name: &str, live: &Live) {
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
