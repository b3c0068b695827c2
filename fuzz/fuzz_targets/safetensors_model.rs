//! The inference API's CPU side on hostile input: safetensors loading of corrupt or truncated
//! files, a float model built from whatever a file holds, and host tensors quantized with it.
//! No input may panic, abort or hang; every failure is a typed error, and every success is
//! consistent (a tensor read back has the element count of its shape).
//!
//! The input is structured: a valid file written by `SafeTensorsWriter` from arbitrary small
//! tensors, then corrupted in a chosen way (truncated, a byte changed, the header length
//! changed, or replaced by raw bytes), so the parser sees both near-valid and random files.
#![no_main]

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use wgpu_quant::io::{SafeTensorsFile, SafeTensorsWriter};
use wgpu_quant::nn::{FloatModel, HostTensor};
use wgpu_quant::reference::dynamic::{DynamicGranularity, DynamicScheme};
use wgpu_quant::{Activation, Convention, QType, QuantParams};

#[derive(Arbitrary, Debug)]
struct Layer {
    /// Output features, 1 to 4.
    n: u8,
    /// Input features, 1 to 4 (the previous layer's outputs after the first).
    k: u8,
    weights: Vec<f32>,
    bias: Option<Vec<f32>>,
}

#[derive(Arbitrary, Debug)]
enum Corruption {
    None,
    Truncate(u16),
    SetByte { at: u16, value: u8 },
    HeaderLength(u64),
    Raw(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
struct Input {
    layers: Vec<Layer>,
    corruption: Corruption,
    rows: u8,
    x: Vec<f32>,
    scale: f32,
    zero_point: u8,
}

fuzz_target!(|input: Input| {
    let mut writer = SafeTensorsWriter::new();
    let mut names = Vec::new();
    let mut k_prev = None;
    for (i, layer) in input.layers.iter().take(3).enumerate() {
        let n = 1 + usize::from(layer.n % 4);
        let k = k_prev.unwrap_or(1 + usize::from(layer.k % 4));
        k_prev = Some(n);
        let mut w: Vec<f32> = layer.weights.iter().copied().take(n * k).collect();
        w.resize(n * k, 0.5);
        let name = format!("fc{i}");
        writer
            .add_f32(&format!("{name}.weight"), &w, &[n, k])
            .unwrap();
        if let Some(b) = &layer.bias {
            let mut b: Vec<f32> = b.iter().copied().take(n).collect();
            b.resize(n, 0.0);
            writer.add_f32(&format!("{name}.bias"), &b, &[n]).unwrap();
        }
        names.push(name);
    }
    let mut bytes = writer.to_bytes().unwrap();
    match input.corruption {
        Corruption::None => {}
        Corruption::Truncate(at) => bytes.truncate(usize::from(at) % (bytes.len() + 1)),
        Corruption::SetByte { at, value } => {
            if !bytes.is_empty() {
                let i = usize::from(at) % bytes.len();
                bytes[i] = value;
            }
        }
        Corruption::HeaderLength(len) => {
            if bytes.len() >= 8 {
                bytes[..8].copy_from_slice(&len.to_le_bytes());
            }
        }
        Corruption::Raw(raw) => bytes = raw,
    }
    let Ok(file) = SafeTensorsFile::from_bytes(bytes) else {
        return; // a typed error: the point is that it is not a panic
    };
    for name in file.names() {
        let shape = file.shape(&name).unwrap().to_vec();
        let _ = file.dtype(&name).unwrap();
        let count: Option<usize> = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        if let Ok((values, got_shape)) = file.get_f32_any_shape(&name) {
            assert_eq!(got_shape, shape);
            assert_eq!(Some(values.len()), count, "{name}");
        }
        if let Ok(v) = file.get_u8(&name, &shape) {
            assert_eq!(Some(v.len()), count);
        }
        if let Ok(v) = file.get_i32(&name, &shape) {
            assert_eq!(Some(v.len()), count);
        }
    }
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let Ok(model) = FloatModel::sequential(&file, &refs, Activation::Relu) else {
        return;
    };
    let rows = usize::from(input.rows % 4);
    let cols = model.input_features();
    let mut x: Vec<f32> = input.x.iter().copied().take(rows * cols).collect();
    x.resize(rows * cols, 0.25);
    if let Ok(y) = model.forward(&x, rows) {
        assert_eq!(y.len(), rows * model.output_features());
    }
    let Ok(host) = HostTensor::f32(x, rows, cols) else {
        panic!("a matching host tensor is valid");
    };
    if let Ok(params) = QuantParams::per_tensor(
        input.scale,
        i32::from(input.zero_point),
        QType::U8.full_range(),
    ) {
        for convention in Convention::ALL {
            let q = host.quantize(convention, &params).unwrap();
            assert_eq!(q.rows, rows);
        }
    }
    for granularity in [DynamicGranularity::PerRow, DynamicGranularity::PerTensor] {
        if rows > 0 {
            let q = host
                .dynamic_quantize(DynamicScheme::OnnxLinear { qtype: QType::U8 }, granularity)
                .unwrap();
            assert_eq!(q.rows, rows);
        }
    }
});
