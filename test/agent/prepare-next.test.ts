/**
 * After each committed backup the agent makes the next backup's copy of the latest (D42), against a
 * simulated iPhone on USB and real folders: the next backup takes that copy whole (the new latest
 * is the very folder made ahead), and a backup started while the copy is still being made waits
 * for it instead of failing on the device lock. An agent started over a latest backup without a
 * copy (made by `mooring backup`, or before this version) makes one after its start delay.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { Agent } from '../../src/agent/agent';
import { openStore } from '../../src/store';
import {
  backUpNow,
  keepingLog,
  nextAttempt,
  simFixture,
  type SimFixture,
  startedOnUsb,
  untilOnUsb,
} from './agent-helpers';

describe('Agent: the next backup prepared ahead', () => {
  let f: SimFixture;
  let agent: Agent;
  let udid: string;
  const logged: string[] = [];

  const backUp = async (): Promise<string> => (await backUpNow(agent, udid)).snapshotId;

  const nextDir = (): string => path.join(agent.backupDir, '.mooring', udid, 'next');

  /** The copy made ahead, once its record is written: the snapshot it copies, its folder's inode. */
  async function prepared(): Promise<{ base: string; ino: number }> {
    const record = path.join(nextDir(), 'next.json');
    for (let i = 0; i < 200 && !existsSync(record); i++) await delay(50);
    const { base } = JSON.parse(readFileSync(record, 'utf8')) as { base: string };
    return { base, ino: statSync(path.join(nextDir(), udid)).ino };
  }

  before(async () => {
    f = await simFixture('mooring-agent-prepare-', {
      files: 4000,
      bytes: 4_000_000,
      seed: 61,
      name: 'Prepared iPhone',
    });
    udid = f.udid;
    agent = await startedOnUsb(keepingLog(f.agentOptions(), logged), udid);
  });

  after(async () => {
    await agent?.stop();
    await f?.close();
  });

  it('the next backup starts from the copy made after the last one', async () => {
    const first = await backUp();
    const copy = await prepared();
    assert.equal(copy.base, first);
    assert.ok(logged.some((l) => l.startsWith(`prepared the next backup of ${udid}: `)));
    await f.sim.ctl('mutate', { add: 2, modify: 3, delete: 1 });
    const second = await backUp();
    assert.notEqual(second, first);
    // The copy was moved into place, not made again: the new latest is the very folder.
    assert.equal(statSync(path.join(agent.backupDir, udid)).ino, copy.ino);
    const third = await prepared();
    assert.equal(third.base, second);
    assert.ok((await (await openStore(agent.backupDir, udid)).verify(second)).ok);
  });

  it('a backup asked for while the copy is still being made waits for it', async () => {
    const done = nextAttempt(agent, udid, (a) => a.outcome !== 'running', 'a backup to end');
    assert.equal((await agent.backupNow(udid)).started, true);
    const first = await done;
    assert.equal(first.outcome, 'success', first.message ?? '');
    // At once, while the copy of that backup is being made (it has not written its record yet).
    assert.ok(!existsSync(path.join(nextDir(), 'next.json')));
    const id = await backUp();
    assert.equal((await prepared()).base, id);
  });

  /** Another agent over the same folders; `agent` is it from now on (after() stops it). */
  async function restart(prepareAfterStartMs: number): Promise<void> {
    await agent.stop();
    logged.length = 0;
    agent = await Agent.open(keepingLog(f.agentOptions({ prepareAfterStartMs }), logged));
    await agent.start();
  }

  it('an agent started over a latest backup without a copy makes one, after its delay', async () => {
    await agent.nextBackupPrepared(udid);
    // A backup made outside the agent (as `mooring backup` does) takes the copy and makes none.
    const store = await openStore(agent.backupDir, udid);
    await agent.stop();
    await (await store.beginStaging()).commit();
    const latest = (await store.list()).at(-1)!.id;
    assert.ok(!existsSync(nextDir()));
    // Stopped before its delay: the agent stops without waiting for it, and makes nothing.
    await restart(60_000);
    const stopping = Date.now();
    await agent.stop();
    assert.ok(Date.now() - stopping < 10_000, `stop took ${Date.now() - stopping} ms`);
    assert.ok(!existsSync(nextDir()));
    await restart(0);
    await agent.nextBackupsPreparedAfterStart();
    const copy = await prepared();
    assert.equal(copy.base, latest);
    assert.ok(logged.some((l) => l.startsWith(`prepared the next backup of ${udid}: `)));
    // Once made, the copy stays across restarts: the next start finds it and makes none.
    await restart(0);
    await agent.nextBackupsPreparedAfterStart();
    assert.equal((await prepared()).ino, copy.ino);
    assert.ok(!logged.some((l) => l.startsWith('prepared the next backup')));
    // The next backup takes it whole.
    await untilOnUsb(agent, udid);
    await f.sim.ctl('mutate', { modify: 2 });
    await backUp();
    assert.equal(statSync(path.join(agent.backupDir, udid)).ino, copy.ino);
  });
});
