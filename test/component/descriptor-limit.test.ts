// A client connection limit lowered to fit the open-file limit is logged at start, with the
// numbers and what to do, as nginx warns (worker_connections exceed open file resource limit).
import test from 'ava';
import { startChildSluice } from '../support/child-sluice.ts';
import { startNodeBackend } from '../support/node-backend.ts';

test('under ulimit -n 256, maxConnections 10000 starts as 95, with a warning saying why', async (t) => {
  const backend = await startNodeBackend((_request, response) => response.end('ok'));
  const sluice = await startChildSluice(
    `listen: 127.0.0.1:0\nadmin: false\npools:\n  web:\n    servers: [127.0.0.1:${backend.port}]\n`,
    '1',
    { nofile: 256 },
  );
  try {
    const line = sluice
      .output()
      .split('\n')
      .find((text) => text.includes('lowered to fit'));
    t.like(JSON.parse(line ?? '{}'), {
      level: 'warn',
      message: 'limits.maxConnections lowered to fit the open-file limit',
      configured: 10_000,
      effective: 95,
      nofile: 256,
      backends: 1,
      fix: 'raise the open-file limit to 20066 (ulimit -n, LimitNOFILE= in a systemd unit, --ulimit nofile= for docker) or lower limits.maxConnections',
    });
  } finally {
    await sluice.stop();
    await backend.close();
  }
});
