/**
 * The wasm backend, made to use every core and to train conv nets.
 *
 * As shipped, @tensorflow/tfjs-backend-wasm runs single-threaded in Node (its thread detection
 * returns false there, tfjs#3830) and has no Conv2DBackpropFilter kernel (tfjs#8474). Here the
 * backend is built from the package's threaded-SIMD emscripten factory with real files for its
 * worker script, so that its memory is shared; trend's kernels (./wasm-kernels/, one file per
 * kernel family and one registration list) replace the missing and slow ones and run on trend's
 * own thread pool over that memory (kernel-pool.ts). The backend's own thread pool (XNNPACK's
 * pthreadpool, for the stock kernels left) is kept at one thread: its workers spin-wait between
 * jobs, and one spinning worker took most of a core that trend's pool needed (resnet18 width 1/16
 * training: 76-84 ms a step with it at two threads, 59-61 ms at one). Worker threads are unref'd so
 * processes can exit. If threads cannot start, the stock single-threaded backend is used.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tf } from '../tf.js';
import v8 from 'node:v8';
import { KernelPool, MAX_THREADS, type KernelExports } from './kernel-pool.js';
import type { KernelModule } from './wasm-kernels/memory.js';
import { registerWasmKernels } from './wasm-kernels/register.js';

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
  /** trend's conv kernels use fused multiply-add (relaxed SIMD). */
  fma: boolean;
}

/** A one-function module using f32x4.relaxed_madd. */
const RELAXED_PROBE = new Uint8Array([
  0, 97, 115, 109, 1, 0, 0, 0, 1, 8, 1, 96, 3, 123, 123, 123, 1, 123, 3, 2, 1, 0, 10, 13, 1, 11, 0, 32, 0, 32, 1, 32, 2, 253, 133, 2, 11,
]);

/** Relaxed SIMD is on by default from V8 11.4 (Node 22); Node 20 has it behind a flag. */
export function enableRelaxedSimd(): boolean {
  if (process.env.TREND_NO_FMA) return false;
  if (WebAssembly.validate(RELAXED_PROBE)) return true;
  try {
    v8.setFlagsFromString('--experimental-wasm-relaxed-simd');
  } catch {
    return false;
  }
  return WebAssembly.validate(RELAXED_PROBE);
}

/** (f32, f32, f32) -> f32: lane 0 of f32x4.relaxed_madd(splat a, splat b, splat c), exported as m. */
const MADD_PROBE = new Uint8Array([
  0, 97, 115, 109, 1, 0, 0, 0, 1, 8, 1, 96, 3, 125, 125, 125, 1, 125, 3, 2, 1, 0, 7, 5, 1, 1, 109, 0, 0, 10, 22, 1, 20, 0, 32, 0, 253, 19, 32, 1, 253, 19, 32,
  2, 253, 19, 253, 133, 2, 253, 31, 0, 11,
]);

/**
 * Whether this engine's relaxed_madd fuses (rounds once). The instruction may do either, by
 * processor, and the two give different bits, so trend decides from the machine alone (never
 * from the thread count) and records the answer in the backend description ("fma"); an engine
 * that does not fuse computes exactly what the mul+add modules compute, so those are used.
 * With a = b = 1 + 2^-12 and c = -(1 + 2^-11), a*b + c is 2^-24 fused and 0 rounded twice.
 */
export function relaxedMaddFuses(): boolean {
  const m = new WebAssembly.Instance(new WebAssembly.Module(MADD_PROBE as BufferSource)).exports.m as (a: number, b: number, c: number) => number;
  const a = 1 + 2 ** -12;
  return m(a, a, -(1 + 2 ** -11)) === 2 ** -24;
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

async function threadedModule(): Promise<EmscriptenModule> {
  const out = join(packageDir(), 'wasm-out');
  const factory = require(join(out, 'tfjs-backend-wasm-threaded-simd.js')) as (cfg: object) => Promise<EmscriptenModule>;
  const worker = workerFile();
  const module = await factory({
    locateFile: (p: string) => (p.endsWith('.worker.js') ? worker : join(out, p)),
    mainScriptUrlOrBlob: join(out, 'tfjs-backend-wasm-threaded-simd.js'),
    print: () => {},
    printErr: (s: string) => process.stderr.write(`[wasm] ${s}\n`),
  });
  wrapModule(module);
  return module;
}

function kernelBytes(name: string): Uint8Array {
  const here = dirname(fileURLToPath(import.meta.url));
  // dist/src/runtime/backends -> package root; src/runtime/backends (tests) -> package root
  const root = [join(here, '..', '..', '..', '..'), join(here, '..', '..', '..')].find((d) => existsSync(join(d, 'kernels', 'kernels.wasm')))!;
  return readFileSync(join(root, 'kernels', name));
}

function loadKernelModule(memory: WebAssembly.Memory, shared: boolean, fma: boolean): { k: KernelModule; bytes: Uint8Array } {
  const bytes = kernelBytes(`kernels${fma ? '-fma' : ''}${shared ? '-shared' : ''}.wasm`);
  const instance = new WebAssembly.Instance(new WebAssembly.Module(bytes as BufferSource), { env: { memory } });
  return { k: instance.exports as unknown as KernelModule, bytes };
}

/**
 * Emscripten modules install process handlers that rethrow every uncaught error (printing the
 * module's whole minified source); trend handles errors itself, so they are removed again.
 */
async function withoutEmscriptenHandlers<T>(f: () => Promise<T>): Promise<T> {
  const before = { uncaughtException: process.listeners('uncaughtException'), unhandledRejection: process.listeners('unhandledRejection') };
  try {
    return await f();
  } finally {
    for (const ev of ['uncaughtException', 'unhandledRejection'] as const) {
      for (const l of process.listeners(ev as 'uncaughtException'))
        if (!(before[ev] as unknown[]).includes(l)) process.removeListener(ev as 'uncaughtException', l);
    }
  }
}

/**
 * Registers and activates the wasm backend. threads: threads for trend's kernels (default: one per
 * core; the backend's own kernels run on one). One thread still uses the threaded build, so the
 * arithmetic is the same whatever the thread count. Returns what was set up.
 */
export async function setupWasm(threads = Math.min(MAX_THREADS, os.cpus().length)): Promise<WasmInfo> {
  if (info) {
    await tf.setBackend('wasm');
    return info;
  }
  const wasmPkg = require('@tensorflow/tfjs-backend-wasm') as {
    BackendWasm: new (m: EmscriptenModule) => tf.KernelBackend;
    setThreadsCount(n: number): void;
  };
  let module: EmscriptenModule | undefined;
  if (threads >= 1 && !process.env.TREND_WASM_NO_THREADS) {
    try {
      module = await withoutEmscriptenHandlers(() => threadedModule());
      wasmPkg.setThreadsCount(1);
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
  const ok = await withoutEmscriptenHandlers(() => tf.setBackend('wasm'));
  if (!ok) throw new Error('the wasm backend failed to initialise');
  const backend = tf.backend() as unknown as { wasm: EmscriptenModule };
  const wasm = backend.wasm;
  for (const w of [...(wasm.PThread?.unusedWorkers ?? []), ...(wasm.PThread?.runningWorkers ?? [])]) w.unref();
  const memory = wasm.wasmMemory ?? (wasm as unknown as { asm?: { memory?: WebAssembly.Memory } }).asm?.memory;
  let customKernels = false;
  let fma = false;
  let poolThreads = 1;
  if (memory) {
    const shared = memory.buffer instanceof SharedArrayBuffer;
    fma = enableRelaxedSimd() && relaxedMaddFuses();
    const { k, bytes } = loadKernelModule(memory, shared, fma);
    const malloc = (wasm as unknown as { _malloc(n: number): number })._malloc;
    poolThreads = shared ? threads : 1;
    const pool = new KernelPool({ memory, malloc: (n) => malloc(n) >>> 0 }, bytes, k as unknown as KernelExports, poolThreads, fma);
    registerWasmKernels(
      k,
      pool,
      (n) => malloc(n) >>> 0,
      (p) => (wasm as unknown as { _free(p: number): void })._free(p),
    );
    customKernels = true;
  }
  info = { threads: poolThreads, simd: true, customKernels, fma };
  return info;
}
