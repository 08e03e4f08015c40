/**
 * Snapshot identifiers: the UTC time a backup started, `YYYYMMDDTHHMMSSZ`, with `-N` when two
 * fall in the same second. They sort the way the snapshots were taken and are safe as folder names.
 */
const ID = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z(?:-([1-9]\d{0,3}))?$/;

export function isSnapshotId(s: string): boolean {
  return dateOfSnapshotId(s) !== undefined;
}

export function formatSnapshotId(d: Date): string {
  return d
    .toISOString()
    .replace(/\.\d{3}Z$/, 'Z')
    .replace(/[-:]/g, '');
}

/** The time an id names, or undefined when `s` is not a snapshot id. */
export function dateOfSnapshotId(s: string): Date | undefined {
  const m = ID.exec(s);
  if (!m) return undefined;
  const [y, mo, d, h, mi, se] = m.slice(1, 7).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const t = Date.UTC(y, mo - 1, d, h, mi, se);
  const date = new Date(t);
  // Refuse 20240231T… and the like: the fields must round-trip.
  if (formatSnapshotId(date) !== s.slice(0, 16)) return undefined;
  return date;
}

/** Compares ids by time, then suffix ("…Z" < "…Z-2" < "…Z-10"). */
export function compareSnapshotIds(a: string, b: string): number {
  const base = a.slice(0, 16).localeCompare(b.slice(0, 16));
  if (base !== 0) return base;
  const n = (s: string): number => (s.length > 16 ? Number(s.slice(17)) : 1);
  return n(a) - n(b);
}

/**
 * A new id for a snapshot taken at `date`: never one already `taken`, and never earlier than
 * `after` (the latest's id), so a clock that went backwards does not reorder history.
 */
export function newSnapshotId(date: Date, taken: (id: string) => boolean, after?: string): string {
  let t = Math.floor(date.getTime() / 1000) * 1000;
  const floor = after === undefined ? undefined : dateOfSnapshotId(after);
  if (floor !== undefined && t <= floor.getTime()) t = floor.getTime() + 1000;
  const base = formatSnapshotId(new Date(t));
  if (!taken(base)) return base;
  for (let i = 2; i < 10_000; i++) {
    const id = `${base}-${i}`;
    if (!taken(id)) return id;
  }
  throw new RangeError(`no free snapshot id for ${base}`);
}
