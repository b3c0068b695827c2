// The browser benchmark page (web/demo/src/bench.rs does the work). ?runs=N sets the runs per
// case (default 9); ?tune=0 skips the autotune (the layers run the heuristic's kernels). When
// done, <body data-done="1">, window.benchResult holds the rows, the autotune's records and the
// stage breakdown, and #markdown, #tuning-markdown and #stages-markdown the tables
// (scripts/test-demo.py saves them); on failure data-done="error".
import init, { start, benchmark } from "./pkg/wgpu_quant_demo.js";
import { backendName, describeAdapter } from "./adapter.js";

const $ = (id) => document.getElementById(id);
const status = (text, state = "running") => {
  $("status").textContent = text;
  $("status").dataset.state = state;
};

function cell(tr, text, num = true) {
  const td = document.createElement("td");
  td.textContent = text;
  td.className = num ? "num" : "left";
  tr.append(td);
}

async function main() {
  const params = new URLSearchParams(location.search);
  const runs = Math.max(1, Number(params.get("runs")) || 9);
  const tune = params.get("tune") !== "0";
  $("runs").textContent = String(runs);
  await init();
  if (!navigator.gpu) throw new Error("this browser has no WebGPU (navigator.gpu is undefined)");
  status(tune ? "Requesting the WebGPU adapter, autotuning the digits model's layers…" : "Requesting the WebGPU adapter…");
  const t0 = performance.now();
  const info = await start(tune);
  info.adapter = await describeAdapter(info.adapter);
  $("adapter").textContent = info.adapter;
  $("backend").textContent = backendName(info.backend) + (info.driver ? ` (${info.driver})` : "");
  $("dot4").textContent = `${info.dot_product}, self-test ${info.dot4_self_test}`;
  $("timing").textContent = info.timing === "gpu_timestamps" ? "GPU timestamp queries" : "wall clock around submit and wait";
  const result = await benchmark(runs, tune, (line) => status(`Running ${line}`));
  const tuneSeconds = (info.tune_ms + result.tune_ms) / 1000;
  $("tune").textContent = tune
    ? `${result.tuning.length} shape classes measured in ${tuneSeconds.toFixed(1)} s`
    : "off (?tune=0): the heuristic's kernels";
  for (const r of result.rows) {
    const tr = document.createElement("tr");
    cell(tr, r.op, false);
    cell(tr, r.shape, false);
    cell(tr, r.fp32_ms.toFixed(3));
    cell(tr, r.int8_ms.toFixed(3));
    cell(tr, `${r.ratio.toFixed(2)}×`);
    cell(tr, r.fp32_gops.toFixed(1));
    cell(tr, r.int8_gops.toFixed(1));
    cell(tr, r.int8_kernel, false);
    tr.lastChild.classList.add("wrap");
    $("results").append(tr);
  }
  for (const t of result.tuning) {
    const tr = document.createElement("tr");
    cell(tr, t.class, false);
    cell(tr, t.shape, false);
    cell(tr, t.winner, false);
    cell(tr, t.winner_ms.toFixed(3));
    cell(tr, t.heuristic_ms === null ? t.heuristic : `${t.heuristic} (${t.heuristic_ms.toFixed(3)})`, false);
    cell(tr, t.heuristic_ms === null ? "–" : `${(t.heuristic_ms / t.winner_ms).toFixed(2)}×`);
    const sorted = [...t.candidates].sort((a, b) => a.ms - b.ms);
    const list = document.createElement("tr");
    const td = document.createElement("td");
    td.colSpan = 6;
    td.className = "candidates";
    td.textContent = `${sorted.length} candidates, best ms, fastest first: ` +
      sorted.map((c) => `${c.kernel} ${c.ms.toFixed(3)}`).join(" · ");
    list.append(td);
    tr.className = "class-row";
    $("tuning").append(tr, list);
  }
  const sums = {};
  for (const s of result.stages) sums[s.model] = (sums[s.model] || 0) + s.ms;
  for (const s of result.stages) {
    const tr = document.createElement("tr");
    cell(tr, s.model, false);
    cell(tr, s.stage, false);
    cell(tr, s.ms.toFixed(3));
    cell(tr, s.model === "comparison" ? "–" : `${((100 * s.ms) / sums[s.model]).toFixed(0)} %`);
    $("stages").append(tr);
  }
  const header = `Adapter: ${info.adapter || "(unnamed)"} (${info.backend}), dot4I8Packed ${info.dot_product}, ` +
    `timing: ${result.timing}, median of ${result.runs} runs, ` +
    (tune ? `INT8 kernels autotuned on this adapter (${tuneSeconds.toFixed(1)} s).` : "INT8 kernels from the heuristic (no autotune).") +
    "\n\n";
  const tuningHeader = tune
    ? `${result.tuning.length} shape classes, ${tuneSeconds.toFixed(1)} s in all (the digits model's at page start, then each benchmark shape's before it is timed).\n\n`
    : "The autotune did not run (?tune=0).\n\n";
  $("markdown").textContent = header + result.markdown;
  $("tuning-markdown").textContent = tuningHeader + result.tuning_markdown;
  $("stages-markdown").textContent = result.stages_markdown;
  const { report, tuning, kernels, kernels_single, tuned, tune_ms, ...adapter } = info;
  window.benchResult = {
    adapter, timing: result.timing, runs: result.runs, tuned: tune, tune_s: tuneSeconds,
    rows: result.rows, tuning: result.tuning, stages: result.stages,
    markdown: header + result.markdown, tuning_markdown: tuningHeader + result.tuning_markdown,
    stages_markdown: result.stages_markdown,
  };
  status(`Done in ${((performance.now() - t0) / 1000).toFixed(1)} s.`, "done");
  document.body.dataset.done = "1";
}

main().catch((e) => {
  console.error(e);
  status(`Failed: ${e && e.message ? e.message : e}`, "error");
  document.body.dataset.done = "error";
  window.benchResult = { error: String(e && e.message ? e.message : e) };
});
