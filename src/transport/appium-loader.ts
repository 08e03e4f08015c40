/**
 * Loads appium-ios-device's usbmux module (D2) without paying for the parts it never uses.
 * @appium/support's index requires every helper up front (zip with archiver, mjpeg, image-util,
 * net with axios, npm, doctor…), and appium-ios-device's utilities require its developer-image
 * lister (axios again): ~0.5 s of every `mooring backup`'s start-up here. While the usbmux module
 * loads, those requires get stand-ins that load the real module on first use — deferred, not
 * removed, so anything that does use them still works.
 */
import Module from 'node:module';

type AppiumUsbmuxModule = typeof import('appium-ios-device/build/lib/usbmux');

/**
 * Exports a parent reads while it loads (index.js builds its default export from `fs_1.fs` and
 * `mkdirp_1.mkdirp`), with what each is: it gets a stand-in of its own, so that read does not
 * load the module either.
 */
type Members = Readonly<Record<string, 'object' | 'function'>>;

/** Requires deferred, by the module that makes them. */
const DEFERRED: ReadonlyArray<{ parent: RegExp; requests: ReadonlyMap<string, Members> }> = [
  {
    // The @appium/support helpers usbmuxd never needs, as its index requires them. Its fs
    // (glob, klaw, which, package.json readers) serves only file helpers, and util (bluebird,
    // semver, lockfile) only the frame splitter's error messages: ~0.08 s between them. The
    // usbmux module touches fs to test a default socket path, which Mooring never leaves to it.
    parent: /[\\/]@appium[\\/]support[\\/]build[\\/]lib[\\/]index\.js$/,
    requests: new Map([
      ...[
        './zip',
        './mjpeg',
        './image-util',
        './net',
        './console',
        './doctor',
        './env',
        './node',
        './npm',
        './process',
        './system',
        './tempdir',
        './timing',
      ].map((r): [string, Members] => [r, {}]),
      ['./fs', { fs: 'object' }],
      ['./mkdirp', { mkdirp: 'function' }],
      ['./util', { cancellableDelay: 'function' }],
    ]),
  },
  {
    // The same fs and util, and the package.json readers, as util and plist require them: used
    // only inside their file helpers and messages, not by the plist parsing usbmuxd needs.
    parent: /[\\/]@appium[\\/]support[\\/]build[\\/]lib[\\/](util|plist)\.js$/,
    requests: new Map([
      ['./fs', {}],
      ['./internal', {}],
      ['./util', {}],
    ]),
  },
  {
    parent: /[\\/]appium-ios-device[\\/]build[\\/]lib[\\/]utilities\.js$/,
    requests: new Map([['./imagemounter/utils/list_developer_image', {}]]),
  },
];

/** The members to stand in for, when this require is deferred. */
function deferredMembers(request: string, parentFile: string): Members | undefined {
  for (const d of DEFERRED) {
    const members = d.requests.get(request);
    if (members && d.parent.test(parentFile)) return members;
  }
  return undefined;
}

type LoadFn = (
  request: string,
  parent: { filename?: string } | undefined,
  isMain: boolean,
) => unknown;

/** Module._load is not public API; without it, everything loads eagerly (slower, same result). */
const moduleInternals = Module as unknown as { _load?: LoadFn };

let loaded: AppiumUsbmuxModule | undefined;

export function loadAppiumUsbmux(): AppiumUsbmuxModule {
  if (loaded) return loaded;
  const original = moduleInternals._load;
  if (typeof original === 'function') {
    moduleInternals._load = function (request, parent, isMain) {
      const members = deferredMembers(request, parent?.filename ?? '');
      if (members) return deferred(() => original.call(Module, request, parent, isMain), members);
      return original.call(Module, request, parent, isMain);
    };
  }
  try {
    // A plain require: the deep path is a directory (index.js), which ESM `import()` would not resolve.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    loaded = require('appium-ios-device/build/lib/usbmux') as AppiumUsbmuxModule;
  } finally {
    if (typeof original === 'function') moduleInternals._load = original;
  }
  return loaded;
}

/**
 * A module namespace (or one of its `members`) that loads on first touch. `__esModule` is
 * answered without loading (all are compiled ES modules), so an `__importStar` takes the stand-in
 * as it is. A function's stand-in can be called.
 */
function deferred(
  load: () => unknown,
  members: Members = {},
  kind: keyof Members = 'object',
): object {
  let real: object | undefined;
  const get = (): object => (real ??= load() as object);
  const memberStandIns = new Map(
    Object.entries(members).map(
      ([m, k]) => [m, deferred(() => Reflect.get(get(), m) as unknown, {}, k)] as const,
    ),
  );
  return new Proxy(kind === 'function' ? function standIn() {} : {}, {
    apply: (_t, self, args) => Reflect.apply(get() as (...a: unknown[]) => unknown, self, args),
    get: (_t, key) =>
      key === '__esModule'
        ? true
        : typeof key === 'string' && memberStandIns.has(key)
          ? memberStandIns.get(key)
          : Reflect.get(get(), key),
    has: (_t, key) => Reflect.has(get(), key),
    ownKeys: () => Reflect.ownKeys(get()),
    getOwnPropertyDescriptor: (_t, key) => {
      const d = Reflect.getOwnPropertyDescriptor(get(), key);
      // A proxy may not report a property as non-configurable that its target lacks.
      return d && { ...d, configurable: true };
    },
  });
}
