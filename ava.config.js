// One `npm test` runs every suite: unit (pure core), component (the proxy in-process against
// node:http backends), integration (real nginx containers) and chaos (backends killed, paused
// and restarted under bounded load). Files run two at a time; then `npm test` runs the tests of
// ava.alone.config.js one by one.
export default {
  files: [
    'test/unit/**/*.test.ts',
    'test/component/**/*.test.ts',
    'test/integration/**/*.test.ts',
    'test/chaos/**/*.test.ts',
    // Run after these, alone (ava.alone.config.js).
    '!test/chaos/ha-pair.test.ts',
    '!test/chaos/all-down.test.ts',
  ],
  extensions: { ts: 'module' },
  concurrency: 2,
  timeout: '120s',
  workerThreads: false,
};
