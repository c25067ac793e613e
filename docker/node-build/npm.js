#!/usr/local/bin/node
// `npm` in sluice-local/node-build:24: the kernel runs this with node (no /usr/bin/env needed).
require('/usr/local/lib/node_modules/npm/lib/cli.js')(process);
