'use strict';
// Loads dist/bin/<name>.js and runs its main; tells the user what to do when the build is missing.
const { existsSync } = require('node:fs');
const { join } = require('node:path');

module.exports = function load(name) {
  const entry = join(__dirname, '..', 'dist', 'bin', `${name}.js`);
  if (!existsSync(entry)) {
    console.error(
      `${name}: ${entry} is missing. Run "npm install" (it builds dist/) or "npm run build".`,
    );
    process.exit(2);
  }
  const mod = require(entry);
  require(join(__dirname, '..', 'dist', 'bin', 'run-main.js')).runMain(name, mod.main);
};
