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

/** Requires deferred, by the module that makes them. */
const DEFERRED: ReadonlyArray<{ parent: RegExp; requests: ReadonlySet<string> }> = [
  {
    // The @appium/support helpers usbmuxd never needs, as its index requires them.
    parent: /[\\/]@appium[\\/]support[\\/]build[\\/]lib[\\/]index\.js$/,
    requests: new Set([
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
    parent: /[\\/]appium-ios-device[\\/]build[\\/]lib[\\/]utilities\.js$/,
    requests: new Set(['./imagemounter/utils/list_developer_image']),
  },
];

function isDeferred(request: string, parentFile: string): boolean {
  return DEFERRED.some((d) => d.requests.has(request) && d.parent.test(parentFile));
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
      if (isDeferred(request, parent?.filename ?? '')) {
        return deferred(() => original.call(Module, request, parent, isMain));
      }
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
 * A module namespace that loads on first touch. `__esModule` is answered without loading (all
 * are compiled ES modules), so an `__importStar` takes the stand-in as it is.
 */
function deferred(load: () => unknown): object {
  let real: object | undefined;
  const get = (): object => (real ??= load() as object);
  return new Proxy(
    {},
    {
      get: (_t, key) => (key === '__esModule' ? true : Reflect.get(get(), key)),
      has: (_t, key) => Reflect.has(get(), key),
      ownKeys: () => Reflect.ownKeys(get()),
      getOwnPropertyDescriptor: (_t, key) => {
        const d = Reflect.getOwnPropertyDescriptor(get(), key);
        // A proxy may not report a property as non-configurable that its target lacks.
        return d && { ...d, configurable: true };
      },
    },
  );
}
