/** `mooring verify | files | extract | diff`: proving a backup is whole, and getting files back. */
import path from 'node:path';
import type { CliContext } from '../context';
import { formatBytes } from '../progress';
import { isSnapshotId } from '../../store';
import { openDeviceStore } from '../store-access';
import type { StoreArgs } from './snapshots';
import type { PasswordCandidates } from '../../store/encrypted'; // H8b
import { isMooringError, MooringError } from '../../util/errors'; // H8b

export async function verifyCommand(
  ctx: CliContext,
  a: StoreArgs,
  snapshot: string | undefined,
  hash: boolean,
): Promise<number> {
  const store = await openDeviceStore(a.dest, a.udid, ctx.err);
  // A committed snapshot's result is recorded (damaged or not) so the next backup can repair it.
  const ref = snapshot ?? 'latest';
  const report =
    ref === 'latest' || isSnapshotId(ref)
      ? (await store.checkSnapshot(ref, { hash })).report
      : await store.verify(ref, { hash });
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
  if (ref === 'latest')
    ctx.out('  It is marked damaged: the next backup will be a full one, into a new snapshot.');
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
  /** H8b: the passwords that may open the device's encrypted snapshots. */
  passwordsFor?: (udid: string) => PasswordCandidates;
}

/** H8b: a password that does not open an encrypted snapshot, worded with what to do. */
export async function withPasswordHint<T>(udid: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (e) {
    if (!isMooringError(e, 'WRONG_PASSWORD')) throw e;
    throw new MooringError(
      'WRONG_PASSWORD',
      e.detail === 'NO_PASSWORD'
        ? `Mooring cannot open this backup: it is encrypted and no password is known for it; run "mooring encryption password --udid ${udid}" or pass --password-file FILE`
        : `Mooring cannot open this backup: the password does not match (${e.message}); run "mooring encryption password --udid ${udid}" or pass --password-file FILE`,
      { detail: e.detail ?? 'MISMATCH', cause: e },
    );
  }
}

/** H8b: the query as the store takes it (passwords resolved for the store's device). */
function storeQuery(
  q: QueryArgs,
  udid: string,
): Omit<QueryArgs, 'passwordsFor'> & {
  passwords?: PasswordCandidates;
} {
  const { passwordsFor, ...rest } = q;
  return passwordsFor ? { ...rest, passwords: passwordsFor(udid) } : rest;
}

export async function filesCommand(ctx: CliContext, a: StoreArgs, q: QueryArgs): Promise<number> {
  const store = await openDeviceStore(a.dest, a.udid, ctx.err);
  let n = 0;
  const files = store.files(storeQuery(q, store.udid));
  // H8b: the first entry is where an encrypted snapshot is opened (or refused).
  const first = await withPasswordHint(store.udid, () => files.next());
  for await (const f of (async function* () {
    if (!first.done) yield first.value;
    yield* files;
  })()) {
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
  const store = await openDeviceStore(a.dest, a.udid, ctx.err);
  const r = await withPasswordHint(store.udid, () =>
    store.extract({ ...storeQuery(q, store.udid), to: path.resolve(to) }),
  );
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
  passwordsFor?: (udid: string) => PasswordCandidates, // H8b
): Promise<number> {
  const store = await openDeviceStore(a.dest, a.udid, ctx.err);
  const d = await withPasswordHint(store.udid, () =>
    store.diff(from, to, passwordsFor ? { passwords: passwordsFor(store.udid) } : {}),
  );
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
