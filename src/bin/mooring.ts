/** Entry point of `mooring` (bin/mooring.js loads the compiled copy; tests run this file with tsx). */
import { main } from '../cli/main';
import { runMain } from './run-main';

export { main };
if (require.main === module) runMain('mooring', (argv) => main(argv), { lingerMs: 5000 });
