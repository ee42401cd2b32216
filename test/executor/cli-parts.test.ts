// The CLI's helpers: one store open/close for every command, and where a run's report goes.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { defaultReportDir, reportRun } from '../../src/cli/run-report.js';
import { withStore } from '../../src/cli/store.js';
import { Store } from '../../src/store/store.js';

afterEach(() => vi.restoreAllMocks());

describe('withStore', () => {
  it('returns what the command returns and closes the store, also when the command throws', async () => {
    const close = vi.spyOn(Store.prototype, 'close');
    const dir = join(mkdtempSync(join(tmpdir(), 'trend-cli-')), 'cache');
    expect(await withStore(dir, {}, (s) => s.runs().length)).toBe(0);
    expect(close).toHaveBeenCalledTimes(1);
    await expect(withStore(dir, {}, () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(close).toHaveBeenCalledTimes(2);
  });

  it('with create: false, a missing store is an error naming --cache, and none is created', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'trend-cli-')), 'nothing-here');
    await expect(withStore(dir, { create: false }, () => 1)).rejects.toThrow(/--cache/);
  });
});

describe('reports', () => {
  it('go to reports/<pipeline name> by default', () => {
    expect(defaultReportDir('/x/pipelines/quickstart.trend')).toBe(resolve('reports/quickstart'));
  });

  it('a report names one run, or the last', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'trend-cli-')), 'cache');
    await withStore(dir, {}, (s) => {
      expect(() => reportRun(s, undefined)).toThrow('no runs yet');
      expect(() => reportRun(s, '2099')).toThrow("no single run matches '2099'");
    });
  });
});
