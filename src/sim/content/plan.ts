/**
 * What the synthetic device holds: which domains, apps, files, directories and symlinks, and how
 * the byte budget is spread. Pure and deterministic: (seed, file count) → the same plan.
 *
 * Sizes are skewed on purpose (Pareto weights, videos weigh most) so that, as on a real phone, a
 * few files hold most of the bytes and most files are small.
 */
import { Prng } from './random';
import type { ContentKind } from './model';

export interface AppInfo {
  CFBundleIdentifier: string;
  CFBundleVersion: string;
  CFBundleShortVersionString: string;
  CFBundleDisplayName: string;
  CFBundleName: string;
  CFBundleExecutable: string;
  ApplicationType: 'User';
  /** Bundle path on the device (Manifest.plist Applications → Path). */
  Path: string;
  /** Data container path on the device. */
  Container: string;
  /** App-group identifiers the app shares (AppDomainGroup-<id> domains). */
  GroupIdentifiers: string[];
}

export interface PlannedFile {
  domain: string;
  relativePath: string;
  kind: ContentKind;
  /** Share of the byte budget for 'random'/'text' files; 0 for structured kinds. */
  weight: number;
  protectionClass: number;
  mtime: number;
  birth: number;
}

export interface PlannedLink {
  domain: string;
  relativePath: string;
  target: string;
  mtime: number;
}

export interface TreePlan {
  apps: AppInfo[];
  files: PlannedFile[];
  symlinks: PlannedLink[];
  /** Directories that exist even when no planned file lives in them (container skeletons). */
  extraDirs: Array<{ domain: string; relativePath: string }>;
  /** Number for the next IMG_nnnn a mutation adds. */
  nextImage: number;
  inodeBase: number;
  /** Timestamps of generated content fall in [timeBase, timeBase + 1 year). */
  timeBase: number;
}

const CATALOG: Array<[id: string, name: string, version: string, exe: string]> = [
  ['org.example.Notebook', 'Notebook', '4.2.1', 'Notebook'],
  ['org.example.TrailMaps', 'Trail Maps', '2.0.3', 'TrailMaps'],
  ['org.example.Budget', 'Budget', '1.9', 'Budget'],
  ['org.example.PodcastsPlus', 'Podcasts Plus', '7.1', 'PodcastsPlus'],
  ['org.example.Recipes', 'Recipes', '3.3.0', 'Recipes'],
  ['org.example.Chess', 'Chess', '1.0.12', 'Chess'],
];

/** 2024-01-01T00:00:00Z. */
const EPOCH_2024 = 1_704_067_200;
const DAY = 86_400;

function uuidFrom(rng: Prng): string {
  const hex = Array.from({ length: 4 }, () => rng.next().toString(16).padStart(8, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`.toUpperCase();
}

export function appDomain(app: AppInfo): string {
  return `AppDomain-${app.CFBundleIdentifier}`;
}

function chooseApps(rng: Prng): AppInfo[] {
  const picks = rng.sample(CATALOG.length, rng.int(3, 4)).sort((a, b) => a - b);
  return picks.map((i, n) => {
    const [id, name, version, exe] = CATALOG[i]!;
    return {
      CFBundleIdentifier: id,
      CFBundleVersion: version,
      CFBundleShortVersionString: version,
      CFBundleDisplayName: name,
      CFBundleName: name,
      CFBundleExecutable: exe,
      ApplicationType: 'User' as const,
      Path: `/private/var/containers/Bundle/Application/${uuidFrom(rng)}/${exe}.app`,
      Container: `/private/var/mobile/Containers/Data/Application/${uuidFrom(rng)}`,
      GroupIdentifiers: n < 2 ? [`group.${id}`] : [],
    };
  });
}

/** Photo path for image number n: 100APPLE holds 1–999, 101APPLE 1000–1999, … */
export function photoPath(n: number, ext: 'HEIC' | 'MOV'): string {
  const folder = 100 + Math.floor(n / 1000);
  return `Media/DCIM/${folder}APPLE/IMG_${String(n % 10000).padStart(4, '0')}.${ext}`;
}

export function planTree(seed: number, fileCount: number): TreePlan {
  const rng = new Prng(`mooring-sim/plan/${seed}`);
  const apps = chooseApps(rng);
  const timeBase = EPOCH_2024 + rng.int(0, 180) * DAY;
  const stamp = (): { mtime: number; birth: number } => {
    const mtime = timeBase + rng.int(0, 365 * DAY - 1);
    return { mtime, birth: mtime - rng.int(0, 30 * DAY) };
  };

  const files: PlannedFile[] = [];
  const fixed = (
    domain: string,
    relativePath: string,
    kind: ContentKind,
    protectionClass: number,
  ): void => {
    files.push({ domain, relativePath, kind, weight: 0, protectionClass, ...stamp() });
  };
  // The realistic small files first: if the budget is tiny, these are the ones kept.
  fixed('HomeDomain', 'Library/SMS/sms.db', 'sqlite-sms', 4);
  fixed('HomeDomain', 'Library/AddressBook/AddressBook.sqlitedb', 'sqlite-addressbook', 4);
  fixed('HomeDomain', 'Library/Preferences/.GlobalPreferences.plist', 'plist', 3);
  fixed('HomeDomain', 'Library/Preferences/com.apple.springboard.plist', 'plist', 3);
  fixed('HomeDomain', 'Library/Preferences/com.apple.Preferences.plist', 'plist', 3);
  for (const app of apps) {
    fixed(appDomain(app), `Library/Preferences/${app.CFBundleIdentifier}.plist`, 'plist', 3);
    for (const g of app.GroupIdentifiers) {
      fixed(`AppDomainGroup-${g}`, `Library/Preferences/${g}.plist`, 'plist', 3);
    }
  }
  files.splice(fileCount);

  let image = 1;
  let attachment = 1;
  let recording = 1;
  let doc = 1;
  while (files.length < fileCount) {
    const r = rng.float();
    const t = stamp();
    if (r < 0.5) {
      files.push({
        domain: 'CameraRollDomain',
        relativePath: photoPath(image++, 'HEIC'),
        kind: 'random',
        weight: 2 * rng.pareto(1.6, 8),
        protectionClass: 3,
        ...t,
      });
    } else if (r < 0.6) {
      files.push({
        domain: 'CameraRollDomain',
        relativePath: photoPath(image++, 'MOV'),
        kind: 'random',
        weight: 25 * rng.pareto(1.2, 20),
        protectionClass: 3,
        ...t,
      });
    } else if (r < 0.7) {
      const a = attachment++;
      const bucket = (a * 37) % 256;
      files.push({
        domain: 'MediaDomain',
        relativePath: `Library/SMS/Attachments/${bucket.toString(16).padStart(2, '0')}/${String(a % 100).padStart(2, '0')}/${uuidFrom(rng)}/IMG_${String(4000 + a).padStart(4, '0')}.jpeg`,
        kind: 'random',
        weight: 0.6 * rng.pareto(1.5, 6),
        protectionClass: 3,
        ...t,
      });
    } else if (r < 0.75) {
      const d = new Date(t.mtime * 1000).toISOString();
      files.push({
        domain: 'MediaDomain',
        relativePath: `Media/Recordings/${d.slice(0, 10).replace(/-/g, '')} ${d.slice(11, 19).replace(/:/g, '')}-${recording++}.m4a`,
        kind: 'random',
        weight: rng.pareto(1.5, 6),
        protectionClass: 3,
        ...t,
      });
    } else {
      const app = rng.pick(apps);
      const inGroup = app.GroupIdentifiers.length > 0 && rng.int(0, 3) === 0;
      const domain = inGroup ? `AppDomainGroup-${app.GroupIdentifiers[0]!}` : appDomain(app);
      const word = rng.pick(['notes', 'trip', 'budget', 'export', 'draft', 'scan', 'log']);
      const n = doc++;
      const pdf = rng.int(0, 2) === 0;
      files.push({
        domain,
        relativePath: inGroup
          ? `Shared/${word}-${n}.txt`
          : pdf
            ? `Documents/Exports/${word}-${n}.pdf`
            : `Documents/${word}-${n}.txt`,
        kind: pdf ? 'random' : 'text',
        weight: (pdf ? 0.4 : 0.03) * rng.pareto(1.5, 6),
        protectionClass: rng.int(0, 4) === 0 ? 2 : 3,
        ...t,
      });
    }
  }

  const has = (domain: string, prefix: string): boolean =>
    files.some((f) => f.domain === domain && f.relativePath.startsWith(prefix));
  const symlinks: PlannedLink[] = [];
  const link = (domain: string, relativePath: string, target: string): void => {
    symlinks.push({ domain, relativePath, target, mtime: stamp().mtime });
  };
  if (has('CameraRollDomain', 'Media/DCIM/100APPLE/'))
    link('CameraRollDomain', 'Media/DCIM/latest', '100APPLE');
  if (has('HomeDomain', 'Library/SMS/sms.db'))
    link('HomeDomain', 'Library/SMS/current.db', 'sms.db');
  const firstApp = apps[0]!;
  if (has(appDomain(firstApp), 'Library/Preferences/')) {
    link(appDomain(firstApp), 'Library/Caches/prefs', '../Preferences');
  }

  const extraDirs: Array<{ domain: string; relativePath: string }> = [];
  for (const app of apps) {
    if (!files.some((f) => f.domain === appDomain(app))) continue;
    for (const d of ['Documents', 'Library', 'Library/Caches', 'Library/Preferences', 'tmp']) {
      extraDirs.push({ domain: appDomain(app), relativePath: d });
    }
  }

  return {
    apps,
    files,
    symlinks,
    extraDirs,
    nextImage: image,
    inodeBase: 100_000 + rng.int(0, 50_000),
    timeBase,
  };
}

/** Splits `total` bytes over `weights` proportionally; rounding leftovers go to the heaviest. */
export function assignSizes(weights: readonly number[], total: number): number[] {
  const budget = Math.max(0, Math.floor(total));
  const sum = weights.reduce((a, b) => a + b, 0);
  if (weights.length === 0) return [];
  if (sum <= 0) return weights.map(() => 0);
  const sizes = weights.map((w) => Math.floor((w / sum) * budget));
  const used = sizes.reduce((a, b) => a + b, 0);
  let heaviest = 0;
  weights.forEach((w, i) => {
    if (w > weights[heaviest]!) heaviest = i;
  });
  sizes[heaviest] = sizes[heaviest]! + (budget - used);
  return sizes;
}
