// The browser benchmark page (web/demo/src/bench.rs does the work). ?runs=N sets the runs per
// case (default 9). When done, <body data-done="1">, window.benchResult holds the rows and
// #markdown the table (scripts/test-demo.py saves it); on failure data-done="error".
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
  const runs = Math.max(1, Number(new URLSearchParams(location.search).get("runs")) || 9);
  $("runs").textContent = String(runs);
  await init();
  if (!navigator.gpu) throw new Error("this browser has no WebGPU (navigator.gpu is undefined)");
  status("Requesting the WebGPU adapter…");
  const info = await start();
  info.adapter = await describeAdapter(info.adapter);
  $("adapter").textContent = info.adapter;
  $("backend").textContent = backendName(info.backend) + (info.driver ? ` (${info.driver})` : "");
  $("dot4").textContent = `${info.dot_product}, self-test ${info.dot4_self_test}`;
  $("timing").textContent = info.timing === "gpu_timestamps" ? "GPU timestamp queries" : "wall clock around submit and wait";
  const t0 = performance.now();
  const result = await benchmark(runs, (line) => status(`Running ${line}`));
  for (const r of result.rows) {
    const tr = document.createElement("tr");
    cell(tr, r.op, false);
    cell(tr, r.shape, false);
    cell(tr, r.fp32_ms.toFixed(3));
    cell(tr, r.int8_ms.toFixed(3));
    cell(tr, `${r.ratio.toFixed(2)}×`);
    cell(tr, r.fp32_gops.toFixed(1));
    cell(tr, r.int8_gops.toFixed(1));
    $("results").append(tr);
  }
  const header = `Adapter: ${info.adapter || "(unnamed)"} (${info.backend}), dot4I8Packed ${info.dot_product}, ` +
    `timing: ${result.timing}, median of ${result.runs} runs.\n\n`;
  $("markdown").textContent = header + result.markdown;
  const { report, ...adapter } = info;
  window.benchResult = { adapter, timing: result.timing, runs: result.runs, rows: result.rows, markdown: header + result.markdown };
  status(`Done in ${((performance.now() - t0) / 1000).toFixed(1)} s.`, "done");
  document.body.dataset.done = "1";
}

main().catch((e) => {
  console.error(e);
  status(`Failed: ${e && e.message ? e.message : e}`, "error");
  document.body.dataset.done = "error";
  window.benchResult = { error: String(e && e.message ? e.message : e) };
});
