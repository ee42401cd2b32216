/** The report of a run: where it goes by default, and writing it after a run. */
import { basename, resolve } from 'node:path';
import { UserError } from '../compiler/diagnostics.js';
import { isCompleteRun, type RunRecord, type Store } from '../store/store.js';
import { describeFsError } from './output.js';

/** reports/<pipeline name>, under the working directory. */
export function defaultReportDir(pipeline: string): string {
  return resolve(`reports/${basename(pipeline).replace(/\.trend$/, '')}`);
}

/**
 * Where a run's report goes by default: the pipeline's report for a complete run; a run that
 * failed or ran `--only` writes reports/<pipeline>/run-<id>/ instead, so the report of the last
 * complete run is not replaced by a partial one.
 */
export function runReportDir(pipeline: string, run: { id: string; status: string; only?: string[] }): string {
  const dir = defaultReportDir(pipeline);
  return isCompleteRun(run) ? dir : resolve(dir, `run-${run.id}`);
}

/**
 * Writes the report of a finished run to `dir` and records the directory with the run. A file
 * system failure is returned as a message (the run is recorded and its results cached; only the
 * report could not be written); anything else is thrown.
 */
export async function writeRunReport(store: Store, runId: string, dir: string): Promise<{ reportDir?: string; error?: string }> {
  const { writeReport } = await import('../report/report.js');
  const run = store.getRun(runId)!;
  try {
    await writeReport(store, run, dir);
  } catch (e) {
    const why = describeFsError(e);
    if (!why) throw e;
    return { error: `the report could not be written to ${dir}: ${why} (trendc report ${runId} --out DIR writes it elsewhere)` };
  }
  store.putRun({ ...run, reportDir: dir });
  return { reportDir: dir };
}

/** The run a `trendc report` means: the one whose id starts with `ref`, else the last run. */
export function reportRun(store: Store, ref: string | undefined): RunRecord {
  const all = store.runs();
  const hits = ref ? all.filter((r) => r.id.startsWith(ref)) : all.slice(-1);
  if (hits.length !== 1) throw new UserError(ref ? `no single run matches '${ref}'` : 'no runs yet');
  return hits[0]!;
}
