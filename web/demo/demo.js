// The digits demo page: figures on the test set, then a drawing pad and test digits, each
// image classified by FP32, INT8 static and INT8 dynamic. The Rust side is web/demo/src.
// At start the autotune measures the INT8 kernel candidates of the model's layer shapes on
// this adapter (?tune=0: the heuristic's kernels), and the page shows the kernels that run.
// When everything has run, <body data-done="1"> and window.demoResult hold the figures
// (scripts/test-demo.py reads them); on failure data-done="error".
import init, { start, evaluate, predict, test_image } from "./pkg/wgpu_quant_demo.js";
import { backendName, describeAdapter } from "./adapter.js";

const RUNS = 15;
const $ = (id) => document.getElementById(id);
const status = (text, state = "running") => {
  $("status").textContent = text;
  $("status").dataset.state = state;
};
const pct = (x) => `${(100 * x).toFixed(2)} %`;
const ms = (x) => x.toFixed(3);
const yesNo = (b) => (b === null || b === undefined ? "–" : b ? "yes" : "NO");

function fail(e) {
  console.error(e);
  status(`Failed: ${e && e.message ? e.message : e}`, "error");
  document.body.dataset.done = "error";
  window.demoResult = { error: String(e && e.message ? e.message : e) };
}

// ---- calls into the wasm, one at a time (the Rust side holds one demo) ----
let queue = Promise.resolve();
function serial(f) {
  const next = queue.then(f, f);
  queue = next.catch(() => {});
  return next;
}

// ---- the figures table ----
function showFigures(figures, rows) {
  for (const f of figures) {
    $(`acc-${f.key}`).textContent = `${pct(f.accuracy)} (${f.correct}/${rows})`;
    $(`agree-${f.key}`).textContent = pct(f.agreement);
    const exact = $(`exact-${f.key}`);
    exact.textContent = yesNo(f.bit_exact);
    exact.className = f.bit_exact === null ? "" : f.bit_exact ? "yes" : "no";
    $(`batch-${f.key}`).textContent = ms(f.batch_ms);
    $(`single-${f.key}`).textContent = ms(f.single_ms);
    $(`gpu-${f.key}`).textContent = ms(f.gpu_batch_ms);
  }
}

// ---- predictions ----
function showPredictions(predictions, label) {
  for (const p of predictions) {
    const card = $(`pred-${p.key}`);
    const cls = card.querySelector(".class");
    const conf = document.createElement("span");
    conf.className = "conf";
    conf.textContent = `${(100 * p.probabilities[p.class]).toFixed(1)} %`;
    cls.replaceChildren(String(p.class), conf);
    const exact = card.querySelector(".exact");
    if (p.bit_exact === null) {
      exact.textContent = "baseline";
      exact.className = "exact";
    } else {
      exact.textContent = p.bit_exact ? "bit-exact vs CPU" : "DIFFERS from CPU";
      exact.className = `exact ${p.bit_exact ? "yes" : "no"}`;
    }
    const bars = card.querySelector(".bars");
    bars.replaceChildren();
    p.probabilities.forEach((prob, d) => {
      const name = document.createElement("span");
      name.textContent = String(d);
      const bar = document.createElement("div");
      bar.className = "bar";
      bar.style.width = `${Math.max(0.5, 100 * prob).toFixed(1)}%`;
      bar.title = `${(100 * prob).toFixed(1)} %`;
      bars.append(name, bar);
    });
  }
  const classes = predictions.map((p) => p.class);
  const agree = classes.every((c) => c === classes[0]);
  $("truth").textContent =
    (label === null ? "Your drawing. " : `Test digit, label ${label}. `) +
    (agree ? "All three models agree." : "The models disagree.");
}

// ---- the 8×8 preview ----
const preview = $("preview").getContext("2d");
function showPixels(pixels) {
  const img = preview.createImageData(8, 8);
  for (let i = 0; i < 64; i++) {
    const v = Math.round(255 * pixels[i]);
    img.data.set([v, v, v, 255], 4 * i);
  }
  preview.putImageData(img, 0, 0);
}

// ---- the drawing pad ----
const pad = $("pad");
const ink = pad.getContext("2d", { willReadFrequently: true });
let showingTest = false;
function clearPad() {
  ink.fillStyle = "#000";
  ink.fillRect(0, 0, pad.width, pad.height);
  showingTest = false;
}

// The UCI preprocessing: the digit scaled into a 32×32 bitmap, then the "on" pixels counted
// in each 4×4 block (0..16); the model takes count / 16.
function padPixels() {
  const { width: w, height: h } = pad;
  const data = ink.getImageData(0, 0, w, h).data;
  let [x0, y0, x1, y1] = [w, h, -1, -1];
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      if (data[4 * (y * w + x)] > 64) {
        x0 = Math.min(x0, x); x1 = Math.max(x1, x);
        y0 = Math.min(y0, y); y1 = Math.max(y1, y);
      }
    }
  }
  const pixels = new Float32Array(64);
  if (x1 < 0) return pixels;
  const [bw, bh] = [x1 - x0 + 1, y1 - y0 + 1];
  const scale = 32 / Math.max(bw, bh);
  const [dw, dh] = [Math.max(1, bw * scale), Math.max(1, bh * scale)];
  const small = document.createElement("canvas");
  small.width = small.height = 32;
  const s = small.getContext("2d", { willReadFrequently: true });
  s.fillStyle = "#000";
  s.fillRect(0, 0, 32, 32);
  s.imageSmoothingEnabled = true;
  s.imageSmoothingQuality = "high";
  s.drawImage(pad, x0, y0, bw, bh, (32 - dw) / 2, (32 - dh) / 2, dw, dh);
  const bits = s.getImageData(0, 0, 32, 32).data;
  for (let y = 0; y < 32; y++) {
    for (let x = 0; x < 32; x++) {
      if (bits[4 * (y * 32 + x)] >= 128) pixels[(y >> 2) * 8 + (x >> 2)] += 1 / 16;
    }
  }
  return pixels;
}

function drawTestDigit(pixels) {
  clearPad();
  const cell = pad.width / 8;
  for (let i = 0; i < 64; i++) {
    const v = Math.round(255 * pixels[i]);
    ink.fillStyle = `rgb(${v},${v},${v})`;
    ink.fillRect((i % 8) * cell, Math.floor(i / 8) * cell, cell, cell);
  }
  showingTest = true;
}

async function classify(pixels, label) {
  showPixels(pixels);
  const predictions = await serial(() => predict(pixels));
  showPredictions(predictions, label);
  window.lastPrediction = {
    label, pixels: Array.from(pixels),
    predictions: predictions.map((p) => ({ key: p.key, class: p.class, bit_exact: p.bit_exact })),
  };
  return predictions;
}

let drawing = false;
let last = null;
function point(e) {
  const r = pad.getBoundingClientRect();
  return [(e.clientX - r.left) * (pad.width / r.width), (e.clientY - r.top) * (pad.height / r.height)];
}
pad.addEventListener("pointerdown", (e) => {
  if (showingTest) clearPad();
  drawing = true;
  last = point(e);
  pad.setPointerCapture(e.pointerId);
  ink.fillStyle = "#fff";
  ink.beginPath();
  ink.arc(last[0], last[1], 13, 0, 2 * Math.PI);
  ink.fill();
});
pad.addEventListener("pointermove", (e) => {
  if (!drawing) return;
  const p = point(e);
  ink.strokeStyle = "#fff";
  ink.lineWidth = 26;
  ink.lineCap = "round";
  ink.lineJoin = "round";
  ink.beginPath();
  ink.moveTo(last[0], last[1]);
  ink.lineTo(p[0], p[1]);
  ink.stroke();
  last = p;
});
const endStroke = () => {
  if (!drawing) return;
  drawing = false;
  classify(padPixels(), null).catch(fail);
};
pad.addEventListener("pointerup", endStroke);
pad.addEventListener("pointercancel", endStroke);

let rows = 540;
async function pickTest(index) {
  const { pixels, label } = await serial(() => test_image(index));
  drawTestDigit(pixels);
  return { index, label, predictions: await classify(pixels, label) };
}
function pickLabel(digit) {
  // A random test image whose label is `digit`.
  const start = Math.floor(Math.random() * rows);
  return serial(() => {
    for (let k = 0; k < rows; k++) {
      const i = (start + k) % rows;
      if (test_image(i).label === digit) return i;
    }
    return start;
  }).then(pickTest);
}

function setButtons(enabled) {
  document.querySelectorAll("button").forEach((b) => (b.disabled = !enabled));
}

// ---- the run ----
async function main() {
  for (let d = 0; d < 10; d++) {
    const b = document.createElement("button");
    b.className = "digit";
    b.textContent = String(d);
    b.title = `a test image labelled ${d}`;
    b.addEventListener("click", () => pickLabel(d).catch(fail));
    $("digits").append(b);
  }
  $("clear").addEventListener("click", () => { clearPad(); showPixels(new Float32Array(64)); });
  $("random").addEventListener("click", () => pickTest(Math.floor(Math.random() * rows)).catch(fail));
  setButtons(false);
  clearPad();

  await init();
  if (!navigator.gpu) throw new Error("this browser has no WebGPU (navigator.gpu is undefined)");
  const tune = new URLSearchParams(location.search).get("tune") !== "0";
  status("Requesting the WebGPU adapter, loading the model, " +
    (tune ? "autotuning its INT8 kernels and calibrating…" : "calibrating…"));
  const info = await serial(() => start(tune));
  rows = info.test_rows;
  info.adapter = await describeAdapter(info.adapter);
  $("adapter").textContent = info.adapter;
  $("backend").textContent = backendName(info.backend) + (info.driver ? ` (${info.driver})` : "");
  $("dot4").textContent = `${info.dot_product}, self-test ${info.dot4_self_test}`;
  $("timing").textContent = info.timing === "gpu_timestamps" ? "GPU timestamp queries" : "wall clock";
  $("timing-note").textContent = info.timing === "gpu_timestamps" ? "timestamp queries" : "wall clock around submit and wait";
  $("test-rows").textContent = String(rows);
  $("runs").textContent = String(RUNS);
  $("report").textContent = info.report;
  $("tune").textContent = tune
    ? `${info.tuning.length} shape classes measured in ${(info.tune_ms / 1000).toFixed(1)} s`
    : "off (?tune=0)";
  const both = (k) => (k.static === k.dynamic ? k.static : `static ${k.static}; dynamic ${k.dynamic}`);
  $("kernels").textContent = `${rows} rows: ${both(info.kernels)}; 1 row: ${both(info.kernels_single)}`;

  status(`Running FP32, INT8 static and INT8 dynamic on ${rows} test images (${RUNS} timed runs each)…`);
  const figures = await serial(() => evaluate(RUNS));
  showFigures(figures, rows);

  const first = await pickTest(0);
  setButtons(true);
  window.demoResult = { info: { ...info, report: undefined }, runs: RUNS, tuned: tune, figures, prediction: {
    index: first.index, label: first.label,
    predictions: first.predictions.map((p) => ({ key: p.key, class: p.class, bit_exact: p.bit_exact })),
  } };
  const exact = figures.filter((f) => f.bit_exact !== null).every((f) => f.bit_exact);
  status(`Done: INT8 ${exact ? "bit-exact against the CPU reference" : "DIFFERS from the CPU reference"}. ` +
    "Draw a digit or pick one below.", exact ? "done" : "error");
  document.body.dataset.done = "1";
}

main().catch(fail);
