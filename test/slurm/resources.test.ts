// Placement and resources of Slurm jobs: defaults per operation, the user's overrides and their
// precedence, and the sbatch options they become.
import { describe, expect, it } from 'vitest';
import { OP_VERSIONS } from '../../src/compiler/ops.js';
import { DEFAULT_RESOURCES, PLACING, resourceArgs, slurmSettings } from '../../src/runtime/executor/slurm/resources.js';

describe('Slurm resources', () => {
  it('every operation has a placement and default resources; training is the heaviest', () => {
    for (const op of Object.keys(OP_VERSIONS)) {
      expect(PLACING).toHaveProperty(op);
      expect(DEFAULT_RESOURCES).toHaveProperty(op);
    }
    expect(PLACING.train).toBe('single');
    expect(PLACING.transfer).toBe('group');
    expect(PLACING.matrix).toBe('driver');
    expect(DEFAULT_RESOURCES.train.cpus).toBeGreaterThanOrEqual(DEFAULT_RESOURCES.transfer.cpus);
  });

  it('global flags override the defaults, per-operation settings override both', () => {
    const s = slurmSettings({ cpus: '2', time: '30', opResources: ['train:cpus=8,mem=32g,gpus=1', 'adversarial:time=1-00:00:00'] });
    expect(s.resources.train).toEqual({ cpus: 8, mem: '32G', time: '30', gpus: 1 });
    expect(s.resources.adversarial).toEqual({ ...DEFAULT_RESOURCES.adversarial, cpus: 2, time: '1-00:00:00' });
    expect(s.resources.transfer).toEqual({ ...DEFAULT_RESOURCES.transfer, cpus: 2, time: '30' });
    expect(s).toMatchObject({ pollMs: 2000, maxJobs: 100, groupSize: 64 });
  });

  it('becomes sbatch options, GPUs as --gres, extra arguments last', () => {
    const s = slurmSettings({ partition: 'gpu', account: 'lab', sbatchArg: ['--qos=long'], gpus: '2', poll: '0.5' });
    expect(resourceArgs(s, s.resources.train)).toEqual([
      '--partition=gpu',
      '--account=lab',
      '--cpus-per-task=4',
      '--mem=16G',
      '--time=2-00:00:00',
      '--gres=gpu:2',
      '--qos=long',
    ]);
    expect(resourceArgs(slurmSettings({}), DEFAULT_RESOURCES.transfer)).not.toContainEqual(expect.stringMatching(/gres|partition|account/));
    expect(s.pollMs).toBe(500);
  });

  it('refuses malformed values with what was expected', () => {
    const bad: Array<[Parameters<typeof slurmSettings>[0], RegExp]> = [
      [{ cpus: '0' }, /--cpus must be a positive integer, got '0'/],
      [{ gpus: '-1' }, /--gpus must be a non-negative integer/],
      [{ mem: '4 GB' }, /--mem takes a size as sbatch does/],
      [{ time: '2h' }, /--time takes a time as sbatch does/],
      [{ poll: '0' }, /--poll must be a positive number of seconds/],
      [{ maxJobs: '1.5' }, /--max-jobs must be a positive integer/],
      [{ groupSize: 'x' }, /--group-size must be a positive integer/],
      [{ opResources: ['train'] }, /--op-resources takes OP:key=value/],
      [{ opResources: ['training:cpus=2'] }, /unknown operation 'training' \(expected one of: dataset, train,/],
      [{ opResources: ['train:cores=2'] }, /unknown key 'cores' \(expected cpus, mem, time or gpus\)/],
      [{ opResources: ['train:cpus='] }, /'cpus=' is not key=value/],
    ];
    for (const [flags, msg] of bad) expect(() => slurmSettings(flags)).toThrow(msg);
  });
});
