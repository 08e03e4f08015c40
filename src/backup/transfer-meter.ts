/**
 * Progress of a transfer: the device's own percentage (the progress reals in its messages), the
 * bytes and files we received, and a recent rate. Progress reports are throttled so a fast local
 * link does not flood the caller with one event per 32 KiB block.
 */

export interface TransferProgress {
  /** 0–100, as the device reports it. */
  percent: number;
  bytesReceived: number;
  filesReceived: number;
  /** Over the last few seconds. */
  rateBytesPerSec: number;
}

/** Least time between two unforced progress reports. */
export const PROGRESS_INTERVAL_MS = 250;
/** The rate is measured over this window. */
export const RATE_WINDOW_MS = 5_000;
/** Least time between two kept rate samples. */
const SAMPLE_SPACING_MS = 100;

export class TransferMeter {
  percent = 0;
  bytesReceived = 0;
  filesReceived = 0;
  private samples: Array<{ t: number; bytes: number }> = [];
  private lastReport = 0;
  private lastReported: string | undefined;

  constructor(private readonly now: () => number = Date.now) {}

  setPercent(p: number | undefined): void {
    if (p !== undefined) this.percent = p;
  }

  addBytes(n: number): void {
    this.bytesReceived += n;
    const t = this.now();
    // One sample per SAMPLE_SPACING_MS (the latest one moves forward): called per block, this
    // keeps the window at ~50 samples instead of one per 32 KiB block.
    const last = this.samples[this.samples.length - 1];
    const prev = this.samples[this.samples.length - 2];
    if (last && prev && t - prev.t < SAMPLE_SPACING_MS) {
      last.t = t;
      last.bytes = this.bytesReceived;
    } else {
      this.samples.push({ t, bytes: this.bytesReceived });
    }
    while (this.samples.length > 2 && this.samples[0]!.t < t - RATE_WINDOW_MS) this.samples.shift();
  }

  addFile(): void {
    this.filesReceived++;
  }

  rate(): number {
    const first = this.samples[0];
    const last = this.samples[this.samples.length - 1];
    if (!first || !last || last.t <= first.t) return 0;
    return Math.round(((last.bytes - first.bytes) * 1000) / (last.t - first.t));
  }

  /** A report when due (or `force`) and something changed since the last one. */
  take(force: boolean): TransferProgress | undefined {
    const t = this.now();
    if (!force && t - this.lastReport < PROGRESS_INTERVAL_MS) return undefined;
    const p: TransferProgress = {
      percent: Math.round(this.percent * 10) / 10,
      bytesReceived: this.bytesReceived,
      filesReceived: this.filesReceived,
      rateBytesPerSec: this.rate(),
    };
    const key = `${p.percent}/${p.bytesReceived}/${p.filesReceived}`;
    if (key === this.lastReported) return undefined;
    this.lastReport = t;
    this.lastReported = key;
    return p;
  }
}
