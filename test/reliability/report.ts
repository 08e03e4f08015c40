/**
 * The fault matrix's tally: every fault a reliability test injects is one trial, counted here by
 * (category, fault) with how many ended as required (latest complete backup verifies, history
 * consistent, next backup fine). Each test file writes its tally as JSON into
 * `$MOORING_RELIABILITY_DIR` (default `<os.tmpdir()>/mooring-reliability`); `npm run reliability`
 * runs the files with more trials and turns those JSON files into docs/RELIABILITY.md's table.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** Trials per fault point: 1 in CI (bounded), more with `RELIABILITY_RUNS=N`. */
export const RUNS = Math.max(1, Math.min(1000, Number(process.env.RELIABILITY_RUNS) || 1));

export function reportDir(): string {
  return process.env.MOORING_RELIABILITY_DIR ?? path.join(os.tmpdir(), 'mooring-reliability');
}

export interface FaultRow {
  category: string;
  fault: string;
  tried: number;
  passed: number;
  /** Complete backups found damaged after the fault (must stay 0). */
  completeDamaged: number;
  notes: string[];
}

export interface FaultReportFile {
  file: string;
  runs: number;
  generatedAt: string;
  rows: FaultRow[];
}

/** Seeded PRNG (mulberry32) so a failing random offset can be replayed with its seed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const MAX_NOTES = 12;

/** Thrown by the checks that a complete backup is whole: counted apart in the report. */
export class CompleteBackupDamaged extends Error {}

export class FaultReport {
  private readonly rows = new Map<string, FaultRow>();

  constructor(private readonly file: string) {}

  private row(category: string, fault: string): FaultRow {
    const key = `${category}\u0000${fault}`;
    let r = this.rows.get(key);
    if (!r) {
      r = { category, fault, tried: 0, passed: 0, completeDamaged: 0, notes: [] };
      this.rows.set(key, r);
    }
    return r;
  }

  /** Runs one trial; counts it, and rethrows a failure so the test fails too. */
  async trial<T>(category: string, fault: string, fn: () => Promise<T>): Promise<T> {
    const r = this.row(category, fault);
    r.tried++;
    try {
      const v = await fn();
      r.passed++;
      return v;
    } catch (e) {
      if (e instanceof CompleteBackupDamaged) r.completeDamaged++;
      this.note(category, fault, `FAILED: ${(e as Error).message.split('\n')[0]!.slice(0, 200)}`);
      throw e;
    }
  }

  note(category: string, fault: string, text: string): void {
    const r = this.row(category, fault);
    if (r.notes.length < MAX_NOTES && !r.notes.includes(text)) r.notes.push(text);
  }

  /** Writes `<reportDir>/<file>.json` (called from after()). */
  write(): string {
    const dir = reportDir();
    mkdirSync(dir, { recursive: true });
    const out: FaultReportFile = {
      file: this.file,
      runs: RUNS,
      generatedAt: new Date().toISOString(),
      rows: [...this.rows.values()],
    };
    const p = path.join(dir, `${this.file}.json`);
    writeFileSync(p, `${JSON.stringify(out, null, 2)}\n`);
    return p;
  }
}
