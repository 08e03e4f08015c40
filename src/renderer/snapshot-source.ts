/**
 * Snapshot browsing for the Files tab and the timeline: the device's snapshots, a page of a
 * snapshot's files, the diff of two, and how to download one file. Over HTTP these are the
 * agent's read-only routes and a file downloads straight from its URL (the cookie goes along);
 * over Electron's bridge they are bridge calls and a file is saved by the main process, which
 * asks where (a stream cannot cross IPC).
 */
import type {
  DiffSummary,
  FilePage,
  FileQuery,
  SaveFileResult,
  SnapshotSummary,
} from '../agent/types';

export interface SnapshotSource {
  snapshots(udid: string): Promise<SnapshotSummary[]>;
  files(udid: string, snapshotId: string, q: FileQuery): Promise<FilePage>;
  diff(udid: string, from: string, to: string): Promise<DiffSummary>;
  /** Browser: where one file of a snapshot downloads from (a plain link). */
  fileUrl?(udid: string, snapshotId: string, domain: string, relativePath: string): string;
  /** Desktop app: saves one file of a snapshot where the person chooses. */
  saveFile?(
    udid: string,
    snapshotId: string,
    domain: string,
    relativePath: string,
  ): Promise<SaveFileResult>;
}

/** "/api/devices/U/snapshots/S/files?domain=…": the routes' paths, each part encoded. */
export function snapshotPaths(udid: string, snapshotId?: string) {
  const dev = `/api/devices/${encodeURIComponent(udid)}`;
  const snap = `${dev}/snapshots/${encodeURIComponent(snapshotId ?? '')}`;
  const q = (o: Record<string, string | number | undefined>): string => {
    const p = new URLSearchParams();
    for (const [k, v] of Object.entries(o)) if (v !== undefined && v !== '') p.set(k, String(v));
    const s = p.toString();
    return s ? `?${s}` : '';
  };
  return {
    list: `${dev}/snapshots`,
    files: (f: FileQuery) =>
      `${snap}/files${q({ domain: f.domain, pattern: f.pattern, limit: f.limit, after: f.after })}`,
    diff: (from: string, to: string) => `${dev}/diff${q({ from, to })}`,
    file: (domain: string, path: string) => `${snap}/file${q({ domain, path })}`,
  };
}
