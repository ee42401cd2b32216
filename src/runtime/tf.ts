/**
 * The one TensorFlow.js instance the runtime uses. Importing this module loads TF.js, so only
 * code that computes imports it (a fully cached run never does).
 */
import * as tf from '@tensorflow/tfjs';

// The cpu backend prints advice to install tfjs-node on first use; trendc reports the backend itself.
const cpu = tf.engine().findBackend('cpu') as unknown as { firstUse?: boolean } | null;
if (cpu) cpu.firstUse = false;

export { tf };
export type Tensor = tf.Tensor;
