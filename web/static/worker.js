// The engine's thread: loads the wasm module and runs every request from the page (app.js) in
// order, so that parsing a large model or compiling pipelines never blocks the page.
//
// Requests:  { id, op, ...args }   ops: init, loadModel, classify, bench, runRaw, planOnly, conformance
// Replies:   { id, ok: true, result } | { id, ok: false, error }
// Progress:  { progress: "text", fraction?: 0..1 }
//            { conformanceCheck: { run, check } }   (each finished check of the conformance suite)

import init, * as engine from "./pkg/resnet_wgpu_web.js";

const ready = init();
// The adapter's name as the browser gives it (wgpu's is often empty in Chrome), set by init.
let adapterName = "";

function progress(text, fraction) {
  postMessage({ progress: text, fraction });
}

// Reads a File (or Blob) with progress, 1 MB at a time.
async function readFile(file, label) {
  const total = file.size;
  const out = new Uint8Array(total);
  let done = 0;
  const reader = file.stream().getReader();
  let lastReport = 0;
  for (;;) {
    const { value, done: finished } = await reader.read();
    if (finished) break;
    out.set(value, done);
    done += value.length;
    if (done - lastReport > (1 << 20) || done === total) {
      lastReport = done;
      progress(`Reading ${label}: ${(done / 1e6).toFixed(1)} of ${(total / 1e6).toFixed(1)} MB`, total ? done / total : 1);
    }
  }
  return out;
}

async function bytesOf(source, label) {
  if (source instanceof Uint8Array) return source;
  if (source instanceof ArrayBuffer) return new Uint8Array(source);
  if (typeof source === "string") {
    const response = await fetch(source);
    if (!response.ok) throw new Error(`${label}: HTTP ${response.status}`);
    if (!response.body) return new Uint8Array(await response.arrayBuffer());
    const total = Number(response.headers.get("content-length")) || 0;
    const chunks = [];
    let done = 0;
    const reader = response.body.getReader();
    for (;;) {
      const { value, done: finished } = await reader.read();
      if (finished) break;
      chunks.push(value);
      done += value.length;
      if (total > (1 << 20)) progress(`Downloading ${label}: ${(done / 1e6).toFixed(1)} MB`, done / total);
    }
    const out = new Uint8Array(done);
    let at = 0;
    for (const c of chunks) { out.set(c, at); at += c.length; }
    return out;
  }
  return readFile(source, label); // File or Blob
}

// The tuning cache (the kernel measured fastest for each layer shape on this adapter) lives in
// IndexedDB between visits: workers have no localStorage. A failure only costs a re-tune.
const TUNE_DB = "resnet-wgpu";
function tuneStore(mode) {
  return new Promise((resolve, reject) => {
    const open = indexedDB.open(TUNE_DB, 1);
    open.onupgradeneeded = () => open.result.createObjectStore("tune");
    open.onerror = () => reject(open.error);
    open.onsuccess = () => resolve(open.result.transaction("tune", mode).objectStore("tune"));
  });
}
async function loadTuneCache() {
  try {
    const store = await tuneStore("readonly");
    const json = await new Promise((resolve, reject) => {
      const get = store.get("cache");
      get.onsuccess = () => resolve(get.result);
      get.onerror = () => reject(get.error);
    });
    if (typeof json === "string") engine.setTuneCache(json);
  } catch (e) {
    console.warn(`tuning cache: cannot read IndexedDB (${e}); kernels will be measured again`);
  }
}
async function saveTuneCache() {
  try {
    (await tuneStore("readwrite")).put(engine.tuneCache(), "cache");
  } catch (e) {
    console.warn(`tuning cache: cannot write IndexedDB (${e})`);
  }
}

const ops = {
  async init() {
    if (!("gpu" in navigator) || !navigator.gpu) {
      throw new Error("NO_WEBGPU: this browser does not expose WebGPU (navigator.gpu) to workers");
    }
    const adapter = await navigator.gpu.requestAdapter({ powerPreference: "high-performance" });
    if (!adapter) throw new Error("NO_ADAPTER: navigator.gpu.requestAdapter() found no adapter");
    // Chrome leaves the description (wgpu's adapter name) empty; vendor and architecture are there.
    const i = adapter.info || {};
    const name = [i.vendor, i.architecture, i.device, i.description].filter(Boolean).join(" ");
    adapterName = i.isFallbackAdapter ? `${name} (software fallback)` : name;
    const info = JSON.parse(await engine.init(adapterName));
    await loadTuneCache();
    return info;
  },
  async loadModel({ source, name, tuneBudget }) {
    const bytes = await bytesOf(source, name);
    const info = JSON.parse(await engine.loadModel(bytes, name, (text) => progress(text), tuneBudget));
    if (info.tune_measured > 0) await saveTuneCache();
    return info;
  },
  async classify({ source, name, k }) {
    const bytes = await bytesOf(source, name || "image");
    return JSON.parse(await engine.classify(bytes, k ?? 5));
  },
  async bench({ runs }) {
    return JSON.parse(await engine.bench(runs ?? 5));
  },
  async runRaw({ model, name, input }) {
    const modelBytes = await bytesOf(model, name);
    const inputBytes = await bytesOf(input, "input.npy");
    return Array.from(await engine.runRaw(modelBytes, name, inputBytes));
  },
  async conformance({ quick }) {
    const report = await engine.conformance(adapterName, !!quick, (run, check) =>
      postMessage({ conformanceCheck: { run, check: JSON.parse(check) } }),
    );
    return JSON.parse(report);
  },
  async planOnly({ model, name, shape }) {
    const modelBytes = await bytesOf(model, name);
    const [c, h, w] = shape;
    return JSON.parse(await engine.planOnly(modelBytes, name, c, h, w));
  },
};

// One request at a time: the engine's state (the loaded model) is shared.
let queue = Promise.resolve();

onmessage = (event) => {
  const { id, op, ...args } = event.data;
  queue = queue.then(async () => {
    try {
      await ready;
      if (!ops[op]) throw new Error(`unknown request '${op}'`);
      postMessage({ id, ok: true, result: await ops[op](args) });
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e);
      // The engine names each error's kind (DeviceLost, AdapterLimit, InvalidModel, ...).
      postMessage({ id, ok: false, error: message, kind: e?.name ?? "Error" });
    }
  });
};
