/**
 * The checks before an action that needs the device itself (Wi-Fi switch, encryption change): the
 * agent is not stopping, the device is paired and reachable now. Each refusal says what to do.
 */
import { MooringError } from '../util/errors';
import type { AgentContext } from './agent-context';

/** The device's canonical UDID, or a USAGE error; `then` ends the "not reachable" advice. */
export function requireReachableDevice(ctx: AgentContext, udid: string, then: string): string {
  const u = ctx.view.requireKnown(udid);
  const label = ctx.view.label(u);
  if (ctx.stopping)
    throw new MooringError('USAGE', 'Mooring is stopping; try again after it restarts');
  if (!ctx.view.isPaired(u)) {
    throw new MooringError(
      'USAGE',
      `${label} is not paired with this computer: connect it by USB, unlock it and pair it first`,
    );
  }
  if (ctx.registry.endpoint(u) === undefined) {
    throw new MooringError(
      'USAGE',
      `${label} is not reachable: connect it by USB (and unlock it)${then}`,
    );
  }
  return u;
}
