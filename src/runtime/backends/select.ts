/**
 * Backend selection. `auto` takes @tensorflow/tfjs-node-gpu when it loads and sees a GPU, then
 * @tensorflow/tfjs-node, then wasm; webgpu only when asked or when a hardware adapter is found.
 * A backend asked for by name that cannot load is an error saying why and what to install.
 */
import { UserError } from '../../compiler/diagnostics.js';
import { tf } from '../tf.js';
import { MAX_THREADS } from './kernel-pool.js';
import { setupWasm } from './wasm.js';

export const BACKEND_NAMES = ['auto', 'tensorflow-gpu', 'tensorflow', 'webgpu', 'wasm', 'cpu'] as const;
export type BackendName = (typeof BACKEND_NAMES)[number];

export interface BackendChoice {
  /** The name recorded with artifacts, e.g. "wasm (2 threads, simd, trend kernels)". */
  description: string;
  name: Exclude<BackendName, 'auto'>;
}

const INSTALL: Record<string, string> = {
  'tensorflow-gpu':
    'npm install @tensorflow/tfjs-node-gpu (its install script downloads libtensorflow with CUDA; if that download fails, place libtensorflow 2.9.1 in node_modules/@tensorflow/tfjs-node-gpu/deps/lib, see README)',
  tensorflow: 'npm install @tensorflow/tfjs-node (its install script downloads libtensorflow; see README for offline installs)',
  webgpu: "npm install webgpu @tensorflow/tfjs-backend-webgpu, plus a Vulkan driver (Debian: libvulkan1 and the GPU vendor's ICD)",
};

async function tryNode(gpu: boolean): Promise<string | undefined> {
  try {
    await import((gpu ? '@tensorflow/tfjs-node-gpu' : '@tensorflow/tfjs-node') as string);
  } catch (e) {
    return (e as Error).message.split('\n')[0];
  }
  if (!(await tf.setBackend('tensorflow'))) return 'the tensorflow backend did not initialise';
  return undefined;
}

/** Whether TF (C++) sees a GPU: a tiny matmul placed by TF logs nothing we can read, so ask the binding. */
function tfSeesGpu(): boolean {
  const b = tf.backend() as unknown as { binding?: { isUsingGpuDevice?: () => boolean } };
  return !!b.binding?.isUsingGpuDevice?.();
}

async function tryWebgpu(requireHardware: boolean): Promise<string | undefined> {
  try {
    const webgpu = (await import(/* optional peer */ 'webgpu' as string)) as { create(opts: string[]): GPU; globals: object };
    Object.assign(globalThis, webgpu.globals);
    (globalThis as { navigator?: object }).navigator ??= {};
    Object.assign((globalThis as unknown as { navigator: object }).navigator, { gpu: webgpu.create([]) });
    const adapter = await (globalThis as unknown as { navigator: { gpu: GPU } }).navigator.gpu.requestAdapter();
    if (!adapter) return 'no WebGPU adapter found';
    const desc = JSON.stringify((adapter as unknown as { info?: object }).info ?? {});
    if (requireHardware && /llvmpipe|lavapipe|swiftshader|software/i.test(desc)) return `only a software adapter (${desc})`;
    await import('@tensorflow/tfjs-backend-webgpu');
    if (!(await tf.setBackend('webgpu'))) return 'the webgpu backend did not initialise';
    return undefined;
  } catch (e) {
    return (e as Error).message.split('\n')[0];
  }
}

type GPU = { requestAdapter(): Promise<unknown> };

export async function selectBackend(requested: string): Promise<BackendChoice> {
  if (!(BACKEND_NAMES as readonly string[]).includes(requested)) {
    throw new UserError(`unknown backend '${requested}' (expected one of: ${BACKEND_NAMES.join(', ')})`);
  }
  const name = requested as BackendName;
  if (name === 'tensorflow-gpu' || name === 'tensorflow') {
    const why = await tryNode(name === 'tensorflow-gpu');
    if (why) throw new UserError(`backend '${name}' is not available: ${why}\n  to use it: ${INSTALL[name]}`);
    if (name === 'tensorflow-gpu' && !tfSeesGpu())
      throw new UserError(`backend 'tensorflow-gpu' loaded but TensorFlow sees no GPU (check the CUDA/cuDNN libraries and the driver)`);
    return { name, description: name };
  }
  if (name === 'webgpu') {
    const why = await tryWebgpu(false);
    if (why) throw new UserError(`backend 'webgpu' is not available: ${why}\n  to use it: ${INSTALL.webgpu}`);
    return { name, description: 'webgpu' };
  }
  if (name === 'cpu') {
    await tf.setBackend('cpu');
    return { name, description: 'cpu (reference JS kernels)' };
  }
  if (name === 'wasm') return wasmChoice();
  // auto
  if (!(await tryNode(true)) && tfSeesGpu()) return { name: 'tensorflow-gpu', description: 'tensorflow-gpu' };
  if (!(await tryNode(false))) return { name: 'tensorflow', description: 'tensorflow (CPU)' };
  if (!(await tryWebgpu(true))) return { name: 'webgpu', description: 'webgpu (hardware adapter)' };
  return wasmChoice();
}

async function wasmChoice(): Promise<BackendChoice> {
  const threads = threadsFromEnv(process.env.TREND_THREADS);
  const info = await setupWasm(threads);
  return {
    name: 'wasm',
    description: `wasm (${info.threads} thread${info.threads === 1 ? '' : 's'}, simd${info.fma ? ' fma' : ''}${info.customKernels ? ', trend kernels' : ''})`,
  };
}

/** TREND_THREADS, when set: the threads of trend's wasm kernels, an integer from 1 to MAX_THREADS. */
export function threadsFromEnv(value: string | undefined): number | undefined {
  if (value === undefined || value === '') return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > MAX_THREADS) {
    throw new UserError(`TREND_THREADS=${value}: must be a whole number of threads from 1 to ${MAX_THREADS}`);
  }
  return n;
}
