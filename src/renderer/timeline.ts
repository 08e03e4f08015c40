/**
 * Geometry of the snapshot timeline: each snapshot a bar at its moment, as tall as the data it
 * added (relative to the largest). Pure numbers; the overview draws them as SVG.
 */
import type { AttemptRow } from './agent-types.js';

export interface TimelinePoint {
  id: string;
  at: number;
  /** Bytes this snapshot added (what its backup copied). */
  bytes: number;
}

export interface TimelineBar extends TimelinePoint {
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface TimelineLayout {
  bars: TimelineBar[];
  /** The baseline's y; bars stand on it. */
  baseline: number;
  /** Time span shown: first and last snapshot (equal for one). */
  from: number | null;
  to: number | null;
}

export interface TimelineBox {
  width: number;
  height: number;
  /** Room left and right of the outermost bars, and above the tallest. */
  padX: number;
  padTop: number;
  /** Room under the baseline for the dates. */
  padBottom: number;
}

export const MIN_BAR_HEIGHT = 3;

export function layoutTimeline(points: readonly TimelinePoint[], box: TimelineBox): TimelineLayout {
  const baseline = box.height - box.padBottom;
  const sorted = [...points].sort((a, b) => a.at - b.at || a.id.localeCompare(b.id));
  if (sorted.length === 0) return { bars: [], baseline, from: null, to: null };
  const from = sorted[0]!.at;
  const to = sorted[sorted.length - 1]!.at;
  const inner = box.width - 2 * box.padX;
  const barWidth = Math.max(2, Math.min(24, (inner / sorted.length) * 0.6));
  const maxBytes = Math.max(1, ...sorted.map((p) => p.bytes));
  const tallest = baseline - box.padTop;
  const bars = sorted.map((p) => {
    const frac = to === from ? 0.5 : (p.at - from) / (to - from);
    const height = Math.max(MIN_BAR_HEIGHT, (p.bytes / maxBytes) * tallest);
    const cx = box.padX + frac * inner;
    return {
      ...p,
      x: round(cx - barWidth / 2),
      y: round(baseline - height),
      width: round(barWidth),
      height: round(height),
    };
  });
  return { bars, baseline, from, to };
}

const round = (n: number): number => Math.round(n * 10) / 10;

/** Successful attempts that left a snapshot: the moments and sizes of the timeline. */
export function snapshotPoints(attempts: readonly AttemptRow[]): TimelinePoint[] {
  return attempts
    .filter((a) => a.outcome === 'success' && a.snapshotId !== null)
    .map((a) => ({ id: a.snapshotId!, at: a.endedAt ?? a.startedAt, bytes: a.bytes }));
}
