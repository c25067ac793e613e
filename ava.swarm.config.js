// The Swarm stack test (test/swarm/), run by `npm test` after every other suite and alone:
// `docker swarm leave`, which it must do at the end, disconnects every container on an
// attachable network, and docker-compose (v1) makes every network it creates attachable, so any
// compose stack running beside it would lose its network.
import base from './ava.config.js';

export default {
  ...base,
  files: ['test/swarm/**/*.test.ts'],
  concurrency: 1,
};
