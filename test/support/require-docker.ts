// `npm test`'s first step (pretest): the integration and chaos suites start nginx containers, so
// without a Docker engine that answers, or without the local nginx image, stop at once with what
// is missing and what to run instead, rather than deep inside testcontainers minutes later.
import http from 'node:http';
import { NGINX_IMAGE } from './images.ts';

const TIMEOUT_MS = 1000;

interface Endpoint {
  socketPath?: string;
  host?: string;
  port?: number;
  label: string;
}

/** Where the Docker client would look: DOCKER_HOST (unix:// or tcp://), else the default socket. */
export function dockerEndpoint(dockerHost = process.env.DOCKER_HOST): Endpoint {
  if (dockerHost?.startsWith('unix://')) {
    return { socketPath: dockerHost.slice('unix://'.length), label: dockerHost };
  }
  if (dockerHost?.startsWith('tcp://')) {
    const url = new URL(`http://${dockerHost.slice('tcp://'.length)}`);
    return { host: url.hostname, port: Number(url.port || 2375), label: dockerHost };
  }
  return { socketPath: '/var/run/docker.sock', label: 'unix:///var/run/docker.sock' };
}

/** GET `path` on the engine: its status code, or the error that kept it from answering. */
function ask(endpoint: Endpoint, path: string): Promise<number | Error> {
  return new Promise((resolve) => {
    const request = http.get(
      {
        socketPath: endpoint.socketPath,
        host: endpoint.host,
        port: endpoint.port,
        path,
        timeout: TIMEOUT_MS,
      },
      (response) => {
        response.resume();
        resolve(response.statusCode ?? 0);
      },
    );
    request.on('timeout', () => request.destroy(new Error(`no answer within ${TIMEOUT_MS} ms`)));
    request.on('error', resolve);
  });
}

/** What keeps the Docker suites from running, or undefined when nothing does. */
export async function dockerProblem(
  endpoint = dockerEndpoint(),
  image = NGINX_IMAGE,
): Promise<string | undefined> {
  const ping = await ask(endpoint, '/_ping');
  if (ping instanceof Error) return `no Docker engine answers at ${endpoint.label} (${ping.message})`;
  if (ping !== 200) return `the Docker engine at ${endpoint.label} answered /_ping with ${ping}`;
  const found = await ask(endpoint, `/images/${encodeURIComponent(image)}/json`);
  if (found === 200) return undefined;
  return `the image ${image} (NGINX_IMAGE) is not in the Docker engine at ${endpoint.label}`;
}

if (import.meta.main) {
  const problem = await dockerProblem();
  if (problem) {
    console.error(`npm test: ${problem}.
The integration and chaos suites (test/integration, test/chaos) start nginx containers and need
a running Docker engine and the local images. Without Docker, run the other suites:
  npm run test:unit && npm run test:component
To set everything up (Docker engine, the local images, node_modules) and then run every test:
  npm run setup && npm test`);
    process.exit(1);
  }
}
