// The ONNX Runtime Web half of the comparison page of bench-ort.mjs: imported into the built
// site's page (whose window.resnetTest drives our engine in its worker), it runs the same .onnx
// file in onnxruntime-web, on the WebGPU execution provider and on the wasm (CPU) one.
//
// A run is what our engine's bench times: the input goes in, every kernel runs, the logits come
// back to JavaScript (ORT's default output location, the CPU), so both sides include upload and
// read-back. ORT runs on the page's main thread; ours in a worker, timed there: neither timing
// includes the page's message passing.

let ort;
const sessions = {};

// Loads ORT's `bundle` from `base` (the npm package's dist/ served by the harness). In 1.30,
// ort.webgpu.min.mjs is the C++ WebGPU execution provider (the asyncify .wasm) and
// ort.all.min.mjs the older JavaScript one (JSEP); both also carry the wasm CPU provider.
export async function setup(base, bundle) {
  ort = await import(`${base}${bundle}`);
  ort.env.wasm.wasmPaths = base;
  ort.env.logLevel = "warning";
  return { version: ort.env.versions?.web ?? "unknown", bundle };
}

// What ORT settled on once a session exists: the wasm threads (1 unless the page is
// cross-origin isolated) and whether it is.
export function settings() {
  return {
    wasmThreads: ort.env.wasm.numThreads ?? null,
    crossOriginIsolated: globalThis.crossOriginIsolated === true,
  };
}

// Creates a session for `modelUrl` on execution provider `ep` ("webgpu" or "wasm"), batch fixed
// at 1 (the symbolic "N" of the file), and runs it once on zeros (shader compilation, weight
// upload). Returns the times and, for WebGPU, the adapter ORT opened.
export async function load(ep, modelUrl, shape) {
  const response = await fetch(modelUrl);
  if (!response.ok) throw new Error(`${modelUrl}: HTTP ${response.status}`);
  const bytes = new Uint8Array(await response.arrayBuffer());
  const t0 = performance.now();
  const session = await ort.InferenceSession.create(bytes, {
    executionProviders: [ep],
    graphOptimizationLevel: "all",
    freeDimensionOverrides: { N: 1 },
  });
  const t1 = performance.now();
  const size = shape.reduce((a, b) => a * b, 1);
  sessions[ep] = {
    session,
    shape,
    zeros: new ort.Tensor("float32", new Float32Array(size), shape),
  };
  await run(ep);
  const t2 = performance.now();
  let adapter = null;
  if (ep === "webgpu") {
    // The C++ provider opens its own adapter and leaves only the device in env.webgpu.
    const device = await ort.env.webgpu.device;
    const a = await ort.env.webgpu.adapter;
    const i = device?.adapterInfo || a?.info || {};
    adapter = [i.vendor, i.architecture, i.device, i.description].filter(Boolean).join(" ") || null;
    if (adapter && i.isFallbackAdapter) adapter += " (software fallback)";
  }
  return { createMs: t1 - t0, firstRunMs: t2 - t1, adapter };
}

// One timed forward pass on zeros (what our bench feeds too), or on `data` when given; returns
// { ms } or, with `withLogits`, { ms, logits }.
export async function run(ep, data = null, withLogits = false) {
  const { session, shape, zeros } = sessions[ep];
  const feed = data ? new ort.Tensor("float32", Float32Array.from(data), shape) : zeros;
  const t = performance.now();
  const out = await session.run({ [session.inputNames[0]]: feed });
  const logits = out[session.outputNames[0]].data;
  const ms = performance.now() - t;
  return withLogits ? { ms, logits: Array.from(logits) } : { ms };
}

export async function release() {
  for (const ep of Object.keys(sessions)) {
    await sessions[ep].session.release();
    delete sessions[ep];
  }
}
