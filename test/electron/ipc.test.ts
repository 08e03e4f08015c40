/**
 * The main-process side of the renderer bridge (pure, no Electron): the sender check, the method
 * allow-list, every method's argument validation, and whole calls against a real Agent on a
 * temporary data folder (no USB, no Bonjour) whose backup folder holds a real store with two
 * snapshots: snapshot browsing over the bridge, and the desktop download (save-file: arguments,
 * sender, the dialog's answer, the bytes written, nothing left behind on failure). Also checks
 * the preload against it: the same channel names, and a compiled form that requires nothing but
 * `electron` (a sandboxed preload can require nothing else). Electron itself cannot run here, so
 * the preload is inspected, not run.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { existsSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import ts from 'typescript';
import { Agent } from '../../src/agent/agent';
import {
  BRIDGE_METHODS,
  type DiffSummary,
  type FilePage,
  type SaveFileResult,
  type SnapshotSummary,
} from '../../src/agent/types';
import { APP_PAGE_URL } from '../../src/electron/app-protocol';
import {
  CALL_CHANNEL,
  checkCall,
  checkSaveFile,
  checkSender,
  EVENT_CHANNEL,
  handleCall,
  MAX_CONFIG_KEYS,
  SAVE_FILE_CHANNEL,
  SNAPSHOT_CHECKS,
  type CallResult,
  type ExpectedSender,
  type SenderFacts,
} from '../../src/electron/ipc';
import { handleSaveFile, suggestedFileName } from '../../src/electron/save-file';
import { MAX_PAGE_SIZE } from '../../src/history/queries';
import { sampleEntries, UDID as STORE_UDID } from '../store/fixture';
import { commitSnapshots, startBareAgent, type BareAgent } from '../helpers/agent-server';

const UDID = '00008120-001A2B3C4D5E6F70';
const PAGE_URL = APP_PAGE_URL;
const EXPECTED: ExpectedSender = { webContentsId: 3, pageUrl: PAGE_URL };
const OURS: SenderFacts = { webContentsId: 3, frame: { url: PAGE_URL, isMainFrame: true } };

const refused = (fn: () => unknown, code: string, message: RegExp): void => {
  assert.throws(fn, (e: Error & { code?: string }) => {
    assert.equal(e.code, code);
    assert.match(e.message, message);
    return true;
  });
};

describe('bridge sender check', () => {
  it('accepts our page in our window, with any route', () => {
    checkSender(OURS, EXPECTED);
    checkSender(
      { ...OURS, frame: { url: `${PAGE_URL}#/device/${UDID}/settings`, isMainFrame: true } },
      EXPECTED,
    );
  });

  it('refuses other windows, frames and pages', () => {
    refused(() => checkSender({ ...OURS, webContentsId: 4 }, EXPECTED), 'FORBIDDEN', /not Mooring/);
    refused(() => checkSender({ ...OURS, frame: null }, EXPECTED), 'FORBIDDEN', /main frame/);
    refused(
      () => checkSender({ ...OURS, frame: { url: PAGE_URL, isMainFrame: false } }, EXPECTED),
      'FORBIDDEN',
      /main frame/,
    );
    assert.equal(PAGE_URL, 'app://mooring/index.html');
    for (const url of [
      'https://evil.example/dist/renderer/index.html',
      'file:///tmp/evil/index.html',
      // The page as it was served before the app:// scheme: a file:// page is not ours.
      'file:///opt/Mooring/resources/app.asar/dist/renderer/index.html',
      'app://evil/index.html',
      'app://mooring/ui/main.js',
      'http://mooring/index.html',
      'app://mooring/other.html',
      'data:text/html,<script>1</script>',
      'not a url',
    ]) {
      refused(
        () => checkSender({ ...OURS, frame: { url, isMainFrame: true } }, EXPECTED),
        'FORBIDDEN',
        /page/,
      );
    }
    refused(() => checkSender(OURS, undefined), 'FORBIDDEN', /no Mooring window/);
  });
});

describe('bridge call validation', () => {
  it('allows the bridged AgentService methods only: never subscribe or anything else', () => {
    for (const m of BRIDGE_METHODS) assert.equal(typeof Agent.prototype[m], 'function', m);
    refused(() => checkCall('subscribe', [() => 1]), 'USAGE', /unknown method "subscribe"/);
    for (const m of ['stop', 'constructor', '__proto__', 'toString', 'db', 42, null]) {
      refused(() => checkCall(m, []), 'USAGE', /unknown method/);
    }
  });

  it('checks argument lists', () => {
    refused(() => checkCall('status', 'x'), 'USAGE', /in an array/);
    refused(() => checkCall('status', [1]), 'USAGE', /expected 0 argument/);
    refused(() => checkCall('device', []), 'USAGE', /expected 1 argument/);
    refused(
      () => checkCall('setConfig', [{ a: '1' }, UDID, 3]),
      'USAGE',
      /expected 1 to 2 argument/,
    );
    refused(() => checkCall('status', [1, 2, 3, 4]), 'USAGE', /at most 3 arguments/);
    // A trailing undefined is an optional argument left out.
    assert.deepEqual(checkCall('getConfig', [undefined]), { method: 'getConfig', args: [] });
    assert.deepEqual(checkCall('getConfig', [UDID]), { method: 'getConfig', args: [UDID] });
  });

  it('checks the Wi-Fi switch and pairing', () => {
    assert.deepEqual(checkCall('setWifi', [UDID, true]).args, [UDID, true]);
    assert.deepEqual(checkCall('setWifi', [UDID, false]).args, [UDID, false]);
    refused(() => checkCall('setWifi', [UDID, 'true']), 'USAGE', /on: expected true or false/);
    refused(() => checkCall('setWifi', [UDID, 1]), 'USAGE', /on: expected true or false/);
    refused(() => checkCall('setWifi', [UDID]), 'USAGE', /expected 2 argument/);
    refused(() => checkCall('setWifi', ['x', true]), 'USAGE', /udid/);
    assert.deepEqual(checkCall('pair', [UDID]).args, [UDID]);
    refused(() => checkCall('pair', []), 'USAGE', /expected 1 argument/);
  });

  it('checks UDIDs', () => {
    assert.deepEqual(checkCall('backupNow', [UDID]).args, [UDID]);
    assert.deepEqual(checkCall('cancel', ['a'.repeat(40)]).args, ['a'.repeat(40)]);
    for (const bad of ['', '../../etc', `${UDID}\n`, 'x'.repeat(10_000), 5, { udid: UDID }]) {
      refused(() => checkCall('device', [bad]), 'USAGE', /udid: expected a UDID/);
    }
  });

  it('checks history and attempts queries and bounds them', () => {
    assert.deepEqual(
      checkCall('history', [
        { udid: UDID, severity: 'error', kind: 'backup', before: 9, limit: 20 },
      ]).args,
      [{ udid: UDID, severity: 'error', kind: 'backup', before: 9, limit: 20 }],
    );
    assert.deepEqual(checkCall('attempts', [{ outcome: 'failure' }]).args, [
      { outcome: 'failure' },
    ]);
    refused(
      () => checkCall('history', [{ limit: MAX_PAGE_SIZE + 1 }]),
      'USAGE',
      /limit: expected an integer from 1 to 1000/,
    );
    refused(() => checkCall('history', [{ limit: 0 }]), 'USAGE', /limit/);
    refused(() => checkCall('history', [{ before: 1.5 }]), 'USAGE', /before/);
    refused(
      () => checkCall('history', [{ severity: 'fatal' }]),
      'USAGE',
      /severity: expected one of info, warning, error/,
    );
    refused(() => checkCall('history', [{ kind: 'x' }]), 'USAGE', /kind/);
    refused(() => checkCall('history', [{ where: '1=1' }]), 'USAGE', /unknown field "where"/);
    refused(() => checkCall('history', [[1]]), 'USAGE', /expected an object/);
    refused(() => checkCall('attempts', [{ outcome: 'great' }]), 'USAGE', /outcome/);
    refused(() => checkCall('markRead', [{ upTo: -1 }]), 'USAGE', /upTo/);
    assert.deepEqual(checkCall('markRead', [{ udid: UDID, upTo: 5 }]).args, [
      { udid: UDID, upTo: 5 },
    ]);
    assert.deepEqual(checkCall('markRead', [{ udid: UDID, ids: [3, 4] }]).args, [
      { udid: UDID, ids: [3, 4] },
    ]);
    refused(() => checkCall('markRead', [{ ids: [1, 0] }]), 'USAGE', /ids: expected an integer/);
    refused(() => checkCall('markRead', [{ ids: 'all' }]), 'USAGE', /ids: expected an array/);
    refused(
      () => checkCall('markRead', [{ ids: new Array(1001).fill(1) }]),
      'USAGE',
      /at most 1000 ids/,
    );
    assert.deepEqual(checkCall('readLog', [{ maxBytes: 4096 }]).args, [{ maxBytes: 4096 }]);
    assert.deepEqual(checkCall('readLog', [{}]).args, [{}]);
    refused(
      () => checkCall('readLog', [{ maxBytes: 0 }]),
      'USAGE',
      /maxBytes: expected an integer from 1 to 1048576/,
    );
    refused(() => checkCall('readLog', [{ path: '/etc/passwd' }]), 'USAGE', /unknown field "path"/);
  });

  it('checks settings maps: names, string or null values, sizes', () => {
    assert.deepEqual(checkCall('setConfig', [{ interval: '12h', window: null }, UDID]).args, [
      { interval: '12h', window: null },
      UDID,
    ]);
    refused(() => checkCall('setConfig', [{}]), 'USAGE', /no settings given/);
    refused(
      () => checkCall('setConfig', [{ interval: 12 }]),
      'USAGE',
      /interval: expected a string/,
    );
    refused(
      () => checkCall('setConfig', [{ interval: 'x'.repeat(5000) }]),
      'USAGE',
      /at most 4096/,
    );
    refused(() => checkCall('setConfig', [{ 'Bad Key': '1' }]), 'USAGE', /not a setting name/);
    const many = Object.fromEntries(
      Array.from({ length: MAX_CONFIG_KEYS + 1 }, (_, i) => [`k${i}`, '1']),
    );
    refused(() => checkCall('setConfig', [many]), 'USAGE', /at most 32/);
    refused(
      () => checkCall('setConfig', [new Map([['interval', '1h']])]),
      'USAGE',
      /expected an object/,
    );
  });
});

describe('snapshot browsing arguments', () => {
  const ID = '20260115T090000Z';
  it('snapshots, files and diff are bridge methods; openFile is not', () => {
    assert.deepEqual(checkCall('snapshots', [UDID]), { method: 'snapshots', args: [UDID] });
    assert.deepEqual(checkCall('files', [UDID, 'latest', { limit: 5 }]), {
      method: 'files',
      args: [UDID, 'latest', { limit: 5 }],
    });
    assert.deepEqual(checkCall('diff', [UDID, ID, 'latest']).args, [UDID, ID, 'latest']);
    refused(() => checkCall('files', [UDID, '../..']), 'USAGE', /snapshot: expected a snapshot id/);
    refused(() => checkCall('diff', [UDID, ID]), 'USAGE', /diff: expected 3 argument/);
    refused(() => checkCall('openFile', [UDID, ID, 'HomeDomain', 'a']), 'USAGE', /unknown method/);
  });

  it('accepts well-formed calls', () => {
    assert.deepEqual(SNAPSHOT_CHECKS.snapshots([UDID]), [UDID]);
    assert.deepEqual(SNAPSHOT_CHECKS.diff([UDID, ID, `${ID}-2`]), [UDID, ID, `${ID}-2`]);
    assert.deepEqual(
      SNAPSHOT_CHECKS.files([
        UDID,
        'latest',
        { domain: 'CameraRollDomain', pattern: '*.jpg', limit: 200, after: 'abc_-1' },
      ]),
      [
        UDID,
        'latest',
        { domain: 'CameraRollDomain', pattern: '*.jpg', limit: 200, after: 'abc_-1' },
      ],
    );
    assert.deepEqual(SNAPSHOT_CHECKS.files([UDID, ID]), [UDID, ID, {}]);
  });

  it('refuses bad ids, queries and sizes', () => {
    refused(
      () => SNAPSHOT_CHECKS.diff([UDID, '../x', ID]),
      'USAGE',
      /from: expected a snapshot id/,
    );
    refused(
      () => SNAPSHOT_CHECKS.files([UDID, '2026']),
      'USAGE',
      /snapshot: expected a snapshot id/,
    );
    refused(() => SNAPSHOT_CHECKS.files([UDID, ID, { limit: 1001 }]), 'USAGE', /limit/);
    refused(
      () => SNAPSHOT_CHECKS.files([UDID, ID, { pattern: 'x'.repeat(513) }]),
      'USAGE',
      /pattern/,
    );
    refused(() => SNAPSHOT_CHECKS.files([UDID, ID, { sql: 'x' }]), 'USAGE', /unknown field "sql"/);
    refused(() => SNAPSHOT_CHECKS.snapshots(['nope']), 'USAGE', /udid/);
  });
});

describe('save-file arguments', () => {
  const ID = '20260115T090000Z';
  it('accepts udid, snapshot, domain and path', () => {
    assert.deepEqual(checkSaveFile([UDID, ID, 'HomeDomain', 'Library/Prefs/a b.plist']), {
      udid: UDID,
      snapshotId: ID,
      domain: 'HomeDomain',
      relativePath: 'Library/Prefs/a b.plist',
    });
    assert.equal(checkSaveFile([UDID, 'latest', 'HomeDomain', 'x']).snapshotId, 'latest');
  });

  it('refuses anything else, saying what is wrong', () => {
    refused(() => checkSaveFile(UDID), 'USAGE', /in an array/);
    refused(() => checkSaveFile({ 0: UDID }), 'USAGE', /in an array/);
    refused(() => checkSaveFile([UDID, ID, 'HomeDomain']), 'USAGE', /expected 4 argument/);
    refused(() => checkSaveFile([UDID, ID, 'HomeDomain', 'a', 'b']), 'USAGE', /expected 4/);
    refused(() => checkSaveFile(['../x', ID, 'HomeDomain', 'a']), 'USAGE', /udid/);
    refused(() => checkSaveFile([UDID, 'x/../y', 'HomeDomain', 'a']), 'USAGE', /snapshot/);
    refused(() => checkSaveFile([UDID, ID, '', 'a']), 'USAGE', /domain: expected text/);
    refused(() => checkSaveFile([UDID, ID, 'x'.repeat(513), 'a']), 'USAGE', /domain/);
    refused(() => checkSaveFile([UDID, ID, 'HomeDomain', '']), 'USAGE', /path: expected text/);
    refused(() => checkSaveFile([UDID, ID, 'HomeDomain', 'p'.repeat(4097)]), 'USAGE', /path/);
    refused(() => checkSaveFile([UDID, ID, 'HomeDomain', ['a']]), 'USAGE', /path/);
    refused(() => checkSaveFile([UDID, ID, { toString: () => 'x' }, 'a']), 'USAGE', /domain/);
  });

  it('suggests a plain file name for the save dialog', () => {
    assert.equal(suggestedFileName('résumé "v2".txt'), 'résumé _v2_.txt');
    assert.equal(suggestedFileName('a/b/c.jpg'), 'c.jpg');
    assert.equal(suggestedFileName('x\\..\\y:z\u0000.txt'), 'x_.._y_z_.txt');
    assert.equal(suggestedFileName('..'), 'file');
    assert.equal(suggestedFileName(''), 'file');
    assert.equal(suggestedFileName('n'.repeat(300)).length, 200);
  });
});

describe('snapshot browsing and saving through the bridge, against a real agent', () => {
  const NAMED = {
    domain: 'AppDomain-com.example.notes',
    relativePath: 'Documents/résumé "v2".txt',
  };
  let t: BareAgent;
  let tmp: string;
  let agent: Agent;
  let ids: string[];
  const call = (method: unknown, args: unknown, sender = OURS): Promise<CallResult> =>
    handleCall(agent, sender, EXPECTED, method, args);
  const value = <T>(r: CallResult): T => {
    assert.equal(r.ok, true, JSON.stringify(r));
    return (r as { value: T }).value;
  };

  before(async () => {
    t = await startBareAgent('mooring-ipc-snap-', {
      prepare: async (dir) => {
        const backupDir = path.join(dir, 'backups');
        const v1 = [...sampleEntries(6), { ...NAMED, content: 'first words' }];
        const v2 = v1.map((e) =>
          e.relativePath === NAMED.relativePath ? { ...e, content: 'second, longer words' } : e,
        );
        ids = await commitSnapshots(backupDir, STORE_UDID, [v1, v2]);
        return { dataDir: path.join(dir, 'data'), backupDir };
      },
    });
    ({ tmp, agent } = t);
  });
  after(() => t?.close());

  it('lists snapshots, pages files and diffs as the agent does', async () => {
    const list = value<SnapshotSummary[]>(await call('snapshots', [STORE_UDID]));
    assert.deepEqual(
      list.map((x) => x.id),
      ids,
    );
    assert.deepEqual(list, await agent.snapshots(STORE_UDID));
    const page = value<FilePage>(
      await call('files', [STORE_UDID, 'latest', { domain: 'AppDomain-*', limit: 10 }]),
    );
    assert.deepEqual(
      page.items.map((f) => [f.domain, f.relativePath]),
      [[NAMED.domain, NAMED.relativePath]],
    );
    const d = value<DiffSummary>(await call('diff', [STORE_UDID, ids[0], ids[1]]));
    assert.deepEqual([d.added, d.removed, d.changed], [0, 0, 1]);
    // The agent's own refusal comes back with its code and words.
    const missing = await call('files', [STORE_UDID, '20200101T000000Z']);
    assert.equal(missing.ok, false);
    assert.match(!missing.ok ? missing.error.message : '', /20200101T000000Z/);
  });

  it('saves a file where the dialog says, with its bytes, and leaves nothing else there', async () => {
    const dir = path.join(tmp, 'saved');
    await mkdir(dir);
    const asked: string[] = [];
    const r = await handleSaveFile(
      agent,
      OURS,
      EXPECTED,
      [STORE_UDID, ids[0], NAMED.domain, NAMED.relativePath],
      async (name) => {
        asked.push(name);
        return path.join(dir, 'copy.txt');
      },
    );
    assert.deepEqual(asked, ['résumé _v2_.txt']);
    assert.deepEqual(value<SaveFileResult>(r), {
      saved: true,
      path: path.join(dir, 'copy.txt'),
      bytes: Buffer.byteLength('first words'),
    });
    assert.equal(await readFile(path.join(dir, 'copy.txt'), 'utf8'), 'first words');
    // Over an existing file: replaced whole by the latest snapshot's version.
    const again = await handleSaveFile(
      agent,
      OURS,
      EXPECTED,
      [STORE_UDID, 'latest', NAMED.domain, NAMED.relativePath],
      async () => path.join(dir, 'copy.txt'),
    );
    assert.equal(value<SaveFileResult>(again).saved, true);
    assert.equal(await readFile(path.join(dir, 'copy.txt'), 'utf8'), 'second, longer words');
    assert.deepEqual(await readdir(dir), ['copy.txt']);
  });

  it('writes nothing when the person cancels the dialog', async () => {
    const r = await handleSaveFile(
      agent,
      OURS,
      EXPECTED,
      [STORE_UDID, 'latest', NAMED.domain, NAMED.relativePath],
      async () => undefined,
    );
    assert.deepEqual(value<SaveFileResult>(r), { saved: false, path: null, bytes: 0 });
  });

  it('a failed write leaves no partial file and keeps the file it would replace', async () => {
    const dir = path.join(tmp, 'failing');
    await mkdir(dir);
    await writeFile(path.join(dir, 'keep.txt'), 'precious');
    // The temporary file's name is taken by a folder: the copy cannot even start.
    await mkdir(path.join(dir, '.keep.txt.mooring-part'));
    const r = await handleSaveFile(
      agent,
      OURS,
      EXPECTED,
      [STORE_UDID, 'latest', NAMED.domain, NAMED.relativePath],
      async () => path.join(dir, 'keep.txt'),
    );
    assert.equal(r.ok, false);
    assert.equal(!r.ok && r.error.code, 'IO');
    assert.match(!r.ok ? r.error.message : '', /^Could not save keep\.txt: /);
    assert.equal(await readFile(path.join(dir, 'keep.txt'), 'utf8'), 'precious');
    assert.deepEqual((await readdir(dir)).sort(), ['.keep.txt.mooring-part', 'keep.txt']);
    // Into a folder that does not exist: refused, nothing created.
    const gone = await handleSaveFile(
      agent,
      OURS,
      EXPECTED,
      [STORE_UDID, 'latest', NAMED.domain, NAMED.relativePath],
      async () => path.join(tmp, 'no-such-dir', 'x.txt'),
    );
    assert.equal(!gone.ok && gone.error.code, 'IO');
    assert.equal(existsSync(path.join(tmp, 'no-such-dir')), false);
  });

  it('refuses bad arguments, strangers and missing files before any dialog opens', async () => {
    let dialogs = 0;
    const choose = async (): Promise<string> => {
      dialogs++;
      return path.join(tmp, 'never.txt');
    };
    const bad = await handleSaveFile(
      agent,
      OURS,
      EXPECTED,
      [STORE_UDID, 'latest', 'HomeDomain'],
      choose,
    );
    assert.equal(!bad.ok && bad.error.code, 'USAGE');
    const stranger = await handleSaveFile(
      agent,
      { ...OURS, frame: { url: 'file:///tmp/evil.html', isMainFrame: true } },
      EXPECTED,
      [STORE_UDID, 'latest', NAMED.domain, NAMED.relativePath],
      choose,
    );
    assert.deepEqual(stranger, {
      ok: false,
      error: { code: 'FORBIDDEN', message: 'message from a page that is not Mooring' },
    });
    const missing = await handleSaveFile(
      agent,
      OURS,
      EXPECTED,
      [STORE_UDID, 'latest', 'HomeDomain', 'Library/not-there.txt'],
      choose,
    );
    assert.equal(missing.ok, false);
    assert.match(!missing.ok ? missing.error.message : '', /not-there\.txt/);
    const folder = await handleSaveFile(
      agent,
      OURS,
      EXPECTED,
      [STORE_UDID, 'latest', NAMED.domain, '../../etc/passwd'],
      choose,
    );
    assert.equal(folder.ok, false);
    assert.equal(dialogs, 0);
    assert.equal(existsSync(path.join(tmp, 'never.txt')), false);
  });
});

describe('bridge calls against a real agent', () => {
  let t: BareAgent;
  let agent: Agent;
  const call = (method: unknown, args: unknown, sender = OURS) =>
    handleCall(agent, sender, EXPECTED, method, args);

  before(async () => {
    t = await startBareAgent('mooring-ipc-');
    agent = t.agent;
  });
  after(() => t?.close());

  it('answers status and devices', async () => {
    const r = await call('status', []);
    assert.equal(r.ok, true);
    assert.equal(r.ok && (r.value as { dataDir: string }).dataDir, agent.status().dataDir);
    assert.deepEqual(await call('devices', []), { ok: true, value: [] });
    assert.deepEqual(await call('device', [UDID]), { ok: true, value: undefined });
  });

  it("stores settings and reports the agent's own refusal with its code", async () => {
    const set = await call('setConfig', [{ interval: '12h' }]);
    assert.equal(set.ok && (set.value as Record<string, string>).interval, '12h');
    assert.equal(agent.getConfig().interval, '12h');
    const bad = await call('setConfig', [{ interval: 'soon' }]);
    assert.equal(bad.ok, false);
    assert.equal(!bad.ok && bad.error.code, 'USAGE');
    assert.match(!bad.ok ? bad.error.message : '', /interval/);
    assert.equal(agent.getConfig().interval, '12h');
  });

  it('pause and resume reach the agent', async () => {
    assert.deepEqual(await call('pause', []), { ok: true, value: undefined });
    assert.equal(agent.status().paused, true);
    await call('resume', []);
    assert.equal(agent.status().paused, false);
  });

  it('a refused sender or call never reaches the agent', async () => {
    const r = await call('pause', [], {
      ...OURS,
      frame: { url: 'https://evil.example/', isMainFrame: true },
    });
    assert.deepEqual(r, {
      ok: false,
      error: { code: 'FORBIDDEN', message: 'message from a page that is not Mooring' },
    });
    assert.equal(agent.status().paused, false);
    const u = await call('backupNow', ['../x']);
    assert.equal(!u.ok && u.error.code, 'USAGE');
  });

  it("answers a backup request for an unknown device with the agent's result", async () => {
    const r = await call('backupNow', [UDID]);
    assert.equal(r.ok, true);
    const v = r.ok ? (r.value as { started: boolean; code: string }) : undefined;
    assert.equal(v?.started, false);
    assert.equal(v?.code, 'UNKNOWN_DEVICE');
  });

  it("passes the agent's own errors through with their code and message", async () => {
    // An agent that has stopped (its database closed) refuses with a MooringError.
    const dir = await mkdtemp(path.join(os.tmpdir(), 'mooring-ipc-stopped-'));
    const stopped = await Agent.open({
      dataDir: dir,
      usbmuxd: null,
      mdns: null,
      systemPairRecordDir: null,
    });
    await stopped.stop();
    const seen: unknown[] = [];
    const r = await handleCall(stopped, OURS, EXPECTED, 'status', [], (e) => seen.push(e));
    await rm(dir, { recursive: true, force: true });
    assert.equal(r.ok, false);
    assert.equal(!r.ok && r.error.code, 'USAGE');
    assert.match(!r.ok ? r.error.message : '', /history database .* is closed/);
    assert.deepEqual(seen, [], 'not an internal error');
  });
});

describe('preload', () => {
  const src = path.join(__dirname, '..', '..', 'src', 'electron', 'preload.ts');

  it('uses the channels main listens on', async () => {
    const text = await readFile(src, 'utf8');
    assert.match(text, new RegExp(`const CALL_CHANNEL = '${CALL_CHANNEL}'`));
    assert.match(text, new RegExp(`const EVENT_CHANNEL = '${EVENT_CHANNEL}'`));
    assert.match(text, new RegExp(`const SAVE_FILE_CHANNEL = '${SAVE_FILE_CHANNEL}'`));
    assert.match(text, /exposeInMainWorld\('mooring', bridge\)/);
    assert.equal(text.match(/exposeInMainWorld/g)?.length, 1, 'exposes one thing');
  });

  it('compiles to a script that requires only electron (sandboxed preloads can require nothing else)', async () => {
    const out = ts.transpileModule(await readFile(src, 'utf8'), {
      compilerOptions: {
        module: ts.ModuleKind.CommonJS,
        target: ts.ScriptTarget.ES2022,
        esModuleInterop: true,
      },
    }).outputText;
    const requires = [...out.matchAll(/require\(["']([^"']+)["']\)/g)].map((m) => m[1]);
    assert.deepEqual(requires, ['electron']);
  });
});
