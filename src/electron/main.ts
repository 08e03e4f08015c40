/**
 * The desktop app's main process: thin glue between Electron and the agent, which runs in this
 * process (no HTTP). Everything with a decision in it lives in pure modules beside this one
 * (tray-menu, tray-state, desktop-notices, ipc) and is unit-tested there; this file only wires
 * Electron's objects to them.
 *
 * Electron cannot run on our build machines: this file is type-checked against Electron's bundled
 * .d.ts and packaged by test/electron/package.test.ts with a stand-in Electron, never executed.
 *
 * Security, as Electron recommends: one window, contextIsolation + sandbox, no nodeIntegration,
 * our own app:// page only (app-protocol.ts: dist/renderer alone, the CSP on every answer;
 * navigation, new windows, webviews and permissions refused), every IPC call checked by ipc.ts
 * (sender frame, method, arguments).
 *
 * Besides the window, the app serves the same UI and API on loopback as `mooring agent` does
 * (serve-agent.ts, agent.json included), so `mooring status` and a browser work while it runs.
 */
import path from 'node:path';
import {
  app,
  BrowserWindow,
  dialog,
  Menu,
  nativeImage,
  Notification,
  powerMonitor,
  powerSaveBlocker,
  protocol,
  safeStorage,
  session,
  shell,
  Tray,
  type IpcMainInvokeEvent,
  type MenuItemConstructorOptions,
} from 'electron';
import { ipcMain } from 'electron';
import { Agent } from '../agent/agent';
import type { AgentEvent } from '../agent/types';
import { acquireAgentLock, type AgentLock } from '../api/agent-file';
import { DEFAULT_API_LISTEN, serveAgent, type ServedAgent } from '../api/serve-agent';
import { defaultDataDir } from '../util/paths';
import { markHeapsInOneStep } from '../util/v8-heap';
import { ElectronSafeStorageStore, secretsDir } from '../secrets'; // H8c
import type { AttemptRow } from '../history/types';
import { UsbmuxdClient } from '../transport/usbmuxd-client';
import { routeOf, type TrayAction } from './actions';
import { APP_PAGE_URL, APP_SCHEME, appResponse } from './app-protocol';
import { desktopNoticeFor, NoticeGate } from './desktop-notices';
import { launchRoute } from './first-run';
import type { ProgressFacts, TrayFacts } from './device-summary';
import {
  CALL_CHANNEL,
  EVENT_CHANNEL,
  handleCall,
  SAVE_FILE_CHANNEL,
  type CallResult,
  type ExpectedSender,
} from './ipc';
import { handleSaveFile } from './save-file';
import { buildTrayMenu, type MenuItemSpec } from './tray-menu';
import { trayIconFile, trayState, type TrayIconState } from './tray-state';

/** Event bursts (progress) redraw the tray at most this often. */
const REDRAW_DELAY_MS = 300;

const ROOT = path.join(__dirname, '..', '..');
const RENDERER_DIR = path.join(ROOT, 'dist', 'renderer');
const PAGE_URL = APP_PAGE_URL;
const ASSETS = path.join(ROOT, 'assets');

let agent: Agent | undefined;
let lock: AgentLock | undefined;
let served: ServedAgent | undefined;
let tray: Tray | undefined;
let win: BrowserWindow | undefined;
let trayIcon: TrayIconState | undefined;
let menuKey = '';
let redrawTimer: NodeJS.Timeout | undefined;
let blockerId: number | undefined;
let quitting = false;
const progress: Record<string, ProgressFacts> = {};
const lastAttempt: Record<string, AttemptRow> = {};
const gate = new NoticeGate();

const toConsole = (line: string): void => console.error(`[mooring] ${line}`);
/** Once the agent is open, the tray app's lines go to its log file too (Settings → Agent log). */
const log = (line: string): void => (agent ? agent.log(line) : toConsole(line));

function expectedSender(): ExpectedSender | undefined {
  return win && !win.isDestroyed()
    ? { webContentsId: win.webContents.id, pageUrl: PAGE_URL }
    : undefined;
}

function facts(a: Agent): TrayFacts {
  const status = a.status();
  return { status, progress, lastAttempt, staleAfterMs: status.staleAfterMs, now: Date.now() };
}

function launchAtLogin(): boolean | null {
  // Electron sets login items on macOS and Windows only.
  if (process.platform !== 'darwin' && process.platform !== 'win32') return null;
  return app.getLoginItemSettings().openAtLogin;
}

function toElectron(spec: MenuItemSpec): MenuItemConstructorOptions {
  if (spec.type === 'separator') return { type: 'separator' };
  const action = spec.action;
  return {
    id: spec.id,
    label: spec.label,
    type: spec.type,
    enabled: spec.enabled,
    ...(spec.checked === undefined ? {} : { checked: spec.checked }),
    ...(action ? { click: () => perform(action) } : {}),
  };
}

function redraw(): void {
  redrawTimer = undefined;
  if (!agent || !tray || quitting) return;
  const f = facts(agent);
  const state = trayState(f);
  if (state.icon !== trayIcon) {
    trayIcon = state.icon;
    tray.setImage(
      nativeImage.createFromPath(path.join(ASSETS, trayIconFile(state.icon, process.platform))),
    );
  }
  tray.setToolTip(state.tooltip);
  if (process.platform === 'darwin') tray.setTitle(state.title);
  const items = buildTrayMenu({ ...f, launchAtLogin: launchAtLogin() });
  const key = JSON.stringify(items);
  // Replacing the menu closes it where it is open (Linux): only when something changed.
  if (key !== menuKey) {
    menuKey = key;
    tray.setContextMenu(Menu.buildFromTemplate(items.map(toElectron)));
  }
  // Keep the computer awake while a backup runs (not the display).
  if (f.status.running > 0 && blockerId === undefined) {
    blockerId = powerSaveBlocker.start('prevent-app-suspension');
  } else if (f.status.running === 0 && blockerId !== undefined) {
    powerSaveBlocker.stop(blockerId);
    blockerId = undefined;
  }
}

function scheduleRedraw(): void {
  redrawTimer ??= setTimeout(redraw, REDRAW_DELAY_MS);
}

function onAgentEvent(e: AgentEvent): void {
  if (e.type === 'progress') {
    progress[e.udid] = { attemptId: e.attemptId, bytes: e.bytes, percent: e.percent };
  } else if (e.type === 'attempt' && e.attempt.outcome !== 'running') {
    lastAttempt[e.attempt.udid] = e.attempt;
    delete progress[e.attempt.udid];
  }
  const a = agent;
  const notice = a ? desktopNoticeFor(e, (udid) => a.device(udid)?.name ?? null) : null;
  if (notice && Notification.isSupported() && gate.admit(notice, Date.now())) {
    const n = new Notification({ title: notice.title, body: notice.body, urgency: notice.urgency });
    n.on('click', () => perform(notice.action));
    n.show();
  }
  if (win && !win.isDestroyed()) win.webContents.send(EVENT_CHANNEL, e);
  scheduleRedraw();
}

function showWindow(route = '#/'): void {
  if (!win || win.isDestroyed()) {
    win = new BrowserWindow({
      width: 1100,
      height: 760,
      show: false,
      title: 'Mooring',
      webPreferences: {
        preload: path.join(__dirname, 'preload.js'),
        contextIsolation: true,
        sandbox: true,
        nodeIntegration: false,
        webSecurity: true,
        spellcheck: false,
        devTools: !app.isPackaged,
        // A middle click would open a link in a new window (electronegativity AUXCLICK_JS_CHECK).
        disableBlinkFeatures: 'Auxclick',
      },
    });
    win.once('ready-to-show', () => win?.show());
    win.on('close', (e) => {
      // The app lives in the tray: closing the window hides it.
      if (!quitting) {
        e.preventDefault();
        win?.hide();
      }
    });
    void win.loadURL(`${PAGE_URL}${route}`);
    return;
  }
  // A hash change is a same-document navigation: the page keeps its state.
  void win.loadURL(`${PAGE_URL}${route}`);
  win.show();
  win.focus();
}

function perform(action: TrayAction): void {
  const a = agent;
  if (!a) return;
  const route = routeOf(action);
  if (route !== undefined) return showWindow(route);
  switch (action.kind) {
    case 'backup-now':
      void a.backupNow(action.udid).then((r) => {
        if (!r.started && Notification.isSupported()) {
          new Notification({ title: 'Backup not started', body: r.message }).show();
        }
        scheduleRedraw();
      });
      return;
    case 'cancel':
      a.cancel(action.udid);
      return;
    case 'open-backups-folder':
      // The agent's backup folder and nothing else; openPath answers with an error text.
      void shell.openPath(a.status().backupDir).then((err) => {
        if (err) log(`cannot open the backups folder: ${err}`);
      });
      return;
    case 'toggle-pause':
      if (a.status().paused) a.resume();
      else a.pause();
      scheduleRedraw();
      return;
    case 'toggle-launch-at-login':
      app.setLoginItemSettings({ openAtLogin: !(launchAtLogin() ?? false), openAsHidden: true });
      scheduleRedraw();
      return;
    case 'quit':
      app.quit();
      return;
  }
}

function harden(): void {
  const s = session.defaultSession;
  s.setPermissionRequestHandler((_wc, _permission, callback) => callback(false));
  s.setPermissionCheckHandler(() => false);
  // The page and its files, each answer with the CSP (app-protocol.ts).
  protocol.handle(APP_SCHEME, async (request) => {
    const r = await appResponse(request.url, request.method, RENDERER_DIR);
    return new Response(r.body, { status: r.status, headers: r.headers });
  });
  app.on('web-contents-created', (_e, contents) => {
    contents.setWindowOpenHandler(() => ({ action: 'deny' }));
    contents.on('will-attach-webview', (e) => e.preventDefault());
    contents.on('will-navigate', (e, url) => {
      if (!url.startsWith(`${PAGE_URL}#`) && url !== PAGE_URL) e.preventDefault();
    });
  });
}

function senderFacts(e: IpcMainInvokeEvent) {
  const f = e.senderFrame;
  return {
    webContentsId: e.sender.id,
    frame: f === null ? null : { url: f.url, isMainFrame: f.parent === null },
  };
}

async function startAgent(): Promise<Agent> {
  const dataDir = defaultDataDir();
  // The same folder as `mooring agent`: only one of them may run at a time.
  lock = await acquireAgentLock(dataDir);
  const a = await Agent.open({
    dataDir,
    usbmuxd: new UsbmuxdClient(),
    mdns: {},
    log: toConsole,
    // H8c: backup passwords sealed by the OS keychain (safeStorage), never in plain files.
    secrets: new ElectronSafeStorageStore(secretsDir(dataDir), safeStorage),
  });
  for (const d of a.devices()) {
    const done = a.attempts({ udid: d.udid, limit: 5 }).items.find((x) => x.outcome !== 'running');
    if (done) lastAttempt[d.udid] = done;
  }
  a.subscribe(onAgentEvent);
  await a.start();
  try {
    served = await serveAgent(a, {
      dataDir,
      listen: DEFAULT_API_LISTEN,
      anyPortIfBusy: true,
      log: (line) => a.log(line),
    });
    a.log(`the UI and API are also at ${served.url}`);
  } catch (err) {
    // The window and tray work without it; only the CLI and browsers miss the agent.
    a.log(`cannot serve the API on loopback: ${err instanceof Error ? err.message : String(err)}`);
  }
  return a;
}

/** Where a file saved from the Files tab goes: the person chooses, Downloads first. */
async function chooseDestination(name: string): Promise<string | undefined> {
  const options = { title: 'Save File', defaultPath: path.join(app.getPath('downloads'), name) };
  const r =
    win && !win.isDestroyed()
      ? await dialog.showSaveDialog(win, options)
      : await dialog.showSaveDialog(options);
  return r.canceled || !r.filePath ? undefined : r.filePath;
}

const STARTING: CallResult = {
  ok: false,
  error: { code: 'UNAVAILABLE', message: 'Mooring is starting' },
};

async function main(): Promise<void> {
  markHeapsInOneStep(); // before the agent starts any thread (D41)
  // Before `ready`: app:// behaves like https (secure context, its own origin, fetch allowed).
  protocol.registerSchemesAsPrivileged([
    { scheme: APP_SCHEME, privileges: { standard: true, secure: true, supportFetchAPI: true } },
  ]);
  if (!app.requestSingleInstanceLock()) {
    app.quit();
    return;
  }
  app.on('second-instance', () => showWindow());
  // Windows shows notifications only for an app with an AppUserModelID (electron-builder's appId).
  if (process.platform === 'win32') app.setAppUserModelId('org.mooring.agent');
  app.on('window-all-closed', () => undefined); // keep running in the tray
  let stopped = false;
  app.on('before-quit', (e) => {
    quitting = true;
    if (stopped || !agent) return;
    // Stop the agent first: a running backup is cancelled and recorded interrupted. The API
    // goes before it, agent.json with it, so no client finds an agent that is stopping.
    e.preventDefault();
    void (served?.close() ?? Promise.resolve())
      .catch((err: unknown) => log(`stopping the API: ${String(err)}`))
      .then(() => agent?.stop())
      .catch((err: unknown) => log(`stopping: ${String(err)}`))
      .then(() => lock?.release())
      .finally(() => {
        stopped = true;
        app.quit();
      });
  });
  await app.whenReady();
  // Menu-bar app: no Dock icon (the packaged app also sets LSUIElement).
  app.dock?.hide();
  harden();
  ipcMain.handle(CALL_CHANNEL, (e, method: unknown, args: unknown) =>
    agent
      ? handleCall(agent, senderFacts(e), expectedSender(), method, args, (err) =>
          log(`bridge: ${String(err)}`),
        )
      : STARTING,
  );
  ipcMain.handle(SAVE_FILE_CHANNEL, (e, args: unknown) =>
    agent
      ? handleSaveFile(agent, senderFacts(e), expectedSender(), args, chooseDestination, (err) =>
          log(`save file: ${String(err)}`),
        )
      : STARTING,
  );
  powerMonitor.on('suspend', () => log('the computer is going to sleep'));
  // The agent's ticker notices the gap itself and records the windows the sleep missed.
  powerMonitor.on('resume', () => log('the computer woke up'));
  try {
    agent = await startAgent();
  } catch (err) {
    dialog.showErrorBox('Mooring cannot start', err instanceof Error ? err.message : String(err));
    stopped = true;
    app.quit();
    return;
  }
  tray = new Tray(
    nativeImage.createFromPath(path.join(ASSETS, trayIconFile('idle', process.platform))),
  );
  trayIcon = 'idle';
  // Windows opens tray menus on right click only; a left click should not do nothing.
  if (process.platform === 'win32') tray.on('click', () => tray?.popUpContextMenu());
  redraw();
  // First run (nothing paired, no history): open the window on the setup guide.
  const route = launchRoute(agent.status());
  if (route !== undefined) showWindow(route);
}

void main();
