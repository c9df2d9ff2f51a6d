// In-browser latency of a model on the page's engine (by hand, not part of the test suite):
//
//   node web/tests/bench.mjs web/dist MODEL.safetensors [RUNS [INPUT.npy REFERENCE_LOGITS.npy]]
//
// Loads the model through the page (as a user's file would be), then times RUNS forward passes
// (upload + every dispatch + read-back) after the warm-up, in headless Chromium on WebGPU. Also
// reports the longest stall of the page's main thread meanwhile (the engine runs in a worker),
// and, given an input and reference logits, the largest logit error.

import path from "node:path";
import { launch, readNpy, serve } from "./harness.mjs";

const [distArg, modelArg, runsArg, inputArg, refArg] = process.argv.slice(2);
if (!distArg || !modelArg) {
  console.error("usage: node web/tests/bench.mjs DIST_DIR MODEL.safetensors [RUNS [INPUT.npy REFERENCE.npy]]");
  process.exit(2);
}
const model = path.resolve(modelArg);
const mounts = { model: path.dirname(model) };
if (inputArg) mounts.input = path.dirname(path.resolve(inputArg));
const server = await serve(path.resolve(distArg), mounts);
const browser = await launch();
try {
  const { page } = browser;
  page.setDefaultTimeout(600_000);
  await page.goto(`${server.url}?tune-budget=none`);
  const { adapter } = await page.evaluate(() => window.resnetTest.ready);
  // The main thread's longest gap between 10 ms timer ticks while the worker loads and runs.
  await page.evaluate(() => {
    window.__gap = { last: performance.now(), max: 0 };
    window.__tick = setInterval(() => {
      const now = performance.now();
      window.__gap.max = Math.max(window.__gap.max, now - window.__gap.last);
      window.__gap.last = now;
    }, 10);
  });
  const modelUrl = `/__fixtures__/model/${path.basename(model)}`;
  const info = await page.evaluate((url) => window.resnetTest.loadModel(url), modelUrl);
  const bench = await page.evaluate((runs) => window.resnetTest.bench(runs), Number(runsArg) || 5);
  const mainThreadMaxGapMs = await page.evaluate(() => window.__gap.max);
  const result = { adapter: adapter.name, model: info, bench, mainThreadMaxGapMs };
  if (inputArg && refArg) {
    const want = readNpy(path.resolve(refArg));
    const inputUrl = `/__fixtures__/input/${path.basename(inputArg)}`;
    const got = await page.evaluate(([m, i]) => window.resnetTest.runRaw(m, i), [modelUrl, inputUrl]);
    if (got.length !== want.data.length) throw new Error(`${got.length} logits, want ${want.data.length}`);
    result.maxLogitError = Math.max(...got.map((v, i) => Math.abs(v - want.data[i])));
  }
  console.log(JSON.stringify(result));
} catch (e) {
  console.error(browser.log.slice(-20).join("\n"));
  throw e;
} finally {
  await browser.close();
  server.close();
}
