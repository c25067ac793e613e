#!/usr/bin/env -S node --max-semi-space-size=8
// A small young generation keeps a proxy's short-lived garbage from inflating RSS
// (measured at 40k req/s: peak 134 MB -> 119 MB, no CPU cost). `npm start` and the image use it too.
// The package bin: Node 22.22+ runs the TypeScript sources directly (type stripping).
//
// Node's compile cache keeps the stripped sources (and V8's code cache) on disk: from the second
// start on, the type stripper (a WebAssembly module) is never loaded. That is 30 MB of RSS for
// the life of the process (117 -> 84 MB idle, measured). This file is JavaScript so that it can
// turn the cache on before any .ts file is read. The cache lives in NODE_COMPILE_CACHE or under
// the temp dir; where it cannot be written, Sluice runs the same, without it. Worker processes
// (workers > 1) are forked from .ts files: they find the cache through NODE_COMPILE_CACHE.
import { readFileSync } from 'node:fs';
import module from 'node:module';

// An older Node fails on the first .ts file with a stack trace: say what is needed instead.
const engines = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).engines.node;
const needed = /^>=\s*(\d+)\.(\d+)/.exec(engines).slice(1).map(Number);
const running = process.versions.node.split('.').map(Number);
if (running[0] < needed[0] || (running[0] === needed[0] && running[1] < needed[1])) {
  console.error(`sluice: needs Node >= ${needed.join('.')} (this is Node ${process.versions.node})`);
  process.exit(1);
}

// Node opens its inspector on SIGUSR1 when nothing listens for it: a logrotate's SIGUSR1 while
// the modules load (before Sluice's own handler) must not open a debugger to local users.
process.on('SIGUSR1', () => {});

const cache = module.enableCompileCache?.();
if (cache?.directory && process.env.NODE_COMPILE_CACHE === undefined)
  process.env.NODE_COMPILE_CACHE = cache.directory;
await import('../src/cli/main.ts');
