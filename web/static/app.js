// The page: talks to the engine in worker.js and draws what comes back. Nothing here blocks: every
// request is a message to the worker, and the worker reports progress while it works.

const DEFAULT_MODEL = { url: "models/resnet20_fmnist.safetensors", name: "resnet20_fmnist.safetensors" };
// One Fashion-MNIST test image per class (assets/samples/ and web/samples/).
const SAMPLES = [
  ["tshirt.png", "T-shirt/top", "T-shirt"],
  ["trouser.png", "Trouser"],
  ["pullover.png", "Pullover"],
  ["dress.png", "Dress"],
  ["coat.png", "Coat"],
  ["sandal.png", "Sandal"],
  ["shirt.png", "Shirt"],
  ["sneaker.png", "Sneaker"],
  ["bag.png", "Bag"],
  ["ankle_boot.png", "Ankle boot"],
];
const MODEL_FILE = /\.(safetensors|onnx)$/i;
// `?conformance` runs the portability suite instead of the demo; `?conformance=quick` a smaller one.
const params = new URLSearchParams(location.search);
const CONFORMANCE = params.has("conformance") ? { quick: params.get("conformance") === "quick" } : null;
// Seconds a visit may spend timing kernels (`?tune-budget=none`: until every layer shape is
// tuned, as the benchmarks want); the shapes left are timed on the next visit.
const TUNE_BUDGET_S = params.get("tune-budget") === "none" ? NaN : Number(params.get("tune-budget") ?? 15);

const $ = (id) => document.getElementById(id);
const ui = {
  unsupported: $("unsupported"),
  drop: $("drop"),
  imageInput: $("image-input"),
  preview: $("preview"),
  dropText: $("drop-text"),
  samples: $("samples"),
  results: $("results"),
  latency: $("latency"),
  prep: $("prep"),
  modelName: $("model-name"),
  modelArch: $("model-arch"),
  adapter: $("adapter"),
  modelInput: $("model-input"),
  defaultModel: $("default-model"),
  status: $("status"),
  statusText: $("status-text"),
  progress: $("progress"),
};

// ---- the worker ---------------------------------------------------------------------------------

const worker = new Worker(new URL("./worker.js", import.meta.url), { type: "module" });
const pending = new Map();
let nextId = 1;

worker.onmessage = (event) => {
  const m = event.data;
  if ("progress" in m) {
    setStatus(m.progress, { fraction: m.fraction, busy: true });
    return;
  }
  if ("conformanceCheck" in m) {
    addConformanceRow(m.conformanceCheck.run, m.conformanceCheck.check);
    return;
  }
  const p = pending.get(m.id);
  if (!p) return;
  pending.delete(m.id);
  if (m.ok) p.resolve(m.result);
  else p.reject(Object.assign(new Error(m.error), { kind: m.kind }));
};
worker.onerror = (event) => {
  const text = `The engine could not start: ${event.message || "the worker failed to load (is the site built with web/build.sh?)"}`;
  setStatus(text, { error: true });
  for (const p of pending.values()) p.reject(new Error(text));
  pending.clear();
};

// What to tell the visitor about an engine error: its message, and a remedy for the kinds that
// have one (the engine names the kind: DeviceLost, AdapterLimit, InvalidModel, ...).
function explain(e) {
  if (e.kind === "DeviceLost") return `${e.message} Reload the page to start a new GPU device.`;
  return e.message;
}

function call(op, args = {}) {
  const id = nextId++;
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject });
    worker.postMessage({ id, op, ...args });
  });
}

// ---- status -------------------------------------------------------------------------------------

function setStatus(text, { busy = false, error = false, fraction } = {}) {
  ui.statusText.textContent = text;
  ui.status.classList.toggle("error", error);
  ui.progress.hidden = !busy;
  if (busy && typeof fraction === "number") ui.progress.value = fraction;
  else ui.progress.removeAttribute("value"); // indeterminate
}

// Browsers round performance.now() (to 0.1 ms or coarser), so tiny times read as "< 0.1 ms".
const ms = (t) =>
  t >= 1000 ? `${(t / 1000).toFixed(2)} s` : t < 0.1 ? "< 0.1 ms" : `${t.toFixed(t < 10 ? 2 : 1)} ms`;
const mb = (b) => `${(b / 1e6).toFixed(1)} MB`;

function showUnsupported(reason) {
  ui.unsupported.hidden = false;
  ui.unsupported.innerHTML = "";
  const title = document.createElement("strong");
  title.textContent = reason;
  const how = document.createElement("p");
  how.textContent =
    "This demo needs WebGPU. Use a recent Chrome or Edge (113+) on Windows, macOS or ChromeOS, " +
    "or Safari 26+. On Linux or Android Chrome, enable chrome://flags/#enable-unsafe-webgpu " +
    "(and #enable-vulkan on Linux). In Firefox, set dom.webgpu.enabled to true in about:config " +
    "(on by default on Windows since Firefox 141). Pages must be served over https or localhost.";
  ui.unsupported.append(title, how);
  setStatus(reason, { error: true });
  ui.modelName.textContent = "not loaded";
  for (const el of [ui.imageInput, ui.modelInput, ...ui.samples.querySelectorAll("button")]) el.disabled = true;
  document.querySelector('label[for="model-input"]').setAttribute("aria-disabled", "true");
  ui.drop.setAttribute("aria-disabled", "true");
}

// ---- the model ----------------------------------------------------------------------------------

let modelInfo = null;

function showModel(info, isDefault) {
  modelInfo = info;
  ui.modelName.textContent = isDefault ? `${info.name} (default)` : info.name;
  const params = info.parameters ? `${(info.parameters / 1e6).toFixed(2)} M params, ` : "";
  ui.modelArch.textContent =
    `${info.arch}: ${info.classes} classes, input ${info.input.join("×")}, ` +
    `${params}${(info.macs / 1e6).toFixed(0)} M MACs, ${info.dispatches} dispatches`;
  ui.defaultModel.hidden = isDefault;
}

async function loadModel(source, name, isDefault = false) {
  setStatus(`Loading ${name}…`, { busy: true });
  try {
    const info = await call("loadModel", { source, name, tuneBudget: TUNE_BUDGET_S });
    showModel(info, isDefault);
    // Tuning times each layer shape's candidate kernels once per adapter; the worker keeps the
    // choices for the next visit.
    const left = info.tune_deferred > 0 ? `; ${info.tune_deferred} more on the next visit` : "";
    const tuned = info.tune_measured > 0
      ? `, ${info.tune_shapes - info.tune_cached - info.tune_deferred} layer shapes tuned for this GPU in ${ms(info.tune_ms)} (kept for next time${left})`
      : info.tune_shapes > 0 ? ", kernels from the tuning cache" : "";
    setStatus(
      `Ready. ${info.name}: parsed in ${ms(info.parse_ms)}, planned in ${ms(info.plan_ms)}${tuned} ` +
        `(${mb(info.weight_bytes)} of weights on the GPU), first pass ${ms(info.warmup_ms)}.`,
    );
    if (lastImage) classify(lastImage.source, lastImage.name);
    return info;
  } catch (e) {
    setStatus(`Could not load ${name}: ${explain(e)}`, { error: true });
    if (modelInfo) ui.modelName.textContent += " (still loaded)";
    throw e;
  }
}

// ---- classification -----------------------------------------------------------------------------

let lastImage = null;
let lastResult = null;

function showPreview(url, name) {
  ui.preview.hidden = false;
  ui.preview.alt = name;
  ui.preview.onload = () => ui.preview.classList.toggle("photo", ui.preview.naturalWidth > 96);
  ui.preview.src = url;
  ui.dropText.innerHTML = "<small>Choose or drop another image</small>";
}

function showResults(result) {
  ui.results.innerHTML = "";
  for (const p of result.predictions) {
    const li = document.createElement("li");
    li.dataset.label = p.label;
    li.dataset.index = p.index;
    li.dataset.probability = p.probability;
    const label = document.createElement("span");
    label.className = "label";
    label.textContent = p.label;
    label.title = p.logit === null ? `class ${p.index}` : `class ${p.index}, logit ${p.logit.toFixed(3)}`;
    const pct = document.createElement("span");
    pct.className = "pct";
    pct.textContent = `${(p.probability * 100).toFixed(p.probability > 0.999 ? 2 : 1)}%`;
    const bar = document.createElement("span");
    bar.className = "bar";
    const fill = document.createElement("span");
    fill.style.width = `${Math.max(0.5, p.probability * 100)}%`;
    bar.append(fill);
    li.append(label, pct, bar);
    ui.results.append(li);
  }
  ui.latency.textContent = ms(result.forward_ms);
  ui.prep.textContent = `${ms(result.decode_ms + result.preprocess_ms)} (${result.width}×${result.height})`;
}

async function classify(source, name) {
  lastImage = { source, name };
  setStatus(`Classifying ${name}…`, { busy: true });
  try {
    const result = await call("classify", { source, name, k: 5 });
    lastResult = { name, ...result };
    showResults(result);
    // On a phone the bars sit below the image: bring them into view.
    if (matchMedia("(max-width: 700px)").matches) ui.results.scrollIntoView({ behavior: "smooth", block: "nearest" });
    const top = result.predictions[0];
    setStatus(`${name}: ${top.label} (${(top.probability * 100).toFixed(1)}%) in ${ms(result.forward_ms)}.`);
    return result;
  } catch (e) {
    setStatus(`Could not classify ${name}: ${explain(e)}`, { error: true });
    throw e;
  }
}

function classifyFile(file) {
  showPreview(URL.createObjectURL(file), file.name);
  return classify(file, file.name);
}

function openFile(file) {
  if (!file) return;
  if (MODEL_FILE.test(file.name)) return loadModel(file, file.name).catch(() => {});
  return classifyFile(file).catch(() => {});
}

// ---- conformance mode ---------------------------------------------------------------------------

const LIMIT_MODES = ["adapter", "WebGPU default"];
const conformanceRows = [[], []];
let conformanceReport = null;

const sci = (x) => (x === 0 ? "0" : x.toExponential(1));

function addConformanceRow(run, c) {
  conformanceRows[run].push(c);
  const tr = document.createElement("tr");
  const status = { Pass: "PASS", Fail: "FAIL", NotApplicable: "n/a" }[c.status] ?? c.status;
  tr.className = status === "PASS" ? "pass" : status === "FAIL" ? "fail" : "na";
  const e = c.errors;
  const cells = [
    LIMIT_MODES[run],
    `${c.category}: ${c.name}`,
    status,
    e ? sci(e.max_abs) : "–",
    e ? sci(e.max_rel) : "–",
    e ? String(e.max_ulp) : "–",
    c.tolerance,
    c.time_ms == null ? "–" : ms(c.time_ms),
    c.detail ?? "",
  ];
  for (const text of cells) {
    const td = document.createElement("td");
    td.textContent = text;
    tr.append(td);
  }
  document.querySelector("#conformance-table tbody").append(tr);
  const done = conformanceRows[0].length + conformanceRows[1].length;
  const failed = conformanceRows.flat().filter((r) => r.status === "Fail").length;
  $("conformance-summary").textContent =
    `Running (${LIMIT_MODES[run]} limits): ${done} checks done, ${failed} failed so far…`;
}

function download(name, text, type) {
  const a = document.createElement("a");
  a.href = URL.createObjectURL(new Blob([text], { type }));
  a.download = name;
  a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
}

async function runConformance(adapter) {
  document.querySelector("main").hidden = true;
  $("conformance").hidden = false;
  document.title = "Conformance · resnet-wgpu";
  setStatus(`Running the ${CONFORMANCE.quick ? "quick " : ""}conformance suite on ${adapter.name}…`, { busy: true });
  $("conformance-summary").textContent = "Running…";
  const t = performance.now();
  let report;
  try {
    report = await call("conformance", { quick: CONFORMANCE.quick });
  } catch (e) {
    $("conformance-summary").textContent = `The suite could not run: ${e.message}`;
    $("conformance-summary").classList.add("fail");
    setStatus(`The suite could not run: ${e.message}`, { error: true });
    throw e;
  }
  conformanceReport = report;
  const verdicts = report.adapters.map((r) => {
    const counted = r.checks.filter((c) => c.status !== "NotApplicable");
    const passed = counted.filter((c) => c.status === "Pass").length;
    const ok = !r.init_error && passed === counted.length;
    return { ok, text: `${r.limits} limits: ${ok ? "PASS" : "FAIL"} ${passed}/${counted.length}${r.init_error ? ` (no device: ${r.init_error})` : ""}` };
  });
  const ok = verdicts.every((v) => v.ok);
  const summary = $("conformance-summary");
  summary.textContent = `${ok ? "PASS" : "FAIL"} on ${report.adapters[0]?.name}: ${verdicts.map((v) => v.text).join("; ")} (${ms(performance.now() - t)}).`;
  summary.classList.add(ok ? "pass" : "fail");
  setStatus(summary.textContent, { error: !ok });
  for (const id of ["conformance-json", "conformance-markdown"]) $(id).disabled = false;
  return { ok, report };
}

$("conformance-json").addEventListener("click", () => {
  if (conformanceReport) {
    const { markdown, ...json } = conformanceReport;
    download("resnet-wgpu-conformance.json", JSON.stringify(json, null, 2), "application/json");
  }
});
$("conformance-markdown").addEventListener("click", async () => {
  if (!conformanceReport) return;
  try {
    await navigator.clipboard.writeText(conformanceReport.markdown);
    $("conformance-markdown").textContent = "Copied";
  } catch {
    download("resnet-wgpu-conformance.md", conformanceReport.markdown, "text/markdown");
  }
});

// ---- wiring -------------------------------------------------------------------------------------

for (const [file, label, caption = label] of SAMPLES) {
  const b = document.createElement("button");
  b.type = "button";
  b.className = "sample";
  b.dataset.src = `samples/${file}`;
  b.dataset.label = label;
  b.title = `${label} (Fashion-MNIST test set)`;
  const img = document.createElement("img");
  img.src = `samples/${file}`;
  img.alt = label;
  const text = document.createElement("span");
  text.textContent = caption;
  b.append(img, text);
  b.addEventListener("click", () => {
    showPreview(b.dataset.src, label);
    classify(b.dataset.src, file).catch(() => {});
  });
  ui.samples.append(b);
}

ui.imageInput.addEventListener("change", () => {
  openFile(ui.imageInput.files[0]);
  ui.imageInput.value = "";
});
ui.modelInput.addEventListener("change", () => {
  const file = ui.modelInput.files[0];
  if (file) loadModel(file, file.name).catch(() => {});
  ui.modelInput.value = "";
});
ui.defaultModel.addEventListener("click", () => {
  loadModel(DEFAULT_MODEL.url, DEFAULT_MODEL.name, true).catch(() => {});
});
ui.drop.addEventListener("keydown", (e) => {
  if (e.key === "Enter" || e.key === " ") {
    e.preventDefault();
    ui.imageInput.click();
  }
});

// Drop anywhere: images are classified, .safetensors / .onnx files become the model.
document.addEventListener("dragover", (e) => {
  e.preventDefault();
  ui.drop.classList.add("over");
});
document.addEventListener("dragleave", (e) => {
  if (e.target === document.documentElement || e.target === ui.drop) ui.drop.classList.remove("over");
});
document.addEventListener("drop", (e) => {
  e.preventDefault();
  ui.drop.classList.remove("over");
  openFile(e.dataTransfer?.files?.[0]);
});

// ---- start --------------------------------------------------------------------------------------

async function start() {
  if (!("gpu" in navigator) || !navigator.gpu) {
    showUnsupported("Your browser does not support WebGPU (navigator.gpu is missing).");
    throw new Error("WebGPU is not available");
  }
  setStatus("Opening the GPU…", { busy: true });
  let adapter;
  try {
    adapter = await call("init");
  } catch (e) {
    const reason = e.message.startsWith("NO_WEBGPU")
      ? "Your browser does not offer WebGPU to workers."
      : e.message.startsWith("NO_ADAPTER")
        ? "WebGPU is there, but the browser offers no GPU adapter (WebGPU blocked for this GPU or driver, or disabled)."
        : `WebGPU is there, but the GPU could not be opened: ${e.message}`;
    showUnsupported(reason);
    throw e;
  }
  const kind = adapter.device_type && adapter.device_type !== "Other" ? `, ${adapter.device_type}` : "";
  ui.adapter.textContent = `${adapter.name}${kind}`;
  ui.adapter.title =
    `backend ${adapter.backend}; max storage binding ${mb(adapter.max_storage_buffer_binding_size)}, ` +
    `max buffer ${mb(adapter.max_buffer_size)}; ${adapter.driver} ${adapter.driver_info}`;
  if (CONFORMANCE) return { adapter, conformance: await runConformance(adapter) };
  const model = await loadModel(DEFAULT_MODEL.url, DEFAULT_MODEL.name, true);
  return { adapter, model };
}

const ready = start();
ready.catch(() => {});

// For tests and the curious: the same engine, scriptable from the console.
window.resnetTest = {
  ready,
  classifyUrl: (url) => classify(url, url.split("/").pop()),
  loadModel: (url, name = url.split("/").pop()) => loadModel(url, name),
  runRaw: (modelUrl, inputUrl) =>
    call("runRaw", { model: modelUrl, name: modelUrl.split("/").pop(), input: inputUrl }),
  planOnly: (modelUrl, shape) => call("planOnly", { model: modelUrl, name: modelUrl.split("/").pop(), shape }),
  bench: (runs = 5) => call("bench", { runs }),
  get model() { return modelInfo; },
  get lastResult() { return lastResult; },
  get conformance() { return conformanceReport; },
};
