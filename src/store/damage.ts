/**
 * A failed verification as the damage mark kept in snapshots.json: when, how many problems, and
 * the first one as a bounded line (the report itself can hold thousands).
 */
import { MAX_DAMAGE_EXAMPLE_CHARS, type SnapshotDamage } from './metadata';
import type { VerifyReport } from './verify';

export function damageFromReport(report: VerifyReport, now: Date = new Date()): SnapshotDamage {
  const p = report.problems[0];
  const where = p?.domain
    ? `${p.domain}/${p.relativePath ?? ''}: `
    : p?.fileId
      ? `${p.fileId}: `
      : '';
  const example = p ? `${p.kind}: ${where}${p.problem}` : 'verification failed';
  return {
    at: now.toISOString(),
    problems: report.problemCount,
    example: example.slice(0, MAX_DAMAGE_EXAMPLE_CHARS),
  };
}

/** One line for messages: "3 problem(s), e.g. missing: HomeDomain/x: …". */
export function describeDamage(d: SnapshotDamage): string {
  return `${d.problems} problem(s), e.g. ${d.example}`;
}
