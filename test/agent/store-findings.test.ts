/**
 * What a device's store finds changed outside a backup reaches the person: against a simulated
 * iPhone on USB and real snapshot folders, a snapshots.json made unreadable is rebuilt with every
 * snapshot pinned (retention at zero then removes none of them), and a snapshot folder deleted by
 * hand is forgotten; each is recorded as a STORE_RECOVERED warning on the backup that found it.
 */
import assert from 'node:assert/strict';
import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Agent } from '../../src/agent/agent';
import { openStore } from '../../src/store';
import {
  backUpNow,
  notificationsOf,
  simFixture,
  type SimFixture,
  startedOnUsb,
} from './agent-helpers';

describe('Agent: what the store finds changed outside a backup', () => {
  let f: SimFixture;
  let agent: Agent;
  let udid: string;

  const stateDir = (): string => path.join(agent.backupDir, '.mooring', udid);
  /**
   * The STORE_RECOVERED notices after the first `since`. Whoever opens the store first finds the
   * change: the next backup, or the retention or next-backup copy still finishing the one before.
   */
  const found = (since = 0) =>
    notificationsOf(agent, udid)
      .slice(since)
      .filter((n) => n.reasonCode === 'STORE_RECOVERED');

  before(async () => {
    f = await simFixture('mooring-store-findings-', {
      files: 10,
      bytes: 100_000,
      seed: 71,
      name: 'Findings iPhone',
    });
    udid = f.udid;
    agent = await startedOnUsb(f.agentOptions(), udid);
  });
  after(async () => {
    await agent?.stop();
    await f?.close();
  });

  it('an unreadable snapshots.json is rebuilt with every snapshot pinned, and said', async () => {
    const first = (await backUpNow(agent, udid)).snapshotId;
    await (await openStore(agent.backupDir, udid)).pin(first);
    // Retention at zero: only the latest and the pinned are kept.
    agent.setConfig({ 'keep-all': '0', 'keep-daily': '0', 'keep-weekly': '0' }, udid);
    const second = await backUpNow(agent, udid);
    assert.equal(found().length, 0, 'nothing changed outside a backup yet');
    assert.deepEqual(
      (await agent.snapshots(udid)).map((s) => [s.id, s.pinned]),
      [
        [first, true],
        [second.snapshotId, false],
      ],
    );

    const since = notificationsOf(agent, udid).length;
    await writeFile(path.join(stateDir(), 'snapshots.json'), '{"version":1,"udid":');
    const third = await backUpNow(agent, udid);
    assert.equal(third.outcome, 'success');
    const [notice, ...more] = found(since);
    assert.ok(notice, 'STORE_RECOVERED recorded');
    assert.equal(more.length, 0);
    assert.equal(notice.severity, 'warning');
    assert.match(notice.message, /rebuilt from the folders, with every snapshot pinned/);
    assert.match(notice.fixHint ?? '', /Nothing was deleted by Mooring/);
    // Neither the first snapshot (its pin lost with the file) nor the previous latest (adopted
    // under a new id) was pruned by the zero retention after the backup.
    const after = await agent.snapshots(udid);
    assert.equal(after.length, 3, JSON.stringify(after));
    assert.deepEqual(
      after.map((s) => s.pinned),
      [true, true, false],
    );
    assert.equal(after[0]!.id, first);
    assert.equal(after[2]!.id, third.snapshotId);
  });

  it('a snapshot folder deleted by hand is forgotten, and said', async () => {
    const [oldest] = await agent.snapshots(udid);
    const since = notificationsOf(agent, udid).length;
    await rm(path.join(stateDir(), 'snapshots', oldest!.id), { recursive: true });
    await backUpNow(agent, udid);
    const [notice, ...more] = found(since);
    assert.ok(notice, 'STORE_RECOVERED recorded');
    assert.equal(more.length, 0, 'said once');
    assert.match(notice.message, new RegExp(`snapshot ${oldest!.id} has no folder any more`));
    assert.equal(
      (await agent.snapshots(udid)).some((s) => s.id === oldest!.id),
      false,
    );
  });
});
