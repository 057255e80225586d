// Progress output: a redrawn bar on a TTY, plain lines otherwise. Always on stderr, so that
// stdout carries only results (and, with --json, only JSON lines).
import type { EpochStats, StepProgress } from '@vat/core';

export function formatDuration(s: number): string {
  if (!Number.isFinite(s)) return '?';
  s = Math.max(0, Math.round(s));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  return h ? `${h}h${String(m).padStart(2, '0')}m` : m ? `${m}m${String(sec).padStart(2, '0')}s` : `${sec}s`;
}

const pct = (x: number) => `${(100 * x).toFixed(2)}%`;

export class Progress {
  private lastDraw = 0;
  private lastLine = -1;
  constructor(
    private readonly out: NodeJS.WriteStream = process.stderr,
    private readonly tty = !!process.stderr.isTTY,
  ) {}

  step(p: StepProgress): void {
    const line = `epoch ${p.epoch + 1}/${p.epochs} ${p.batch + 1}/${p.batches} | ${p.imagesPerSecond.toFixed(0)} img/s | loss ${p.runningLoss.toFixed(4)} | ETA ${formatDuration(p.etaSeconds)}`;
    if (this.tty) {
      const now = Date.now();
      if (now - this.lastDraw < 100 && p.batch + 1 < p.batches) return;
      this.lastDraw = now;
      const width = 24;
      const filled = Math.round(((p.batch + 1) / p.batches) * width);
      this.out.write(`\r\x1b[2K[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${line}`);
    } else {
      // About twenty lines per epoch.
      const every = Math.max(1, Math.floor(p.batches / 20));
      if ((p.batch + 1) % every === 0 && p.step !== this.lastLine) {
        this.lastLine = p.step;
        this.out.write(`${line}\n`);
      }
    }
  }

  clear(): void {
    if (this.tty) this.out.write('\r\x1b[2K');
  }

  message(text: string): void {
    this.clear();
    this.out.write(`${text}\n`);
  }
}

export function epochLine(e: EpochStats, epochs: number, valLabel: string): string {
  return (
    `epoch ${e.epoch}/${epochs}  ce ${e.ce.toFixed(4)}  lds ${e.lds.toFixed(4)}` +
    (e.entropy ? `  ent ${e.entropy.toFixed(4)}` : '') +
    `  train acc ${pct(e.trainAccuracy)}  ${valLabel} acc ${pct(e.valAccuracy)}  lr ${e.lr.toPrecision(3)}  (${e.seconds.toFixed(1)} s)`
  );
}

export function confusionTable(confusion: Uint32Array | number[], classes: number): string {
  const rows = [`true\\pred ${Array.from({ length: classes }, (_, i) => String(i).padStart(5)).join('')}`];
  for (let t = 0; t < classes; t++) {
    const cells = Array.from({ length: classes }, (_, p) => String(confusion[t * classes + p]).padStart(5)).join('');
    rows.push(`${String(t).padStart(9)} ${cells}`);
  }
  return rows.join('\n');
}
