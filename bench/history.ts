/**
 * Issue 6, benchmark 5 (history): a history database with 100,000 notification rows (three
 * devices, seeded straight into SQLite in one transaction), served by the compiled `mooring agent`.
 * Printed: the HTTP API's history query latency (p50/p95 over repeated requests, one client, as the
 * UI pages it), and the time until the Notifications tab shows its first rows in Chromium
 * (playwright-core, /usr/bin/chromium), from navigation start.
 *
 *   BENCH_SCALE=0.1 node --import tsx bench/history.ts
 */
import { existsSync, promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openHistory } from '../src/history';
import { deviceError, notDue, wifiUnreachable, backupSucceeded } from '../src/history/reasons';
import { CHROMIUM, openBrowser } from '../test/renderer/browser';
import { startBenchAgent } from './lib/agent';
import { checkBuild, footer, header, scaled } from './lib/measure';

const ROUNDS = 200;

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

const UDIDS = [
  '00008120-000A11110A11001E',
  '00008120-000B22220B22002E',
  '00008120-000C33330C33003E',
];

function seed(file: string, rows: number): void {
  const h = openHistory(file);
  try {
    h.batch(() => {
      UDIDS.forEach((udid, i) => h.upsertDevice({ udid, name: `Bench iPhone ${i + 1}` }));
      const t0 = Date.now() - rows * 60_000;
      for (let i = 0; i < rows; i++) {
        const at = t0 + i * 60_000;
        const notice =
          i % 50 === 0
            ? deviceError({ code: 105, description: `seeded ${i}` })
            : i % 7 === 0
              ? wifiUnreachable({ address: `10.0.0.${i % 250}` })
              : i % 11 === 0
                ? backupSucceeded({ filesChanged: 1000 + i, bytes: 1e9, durationMs: 60_000 })
                : notDue({ nextDueAt: at + 3600_000, now: at });
        h.addNotification({ ...notice, udid: UDIDS[i % UDIDS.length]!, at });
      }
    });
  } finally {
    h.close();
  }
}

async function apiLatency(base: string, token: string, name: string, query: string): Promise<void> {
  const url = `${base}/api/history?${query}`;
  const headers = { authorization: `Bearer ${token}` };
  let rows = 0;
  for (let i = 0; i < 10; i++) await (await fetch(url, { headers })).arrayBuffer(); // warm-up
  const times: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    const t0 = process.hrtime.bigint();
    const res = await fetch(url, { headers });
    const body = (await res.json()) as { items: unknown[] };
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
    if (res.status !== 200) throw new Error(`${url}: HTTP ${res.status}`);
    rows = body.items.length;
  }
  times.sort((a, b) => a - b);
  console.log(
    `  ${name.padEnd(34)} ${String(rows).padStart(3)} rows: p50 ${percentile(times, 50).toFixed(1)} ms, ` +
      `p95 ${percentile(times, 95).toFixed(1)} ms, max ${times[times.length - 1]!.toFixed(1)} ms`,
  );
}

async function main(): Promise<void> {
  header('Mooring history at scale (issue 6 §5)');
  checkBuild();
  const rows = scaled(100_000, 1000);
  const tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'mooring-bench-hist-'));
  try {
    const t0 = Date.now();
    seed(path.join(tmp, 'history.db'), rows);
    console.log(`${rows} notification rows seeded in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    const agent = await startBenchAgent(tmp, ['--usbmuxd', 'off', '--mdns-interface', 'off']);
    try {
      const h = { base: agent.base, token: agent.token };
      const first = (await (
        await fetch(`${h.base}/api/history?limit=100`, {
          headers: { authorization: `Bearer ${h.token}` },
        })
      ).json()) as { items: Array<{ id: number }> };
      const middle = (first.items[0]?.id ?? rows) - Math.floor(rows / 2);
      console.log(`API GET /api/history, ${ROUNDS} sequential requests each (after 10 warm-up):`);
      await apiLatency(h.base, h.token, 'first page, all devices', 'limit=100');
      await apiLatency(h.base, h.token, 'first page, one device', `udid=${UDIDS[1]}&limit=100`);
      await apiLatency(
        h.base,
        h.token,
        'one device, errors only',
        `udid=${UDIDS[1]}&severity=error&limit=100`,
      );
      await apiLatency(
        h.base,
        h.token,
        'one device, a page half-way back',
        `udid=${UDIDS[1]}&before=${middle}&limit=100`,
      );
      await apiLatency(h.base, h.token, 'kind=backup, all devices', 'kind=backup&limit=100');

      if (!existsSync(CHROMIUM)) {
        console.log(`Notifications tab: not measured (${CHROMIUM} missing)`);
        return;
      }
      const ui = await openBrowser();
      try {
        const page = ui.page;
        await page.goto(agent.login); // the one-time sign-in link sets the session cookie
        await page.locator('body[data-ready="true"]').waitFor({ timeout: 60_000 });
        const times: number[] = [];
        for (let i = 0; i < 7; i++) {
          await page.goto('about:blank');
          const t = Date.now();
          await page.goto(`${h.base}/#/device/${UDIDS[i % 3]}/notifications`);
          await page.locator('.notice').first().waitFor({ state: 'visible', timeout: 60_000 });
          times.push(Date.now() - t);
        }
        const shown = await page.locator('.notice').count();
        const cold = times.shift()!;
        times.sort((a, b) => a - b);
        console.log(
          `Notifications tab in Chromium (page load → first rows visible, ${shown} rows on the first page): ` +
            `first load ${cold} ms, then median ${percentile(times, 50)} ms, max ${times[times.length - 1]} ms`,
        );
        if (ui.problems.length > 0) console.log(`  page problems: ${ui.problems.join('; ')}`);
      } finally {
        await ui.close();
      }
      footer();
    } finally {
      await agent.stop();
    }
  } finally {
    await fsp.rm(tmp, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
