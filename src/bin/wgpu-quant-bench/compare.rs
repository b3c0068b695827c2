//! `--compare OLD.json`: this run against an earlier run's JSON, row by row (same op,
//! precision, epilogue and shape; same model and rows): new/old median time and new/old
//! throughput, so a regression shows as a time ratio above 1. Also the peaks. Rows present
//! in only one run are listed as such. Reads the JSON as untyped values, so the files of
//! older versions of the binary (other peak fields, no kernel names) compare too.

use serde_json::Value;

/// A time ratio above this is flagged (lavapipe's run-to-run noise is a few percent).
const SLOWER: f64 = 1.10;
/// A time ratio below this is flagged as faster.
const FASTER: f64 = 1.0 / SLOWER;

fn key(row: &Value) -> Option<String> {
    Some(format!(
        "{} {}x{}x{} {} {}",
        row.get("op")?.as_str()?,
        row.get("m")?.as_u64()?,
        row.get("n")?.as_u64()?,
        row.get("k")?.as_u64()?,
        row.get("precision")?.as_str()?,
        row.get("epilogue")?.as_str()?
    ))
}

fn model_key(row: &Value) -> Option<String> {
    Some(format!(
        "model {} {} x{}",
        row.get("name")?.as_str()?,
        row.get("shape")?.as_str()?,
        row.get("rows")?.as_u64()?
    ))
}

fn num(row: &Value, field: &str) -> Option<f64> {
    row.get(field)?.as_f64()
}

fn rows<'a>(doc: &'a Value, field: &str) -> &'a [Value] {
    doc.get(field)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn verdict(time_ratio: f64) -> &'static str {
    if time_ratio > SLOWER {
        "  SLOWER"
    } else if time_ratio < FASTER {
        "  faster"
    } else {
        ""
    }
}

/// A peak's value from either JSON layout: `peaks.f32_fma.value` (this version) or
/// `peaks.f32_fma_gflops` / `peaks.dot4i8_gops` (before).
fn peak(doc: &Value, name: &str) -> Option<f64> {
    let peaks = doc.get("peaks")?;
    if let Some(v) = peaks.get(name).and_then(|p| p.get("value")) {
        return v.as_f64();
    }
    let legacy = match name {
        "f32_fma" => "f32_fma_gflops",
        "dot4_i8" => "dot4i8_gops",
        _ => return None,
    };
    num(peaks, legacy)
}

/// The comparison's lines.
pub fn compare(old: &Value, new: &Value) -> Vec<String> {
    let mut out = vec![format!(
        "| row | new ms | old ms | new/old time | new/old GOP/s |\n|---|---|---|---|---|"
    )];
    for name in ["f32_fma", "dot4_i8", "read_bandwidth"] {
        if let (Some(n), Some(o)) = (peak(new, name), peak(old, name)) {
            out.push(format!(
                "| peak {name} | | | | {:.2} ({n:.1} vs {o:.1}) |",
                n / o
            ));
        }
    }
    let mut matched = Vec::new();
    for (field, key_of, time, throughput) in [
        (
            "results",
            key as fn(&Value) -> Option<String>,
            "median_ms",
            Some("gops"),
        ),
        ("model", model_key, "fp32_ms", None),
    ] {
        for row in rows(new, field) {
            let Some(k) = key_of(row) else { continue };
            let Some(old_row) = rows(old, field)
                .iter()
                .find(|o| key_of(o).as_ref() == Some(&k))
            else {
                out.push(format!("| {k} | | | only in the new run | |"));
                continue;
            };
            matched.push(k.clone());
            let times: Vec<&str> = if field == "model" {
                vec!["fp32_ms", "static_ms", "dynamic_ms"]
            } else {
                vec![time]
            };
            for t in times {
                let (Some(n), Some(o)) = (num(row, t), num(old_row, t)) else {
                    continue;
                };
                let label = if field == "model" {
                    format!("{k} {}", t.trim_end_matches("_ms"))
                } else {
                    k.clone()
                };
                let gops = throughput
                    .and_then(|g| Some(num(row, g)? / num(old_row, g)?))
                    .map_or("–".to_string(), |r| format!("{r:.2}"));
                out.push(format!(
                    "| {label} | {n:.3} | {o:.3} | {:.2}{} | {gops} |",
                    n / o,
                    verdict(n / o)
                ));
            }
        }
        for row in rows(old, field) {
            if let Some(k) = key_of(row).filter(|k| !matched.contains(k)) {
                out.push(format!("| {k} | | | only in the old run | |"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_per_row_and_legacy_peaks() {
        let old: Value = serde_json::from_str(
            r#"{"peaks": {"f32_fma_gflops": 10.0, "dot4i8_gops": 40.0},
                "results": [{"op": "gemm", "precision": "int8", "epilogue": "I32", "m": 2, "n": 3, "k": 4, "median_ms": 2.0, "gops": 5.0},
                            {"op": "gemv", "precision": "f32", "epilogue": "none", "m": 1, "n": 3, "k": 4, "median_ms": 1.0, "gops": 1.0}],
                "model": []}"#,
        )
        .unwrap();
        let new: Value = serde_json::from_str(
            r#"{"peaks": {"f32_fma": {"value": 20.0}},
                "results": [{"op": "gemm", "precision": "int8", "epilogue": "I32", "m": 2, "n": 3, "k": 4, "median_ms": 3.0, "gops": 2.5}],
                "model": []}"#,
        )
        .unwrap();
        let lines = compare(&old, &new).join("\n");
        assert!(lines.contains("peak f32_fma | | | | 2.00"), "{lines}");
        assert!(
            lines.contains("gemm 2x3x4 int8 I32 | 3.000 | 2.000 | 1.50  SLOWER | 0.50"),
            "{lines}"
        );
        assert!(
            lines.contains("gemv 1x3x4 f32 none | | | only in the old run"),
            "{lines}"
        );
    }
}
