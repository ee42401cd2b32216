/**
 * The zoo's layer sizes without TF.js, shared by the builders (zoo.ts) and the weights importer
 * (weights.ts), which reads a file's header at plan time without loading a backend.
 */

/** A channel count under a width multiplier (at least one channel). */
export const ch = (c: number, w: number): number => Math.max(1, Math.round(c * w));

/** CIFAR-style VGG configurations: conv output channels, 'M' a 2x2 max-pool. */
export const VGG: Record<string, Array<number | 'M'>> = {
  vgg11: [64, 'M', 128, 'M', 256, 256, 'M', 512, 512, 'M', 512, 512, 'M'],
  vgg19: [64, 64, 'M', 128, 128, 'M', 256, 256, 256, 256, 'M', 512, 512, 512, 512, 'M', 512, 512, 512, 512, 'M'],
};
