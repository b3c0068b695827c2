//! safetensors in and out: round trips for every dtype, exact f16/bf16 widening, each typed
//! error, the committed digits files, and truncated or flipped bytes that must never panic.

use std::path::PathBuf;

use half::{bf16, f16};
use wgpu_quant::Error;
use wgpu_quant::io::{SafeTensorsFile, SafeTensorsWriter};

use crate::common::Rng;

/// A writer holding one tensor of every dtype the crate writes, plus metadata.
fn sample_writer() -> SafeTensorsWriter {
    let mut w = SafeTensorsWriter::new();
    let f32s = [
        0.0,
        -0.0,
        1.5,
        -2.25,
        f32::MIN_POSITIVE,
        1e-45,
        f32::MAX,
        f32::INFINITY,
    ];
    w.add_f32("a.f32", &f32s, &[2, 4])
        .unwrap()
        .add_f16(
            "b.f16",
            &[f16::from_f32(0.5), f16::MAX, f16::MIN_POSITIVE_SUBNORMAL],
            &[3],
        )
        .unwrap()
        .add_bf16("c.bf16", &[bf16::from_f32(-3.0), bf16::MAX], &[1, 2])
        .unwrap()
        .add_i8("d.i8", &[-128, -1, 0, 1, 127, 5], &[3, 2])
        .unwrap()
        .add_u8("e.u8", &[0, 1, 128, 255], &[4])
        .unwrap()
        .add_i32("f.i32", &[i32::MIN, -1, 0, i32::MAX], &[2, 2])
        .unwrap()
        .add_u32("g.u32", &[0, 1, 0x8000_0000, u32::MAX], &[4, 1])
        .unwrap()
        .add_f32("h.scalar", &[42.0], &[])
        .unwrap()
        .add_i8("i.empty", &[], &[0, 3])
        .unwrap()
        .add_metadata("seed", "7")
        .add_metadata("note", "unit test");
    w
}

fn sample_bytes() -> Vec<u8> {
    sample_writer().to_bytes().unwrap()
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn round_trip_every_dtype() {
    let file = SafeTensorsFile::from_bytes(sample_bytes()).unwrap();
    assert_eq!(
        file.names(),
        [
            "a.f32", "b.f16", "c.bf16", "d.i8", "e.u8", "f.i32", "g.u32", "h.scalar", "i.empty"
        ]
    );
    assert_eq!(file.len(), 9);
    assert!(file.contains("d.i8") && !file.contains("nope"));

    let f32s = [
        0.0,
        -0.0,
        1.5,
        -2.25,
        f32::MIN_POSITIVE,
        1e-45,
        f32::MAX,
        f32::INFINITY,
    ];
    assert_eq!(bits(&file.get_f32("a.f32", &[2, 4]).unwrap()), bits(&f32s));
    let (any, shape) = file.get_f32_any_shape("a.f32").unwrap();
    assert_eq!((bits(&any), shape), (bits(&f32s), vec![2, 4]));

    let halves = [f16::from_f32(0.5), f16::MAX, f16::MIN_POSITIVE_SUBNORMAL];
    assert_eq!(file.get_f16("b.f16", &[3]).unwrap(), halves);
    assert_eq!(
        bits(&file.get_f32("b.f16", &[3]).unwrap()),
        bits(&[0.5, 65504.0, 2f32.powi(-24)])
    );
    assert_eq!(
        bits(&file.get_f32("c.bf16", &[1, 2]).unwrap()),
        bits(&[-3.0, bf16::MAX.to_f32()])
    );
    assert_eq!(
        file.get_i8("d.i8", &[3, 2]).unwrap(),
        [-128, -1, 0, 1, 127, 5]
    );
    assert_eq!(file.get_u8("e.u8", &[4]).unwrap(), [0, 1, 128, 255]);
    assert_eq!(
        file.get_i32("f.i32", &[2, 2]).unwrap(),
        [i32::MIN, -1, 0, i32::MAX]
    );
    assert_eq!(
        file.get_u32("g.u32", &[4, 1]).unwrap(),
        [0, 1, 0x8000_0000, u32::MAX]
    );
    assert_eq!(file.get_f32("h.scalar", &[]).unwrap(), [42.0]);
    assert_eq!(file.get_i8("i.empty", &[0, 3]).unwrap(), Vec::<i8>::new());

    assert_eq!(file.shape("d.i8").unwrap(), [3, 2]);
    assert_eq!(file.dtype("c.bf16").unwrap(), "BF16");
    assert_eq!(file.dtype("g.u32").unwrap(), "U32");
    let meta = file.metadata().unwrap();
    assert_eq!(meta.get("seed").map(String::as_str), Some("7"));
    assert_eq!(meta.get("note").map(String::as_str), Some("unit test"));
    assert_eq!(meta.len(), 2);
}

#[test]
fn nan_payload_f32_round_trips_bit_for_bit() {
    let nans = [
        f32::from_bits(0x7fc0_0001),
        f32::from_bits(0xffa0_0000),
        f32::NAN,
    ];
    let mut w = SafeTensorsWriter::new();
    w.add_f32("n", &nans, &[3]).unwrap();
    let file = SafeTensorsFile::from_bytes(w.to_bytes().unwrap()).unwrap();
    assert_eq!(bits(&file.get_f32("n", &[3]).unwrap()), bits(&nans));
}

#[test]
fn no_metadata_means_none() {
    let mut w = SafeTensorsWriter::new();
    w.add_u8("x", &[1], &[1]).unwrap();
    let file = SafeTensorsFile::from_bytes(w.to_bytes().unwrap()).unwrap();
    assert!(file.metadata().is_none());
    let empty = SafeTensorsFile::from_bytes(SafeTensorsWriter::new().to_bytes().unwrap()).unwrap();
    assert!(empty.is_empty() && empty.names().is_empty());
}

/// The f32 bits of an f16, from the IEEE 754 definitions alone (not the half crate).
fn f16_bits_to_f32_bits(h: u16) -> u32 {
    let sign = u32::from(h >> 15) << 31;
    let exp = u32::from((h >> 10) & 0x1f);
    let man = u32::from(h & 0x3ff);
    match (exp, man) {
        (0, 0) => sign,
        (0, _) => {
            // Subnormal: man · 2^-24; normalise so the leading one becomes the implicit bit.
            let shift = man.leading_zeros() - 21; // bring bit 10 to the top of the mantissa
            let m = (man << shift) & 0x3ff;
            let e = 127 - 14 - shift;
            sign | (e << 23) | (m << 13)
        }
        (31, _) => sign | 0x7f80_0000 | (man << 13),
        _ => sign | ((exp + 127 - 15) << 23) | (man << 13),
    }
}

#[test]
fn every_f16_widens_exactly() {
    let halves: Vec<f16> = (0..=u16::MAX).map(f16::from_bits).collect();
    let mut w = SafeTensorsWriter::new();
    w.add_f16("h", &halves, &[256, 256]).unwrap();
    let file = SafeTensorsFile::from_bytes(w.to_bytes().unwrap()).unwrap();
    let got = file.get_f32("h", &[256, 256]).unwrap();
    for (h, g) in (0..=u16::MAX).zip(&got) {
        let want = f16_bits_to_f32_bits(h);
        if f32::from_bits(want).is_nan() {
            // NaN stays NaN with its sign (the payload may be quieted).
            assert!(
                g.is_nan() && g.to_bits() >> 31 == want >> 31,
                "f16 {h:#06x} -> {g:?}"
            );
        } else {
            assert_eq!(g.to_bits(), want, "f16 {h:#06x}");
        }
    }
    // Spot checks against values written out by hand.
    assert_eq!(got[0x3c00], 1.0);
    assert_eq!(got[0x0001], 2f32.powi(-24));
    assert_eq!(got[0x7bff], 65504.0);
    assert_eq!(got[0xfc00], f32::NEG_INFINITY);
}

#[test]
fn every_bf16_widens_exactly() {
    let halves: Vec<bf16> = (0..=u16::MAX).map(bf16::from_bits).collect();
    let mut w = SafeTensorsWriter::new();
    w.add_bf16("b", &halves, &[65536]).unwrap();
    let file = SafeTensorsFile::from_bytes(w.to_bytes().unwrap()).unwrap();
    let got = file.get_f32("b", &[65536]).unwrap();
    for (h, g) in (0..=u16::MAX).zip(&got) {
        let want = u32::from(h) << 16;
        if f32::from_bits(want).is_nan() {
            assert!(
                g.is_nan() && g.to_bits() >> 31 == want >> 31,
                "bf16 {h:#06x} -> {g:?}"
            );
        } else {
            assert_eq!(g.to_bits(), want, "bf16 {h:#06x}");
        }
    }
}

fn temp_path(tag: &str) -> PathBuf {
    std::env::temp_dir().join(format!(
        "wgpu-quant-io-{tag}-{}.safetensors",
        std::process::id()
    ))
}

#[test]
fn save_and_load_a_file() {
    let path = temp_path("save");
    sample_writer().save(&path).unwrap();
    let file = SafeTensorsFile::load(&path);
    std::fs::remove_file(&path).unwrap();
    let file = file.unwrap();
    assert_eq!(
        file.get_i32("f.i32", &[2, 2]).unwrap(),
        [i32::MIN, -1, 0, i32::MAX]
    );
    assert_eq!(file.metadata().unwrap()["seed"], "7");
}

#[test]
fn io_errors_name_the_path() {
    let path = temp_path("does-not-exist");
    match SafeTensorsFile::load(&path) {
        Err(Error::Io { path: p, message }) => {
            assert_eq!(p, path.display().to_string());
            assert!(!message.is_empty());
        }
        other => panic!("expected Io, got {other:?}"),
    }
    let dir = temp_path("no-such-dir").join("x.safetensors");
    assert!(matches!(sample_writer().save(&dir), Err(Error::Io { .. })));

    // A corrupt file on disk is a Format error that names the path.
    let bad = temp_path("corrupt");
    std::fs::write(&bad, b"not a safetensors file").unwrap();
    let got = SafeTensorsFile::load(&bad);
    std::fs::remove_file(&bad).unwrap();
    match got {
        Err(Error::Format(msg)) => assert!(msg.contains(&bad.display().to_string()), "{msg}"),
        other => panic!("expected Format, got {other:?}"),
    }
}

#[test]
fn missing_tensor_lists_what_is_there() {
    let file = SafeTensorsFile::from_bytes(sample_bytes()).unwrap();
    let err = file.get_f32("fc1.weight", &[128, 64]).unwrap_err();
    match &err {
        Error::MissingTensor { name, available } => {
            assert_eq!(name, "fc1.weight");
            assert_eq!(available.len(), 9);
        }
        other => panic!("expected MissingTensor, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains("\"fc1.weight\"") && msg.contains("\"a.f32\""),
        "{msg}"
    );
    assert!(msg.contains("and 1 more"), "{msg}");
    assert!(matches!(file.shape("x"), Err(Error::MissingTensor { .. })));
    assert!(matches!(file.dtype("x"), Err(Error::MissingTensor { .. })));
    for result in [
        file.get_i8("x", &[1]).map(drop),
        file.get_u8("x", &[1]).map(drop),
        file.get_i32("x", &[1]).map(drop),
        file.get_u32("x", &[1]).map(drop),
        file.get_f16("x", &[1]).map(drop),
        file.get_f32_any_shape("x").map(drop),
    ] {
        assert!(
            matches!(result, Err(Error::MissingTensor { .. })),
            "{result:?}"
        );
    }
}

fn wrong_dtype(result: wgpu_quant::Result<impl std::fmt::Debug>) -> (String, String) {
    match result {
        Err(Error::WrongDtype {
            found, expected, ..
        }) => (found, expected),
        other => panic!("expected WrongDtype, got {other:?}"),
    }
}

#[test]
fn wrong_dtype_names_both() {
    let mut w = sample_writer();
    w.add_raw("z.f64", "F64", &1.0f64.to_le_bytes(), &[1])
        .unwrap();
    let file = SafeTensorsFile::from_bytes(w.to_bytes().unwrap()).unwrap();
    let float = "F32, F16 or BF16".to_string();
    assert_eq!(
        wrong_dtype(file.get_f32("d.i8", &[3, 2])),
        ("I8".into(), float.clone())
    );
    assert_eq!(
        wrong_dtype(file.get_f32_any_shape("z.f64")),
        ("F64".into(), float)
    );
    assert_eq!(
        wrong_dtype(file.get_i8("e.u8", &[4])),
        ("U8".into(), "I8".into())
    );
    assert_eq!(
        wrong_dtype(file.get_u8("d.i8", &[3, 2])),
        ("I8".into(), "U8".into())
    );
    assert_eq!(
        wrong_dtype(file.get_i32("g.u32", &[4, 1])),
        ("U32".into(), "I32".into())
    );
    assert_eq!(
        wrong_dtype(file.get_u32("f.i32", &[2, 2])),
        ("I32".into(), "U32".into())
    );
    assert_eq!(
        wrong_dtype(file.get_f16("c.bf16", &[1, 2])),
        ("BF16".into(), "F16".into())
    );
    let msg = file.get_i8("a.f32", &[2, 4]).unwrap_err().to_string();
    assert!(
        msg.contains("\"a.f32\"") && msg.contains("F32") && msg.contains("I8"),
        "{msg}"
    );
}

#[test]
fn wrong_shape_names_both() {
    let file = SafeTensorsFile::from_bytes(sample_bytes()).unwrap();
    match file.get_f32("a.f32", &[4, 2]) {
        Err(Error::WrongShape {
            name,
            expected,
            found,
        }) => assert_eq!(
            (name.as_str(), expected, found),
            ("a.f32", vec![4, 2], vec![2, 4])
        ),
        other => panic!("expected WrongShape, got {other:?}"),
    }
    // Same element count, different rank: still wrong.
    assert!(matches!(
        file.get_u8("e.u8", &[2, 2]),
        Err(Error::WrongShape { .. })
    ));
    assert!(matches!(
        file.get_u8("e.u8", &[4, 1]),
        Err(Error::WrongShape { .. })
    ));
    assert!(matches!(
        file.get_f32("h.scalar", &[1]),
        Err(Error::WrongShape { .. })
    ));
    for result in [
        file.get_i8("d.i8", &[6]).map(drop),
        file.get_i32("f.i32", &[4]).map(drop),
        file.get_u32("g.u32", &[4]).map(drop),
        file.get_f16("b.f16", &[1, 3]).map(drop),
    ] {
        assert!(
            matches!(result, Err(Error::WrongShape { .. })),
            "{result:?}"
        );
    }
    let msg = file.get_f32("a.f32", &[8]).unwrap_err().to_string();
    assert!(msg.contains("[2, 4]") && msg.contains("[8]"), "{msg}");
}

fn format_error(bytes: Vec<u8>) -> String {
    match SafeTensorsFile::from_bytes(bytes) {
        Err(Error::Format(msg)) => msg,
        other => panic!("expected Format, got {other:?}"),
    }
}

/// A file whose header is `json` (padded to 8 bytes) followed by `data`.
fn with_header(json: &str, data: &[u8]) -> Vec<u8> {
    let mut header = json.as_bytes().to_vec();
    header.resize(header.len().next_multiple_of(8), b' ');
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend(header);
    out.extend(data);
    out
}

#[test]
fn corrupt_bytes_are_format_errors() {
    let good = sample_bytes();
    // Truncated: inside the length, inside the header, inside the data, one byte short.
    for cut in [0, 3, 7, 8, 20, good.len() / 2, good.len() - 1] {
        format_error(good[..cut].to_vec());
    }
    // Trailing bytes the header does not account for.
    let mut long = good.clone();
    long.push(0);
    format_error(long);
    // Garbage header: right length, not JSON; not UTF-8; JSON of the wrong schema.
    format_error(with_header("this is not json", &[]));
    format_error(with_header("\u{0}\u{1}", &[]));
    let mut not_utf8 = 8u64.to_le_bytes().to_vec();
    not_utf8.extend([0xff; 8]);
    format_error(not_utf8);
    format_error(with_header("[1, 2, 3]", &[]));
    format_error(with_header(
        r#"{"x": {"dtype": "F32", "shape": [2]}}"#,
        &[0; 8],
    ));
    format_error(with_header(
        r#"{"x": {"dtype": "F99", "shape": [1], "data_offsets": [0, 4]}}"#,
        &[0; 4],
    ));
    // Offsets that disagree with the shape, run past the data, or overlap.
    format_error(with_header(
        r#"{"x": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}}"#,
        &[0; 4],
    ));
    format_error(with_header(
        r#"{"x": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}"#,
        &[0; 2],
    ));
    format_error(with_header(
        r#"{"x": {"dtype": "U8", "shape": [2], "data_offsets": [0, 2]}, "y": {"dtype": "U8", "shape": [2], "data_offsets": [1, 3]}}"#,
        &[0; 3],
    ));
    // A shape whose byte size overflows.
    format_error(with_header(
        r#"{"x": {"dtype": "F32", "shape": [4294967296, 4294967296], "data_offsets": [0, 4]}}"#,
        &[0; 4],
    ));
    // Header lengths that overflow, exceed the file, or exceed the format's limit.
    for n in [
        u64::MAX,
        u64::MAX - 7,
        1 << 40,
        100_000_001,
        good.len() as u64,
    ] {
        let mut bad = good.clone();
        bad[..8].copy_from_slice(&n.to_le_bytes());
        format_error(bad);
    }
    // The message says what is wrong.
    let msg = SafeTensorsFile::from_bytes(vec![1, 2, 3])
        .unwrap_err()
        .to_string();
    assert!(msg.contains("invalid safetensors data"), "{msg}");
}

/// Loads `bytes` and, when that succeeds, reads every tensor every way; must never panic.
fn exercise(bytes: Vec<u8>) -> bool {
    let Ok(file) = SafeTensorsFile::from_bytes(bytes) else {
        return false;
    };
    let _ = file.metadata();
    for name in file.names() {
        let shape = file.shape(&name).unwrap().to_vec();
        let _ = file.dtype(&name).unwrap();
        let _ = file.get_f32_any_shape(&name);
        let _ = file.get_f32(&name, &shape);
        let _ = file.get_f16(&name, &shape);
        let _ = file.get_i8(&name, &shape);
        let _ = file.get_u8(&name, &shape);
        let _ = file.get_i32(&name, &shape);
        let _ = file.get_u32(&name, &shape);
    }
    true
}

#[test]
fn truncations_and_flips_never_panic() {
    let good = sample_bytes();
    assert!(exercise(good.clone()));
    let header_end = 8 + u64::from_le_bytes(good[..8].try_into().unwrap()) as usize;

    // Every truncation fails cleanly.
    for cut in 0..good.len() {
        assert!(
            !exercise(good[..cut].to_vec()),
            "truncation to {cut} bytes loaded"
        );
    }
    // Every header byte (length field included) flipped with several masks; data bytes too.
    let mut loaded = 0;
    for pos in 0..good.len() {
        for mask in [0x01u8, 0x02, 0x10, 0x20, 0x80, 0xff] {
            let mut bad = good.clone();
            bad[pos] ^= mask;
            let ok = exercise(bad);
            if pos >= header_end {
                assert!(ok, "a flipped data byte must still load (pos {pos})");
            }
            loaded += usize::from(ok);
        }
    }
    assert!(loaded > 0);
    // Random multi-byte corruption, including swapped header characters.
    let mut rng = Rng::new(0x5afe_7e45);
    for _ in 0..3000 {
        let mut bad = good.clone();
        for _ in 0..rng.int(1, 4) {
            let pos = (rng.next_u64() % header_end as u64) as usize;
            bad[pos] = match rng.int(0, 3) {
                0 => rng.next_u64() as u8,
                1 => b"0123456789"[rng.int(0, 9) as usize],
                2 => b"{}[],:\""[rng.int(0, 6) as usize],
                _ => b' ',
            };
        }
        if rng.int(0, 3) == 0 {
            let cut = (rng.next_u64() % bad.len() as u64) as usize;
            bad.truncate(cut);
        }
        exercise(bad);
    }
}

#[test]
fn writer_rejects_bad_tensors() {
    let mut w = SafeTensorsWriter::new();
    w.add_f32("x", &[1.0, 2.0], &[2]).unwrap();
    match w.add_i8("x", &[1], &[1]) {
        Err(Error::InvalidConfig { value, .. }) => assert_eq!(value, "x"),
        other => panic!("expected InvalidConfig, got {other:?}"),
    }
    match w.add_f32("y", &[1.0, 2.0, 3.0], &[2, 2]) {
        Err(Error::ShapeMismatch {
            shape,
            expected,
            got,
            ..
        }) => assert_eq!((shape, expected, got), (vec![2, 2], 4, 3)),
        other => panic!("expected ShapeMismatch, got {other:?}"),
    }
    assert!(matches!(
        w.add_u8("s", &[], &[]),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(
        w.add_u8("__metadata__", &[1], &[1]),
        Err(Error::InvalidConfig { .. })
    ));
    assert!(matches!(
        w.add_u32("big", &[1], &[usize::MAX, 2]),
        Err(Error::InvalidConfig { .. })
    ));
    assert!(matches!(
        w.add_raw("r", "F4", &[0], &[2]),
        Err(Error::InvalidConfig { .. })
    ));
    assert!(matches!(
        w.add_raw("r", "F64", &[0; 12], &[1]),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(
        w.add_raw("r", "F64", &[0; 16], &[1]),
        Err(Error::ShapeMismatch { .. })
    ));
    // Failed adds leave the writer unchanged.
    assert_eq!(w.len(), 1);
    let file = SafeTensorsFile::from_bytes(w.to_bytes().unwrap()).unwrap();
    assert_eq!(file.names(), ["x"]);
}

fn digits_path(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("data/digits")
        .join(file)
}

#[test]
fn committed_digits_files_load_and_classify() {
    let mlp = SafeTensorsFile::load(digits_path("mlp.safetensors")).unwrap();
    let data = SafeTensorsFile::load(digits_path("digits.safetensors")).unwrap();
    let dims = [(64, 128), (128, 64), (64, 10)];
    let layers: Vec<(Vec<f32>, Vec<f32>)> = dims
        .iter()
        .enumerate()
        .map(|(i, &(k, n))| {
            let w = mlp
                .get_f32(&format!("fc{}.weight", i + 1), &[n, k])
                .unwrap();
            let b = mlp.get_f32(&format!("fc{}.bias", i + 1), &[n]).unwrap();
            (w, b)
        })
        .collect();
    let x_test = data.get_f32("x_test", &[540, 64]).unwrap();
    let y_test = data.get_i32("y_test", &[540]).unwrap();
    let (x_train, train_shape) = data.get_f32_any_shape("x_train").unwrap();
    assert_eq!(train_shape, [1257, 64]);
    assert_eq!(x_train.len(), 1257 * 64);
    assert_eq!(data.get_i32("y_train", &[1257]).unwrap().len(), 1257);
    assert!(
        x_test
            .iter()
            .chain(&x_train)
            .all(|&v| (0.0..=1.0).contains(&v))
    );
    assert!(y_test.iter().all(|&y| (0..10).contains(&y)));

    // A plain f32 forward pass reproduces the accuracy the script measured (to a near-tie).
    let mut correct = 0;
    for (row, &label) in x_test.chunks_exact(64).zip(&y_test) {
        let mut h = row.to_vec();
        for (i, ((w, b), &(k, n))) in layers.iter().zip(&dims).enumerate() {
            h = (0..n)
                .map(|o| {
                    let z = b[o] + (0..k).map(|j| w[o * k + j] * h[j]).sum::<f32>();
                    if i < 2 { z.max(0.0) } else { z }
                })
                .collect();
        }
        let pred = (0..10).max_by(|&a, &b| h[a].total_cmp(&h[b])).unwrap();
        correct += i32::from(pred as i32 == label);
    }
    let meta = mlp.metadata().unwrap();
    let reported: i32 = meta["test_correct_f32"].parse().unwrap();
    assert!(
        (correct - reported).abs() <= 1,
        "{correct} vs the script's {reported}"
    );
    assert!(correct >= 513, "float accuracy {correct}/540 is below 95%");
    assert_eq!(meta["seed"], data.metadata().unwrap()["seed"]);
}
