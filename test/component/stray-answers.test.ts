// A backend that answers twice (a second response written right after the first): under load,
// no client ever gets an answer meant for another request (issue 10).
import { connect } from 'node:net';
import test from 'ava';
import { reply, startScriptedBackend } from '../support/scripted-backend.ts';
import { quietYaml, startProxy } from '../support/sluice.ts';

/** Sends GETs one after another on one connection until `until`; each answer to `check`. */
function loop(
  port: number,
  pathOf: (i: number) => string,
  until: number,
  check: (path: string, body: string) => void,
) {
  return new Promise<void>((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let buffer = '';
    let asked = '';
    let i = 0;
    const next = () => {
      if (Date.now() > until) {
        socket.destroy();
        resolve();
        return;
      }
      asked = pathOf(i++);
      socket.write(`GET ${asked} HTTP/1.1\r\nHost: a\r\n\r\n`);
    };
    socket.on('connect', next);
    socket.on('data', (chunk: Buffer) => {
      buffer += chunk.toString('latin1');
      for (;;) {
        const end = buffer.indexOf('\r\n\r\n');
        if (end === -1) return;
        const length = Number(/content-length: (\d+)/i.exec(buffer.slice(0, end))?.[1] ?? 0);
        if (buffer.length < end + 4 + length) return;
        check(asked, buffer.slice(end + 4, end + 4 + length));
        buffer = buffer.slice(end + 4 + length);
        next();
      }
    });
    socket.on('error', () => resolve());
    socket.on('close', () => resolve());
  });
}

for (const [what, first] of [
  ['after a Content-Length answer', reply('ok')],
  ['after a 204', 'HTTP/1.1 204 No Content\r\n\r\n'],
] as const) {
  test.serial(`a backend that sends a second answer ${what}: no other request ever gets it`, async (t) => {
    const backend = await startScriptedBackend((request, socket) => {
      const path = request.line.split(' ')[1] ?? '';
      if (path.startsWith('/evil')) {
        socket.write(first);
        socket.write(reply('path=POISONED'));
      } else socket.write(reply(`path=${path}`));
    });
    t.teardown(() => backend.close());
    const sluice = await startProxy(quietYaml({ web: [backend.port] }));
    t.teardown(() => sluice.stop());
    const until = Date.now() + 1500;
    let answered = 0;
    const wrong: string[] = [];
    await Promise.all([
      loop(
        sluice.address.port,
        (i) => `/evil-${i}`,
        until,
        () => {},
      ),
      ...Array.from({ length: 6 }, (_, k) =>
        loop(
          sluice.address.port,
          (i) => `/victim-${k}-${i}`,
          until,
          (path, body) => {
            answered++;
            if (body !== `path=${path}`) wrong.push(`${path} got ${body}`);
          },
        ),
      ),
    ]);
    t.log(`${answered} answers to other clients, ${wrong.length} wrong`);
    t.true(answered > 100);
    t.deepEqual(wrong.slice(0, 5), []);
    t.regex(
      (await sluice.metrics.render()).body,
      /sluice_backend_errors_total\{[^}]*type="unasked_bytes"\} [1-9]/,
      'counted, for whoever watches the backend',
    );
  });
}
