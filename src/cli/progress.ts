/**
 * Rendering executor events: live bars with rate and ETA on a terminal (cli-progress), plain
 * line logs when not a TTY, JSON lines with --json, nothing but errors with --quiet.
 */
import cliProgress from 'cli-progress';
import type { RunEvent } from '../runtime/executor/types.js';

export type ProgressMode = 'tty' | 'plain' | 'json' | 'quiet';

export function pickMode(o: { json?: boolean; quiet?: boolean }): ProgressMode {
  if (o.json) return 'json';
  if (o.quiet) return 'quiet';
  return process.stderr.isTTY ? 'tty' : 'plain';
}

function fmtMetrics(m?: Record<string, number>): string {
  if (!m) return '';
  return Object.entries(m)
    .map(([k, v]) => `${k}=${Math.abs(v) >= 100 || Number.isInteger(v) ? v.toFixed(0) : v.toFixed(4)}`)
    .join(' ');
}

function secs(ms: number): string {
  return ms >= 60_000 ? `${Math.floor(ms / 60_000)}m${Math.round((ms % 60_000) / 1000)}s` : `${(ms / 1000).toFixed(1)}s`;
}

export class ProgressRenderer {
  private multi?: cliProgress.MultiBar;
  private readonly bars = new Map<string, { bar: cliProgress.SingleBar; phase: string; started: number; done: number }>();
  private readonly lastPlain = new Map<string, number>();
  private finished = 0;
  private total = 0;

  constructor(private readonly mode: ProgressMode) {
    if (mode === 'tty') {
      this.multi = new cliProgress.MultiBar(
        {
          format: ' {bar} {percentage}% | {id} {phase} {value}/{total} {unit} | {rate}/s ETA {etaText} | {metrics}',
          hideCursor: true,
          clearOnComplete: true,
          stopOnComplete: false,
          etaBuffer: 20,
          fps: 5,
          stream: process.stderr,
        },
        cliProgress.Presets.shades_classic,
      );
    }
  }

  private line(s: string): void {
    if (this.multi) this.multi.log(s + '\n');
    else process.stderr.write(s + '\n');
  }

  handle(e: RunEvent): void {
    if (this.mode === 'json') {
      process.stdout.write(JSON.stringify(e) + '\n');
      return;
    }
    switch (e.type) {
      case 'run-start':
        this.total = e.total;
        if (this.mode !== 'quiet') this.line(`run ${e.runId}: ${e.total} nodes, ${e.cached} cached, ${e.toRun} to run`);
        break;
      case 'backend':
        if (this.mode !== 'quiet') this.line(`backend: ${e.name}`);
        break;
      case 'node-start':
        if (this.mode === 'plain') this.line(`[${this.finished + 1}/${this.total}] ${e.id} ...`);
        break;
      case 'node-wait':
        if (this.mode !== 'quiet') this.line(`${e.id}: waiting for another process (pid ${e.owner ?? '?'}) computing it`);
        break;
      case 'node-progress': {
        const p = e.progress;
        if (this.multi) {
          let b = this.bars.get(e.id);
          if (!b) {
            const bar = this.multi.create(p.total, p.done, { id: e.id, phase: p.phase, unit: p.unit ?? '', rate: '0', etaText: '-', metrics: '' });
            b = { bar, phase: p.phase, started: performance.now(), done: p.done };
            this.bars.set(e.id, b);
          } else if (b.phase !== p.phase) {
            // A new phase (the next epoch) reuses the node's bar. Removing and recreating it made
            // cli-progress redraw at once and restart its 200 ms redraw timer: with phases shorter
            // than that (a small model's epochs on a fast machine), no frame was drawn at all.
            b.phase = p.phase;
            b.started = performance.now();
            b.bar.update(p.done, { phase: p.phase });
          }
          // The operation's own rate and ETA (over the whole node) when it gives them, else this phase's.
          const rate = p.rate ?? p.done / Math.max(1e-3, (performance.now() - b.started) / 1000);
          const eta = p.eta ?? (rate > 0 ? (p.total - p.done) / rate : undefined);
          b.bar.setTotal(p.total);
          b.bar.update(p.done, {
            rate: rate.toFixed(1),
            etaText: eta === undefined ? '-' : secs(eta * 1000),
            metrics: fmtMetrics(p.metrics),
            unit: p.unit ?? '',
          });
        } else if (this.mode === 'plain') {
          const now = performance.now();
          const last = this.lastPlain.get(e.id) ?? 0;
          if (p.done === p.total || now - last > 5000) {
            this.lastPlain.set(e.id, now);
            const speed = p.rate !== undefined ? ` ${p.rate.toFixed(1)} ${p.unit ?? 'units'}/s${p.eta !== undefined ? ` ETA ${secs(p.eta * 1000)}` : ''}` : '';
            this.line(`  ${e.id}: ${p.phase} ${p.done}/${p.total} ${p.unit ?? ''}${speed} ${fmtMetrics(p.metrics)}`.trimEnd());
          }
        }
        break;
      }
      case 'node-log':
        if (this.mode !== 'quiet') this.line(`  ${e.id}: ${e.message}`);
        break;
      case 'node-end': {
        this.finished++;
        const b = this.bars.get(e.id);
        if (b && this.multi) {
          b.bar.stop();
          this.multi.remove(b.bar);
          this.bars.delete(e.id);
        }
        if (e.status === 'failed') this.line(`FAILED ${e.id} (${e.where ?? ''}): ${e.error ?? ''}`);
        else if (e.status === 'ran' && this.mode !== 'quiet') this.line(`ran ${e.id} (${secs(e.ms ?? 0)})`);
        else if (e.status === 'skipped' && this.mode !== 'quiet') this.line(`skipped ${e.id} (an input failed)`);
        break;
      }
      case 'run-end':
        this.multi?.stop();
        break;
    }
  }

  stop(): void {
    this.multi?.stop();
  }
}
