// Our engine against ONNX Runtime Web, in the same headless Chromium on the same WebGPU adapter,
// on the same .onnx files (by hand, not part of the test suite):
//
//   python3 scripts/make_bench_models.py target/bench-models     # NAME.onnx, .input.npy, .logits.npy
//   node web/tests/bench-ort.mjs DIST_DIR MODELS_DIR [options]
//
//   --models resnet20,resnet18,resnet50   which MODELS_DIR/NAME.onnx to run (default: all three)
//   --engines ours,ort-webgpu,ort-wasm    which engines (default: all three)
//   --runs N                              timed runs of each engine per model (default 7)
//   --runs-ENGINE N                       fewer (or more) for one engine, e.g. --runs-ort-webgpu 3
//   --warmup N                            untimed runs of each engine before timing (default 1)
//   --ort-bundle FILE                     ORT's entry in its dist/ (default ort.webgpu.min.mjs, the
//                                         C++ WebGPU provider; ort.all.min.mjs is the JSEP one)
//   --tolerance T                         largest |logit difference| ORT vs ours (default 1e-3)
//   --json FILE, --markdown FILE          also write the results there
//
// For each model, in a fresh browser: the site's page loads the file into our engine (through
// window.resnetTest, as bench.mjs does: our engine runs in the page's worker) and, through
// bench-ort-page.mjs, into onnxruntime-web (the npm package in web/node_modules, served by the
// harness) on its WebGPU execution provider and its wasm (CPU) one. First every engine runs
// MODELS_DIR/NAME.input.npy and the logits are compared (with each other and with
// NAME.logits.npy, the generator's NumPy pass): past the tolerance that model is not timed and
// the script ends with status 1, so a broken engine is never compared. Then the engines take turns run by
// run (ours, ort-webgpu, ort-wasm, ours, ...), each run on a zero input (what our bench feeds),
// so that a change of machine load hits all of them alike. A run is upload + every kernel +
// read-back of the logits, timed inside the page (ours in its worker). Prints a Markdown table
// (median, min, max per engine; ORT/ours as the ratio of the medians and as the median of each
// round's ratio) on stdout, progress on stderr.

import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { launch, readNpy, serve } from "./harness.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const ENGINES = ["ours", "ort-webgpu", "ort-wasm"];
const EP = { "ort-webgpu": "webgpu", "ort-wasm": "wasm" };

function usage(msg) {
  if (msg) console.error(`bench-ort.mjs: ${msg}`);
  console.error("usage: node web/tests/bench-ort.mjs DIST_DIR MODELS_DIR [--models a,b] [--engines a,b] " +
    "[--runs N] [--runs-ENGINE N] [--warmup N] [--ort-bundle FILE] [--tolerance T] [--json FILE] [--markdown FILE]");
  process.exit(2);
}

const positional = [];
const opt = { models: "resnet20,resnet18,resnet50", engines: ENGINES.join(","), runs: "7", warmup: "1", tolerance: "1e-3",
  "ort-bundle": "ort.webgpu.min.mjs" };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  if (a.startsWith("--")) {
    const known = [...Object.keys(opt), "json", "markdown", ...ENGINES.map((e) => `runs-${e}`)];
    if (!known.includes(a.slice(2))) usage(`unknown option ${a}`);
    if (i + 1 >= argv.length) usage(`${a} needs a value`);
    opt[a.slice(2)] = argv[++i];
  } else positional.push(a);
}
const [distArg, modelsArg] = positional;
if (!distArg || !modelsArg || positional.length > 2) usage();
const engines = opt.engines.split(",");
for (const e of engines) if (!ENGINES.includes(e)) usage(`unknown engine '${e}' (know ${ENGINES.join(", ")})`);
if (!engines.includes("ours")) usage("the engines must include 'ours' (the ratios are to it)");
const runsOf = Object.fromEntries(engines.map((e) => [e, Number(opt[`runs-${e}`] ?? opt.runs)]));
for (const [e, n] of Object.entries(runsOf)) if (!(Number.isInteger(n) && n > 0)) usage(`runs of ${e}: '${n}' is not a positive integer`);
const warmup = Number(opt.warmup);
if (!(Number.isInteger(warmup) && warmup >= 0)) usage(`--warmup ${opt.warmup} is not a whole number`);
const tolerance = Number(opt.tolerance);
const modelsDir = path.resolve(modelsArg);
const ortDist = path.join(here, "..", "node_modules", "onnxruntime-web", "dist");
if (!fs.existsSync(path.join(ortDist, opt["ort-bundle"]))) {
  console.error(`bench-ort.mjs: ${ortDist} has no ${opt["ort-bundle"]}: run \`npm ci\` in web/`);
  process.exit(2);
}

const log = (...a) => console.error(`[${new Date().toISOString().slice(11, 19)}]`, ...a);
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const maxAbsDiff = (a, b) => {
  if (a.length !== b.length) throw new Error(`${a.length} logits against ${b.length}`);
  return Math.max(...a.map((v, i) => Math.abs(v - b[i])));
};

const server = await serve(path.resolve(distArg), { models: modelsDir, ort: ortDist, bench: here });
const result = {
  date: new Date().toISOString(),
  machine: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model, loadavgStart: os.loadavg() },
  runs: runsOf,
  warmup,
  tolerance,
  models: [],
};
let failed = false;

try {
  for (const name of opt.models.split(",")) {
    const file = path.join(modelsDir, `${name}.onnx`);
    if (!fs.existsSync(file)) throw new Error(`${file} is missing: run scripts/make_bench_models.py ${modelsArg}`);
    const input = readNpy(path.join(modelsDir, `${name}.input.npy`));
    const refFile = path.join(modelsDir, `${name}.logits.npy`);
    const reference = fs.existsSync(refFile) ? Array.from(readNpy(refFile).data) : null;
    const modelUrl = `/__fixtures__/models/${name}.onnx`;
    const entry = { name, file: path.basename(file), bytes: fs.statSync(file).size, input: input.shape, engines: {} };
    result.models.push(entry);

    const browser = await launch();
    try {
      const { page } = browser;
      await page.goto(`${server.url}?tune-budget=none`);
      const { adapter } = await page.evaluate(() => window.resnetTest.ready);
      result.browser ??= await page.evaluate(() => navigator.userAgent);
      log(`${name}: adapter '${adapter.name}'`);

      // Load every engine (each does its own warm-up pass).
      result.ort = await page.evaluate(async ([base, bundle]) => {
        window.__ort = await import("/__fixtures__/bench/bench-ort-page.mjs");
        return window.__ort.setup(base, bundle);
      }, ["/__fixtures__/ort/", opt["ort-bundle"]]);
      for (const e of engines) {
        if (e === "ours") {
          const info = await page.evaluate((url) => window.resnetTest.loadModel(url), modelUrl);
          entry.engines.ours = { adapter: adapter.name, load: info };
          log(`${name}: ours loaded (${info.arch}; plan ${info.plan_ms.toFixed(0)} ms, first pass ${info.warmup_ms.toFixed(0)} ms)`);
        } else {
          const info = await page.evaluate(([ep, url, shape]) => window.__ort.load(ep, url, shape),
            [EP[e], modelUrl, input.shape]);
          entry.engines[e] = { adapter: info.adapter, load: info };
          log(`${name}: ${e} loaded (session ${info.createMs.toFixed(0)} ms, first run ${info.firstRunMs.toFixed(0)} ms)`);
        }
      }

      if (engines.some((e) => EP[e])) Object.assign(result.ort, await page.evaluate(() => window.__ort.settings()));

      // The same input through every engine: the logits must agree before anything is timed.
      const data = Array.from(input.data);
      const logits = {};
      for (const e of engines) {
        logits[e] = e === "ours"
          ? await page.evaluate(([m, i]) => window.resnetTest.runRaw(m, i), [modelUrl, `/__fixtures__/models/${name}.input.npy`])
          : (await page.evaluate(([ep, d]) => window.__ort.run(ep, d, true), [EP[e], data])).logits;
      }
      entry.agreement = {};
      for (const e of engines) {
        if (e !== "ours") entry.agreement[`${e} vs ours`] = maxAbsDiff(logits[e], logits.ours);
        if (reference) entry.agreement[`${e} vs numpy`] = maxAbsDiff(logits[e], reference);
      }
      entry.largestLogit = Math.max(...logits.ours.map(Math.abs));
      const bad = Object.entries(entry.agreement).filter(([, v]) => !(v <= tolerance));
      log(`${name}: max |logit diff| ${Object.entries(entry.agreement).map(([k, v]) => `${k} ${v.toExponential(1)}`).join(", ")}`);
      if (bad.length) {
        failed = true;
        log(`${name}: engines disagree beyond ${tolerance}: ${bad.map(([k]) => k).join(", ")}; not timed`);
        continue;
      }

      // Warm-up, then the engines take turns run by run.
      const timeOne = async (e) => e === "ours"
        ? (await page.evaluate(() => window.resnetTest.bench(1))).median_ms
        : (await page.evaluate((ep) => window.__ort.run(ep), EP[e])).ms;
      for (let w = 0; w < warmup; w++) for (const e of engines) await timeOne(e);
      const times = Object.fromEntries(engines.map((e) => [e, []]));
      const rounds = Math.max(...Object.values(runsOf));
      for (let r = 0; r < rounds; r++) {
        for (const e of engines) if (r < runsOf[e]) times[e].push(await timeOne(e));
        log(`${name}: round ${r + 1}/${rounds}: ${engines.filter((e) => r < runsOf[e]).map((e) => `${e} ${times[e][r].toFixed(1)} ms`).join(", ")}`);
      }
      for (const e of engines) {
        const t = times[e];
        const s = { runs: t.length, medianMs: median(t), minMs: Math.min(...t), maxMs: Math.max(...t), timesMs: t };
        if (e !== "ours") {
          s.ratioOfMedians = s.medianMs / median(times.ours);
          s.medianRoundRatio = median(t.map((v, i) => v / times.ours[i]));
        }
        Object.assign(entry.engines[e], s);
      }
      await page.evaluate(() => window.__ort.release());
    } catch (e) {
      console.error(browser.log.slice(-20).join("\n"));
      throw e;
    } finally {
      await browser.close();
    }
  }
} finally {
  server.close();
}
result.machine.loadavgEnd = os.loadavg();

const fmt = (ms) => (ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(ms < 10 ? 2 : 1)} ms`);
const ratio = (r) => (r >= 1 ? r.toFixed(2) : r.toPrecision(2));
const lines = [
  `Headless Chromium (${(result.browser || "").match(/Chrome\/[\d.]+/)?.[0] ?? "?"}), onnxruntime-web ${result.ort?.version ?? "?"} ` +
    `(${result.ort?.bundle ?? "?"}; wasm threads: ${result.ort?.wasmThreads ?? "?"}), ${result.machine.cpus} x ${result.machine.cpuModel}, ` +
    `load average ${result.machine.loadavgStart[0].toFixed(1)} -> ${result.machine.loadavgEnd[0].toFixed(1)}; batch 1.`,
  "",
  "| model | engine | adapter | runs | median | min | max | ORT / ours (of medians) | ORT / ours (median per round) | max abs logit diff vs ours | vs NumPy |",
  "|---|---|---|---|---|---|---|---|---|---|---|",
];
for (const m of result.models) {
  for (const e of engines) {
    const s = m.engines[e];
    if (!s) continue;
    const agree = e === "ours" ? "-" : m.agreement?.[`${e} vs ours`]?.toExponential(1) ?? "?";
    const np = m.agreement?.[`${e} vs numpy`]?.toExponential(1) ?? "-";
    const adapter = e === "ort-wasm" ? "CPU (wasm)" : s.adapter ?? "?";
    lines.push(s.runs
      ? `| ${m.name} | ${e} | ${adapter} | ${s.runs} | ${fmt(s.medianMs)} | ${fmt(s.minMs)} | ${fmt(s.maxMs)} | ` +
        `${e === "ours" ? "1" : ratio(s.ratioOfMedians)} | ${e === "ours" ? "1" : ratio(s.medianRoundRatio)} | ${agree} | ${np} |`
      : `| ${m.name} | ${e} | ${adapter} | 0 | not timed | | | | | ${agree} | ${np} |`);
  }
}
const markdown = lines.join("\n") + "\n";
process.stdout.write(markdown);
if (opt.json) fs.writeFileSync(opt.json, JSON.stringify(result, null, 1) + "\n");
if (opt.markdown) fs.writeFileSync(opt.markdown, markdown);
process.exit(failed ? 1 : 0);
