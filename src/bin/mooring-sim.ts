/** Entry point of `mooring-sim` (bin/mooring-sim.js loads the compiled copy; tests run this file with tsx). */
import { main } from '../sim/cli';
import { runMain } from './run-main';

export { main };
if (require.main === module) runMain('mooring-sim', main);
