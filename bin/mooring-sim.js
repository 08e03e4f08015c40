#!/usr/bin/env node
// The `mooring-sim` command: a simulated iPhone and the usbmuxd that lists it.
'use strict';
require('./load')('mooring-sim');
