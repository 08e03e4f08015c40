/** Entry point of `mooring` (bin/mooring.js loads the compiled copy; tests run this file with tsx). */
import { backupMayUseUsbmuxd, prestartJobThread } from '../job/thread-start';
import { markHeapsInOneStep } from '../util/v8-heap';
import { runMain } from './run-main';

markHeapsInOneStep(); // before any thread starts (D41)

// `mooring backup` starts its job's thread first, so that the thread loads the backup stack while
// this one loads the command line and finds the device (job/thread-start); hence cli/main is
// required only after. Loading this module is running `mooring` (directly, or from bin/load.js).
const argv = process.argv.slice(2);
if (argv[0] === 'backup') {
  prestartJobThread({ usbmuxd: backupMayUseUsbmuxd(argv) });
}
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { main } = require('../cli/main') as typeof import('../cli/main');

export { main };
if (require.main === module) runMain('mooring', (argv) => main(argv), { lingerMs: 5000 });
