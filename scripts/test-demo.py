#!/usr/bin/env python3
"""The browser test of the demo and the browser benchmark (web/demo), standard library only.

Serves web/demo (built by scripts/build-demo.sh) with `python3 -m http.server`, starts
chromedriver, and drives headless Chromium over WebDriver (HTTP + JSON):

1. the demo page (index.html): waits for <body data-done="1">, reads the figures
   (window.demoResult and the table's cells), checks them against the native example's —
   INT8 static and dynamic bit-exact against the CPU reference and 526/540 correct each (the
   INT8 results are adapter-independent: they equal the reference bit for bit); FP32 within
   two images of the float model's 526/540 (data/digits/README.md) — then draws a 0 on the
   pad with the mouse and checks the three answers, checks the autotune ran for the model's
   layer shapes and the page names the INT8 kernels that run, and saves a screenshot
   (demo.png);
2. the benchmark page (bench.html): waits for it, checks every row has positive times and
   names the INT8 kernel that ran (the autotune's winner for its shape), every autotune record
   has at least two candidates with positive times and a winner among them, and
   the INT8 models' stage breakdown is there; saves the tables (browser.md: results, autotune,
   stages) and the data (browser.json).

The files go to target/demo/; --docs writes them where the README shows them instead
(docs/demo.png, docs/bench/browser.md, docs/bench/browser.json).

Usage: scripts/test-demo.py [--build] [--runs N] [--docs] [--timeout S] [--no-bench]
--build runs scripts/build-demo.sh first. Without Chromium, chromedriver, wasm-bindgen or
the built page it prints SKIPPED and exits 0, unless REQUIRE_GPU=1 (CI), which makes that a
failure; so does a browser that finds no WebGPU adapter.
CHROMIUM and CHROMEDRIVER override the binaries; CHROMIUM_ARGS adds flags.
"""

import argparse
import base64
import json
import math
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SITE = os.path.join(ROOT, "web", "demo")
REQUIRE = os.environ.get("REQUIRE_GPU", "") not in ("", "0")

# Expected figures (examples/digits.rs and web/demo/tests/native.rs on lavapipe; the INT8
# ones hold on every adapter because the INT8 outputs equal the CPU reference bit for bit).
TEST_ROWS = 540
INT8_CORRECT = 526
FP32_CORRECT = 526
FP32_SLACK = 2

CHROME_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--enable-unsafe-webgpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--disable-dev-shm-usage",
    "--window-size=1100,1100",
    "--hide-scrollbars",
]


def log(msg):
    print(f"test-demo: {msg}", flush=True)


def skip_or_fail(reason):
    if REQUIRE:
        log(f"FAILED: {reason} (REQUIRE_GPU is set)")
        sys.exit(1)
    log(f"SKIPPED: {reason}")
    sys.exit(0)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url, timeout):
    end = time.time() + timeout
    while time.time() < end:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                r.read()
                return
        except (urllib.error.URLError, ConnectionError, OSError):
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


class WebDriver:
    """The few W3C WebDriver endpoints the test needs."""

    def __init__(self, base):
        self.base = base
        self.session = None

    def call(self, method, path, body=None, timeout=120):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            self.base + path, data=data, method=method,
            headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return json.loads(r.read() or b"{}").get("value")
        except urllib.error.HTTPError as e:
            detail = e.read().decode(errors="replace")
            raise RuntimeError(f"WebDriver {method} {path}: {e.code} {detail[:2000]}") from None

    def start(self, binary, args):
        caps = {"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": binary, "args": args},
            "goog:loggingPrefs": {"browser": "ALL"},
        }}}
        value = self.call("POST", "/session", caps)
        self.session = value["sessionId"]
        self.call("POST", f"/session/{self.session}/timeouts", {"script": 600_000})

    def s(self, path):
        return f"/session/{self.session}{path}"

    def get(self, url):
        self.call("POST", self.s("/url"), {"url": url})

    def js(self, script, *args):
        return self.call("POST", self.s("/execute/sync"), {"script": script, "args": list(args)})

    def text(self, element_id):
        el = self.call("POST", self.s("/element"), {"using": "css selector", "value": f"#{element_id}"})
        ref = next(iter(el.values()))
        return self.call("GET", self.s(f"/element/{ref}/text"))

    def stroke(self, element_id, points):
        """Draws a polyline with the mouse, `points` relative to the element's centre."""
        el = self.call("POST", self.s("/element"), {"using": "css selector", "value": f"#{element_id}"})
        origin = el  # a WebElement reference is a valid pointer origin
        x0, y0 = points[0]
        actions = [{"type": "pointerMove", "duration": 0, "origin": origin, "x": x0, "y": y0},
                   {"type": "pointerDown", "button": 0}]
        for x, y in points[1:]:
            actions.append({"type": "pointerMove", "duration": 60, "origin": origin, "x": x, "y": y})
        actions.append({"type": "pointerUp", "button": 0})
        self.call("POST", self.s("/actions"), {"actions": [
            {"type": "pointer", "id": "mouse", "parameters": {"pointerType": "mouse"}, "actions": actions}]})

    def screenshot(self, path):
        png = base64.b64decode(self.call("GET", self.s("/screenshot")))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(png)

    def console(self):
        try:
            return self.call("POST", self.s("/se/log"), {"type": "browser"}) or []
        except RuntimeError:
            return []

    def quit(self):
        if self.session:
            try:
                self.call("DELETE", self.s(""), timeout=20)
            except (RuntimeError, OSError):
                pass
            self.session = None


def wait_done(wd, what, timeout):
    """Polls <body data-done>; returns when it is "1", raises on "error" or timeout."""
    end = time.time() + timeout
    last = None
    while time.time() < end:
        done, status = wd.js(
            "return [document.body.dataset.done, (document.getElementById('status') || {}).textContent];")
        if status != last:
            log(f"{what}: {status}")
            last = status
        if done == "1":
            return
        if done == "error":
            raise PageError(status)
        time.sleep(0.5)
    raise RuntimeError(f"{what}: not done after {timeout} s (last status: {last})")


class PageError(RuntimeError):
    pass


def check(cond, msg, failures):
    log(("ok    " if cond else "FAIL  ") + msg)
    if not cond:
        failures.append(msg)


def check_tuning(records, where, failures):
    """Every autotune record: >= 2 candidates, positive times, the winner among them (a winner
    that is not the fastest is noted). Returns the candidates' names (every kernel a layer can
    run here)."""
    names = set()
    check(len(records) > 0, f"{where}: {len(records)} autotune records", failures)
    for r in records:
        cands = {c["kernel"]: c["ms"] for c in r["candidates"]}
        names.update(cands)
        what = f"{where}: autotune {r['class']} at {r['shape']}"
        check(len(cands) >= 2, f"{what}: {len(cands)} candidates", failures)
        check(all(ms > 0 and math.isfinite(ms) for ms in cands.values()),
              f"{what}: candidate times positive", failures)
        check(r["winner"] in cands, f"{what}: winner {r['winner']!r} among the candidates", failures)
        if r["winner"] in cands and cands[r["winner"]] != min(cands.values()):
            # Not a failure: a policy may keep a choice within noise of the fastest.
            log(f"note  {what}: the winner {cands[r['winner']]:.3f} ms, the fastest {min(cands.values()):.3f} ms")
    return names


def names_kernel(text, names, tuned):
    """A kernel description names a candidate (and, tuned, says the choice was measured)."""
    return bool(text) and any(n in text for n in names) and (not tuned or "(measured)" in text)


def demo(wd, base, args, failures, sections):
    wd.get(f"{base}/index.html")
    wait_done(wd, "demo", args.timeout)
    result = wd.js("return window.demoResult;")
    info, figures = result["info"], {f["key"]: f for f in result["figures"]}
    log(f"adapter: {info['adapter']!r} ({info['backend']}, driver {info['driver']!r}), "
        f"dot4 {info['dot_product']} / self-test {info['dot4_self_test']}, timing {info['timing']}")
    table = [
        f"Adapter: {info['adapter']} ({info['backend']}), dot4I8Packed {info['dot_product']} "
        f"(self-test {info['dot4_self_test']}), GPU column timed with {info['timing']}; "
        f"medians of {result['runs']} runs.",
        "",
        (f"INT8 kernels (autotuned on this adapter, {len(info['tuning'])} shape classes in "
         f"{info['tune_ms'] / 1000:.1f} s): " if result.get("tuned") else "INT8 kernels (heuristic): ")
        + "; ".join(f"{key} at {rows} row{'s' if rows > 1 else ''}: {ks[key]}"
                    for rows, ks in ((TEST_ROWS, info["kernels"]), (1, info["kernels_single"]))
                    for key in ("static", "dynamic")) + ".",
        "",
        "| model | accuracy | agreement with FP32 | bit-exact vs reference | 540 rows (ms) | 1 row (ms) | GPU, 540 rows (ms) |",
        "|---|---|---|---|---|---|---|",
    ]
    for f in result["figures"]:
        exact = "-" if f["bit_exact"] is None else ("yes" if f["bit_exact"] else "NO")
        table.append(f"| {f['name']} | {100 * f['accuracy']:.2f} % ({f['correct']}/{TEST_ROWS}) | "
                     f"{100 * f['agreement']:.2f} % | {exact} | {f['batch_ms']:.3f} | {f['single_ms']:.3f} | "
                     f"{f['gpu_batch_ms']:.3f} |")
    print("\n".join(table))
    sections.append(("The digits demo (index.html)", "\n".join(table) + "\n"))
    check(info["test_rows"] == TEST_ROWS, f"{TEST_ROWS} test rows", failures)
    tuned = bool(result.get("tuned"))
    names = check_tuning(info["tuning"], "demo", failures) if tuned else set()
    for key in ("static", "dynamic"):
        for rows, ks in ((TEST_ROWS, info["kernels"]), (1, info["kernels_single"])):
            check(names_kernel(ks[key], names, tuned) if tuned else bool(ks[key]),
                  f"INT8 {key} at {rows} row(s) runs {ks[key]!r}", failures)
    shown = wd.text("kernels")
    check(info["kernels"]["static"] in shown, f"the page shows the kernels: {shown!r}", failures)
    for key in ("static", "dynamic"):
        f = figures[key]
        check(f["bit_exact"] is True, f"INT8 {key}: bit-exact against the CPU reference", failures)
        check(f["correct"] == INT8_CORRECT,
              f"INT8 {key}: {f['correct']} correct, the native example's {INT8_CORRECT}", failures)
        shown = wd.text(f"exact-{key}")
        check(shown == "yes", f"INT8 {key}: the page shows bit-exact {shown!r}", failures)
        shown = wd.text(f"acc-{key}")
        check(shown.startswith(f"{100 * INT8_CORRECT / TEST_ROWS:.2f} %"),
              f"INT8 {key}: the page shows accuracy {shown!r}", failures)
        check(f["agreement"] >= 0.98, f"INT8 {key}: agreement with FP32 {f['agreement']:.4f} >= 0.98", failures)
    f = figures["fp32"]
    check(abs(f["correct"] - FP32_CORRECT) <= FP32_SLACK,
          f"FP32: {f['correct']} correct, within {FP32_SLACK} of {FP32_CORRECT}", failures)
    for f in result["figures"]:
        check(all(f[k] > 0 for k in ("batch_ms", "single_ms", "gpu_batch_ms")),
              f"{f['name']}: timings are positive", failures)
    p = result["prediction"]
    classes = [q["class"] for q in p["predictions"]]
    check(all(c == p["label"] for c in classes),
          f"test image {p['index']} (label {p['label']}): predictions {classes}", failures)
    check(all(q["bit_exact"] is not False for q in p["predictions"]),
          "the single-image INT8 predictions are bit-exact", failures)
    # Draw a 0 on the pad (one stroke, an ellipse); the page downsamples it to 8x8 and asks
    # the three models.
    wd.js("window.lastPrediction = null;")
    wd.stroke("pad", [(round(48 * math.sin(2 * math.pi * t / 28)), round(-78 * math.cos(2 * math.pi * t / 28)))
                      for t in range(30)])
    end = time.time() + 60
    drawn = None
    while time.time() < end and not drawn:
        drawn = wd.js("return window.lastPrediction;")
        time.sleep(0.3)
    check(drawn is not None and drawn["label"] is None, "a drawn digit was classified", failures)
    if drawn:
        classes = [q["class"] for q in drawn["predictions"]]
        ink = sum(drawn["pixels"]) * 16
        log(f"drawn 0: {ink:.0f} of 1024 bitmap pixels on, predictions {classes}")
        check(0 < ink < 1024, "the drawing reached the 8x8 input", failures)
        check(classes[0] == 0, f"the drawn 0 reads as {classes[0]} in FP32", failures)
        check(all(q["bit_exact"] is not False for q in drawn["predictions"]),
              "the drawn digit's INT8 predictions are bit-exact", failures)
    if args.save:
        path = os.path.join(args.images, "demo.png")
        wd.screenshot(path)
        log(f"screenshot: {os.path.relpath(path, ROOT)}")


def bench(wd, base, args, failures, sections):
    wd.get(f"{base}/bench.html?runs={args.runs}")
    wait_done(wd, "bench", args.bench_timeout)
    result = wd.js("return window.benchResult;")
    print(result["markdown"])
    print(result["tuning_markdown"])
    print(result["stages_markdown"])
    faster = [f"{r['shape']} {r['fp32_ms'] / r['int8_ms']:.2f}×" for r in result["rows"]
              if r["int8_ms"] < r["fp32_ms"]]
    summary = (f"\nINT8 faster than FP32 in {len(faster)} of {len(result['rows'])} rows"
               + (f": {', '.join(faster)}" if faster else "") + ".\n")
    sections.append(("The benchmark (bench.html)", result["markdown"] + summary))
    sections.append(("The autotune (bench.html)", result["tuning_markdown"]))
    sections.append(("The INT8 models stage by stage (bench.html)",
                     result["stages_markdown"] + stage_summary(result["stages"])))
    check(len(result["rows"]) >= 6, f"{len(result['rows'])} benchmark rows", failures)
    tuned = bool(result["tuned"])
    names = check_tuning(result["tuning"], "bench", failures) if tuned else set()
    for r in result["rows"]:
        what = f"{r['op']} {r['shape']}"
        check(r["fp32_ms"] > 0 and r["int8_ms"] > 0, f"{what}: positive times", failures)
        kernel = r.get("int8_kernel") or ""
        check(names_kernel(kernel, names, tuned) if tuned else bool(kernel),
              f"{what}: INT8 ran {kernel!r}", failures)
        if tuned and r["op"] in ("gemm", "gemv"):
            m, n, k = (int(v) for v in r["shape"].split("×"))
            rec = [t for t in result["tuning"] if t["class"].startswith(r["op"].upper())
                   and t["shape"].split("×")[1:] == [str(n), str(k)]]
            check(len(rec) == 1 and kernel.startswith(rec[0]["winner"] + " "),
                  f"{what}: runs the autotune's winner ({rec[0]['winner'] if rec else 'no record'})", failures)
    stages = result["stages"]
    for model in ("INT8 static", "INT8 dynamic"):
        ts = [s for s in stages if s["model"] == model]
        check(len(ts) >= 3 and all(s["ms"] > 0 for s in ts),
              f"{model}: {len(ts)} stages timed, sum {sum(s['ms'] for s in ts):.3f} ms", failures)
    if args.save:
        os.makedirs(args.tables, exist_ok=True)
        with open(os.path.join(args.tables, "browser.json"), "w") as f:
            json.dump({k: result[k] for k in ("adapter", "timing", "runs", "tuned", "tune_s", "rows",
                                              "tuning", "stages")}, f, indent=2)
            f.write("\n")
        if args.screenshots:
            wd.screenshot(os.path.join(args.images, "bench-page.png"))


def stage_summary(stages):
    """Where the dynamic model's extra time goes, from the stage breakdown."""
    def total(model, pred=lambda s: True):
        return sum(s["ms"] for s in stages if s["model"] == model and pred(s))
    quant = lambda s: "quantize" in s["stage"]
    linear = lambda s: s["stage"].startswith("linear")
    st, dy = total("INT8 static"), total("INT8 dynamic")
    if not st or not dy:
        return ""
    sq, dq = total("INT8 static", quant), total("INT8 dynamic", quant)
    sl, dl = total("INT8 static", linear), total("INT8 dynamic", linear)
    count = lambda model: sum(1 for s in stages if s["model"] == model and quant(s))
    return (f"\nSums of the stages: dynamic {dy:.3f} ms, static {st:.3f} ms ({dy / st:.2f}×), "
            f"{dy - st:+.3f} ms. Quantize passes: dynamic {dq:.3f} ms in {count('INT8 dynamic')} "
            f"({100 * dq / dy:.0f} % of its stages), static {sq:.3f} ms in {count('INT8 static')} "
            f"({dq - sq:+.3f} ms); linear layers: dynamic {dl:.3f} ms, static {sl:.3f} ms ({dl - sl:+.3f} ms).\n")


def write_tables(args, sections):
    os.makedirs(args.tables, exist_ok=True)
    md = os.path.join(args.tables, "browser.md")
    with open(md, "w") as f:
        f.write("# wgpu-quant in the browser\n\n")
        f.write("`scripts/test-demo.py` in headless Chromium "
                f"({time.strftime('%Y-%m-%d')}); the pages are web/demo/index.html and bench.html.\n")
        for title, text in sections:
            f.write(f"\n## {title}\n\n{text}")
    log(f"tables: {os.path.relpath(md, ROOT)}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=9, help="benchmark runs per case (default 9)")
    ap.add_argument("--timeout", type=float, default=300, help="seconds for the demo page")
    ap.add_argument("--bench-timeout", type=float, default=900, help="seconds for the benchmark page")
    ap.add_argument("--no-bench", action="store_true", help="only the demo page")
    ap.add_argument("--build", action="store_true", help="run scripts/build-demo.sh first")
    ap.add_argument("--docs", action="store_true",
                    help="write docs/demo.png and docs/bench/browser.{md,json} (default: target/demo/)")
    ap.add_argument("--no-save", dest="save", action="store_false", help="write no files")
    ap.add_argument("--screenshots", action="store_true", help="also save bench-page.png")
    args = ap.parse_args()
    if args.docs:
        args.images, args.tables = os.path.join(ROOT, "docs"), os.path.join(ROOT, "docs", "bench")
    else:
        args.images = args.tables = os.path.join(ROOT, "target", "demo")

    chromium = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser") \
        or shutil.which("google-chrome")
    driver = os.environ.get("CHROMEDRIVER") or shutil.which("chromedriver")
    if not chromium or not driver:
        skip_or_fail("Chromium or chromedriver not found (apt-get install chromium chromium-driver)")
    if args.build:
        if not shutil.which("wasm-bindgen"):
            skip_or_fail("wasm-bindgen not found (cargo install wasm-bindgen-cli --version <Cargo.lock's> --locked)")
        targets = subprocess.run(["rustup", "target", "list", "--installed"], capture_output=True, text=True)
        if "wasm32-unknown-unknown" not in targets.stdout.split():
            skip_or_fail("the wasm32-unknown-unknown target is not installed (rustup target add wasm32-unknown-unknown)")
        if subprocess.run([os.path.join(ROOT, "scripts", "build-demo.sh")]).returncode != 0:
            log("FAILED: scripts/build-demo.sh")
            sys.exit(1)
    if not os.path.exists(os.path.join(SITE, "pkg", "wgpu_quant_demo.js")):
        skip_or_fail("web/demo/pkg is not built (scripts/build-demo.sh)")

    procs = []
    profile = tempfile.mkdtemp(prefix="wgpu-quant-chromium-")
    wd = None
    failures = []
    try:
        http_port, driver_port = free_port(), free_port()
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "http.server", "-d", SITE, "--bind", "127.0.0.1", str(http_port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        procs.append(subprocess.Popen(
            [driver, f"--port={driver_port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        base = f"http://127.0.0.1:{http_port}"
        wait_for(base + "/index.html", 30)
        wait_for(f"http://127.0.0.1:{driver_port}/status", 30)
        wd = WebDriver(f"http://127.0.0.1:{driver_port}")
        chrome_args = CHROME_ARGS + [f"--user-data-dir={profile}"] + os.environ.get("CHROMIUM_ARGS", "").split()
        wd.start(chromium, chrome_args)
        log(f"{chromium} headless, page at {base}")
        try:
            sections = []
            demo(wd, base, args, failures, sections)
            if not args.no_bench:
                bench(wd, base, args, failures, sections)
            if args.save:
                write_tables(args, sections)
        except PageError as e:
            for entry in wd.console()[-20:]:
                log(f"console: {entry.get('message')}")
            if "no GPU adapter" in str(e) or "no WebGPU" in str(e):
                skip_or_fail(f"the browser has no WebGPU adapter: {e}")
            raise
    finally:
        if wd:
            wd.quit()
        for p in reversed(procs):
            p.terminate()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(profile, ignore_errors=True)
    if failures:
        log(f"FAILED: {len(failures)} check(s): " + "; ".join(failures))
        sys.exit(1)
    log("passed")


if __name__ == "__main__":
    main()
