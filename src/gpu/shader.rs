//! Shader assembly: a small `#import` resolver over the crate's WGSL sources plus
//! host-injected constants, so one source file serves every specialisation.
//!
//! `#import common/divide` inlines `shaders/common/divide.wgsl` once (later imports of the
//! same file are no-ops); any other line starting with `#` is an error, as is an import of
//! an unknown file. Constants are prepended as `const NAME: type = value;`.

use crate::error::{Error, Result};

mod lint;

pub use lint::{
    DOCUMENTED_FLOAT_COMPARISONS, HOST_BOUNDED_FIELDS, Violation, bit_exact_violations,
    check_bit_exact,
};

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
    (
        "dequantize_i32",
        include_str!("../../shaders/dequantize_i32.wgsl"),
    ),
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
