import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '..', '..');

/** Runs `body` in a fresh node (empty module cache) and returns what it printed as JSON. */
function fresh(body: string): Record<string, unknown> {
  const out = execFileSync(process.execPath, ['--import', 'tsx', '-e', body], {
    cwd: ROOT,
    encoding: 'utf8',
  });
  return JSON.parse(out.trim().split('\n').pop()!) as Record<string, unknown>;
}

const LOADED = `(name) => Object.keys(require.cache).some((f) => f.includes('/node_modules/' + name + '/'))`;

test('the usbmux module loads without zip (archiver), mjpeg, image-util, net, npm, doctor, env, the image lister (axios); they load when used', () => {
  const r = fresh(`
    const loaded = ${LOADED};
    const { loadAppiumUsbmux } = require('./src/transport/appium-loader');
    const mux = loadAppiumUsbmux();
    const sub = (n) => Object.keys(require.cache).some((f) => f.endsWith('/@appium/support/build/lib/' + n + '.js'));
    const lister = () => Object.keys(require.cache).some((f) => f.endsWith('/imagemounter/utils/list_developer_image.js'));
    const state = () => ({ archiver: loaded('archiver'), axios: loaded('axios'), zip: sub('zip'), mjpeg: sub('mjpeg'), imageUtil: sub('image-util'), net: sub('net'), npm: sub('npm'), doctor: sub('doctor'), env: sub('env'), lister: lister() });
    const before = state();
    const support = require('@appium/support');
    const zipFn = typeof support.zip.toInMemoryZip;
    const netFn = typeof support.net.downloadFile;
    const keys = Object.keys(support.mjpeg).length + Object.keys(support.imageUtil).length + Object.keys(support.doctor).length + Object.keys(support.env).length;
    const npm = typeof support.npm;
    console.log(JSON.stringify({
      usbmux: typeof mux.Usbmux, same: loadAppiumUsbmux() === mux, before,
      after: state(), zipFn, netFn, keys, npm,
    }));
  `);
  assert.equal(r.usbmux, 'function');
  assert.equal(r.same, true);
  const none = {
    archiver: false,
    axios: false,
    zip: false,
    mjpeg: false,
    imageUtil: false,
    net: false,
    npm: false,
    doctor: false,
    env: false,
    lister: false,
  };
  assert.deepEqual(r.before, none);
  assert.equal(r.zipFn, 'function');
  assert.equal(r.netFn, 'function');
  assert.equal(r.npm, 'object');
  assert.ok((r.keys as number) > 0);
  // The image lister is only reached through a download of a developer image, which a test
  // cannot make; its stand-in is the same as the others'.
  const all = Object.fromEntries(Object.keys(none).map((k) => [k, k !== 'lister']));
  assert.deepEqual(r.after, all);
});

test('the module loader is left as it was, and other requires are untouched', () => {
  const r = fresh(`
    const Module = require('node:module');
    const original = Module._load;
    const { loadAppiumUsbmux } = require('./src/transport/appium-loader');
    loadAppiumUsbmux();
    const loaded = ${LOADED};
    require('archiver');
    console.log(JSON.stringify({ restored: Module._load === original, archiver: loaded('archiver') }));
  `);
  assert.deepEqual(r, { restored: true, archiver: true });
});

test('the packages behind its fs and util helpers load when a helper is first used, and work through their stand-ins', () => {
  const r = fresh(`
    const loaded = ${LOADED};
    const names = ['glob', 'klaw', 'sanitize-filename', 'which', 'semver', 'lockfile', 'uuid', 'pluralize', 'normalize-package-data'];
    const state = () => Object.fromEntries(names.map((n) => [n, loaded(n)]));
    const { loadAppiumUsbmux } = require('./src/transport/appium-loader');
    loadAppiumUsbmux();
    const before = state();
    const { fs, util } = require('@appium/support');
    (async () => {
    const used = {
      // __importStar / plain requires: read as namespaces
      uuid: /^[0-9a-f-]{36}$/.test(util.uuidV1()),
      semver: util.coerceVersion('1.2'),
      lockfile: typeof util.getLockFileGuard(require('node:os').tmpdir() + '/mooring-loader-test.lock'),
      glob: (await fs.glob('*.json', { cwd: process.cwd() })).includes('package.json'),
      // __importDefault: called
      pluralize: util.pluralize('file', 2),
      sanitize: fs.sanitizeName('a/b:c'),
      which: require('node:path').basename(await fs.which('node')),
    };
    console.log(JSON.stringify({ before, used, after: state() }));
    })();
  `);
  assert.deepEqual(
    r.before,
    Object.fromEntries(Object.keys(r.before as object).map((k) => [k, false])),
    'none loaded with the usbmux module',
  );
  assert.deepEqual(r.used, {
    uuid: true,
    semver: '1.2.0',
    lockfile: 'function',
    glob: true,
    pluralize: 'files',
    sanitize: 'abc',
    which: 'node',
  });
  const after = r.after as Record<string, boolean>;
  for (const n of [
    'uuid',
    'semver',
    'lockfile',
    'glob',
    'pluralize',
    'sanitize-filename',
    'which',
  ]) {
    assert.equal(after[n], true, `${n} loaded once used`);
  }
});
