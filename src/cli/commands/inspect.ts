/** `mooring verify | files | extract | diff`: proving a backup is whole, and getting files back. */
import path from 'node:path';
import type { CliContext } from '../context';
import { formatBytes } from '../progress';
import { openDeviceStore } from '../store-access';
import type { StoreArgs } from './snapshots';

export async function verifyCommand(
  ctx: CliContext,
  a: StoreArgs,
  snapshot: string | undefined,
  hash: boolean,
): Promise<number> {
  const store = await openDeviceStore(a.dest, a.udid);
  const report = await store.verify(snapshot ?? 'latest', { hash });
  if (a.json) {
    ctx.out(JSON.stringify(report, null, 2));
    return report.ok ? 0 : 1;
  }
  if (report.ok) {
    ctx.out(
      `OK: ${report.path} is whole: ${report.files} files, ${formatBytes(report.bytes)}` +
        (report.contentsChecked ? `, ${report.hashed} contents checked` : '') +
        (report.notes.length ? ` (${report.notes.join('; ')})` : ''),
    );
    return 0;
  }
  ctx.out(`DAMAGED: ${report.path}: ${report.problemCount} problem(s)`);
  for (const p of report.problems) {
    const where = p.domain ? `${p.domain}/${p.relativePath ?? ''}` : (p.fileId ?? '');
    ctx.out(`  ${p.kind}: ${where ? where + ': ' : ''}${p.problem}`);
  }
  if (report.problemCount > report.problems.length) {
    ctx.out(`  … and ${report.problemCount - report.problems.length} more`);
  }
  return 1;
}

export interface QueryArgs {
  snapshot?: string;
  domain?: string;
  pattern?: string;
}

export async function filesCommand(ctx: CliContext, a: StoreArgs, q: QueryArgs): Promise<number> {
  const store = await openDeviceStore(a.dest, a.udid);
  let n = 0;
  for await (const f of store.files(q)) {
    n++;
    if (a.json) ctx.out(JSON.stringify(f));
    else {
      const kind = f.type === 'dir' ? 'd' : f.type === 'symlink' ? 'l' : '-';
      const size = f.type === 'file' ? formatBytes(f.size) : '';
      const link = f.target ? ` -> ${f.target}` : '';
      ctx.out(`${kind} ${size.padStart(9)}  ${f.domain}/${f.relativePath}${link}`);
    }
  }
  if (!a.json) ctx.err(`${n} entries`);
  return 0;
}

export async function extractCommand(
  ctx: CliContext,
  a: StoreArgs,
  q: QueryArgs,
  to: string,
): Promise<number> {
  const store = await openDeviceStore(a.dest, a.udid);
  const r = await store.extract({ ...q, to: path.resolve(to) });
  if (a.json) ctx.out(JSON.stringify(r, null, 2));
  else {
    ctx.out(
      `Extracted ${r.files} files (${formatBytes(r.bytes)}), ${r.dirs} folders, ${r.symlinks} links into ${r.to}`,
    );
    for (const s of r.skipped) ctx.err(`skipped ${s.domain}/${s.relativePath}: ${s.problem}`);
  }
  return r.skipped.length === 0 ? 0 : 1;
}

export async function diffCommand(
  ctx: CliContext,
  a: StoreArgs,
  from: string,
  to: string,
): Promise<number> {
  const store = await openDeviceStore(a.dest, a.udid);
  const d = await store.diff(from, to);
  if (a.json) {
    ctx.out(JSON.stringify(d, null, 2));
    return 0;
  }
  ctx.out(`${from} → ${to}: ${d.added} added, ${d.removed} removed, ${d.changed} changed`);
  for (const dom of d.domains) {
    ctx.out(`${dom.domain}:`);
    for (const e of dom.added) ctx.out(`  + ${e.relativePath}`);
    for (const e of dom.removed) ctx.out(`  - ${e.relativePath}`);
    for (const e of dom.changed) ctx.out(`  ~ ${e.relativePath} (${(e.changes ?? []).join(', ')})`);
  }
  return 0;
}
