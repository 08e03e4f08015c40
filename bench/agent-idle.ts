/**
 * `npm run bench:idle`: what the agent costs when nothing is due. Starts `mooring agent` (the
 * compiled bin, as users run it) with three simulated iPhones — one over USB through its usbmuxd,
 * two over "Wi-Fi" found by Bonjour on 127.0.0.1 — waits until all are backed up (so the
 * schedule says "not due" for a day), then samples the agent process's CPU time and memory from
 * /proc for IDLE_SECONDS and prints them. Linux only (reads /proc).
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startBenchAgent } from './lib/agent';
import { mooring } from '../test/cli/run-cli';
import { startSim, type RunningSim } from '../src/sim/index';

const IDLE_SECONDS = Number(process.env.IDLE_SECONDS ?? 60);
const CLK_TCK = 100; // USER_HZ on Linux

async function procStat(pid: number): Promise<{ cpuSeconds: number; rssMiB: number }> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces) start after the last ')'.
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(f[11]);
  const stime = Number(f[12]);
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const rssKiB = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN);
  return { cpuSeconds: (utime + stime) / CLK_TCK, rssMiB: rssKiB / 1024 };
}

async function main(): Promise<void> {
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'mooring-bench-idle-'));
  const data = path.join(tmp, 'data');
  const sims: RunningSim[] = [];
  try {
    const usb = await startSim({ stateDir: path.join(tmp, 'usb'), files: 50, bytes: 2e6, seed: 1 });
    sims.push(usb);
    for (const n of [2, 3]) {
      sims.push(
        await startSim({
          stateDir: path.join(tmp, `wifi${n}`),
          files: 50,
          bytes: 2e6,
          seed: n,
          wifi: '127.0.0.1',
          wifiPort: 0,
          bonjour: '127.0.0.1',
        }),
      );
    }
    for (const s of sims) {
      const r = await mooring('pair', '--usbmuxd', s.usbmuxdAddress, '--data', data);
      if (r.code !== 0) throw new Error(`pair failed: ${r.err}`);
    }
    const t0 = Date.now();
    const agent = await startBenchAgent(data, [
      '--usbmuxd',
      usb.usbmuxdAddress,
      '--mdns-interface',
      '127.0.0.1',
      '--wifi-port',
      'advertised',
    ]);
    try {
      for (;;) {
        const res = await fetch(new URL('/api/attempts?outcome=success&limit=10', agent.base), {
          headers: { authorization: `Bearer ${agent.token}` },
        });
        const page = (await res.json()) as { items: { udid: string }[] };
        if (new Set(page.items.map((a) => a.udid)).size === sims.length) break;
        if (Date.now() - t0 > 120_000)
          throw new Error(`the ${sims.length} devices were not backed up`);
        await new Promise((r) => setTimeout(r, 500));
      }
      const ready = (Date.now() - t0) / 1000;
      await new Promise((r) => setTimeout(r, 2000)); // let the last writes settle
      const a = await procStat(agent.pid);
      await new Promise((r) => setTimeout(r, IDLE_SECONDS * 1000));
      const b = await procStat(agent.pid);
      const cpu = b.cpuSeconds - a.cpuSeconds;
      console.log(`Mooring agent idle — ${new Date().toISOString()}`);
      console.log(`node ${process.version}, ${os.cpus().length} × ${os.cpus()[0]?.model ?? '?'}`);
      console.log(
        `three devices (one USB, two Wi-Fi/Bonjour) backed up after ${ready.toFixed(1)} s`,
      );
      console.log(
        `idle ${IDLE_SECONDS} s: CPU ${cpu.toFixed(2)} s (${((cpu / IDLE_SECONDS) * 100).toFixed(2)} % of one core), RSS ${b.rssMiB.toFixed(0)} MiB`,
      );
    } finally {
      await agent.stop();
    }
  } finally {
    for (const s of sims) await s.stop();
    await rm(tmp, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
