/**
 * `--sim`: run the commands against a simulated iPhone started inside this process, so Mooring
 * can be tried without a phone. The simulator ships with the CLI but not in the desktop package,
 * hence the lazy require and the clear message when it is absent.
 */
import { MooringError } from '../util/errors';
import { embeddedSimDir } from '../util/paths';

export interface EmbeddedSim {
  udid: string;
  usbmuxdAddress: string;
  wifiAddress: string | undefined;
  stop(): Promise<void>;
}

export interface EmbeddedSimOptions {
  /** Advertise over Bonjour on 127.0.0.1 only (for `mooring agent --sim`). */
  bonjour?: boolean;
}

export async function startEmbeddedSim(
  dataDir: string,
  opts: EmbeddedSimOptions = {},
): Promise<EmbeddedSim> {
  let mod: typeof import('../sim/index');
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    mod = require('../sim/index') as typeof import('../sim/index');
  } catch (cause) {
    throw new MooringError('USAGE', '--sim: this build of Mooring does not include the simulator', {
      cause,
    });
  }
  const sim = await mod.startSim({
    stateDir: embeddedSimDir(dataDir),
    name: 'Simulated iPhone',
    // Loopback with a free port: the simulated Wi-Fi side must never reach a real network.
    wifi: '127.0.0.1',
    wifiPort: 0,
    ...(opts.bonjour ? { bonjour: '127.0.0.1' } : {}),
    files: 200,
    bytes: 20 * 1024 * 1024,
    log: false,
  });
  return {
    udid: sim.udid,
    usbmuxdAddress: sim.usbmuxdAddress,
    wifiAddress: sim.wifiAddress,
    stop: () => sim.stop(),
  };
}
