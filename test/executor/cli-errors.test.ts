import { spawnSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BIN, FAKE_OPS, TOY, trendc, workdir } from '../helpers/cli.js';

// CLI errors that say what happened: the path and the reason, the right exit code, and no
// "internal error" for a problem with the user's files.

/** trendc with a short timeout (a command reading /dev/zero would otherwise run until killed). */
function quick(args: string[], cwd: string, env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    cwd,
    env: { ...process.env, TREND_CACHE: '', FORCE_COLOR: '0', ...env },
    encoding: 'utf8',
    timeout: 20_000,
  });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr, timedOut: r.error !== undefined || r.signal !== null };
}

const noInternal = (stderr: string) => {
  expect(stderr).not.toMatch(/internal error/);
  expect(stderr).not.toMatch(/^\s+at /m);
};

describe('pipeline files that are not regular files, or too large', () => {
  it('check /dev/zero is refused at once (a character device), exit 2', () => {
    const dir = workdir();
    const r = quick(['check', '/dev/zero'], dir);
    expect(r.timedOut).toBe(false);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/\/dev\/zero: .*not a regular file.*character device/);
    noInternal(r.stderr);
  });

  // A FIFO with no writer: opening it would block forever.
  for (const cmd of [['run'], ['plan'], ['fmt'], ['explain'], ['check']]) {
    it(`${cmd[0]} refuses a named pipe without opening it, exit 2`, () => {
      const dir = workdir();
      expect(spawnSync('mkfifo', [join(dir, 'p.trend')]).status).toBe(0);
      const r = quick([...cmd, 'p.trend'], dir);
      expect(r.timedOut).toBe(false);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/p\.trend: .*not a regular file.*named pipe/);
      noInternal(r.stderr);
    });
  }

  for (const cmd of ['check', 'run', 'plan', 'fmt', 'explain']) {
    it(`${cmd} refuses a pipeline file over 1 MiB with its size, exit 2`, () => {
      const big = TOY + ('# ' + 'x'.repeat(1000) + '\n').repeat(1100);
      const dir = workdir({ 'big.trend': big });
      const r = quick([cmd, 'big.trend'], dir, { TREND_OPS_MODULE: FAKE_OPS });
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(new RegExp(`big\\.trend: ${big.length} bytes is larger than the 1 MiB limit`));
      noInternal(r.stderr);
    });
  }

  it('a file of exactly 1 MiB is still read', () => {
    const text = TOY + '#'.repeat(1024 * 1024 - TOY.length - 1) + '\n';
    const dir = workdir({ 'edge.trend': text });
    const r = quick(['check', 'edge.trend'], dir);
    expect(r.code).toBe(0);
  });
});

describe('an empty pipeline', () => {
  for (const [what, text] of [
    ['an empty file', ''],
    ['a file of comments and blank lines', '# nothing here yet\n\n   \n# report title="x"\n'],
  ] as const) {
    it(`${what}: check and run say it declares nothing (file:line:col), exit 2, and run nothing`, () => {
      const dir = workdir({ 'e.trend': text });
      const c = trendc(['check', 'e.trend'], { cwd: dir });
      expect(c.code).toBe(2);
      expect(c.stderr).toMatch(/e\.trend:1:1: error\[E010\]: this pipeline declares nothing/);
      const r = trendc(['run', 'e.trend'], { cwd: dir, env: { TREND_OPS_MODULE: FAKE_OPS } });
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/e\.trend:1:1: error\[E010\]: this pipeline declares nothing/);
      expect(r.stdout).not.toMatch(/ran/);
      const runs = trendc(['runs'], { cwd: dir });
      expect(runs.stdout).toMatch(/no runs yet/);
      const j = trendc(['check', 'e.trend', '--json'], { cwd: dir });
      expect(JSON.parse(j.stdout)[0].diagnostics[0]).toMatchObject({ severity: 'error', loc: { line: 1, col: 1 } });
    });
  }
});

describe('an unavailable backend', () => {
  it('--backend tensorflow-gpu fails before any node runs, with the install hint; no run recorded, report untouched, exit 2', () => {
    const dir = workdir({ 'p.trend': 'dataset toy subset train=200 test=50\ntrain epochs=1 batch=50\nmodel a = mlp width=0.25\n' });
    const first = trendc(['run', 'p.trend', '--quiet', '--backend', 'wasm'], { cwd: dir });
    expect(first.code).toBe(0);
    const report = join(dir, 'reports', 'p', 'index.md');
    const before = { text: readFileSync(report, 'utf8'), mtime: statSync(report).mtimeMs };
    const runsBefore = JSON.parse(trendc(['runs', '--json'], { cwd: dir }).stdout) as unknown[];
    const r = trendc(['run', 'p.trend', '--force-all', '--json', '--backend', 'tensorflow-gpu'], { cwd: dir });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/backend 'tensorflow-gpu' is not available/);
    expect(r.stderr).toMatch(/npm install @tensorflow\/tfjs-node-gpu/);
    noInternal(r.stderr);
    expect(r.stdout).not.toMatch(/"node-start"|"node-end"/);
    const runsAfter = JSON.parse(trendc(['runs', '--json'], { cwd: dir }).stdout) as unknown[];
    expect(runsAfter).toHaveLength(runsBefore.length);
    expect(readFileSync(report, 'utf8')).toBe(before.text);
    expect(statSync(report).mtimeMs).toBe(before.mtime);
  });
});

describe('the report title comes from the report statement', () => {
  const run = (text: string) => {
    const dir = workdir({ 'p.trend': text });
    const r = trendc(['run', 'p.trend', '--quiet'], { cwd: dir, env: { TREND_OPS_MODULE: FAKE_OPS } });
    expect(r.code).toBe(0);
    const title = readFileSync(join(dir, 'reports', 'p', 'index.md'), 'utf8').split('\n')[0];
    // `trendc report` rebuilds the same title from the run record.
    expect(trendc(['report', '--out', 'again'], { cwd: dir }).code).toBe(0);
    expect(readFileSync(join(dir, 'again', 'index.md'), 'utf8').split('\n')[0]).toBe(title);
    return title;
  };

  it('a commented-out report line does not win over the real one', () => {
    expect(run(`# report title="Old draft"\n${TOY}report title="The real title"\n`)).toBe('# The real title');
  });

  it('escaped quotes are kept', () => {
    expect(run(`${TOY}report title="A \\"quoted\\" word and a \\\\ backslash"\n`)).toBe('# A "quoted" word and a \\ backslash');
  });

  it('without a report statement, a commented-out one is not taken (the first comment is)', () => {
    expect(run(`# toy pipeline\n# report title="Old draft"\n${TOY.split('\n').slice(1).join('\n')}`)).toBe('# toy pipeline');
  });
});

describe('filesystem errors name the path and the reason', () => {
  const setup = () => {
    const dir = workdir({ 'p.trend': TOY, afile: 'not a directory\n' });
    expect(trendc(['run', 'p.trend', '--quiet'], { cwd: dir, env: { TREND_OPS_MODULE: FAKE_OPS } }).code).toBe(0);
    return dir;
  };

  it('export --out under a regular file: exit 1, the path and "not a directory"', () => {
    const dir = setup();
    const r = trendc(['export', 'train/a', '--out', 'afile/x'], { cwd: dir });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/afile.*: not a directory/);
    expect(r.stderr).toContain(join(dir, 'afile'));
    noInternal(r.stderr);
  });

  it('export --out naming an existing file: exit 1, the path and the reason', () => {
    const dir = setup();
    const r = trendc(['export', 'train/a', '--out', 'afile'], { cwd: dir });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(join(dir, 'afile'));
    expect(r.stderr).toMatch(/exists and is not a directory|not a directory|file already exists/);
    noInternal(r.stderr);
  });

  it('run --report-dir and report --out under a regular file: exit 1 with the path (the run itself is recorded)', () => {
    const dir = setup();
    const r = trendc(['run', 'p.trend', '--quiet', '--report-dir', 'afile/r'], { cwd: dir, env: { TREND_OPS_MODULE: FAKE_OPS } });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/report/);
    expect(r.stderr).toContain(join(dir, 'afile'));
    expect(r.stderr).toMatch(/not a directory/);
    noInternal(r.stderr);
    const again = trendc(['report', '--out', 'afile/r2'], { cwd: dir });
    expect(again.code).toBe(1);
    expect(again.stderr).toContain(join(dir, 'afile'));
    noInternal(again.stderr);
  });
});

describe('describeFsError', () => {
  it('says what could not be done to which path, and why, for errors root never sees in these tests', async () => {
    const { describeFsError } = await import('../../src/cli/output.js');
    const err = (code: string, syscall: string, path: string) =>
      Object.assign(new Error(`${code}: x, ${syscall} '${path}'`), { code, syscall, path, errno: -1 });
    expect(describeFsError(err('EACCES', 'open', '/r/o.md'))).toBe("cannot open '/r/o.md': permission denied (EACCES)");
    expect(describeFsError(err('EROFS', 'mkdir', '/ro/d'))).toBe("cannot create directory '/ro/d': read-only file system (EROFS)");
    expect(describeFsError(err('ENOSPC', 'write', '/full/f'))).toBe("cannot write '/full/f': no space left on device (ENOSPC)");
    expect(describeFsError(new Error('not a system error'))).toBeUndefined();
  });
});
