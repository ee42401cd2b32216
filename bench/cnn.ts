/**
 * The bench CNN (conv3x3x32 same, relu, maxpool2, conv3x3x64 same, relu, maxpool2, dense10) on a
 * batch of 128 MNIST-sized images: input-gradient steps and SGD training steps per second, for
 * each backend present. Each figure is the best of several timed repetitions (this VM's timings
 * are noisy), after warm-up.
 */
import { selectBackend } from '../src/runtime/backends/select.js';
import { tf } from '../src/runtime/tf.js';
import { Model } from '../src/runtime/models/model.js';
import { SGD } from '../src/runtime/training/optimizer.js';
import { bestMs, type Figure } from './figures.js';

const B = 128;
/** MACs per image: conv1 28*28*32*9, conv2 14*14*64*32*9, dense 7*7*64*10. */
const FWD_FLOPS = 2 * (28 * 28 * 32 * 9 + 14 * 14 * 64 * 32 * 9 + 7 * 7 * 64 * 10);
/** Input gradient: forward + backward through conv2 and conv1 to the input (no filter grads). */
const INPUT_GRAD_FLOPS = FWD_FLOPS + 2 * (28 * 28 * 32 * 9 + 14 * 14 * 64 * 32 * 9 + 7 * 7 * 64 * 10);
/** Training: forward + conv2 input gradient + all filter gradients (conv1's input gradient is not needed). */
const TRAIN_FLOPS = FWD_FLOPS + 2 * (14 * 14 * 64 * 32 * 9 + 7 * 7 * 64 * 10) + 2 * (28 * 28 * 32 * 9 + 14 * 14 * 64 * 32 * 9 + 7 * 7 * 64 * 10);

export async function benchCnn(backend: string, quick: boolean): Promise<Figure[]> {
  const choice = await selectBackend(backend);
  const model = Model.create(
    { arch: 'cnn', width: 1, shape: [28, 28, 1], classes: 10, input: null, weightBits: null, activationBits: null, noise: {}, mean: [0.13], std: [0.31] },
    1,
  );
  const x = tf.randomUniform([B, 28, 28, 1]) as tf.Tensor4D;
  const yh = tf.oneHot(tf.randomUniform([B], 0, 10, 'int32') as tf.Tensor1D, 10);
  const loss = (z: tf.Tensor4D, training: boolean) => tf.losses.softmaxCrossEntropy(yh, model.logits(z, { training })) as tf.Scalar;
  const grad = tf.grad((z: tf.Tensor) => loss(z as tf.Tensor4D, false));
  const opt = new SGD(0.9, 5e-4);
  const vars = model.trainable();
  const reps = quick ? 3 : 7;
  const inner = quick ? 3 : 5;
  const inputGrad = bestMs(() => tf.tidy(() => void grad(x).dataSync()), reps, inner);
  const train = bestMs(
    () => {
      const { value, grads } = tf.variableGrads(() => loss(x, true), vars);
      opt.step(
        vars,
        vars.map((v) => grads[v.name]!),
        0.01,
      );
      value.dataSync();
      value.dispose();
      Object.values(grads).forEach((g) => g.dispose());
    },
    reps,
    inner,
  );
  const name = choice.name;
  model.dispose();
  [x, yh].forEach((t) => t.dispose());
  opt.dispose();
  return [
    { name: `cnn.${name}.input_grad.images_per_s`, value: Math.round((B / inputGrad) * 1000), unit: 'images/s', note: choice.description },
    { name: `cnn.${name}.input_grad.gflops`, value: +((INPUT_GRAD_FLOPS * B) / inputGrad / 1e6).toFixed(1), unit: 'GFLOP/s' },
    { name: `cnn.${name}.train.images_per_s`, value: Math.round((B / train) * 1000), unit: 'images/s' },
    { name: `cnn.${name}.train.gflops`, value: +((TRAIN_FLOPS * B) / train / 1e6).toFixed(1), unit: 'GFLOP/s' },
  ];
}
