//! The chart: GOP/s against problem size (2·M·N·K, log scale) for FP32 and INT8 GEMM and
//! GEMV, with the measured compute peaks as dashed lines. Hand-written SVG: a few dozen
//! elements, simpler than a plotting crate and its dependencies.

use std::fmt::Write as _;

use crate::report::{Peaks, Record};

/// GOP/s against problem size (2·M·N·K, log scale): FP32 and INT8 GEMM and GEMV, with the
/// measured peaks as dashed lines.
pub fn svg(records: &[Record], peaks: &Peaks, title: &str) -> String {
    let f32_peak = peaks.f32_fma.as_ref().map_or(0.0, |p| p.value);
    let dot4_peak = peaks.dot4_i8.as_ref().map_or(0.0, |p| p.value);
    let (w, h, left, right, top, bottom) = (820.0, 520.0, 70.0, 200.0, 40.0, 60.0);
    let series: [(&str, &str, &str, &str); 4] = [
        ("gemm", "f32", "none", "#1f77b4"),
        ("gemm", "int8", "I32", "#d62728"),
        ("gemv", "f32", "none", "#7fb3e0"),
        ("gemv", "int8", "I32", "#f4a3a3"),
    ];
    let pts = |op: &str, p: &str, e: &str| -> Vec<(f64, f64)> {
        let mut v: Vec<(f64, f64)> = records
            .iter()
            .filter(|r| r.op == op && r.precision == p && r.epilogue == e)
            .map(|r| ((2.0 * (r.m * r.n * r.k) as f64).log10(), r.gops))
            .collect();
        v.sort_by(|a, b| a.0.total_cmp(&b.0));
        v
    };
    let all: Vec<(f64, f64)> = series.iter().flat_map(|s| pts(s.0, s.1, s.2)).collect();
    let (xmin, xmax) = all
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.0), b.max(p.0)));
    let (xmin, xmax) = if all.is_empty() {
        (6.0, 12.0)
    } else {
        (xmin.floor(), xmax.ceil().max(xmin.floor() + 1.0))
    };
    let ymax = all
        .iter()
        .map(|p| p.1)
        .fold(dot4_peak.max(f32_peak), f64::max)
        * 1.1;
    let x = |v: f64| left + (v - xmin) / (xmax - xmin) * (w - left - right);
    let y = |v: f64| h - bottom - v / ymax * (h - top - bottom);
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    );
    let _ = writeln!(
        s,
        "<text x=\"{left}\" y=\"22\" font-size=\"14\">{title}</text>"
    );
    let _ = writeln!(
        s,
        "<line x1=\"{left}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"black\"/><line x1=\"{left}\" y1=\"{top}\" x2=\"{left}\" y2=\"{}\" stroke=\"black\"/>",
        h - bottom,
        w - right,
        h - bottom,
        h - bottom
    );
    let mut e = xmin;
    while e <= xmax + 1e-9 {
        let _ = writeln!(
            s,
            "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">1e{e}</text>",
            x(e),
            h - bottom + 18.0
        );
        e += 1.0;
    }
    for i in 0..=5 {
        let v = ymax * f64::from(i) / 5.0;
        let _ = writeln!(
            s,
            "<text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{v:.0}</text><line x1=\"{left}\" y1=\"{:.1}\" x2=\"{}\" y2=\"{:.1}\" stroke=\"#eee\"/>",
            left - 6.0,
            y(v) + 4.0,
            y(v),
            w - right,
            y(v)
        );
    }
    let _ = writeln!(
        s,
        "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">problem size, 2·M·N·K operations</text>",
        (left + w - right) / 2.0,
        h - 15.0
    );
    let _ = writeln!(
        s,
        "<text x=\"18\" y=\"{:.1}\" transform=\"rotate(-90 18 {:.1})\" text-anchor=\"middle\">GOP/s</text>",
        (top + h - bottom) / 2.0,
        (top + h - bottom) / 2.0
    );
    for (label, peak, color) in [
        ("dot4I8Packed peak", dot4_peak, "#d62728"),
        ("f32 fma peak", f32_peak, "#1f77b4"),
    ] {
        if peak <= 0.0 {
            continue; // not measured in this run
        }
        let _ = writeln!(
            s,
            "<line x1=\"{left}\" y1=\"{:.1}\" x2=\"{}\" y2=\"{:.1}\" stroke=\"{color}\" stroke-dasharray=\"6 4\"/><text x=\"{}\" y=\"{:.1}\" fill=\"{color}\">{label} {peak:.1}</text>",
            y(peak),
            w - right,
            y(peak),
            w - right + 6.0,
            y(peak) + 4.0
        );
    }
    for (i, (op, p, ep, color)) in series.iter().enumerate() {
        let v = pts(op, p, ep);
        if v.is_empty() {
            continue;
        }
        let path: Vec<String> = v
            .iter()
            .map(|&(a, b)| format!("{:.1},{:.1}", x(a), y(b)))
            .collect();
        let _ = writeln!(
            s,
            "<polyline points=\"{}\" fill=\"none\" stroke=\"{color}\" stroke-width=\"2\"/>",
            path.join(" ")
        );
        for &(a, b) in &v {
            let _ = writeln!(
                s,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3.5\" fill=\"{color}\"/>",
                x(a),
                y(b)
            );
        }
        let ly = h - bottom - 90.0 + 18.0 * i as f64;
        let _ = writeln!(
            s,
            "<line x1=\"{}\" y1=\"{ly}\" x2=\"{}\" y2=\"{ly}\" stroke=\"{color}\" stroke-width=\"2\"/><text x=\"{}\" y=\"{:.1}\">{} {}</text>",
            w - right + 6.0,
            w - right + 26.0,
            w - right + 30.0,
            ly + 4.0,
            op.to_uppercase(),
            if *p == "f32" { "FP32" } else { "INT8" }
        );
    }
    s.push_str("</svg>\n");
    s
}
