// The node-http-proxy peer: a node:http server that forwards each request with the
// `http-proxy` package to the next backend in round-robin order, over a keep-alive agent, with
// the fields Sluice adds: X-Forwarded-* (xfwd), Forwarded, Via both ways, X-Request-Id.
//
//   node bench/peers/http-proxy-server.ts --port 8081 --backends 127.0.0.1:9001,127.0.0.1:9002
//
// Prints "listening <port>" once ready; exits on SIGTERM/SIGINT.

import { randomUUID } from 'node:crypto';
import http from 'node:http';
import httpProxy from 'http-proxy';
import { peerArgs } from './args.ts';

const { host, port, backends: targets } = peerArgs('http-proxy-server.ts');

const agent = new http.Agent({ keepAlive: true, maxSockets: 256, maxFreeSockets: 256 });
const proxy = httpProxy.createProxyServer({ agent, xfwd: true });

proxy.on('proxyReq', (proxyReq, req) => {
  const host = req.headers.host ?? '';
  proxyReq.setHeader('forwarded', `for=${req.socket.remoteAddress};host="${host}";proto=http`);
  proxyReq.setHeader('via', req.headers.via ? `${req.headers.via}, 1.1 http-proxy` : '1.1 http-proxy');
  if (!req.headers['x-request-id']) proxyReq.setHeader('x-request-id', randomUUID());
});
proxy.on('proxyRes', (proxyRes) => {
  const via = proxyRes.headers.via;
  proxyRes.headers.via = via ? `${via}, 1.1 http-proxy` : '1.1 http-proxy';
});

proxy.on('error', (err, _req, res) => {
  if (res instanceof http.ServerResponse && !res.headersSent) {
    res.writeHead(502, { 'content-type': 'text/plain' });
    res.end(`bad gateway: ${err.message}\n`);
  } else {
    res.destroy();
  }
});

let next = 0;
const server = http.createServer((req, res) => {
  const target = targets[next] as { host: string; port: number };
  next = (next + 1) % targets.length;
  proxy.web(req, res, { target });
});
server.keepAliveTimeout = 65_000;

server.listen(port, host, () => {
  console.log(`listening ${port}`);
});

const stop = () => {
  server.close();
  server.closeAllConnections();
  agent.destroy();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
