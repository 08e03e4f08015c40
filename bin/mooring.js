#!/usr/bin/env node
// The `mooring` command. Runs the compiled CLI (dist/ is built by `npm install` through `prepare`).
'use strict';
require('./load')('mooring');
