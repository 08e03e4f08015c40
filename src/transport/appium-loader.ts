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
 * How the requiring module uses what it is given, which decides what its stand-in must be:
 * - 'properties': it only reads named properties (a compiled ES module; or a CommonJS one taken
 *   whole or through `__importStar`): the stand-in says `__esModule` is true, so TypeScript's
 *   import helpers hand it on as it is, and the first property read loads the module;
 * - 'call': it calls a CommonJS module's export, taken through `__importDefault`: the stand-in
 *   says `__esModule` is false, so the helper wraps it as `{ default }`, and it is a function
 *   whose first call loads the module.
 */
type Use = 'properties' | 'call';

/** Requires deferred, by the module that makes them (docs/BENCHMARKS.md, tenth and eighteenth passes). */
const DEFERRED: ReadonlyArray<{ parent: RegExp; requests: ReadonlyMap<string, Use> }> = [
  {
    // The @appium/support helpers usbmuxd never needs, as its index requires them. (Not './plist':
    // every usbmuxd message is a plist, so deferring it would only move its load to the first one.)
    parent: /[\\/]@appium[\\/]support[\\/]build[\\/]lib[\\/]index\.js$/,
    requests: uses('properties', [
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
    ]),
  },
  {
    // Its fs and util helpers must load (the index reads them), not the packages they wrap.
    parent: /[\\/]@appium[\\/]support[\\/]build[\\/]lib[\\/]fs\.js$/,
    requests: new Map([
      ...uses('properties', ['glob']),
      ...uses('call', ['klaw', 'sanitize-filename', 'which']),
    ]),
  },
  {
    parent: /[\\/]@appium[\\/]support[\\/]build[\\/]lib[\\/]util\.js$/,
    requests: new Map([
      ...uses('properties', ['semver', 'shell-quote', 'lockfile', 'uuid']),
      ...uses('call', ['pluralize']),
    ]),
  },
  {
    parent: /[\\/]@appium[\\/]support[\\/]build[\\/]lib[\\/]internal[\\/]read-package\.js$/,
    requests: uses('call', ['normalize-package-data']),
  },
  {
    parent: /[\\/]appium-ios-device[\\/]build[\\/]lib[\\/]utilities\.js$/,
    requests: uses('properties', ['./imagemounter/utils/list_developer_image']),
  },
];

function uses(use: Use, requests: string[]): Map<string, Use> {
  return new Map(requests.map((r) => [r, use]));
}

function deferredUse(request: string, parentFile: string): Use | undefined {
  for (const d of DEFERRED) {
    const use = d.requests.get(request);
    if (use !== undefined && d.parent.test(parentFile)) return use;
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
      const use = deferredUse(request, parent?.filename ?? '');
      if (use !== undefined)
        return deferred(use, () => original.call(Module, request, parent, isMain));
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

/** A stand-in for a module that loads it on first touch (see Use). */
function deferred(use: Use, load: () => unknown): object {
  let real: object | undefined;
  const get = (): object => (real ??= load() as object);
  // An arrow function has no non-configurable own properties, so the proxy may report the
  // module's properties as its own; a plain object suffices where nothing calls it.
  const target = use === 'call' ? (): undefined => undefined : {};
  return new Proxy(target, {
    get: (_t, key) => (key === '__esModule' ? use === 'properties' : Reflect.get(get(), key)),
    has: (_t, key) => Reflect.has(get(), key),
    ownKeys: () => Reflect.ownKeys(get()),
    getOwnPropertyDescriptor: (_t, key) => {
      const d = Reflect.getOwnPropertyDescriptor(get(), key);
      // A proxy may not report a property as non-configurable that its target lacks.
      return d && { ...d, configurable: true };
    },
    apply: (_t, self, args) => Reflect.apply(get() as (...a: unknown[]) => unknown, self, args),
  });
}
