/**
 * The wasm backend, made to use every core and to train conv nets.
 *
 * As shipped, @tensorflow/tfjs-backend-wasm runs single-threaded in Node (its thread detection
 * returns false there, tfjs#3830) and has no Conv2DBackpropFilter kernel (tfjs#8474). Here the
 * backend is built from the package's threaded-SIMD emscripten factory with real files for its
 * worker script, the core count is raised past the backend's cap of (logical cores / 2), worker
 * threads are unref'd so processes can exit, and the missing and slow kernels are replaced
 * (./wasm-kernels.ts). If threads cannot start, the stock single-threaded backend is used.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tf } from '../tf.js';
import { registerWasmKernels, type KernelModule } from './wasm-kernels.js';

const require = createRequire(import.meta.url);

interface EmscriptenModule {
  cwrap: (name: string, ret: string | null, args: string[]) => (...a: number[]) => number;
  wasmMemory?: WebAssembly.Memory;
  HEAPU8: Uint8Array;
  PThread?: { unusedWorkers: Array<{ unref(): void }>; runningWorkers: Array<{ unref(): void }> };
  tfjs?: unknown;
}

export interface WasmInfo {
  threads: number;
  simd: boolean;
  customKernels: boolean;
}

let info: WasmInfo | undefined;

function packageDir(): string {
  return dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json'));
}

/** The worker script must be a real file for Node's worker_threads (a Blob URL is rejected). */
function workerFile(): string {
  const pkg = JSON.parse(readFileSync(join(packageDir(), 'package.json'), 'utf8')) as { version: string };
  const dir = join(os.tmpdir(), `trend-wasm-${pkg.version}`);
  const file = join(dir, 'tfjs-backend-wasm-threaded-simd.worker.js');
  if (!existsSync(file)) {
    const { wasmWorkerContents } = require(join(packageDir(), 'wasm-out', 'tfjs-backend-wasm-threaded-simd.worker.js')) as { wasmWorkerContents: string };
    mkdirSync(dir, { recursive: true });
    const tmp = `${file}.${process.pid}`;
    // The template literal turned escaped newlines into real ones; put the escapes back.
    writeFileSync(tmp, wasmWorkerContents.replace(/\n/g, '\\n'));
    require('node:fs').renameSync(tmp, file);
  }
  return file;
}

function wrapModule(module: EmscriptenModule): void {
  module.tfjs = {
    init: module.cwrap('init', null, []),
    initWithThreadsCount: module.cwrap('init_with_threads_count', null, ['number']),
    getThreadsCount: module.cwrap('get_threads_count', 'number', []),
    registerTensor: module.cwrap('register_tensor', null, ['number', 'number', 'number']),
    disposeData: module.cwrap('dispose_data', null, ['number']),
    dispose: module.cwrap('dispose', null, []),
  };
}

async function threadedModule(threads: number): Promise<EmscriptenModule> {
  const out = join(packageDir(), 'wasm-out');
  const factory = require(join(out, 'tfjs-backend-wasm-threaded-simd.js')) as (cfg: object) => Promise<EmscriptenModule>;
  const worker = workerFile();
  // The backend caps threads at (logical cores / 2), computed when the module initialises.
  const realCpus = os.cpus;
  os.cpus = () => Array.from({ length: threads * 2 }, () => realCpus()[0]!);
  // Emscripten installs process handlers that rethrow every uncaught error (printing its whole
  // minified source); trend handles errors itself, so they are removed again.
  const before = { uncaughtException: process.listeners('uncaughtException'), unhandledRejection: process.listeners('unhandledRejection') };
  try {
    const module = await factory({
      locateFile: (p: string) => (p.endsWith('.worker.js') ? worker : join(out, p)),
      mainScriptUrlOrBlob: join(out, 'tfjs-backend-wasm-threaded-simd.js'),
      print: () => {},
      printErr: (s: string) => process.stderr.write(`[wasm] ${s}\n`),
    });
    wrapModule(module);
    return module;
  } finally {
    os.cpus = realCpus;
    for (const ev of ['uncaughtException', 'unhandledRejection'] as const) {
      for (const l of process.listeners(ev as 'uncaughtException')) if (!(before[ev] as unknown[]).includes(l)) process.removeListener(ev as 'uncaughtException', l);
    }
  }
}

function loadKernelModule(memory: WebAssembly.Memory, shared: boolean): KernelModule {
  const here = dirname(fileURLToPath(import.meta.url));
  // dist/src/runtime/backends -> package root; src/runtime/backends (tests) -> package root
  const root = [join(here, '..', '..', '..', '..'), join(here, '..', '..', '..')].find((d) => existsSync(join(d, 'kernels', 'kernels.wasm')))!;
  const bytes = readFileSync(join(root, 'kernels', shared ? 'kernels-shared.wasm' : 'kernels.wasm'));
  const instance = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } });
  return instance.exports as unknown as KernelModule;
}

/**
 * Registers and activates the wasm backend. threads: worker threads for XNNPACK (default: one per
 * core). Returns what was actually set up.
 */
export async function setupWasm(threads = Math.min(8, os.cpus().length)): Promise<WasmInfo> {
  if (info) {
    await tf.setBackend('wasm');
    return info;
  }
  const wasmPkg = require('@tensorflow/tfjs-backend-wasm') as {
    BackendWasm: new (m: EmscriptenModule) => tf.KernelBackend;
    setThreadsCount(n: number): void;
  };
  let module: EmscriptenModule | undefined;
  if (threads > 1 && !process.env.TREND_WASM_NO_THREADS) {
    try {
      module = await threadedModule(threads);
      wasmPkg.setThreadsCount(threads);
    } catch (e) {
      process.stderr.write(`trend: wasm threads unavailable (${(e as Error).message}); using one thread\n`);
      module = undefined;
    }
  }
  if (module) {
    const m = module;
    tf.removeBackend('wasm');
    tf.registerBackend('wasm', () => new wasmPkg.BackendWasm(m), 3);
  }
  const ok = await tf.setBackend('wasm');
  if (!ok) throw new Error('the wasm backend failed to initialise');
  const backend = tf.backend() as unknown as { wasm: EmscriptenModule };
  const wasm = backend.wasm;
  const actual = (wasm.tfjs as { getThreadsCount(): number }).getThreadsCount();
  for (const w of [...(wasm.PThread?.unusedWorkers ?? []), ...(wasm.PThread?.runningWorkers ?? [])]) w.unref();
  const memory = wasm.wasmMemory ?? (wasm as unknown as { asm?: { memory?: WebAssembly.Memory } }).asm?.memory;
  let customKernels = false;
  if (memory) {
    const k = loadKernelModule(memory, memory.buffer instanceof SharedArrayBuffer);
    registerWasmKernels(k, wasm.cwrap);
    customKernels = true;
  }
  info = { threads: actual, simd: true, customKernels };
  return info;
}
