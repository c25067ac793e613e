// The tests `npm test` runs after every other suite, one at a time and alone:
// - the keepalived pair (test/chaos/ha-pair.test.ts) measures failover times under load, and
//   its eight containers and load would skew the pace-based chaos tests beside it;
// - all backends down (test/chaos/all-down.test.ts) judges recovery by the pace of answers after
//   one backend is back against the pace before the kill: a file beside it that starts or stops
//   using the CPU in between (the fuzzer) moves that ratio (it failed once at 0.49 for 0.5);
// - the Swarm stack (test/swarm/): `docker swarm leave`, which it must do at the end,
//   disconnects every container on an attachable network, and docker-compose (v1) makes every
//   network it creates attachable, so a compose stack running beside it would lose its network.
import base from './ava.config.js';

export default {
  ...base,
  files: ['test/chaos/ha-pair.test.ts', 'test/chaos/all-down.test.ts', 'test/swarm/**/*.test.ts'],
  concurrency: 1,
};
