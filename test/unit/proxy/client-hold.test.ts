// The rule for a backend failure seen after Sluice held the backend for a client that did not
// read (src/proxy/client-hold.ts): a long hold, then less than a second of free flow.
import test from 'ava';
import { ClientHold } from '../../../src/proxy/client-hold.ts';

test('no hold, or only short ones (a client that reads), blames the backend', (t) => {
  const hold = new ClientHold();
  t.false(hold.blamesClient(0));
  for (let at = 0; at < 10_000; at += 100) {
    hold.held(at);
    hold.released(at + 50);
  }
  t.false(hold.blamesClient(10_000));
  hold.held(10_000);
  t.false(hold.blamesClient(10_900), 'held now, but not for long');
  t.true(hold.blamesClient(11_000), 'held for a second now');
});

test("after a long hold, a failure within a second of free flow is the client's doing", (t) => {
  const hold = new ClientHold();
  hold.held(1000);
  hold.held(1500);
  hold.released(2500);
  t.true(hold.blamesClient(2505), 'the close waited behind the backlog');
  t.true(hold.blamesClient(3400));
  t.false(hold.blamesClient(3500), 'a second of free flow: the backend had its turn');
  t.false(hold.blamesClient(12_500), '10 s after the client read again');
});

test('short holds after a long one do not use up the free second', (t) => {
  const hold = new ClientHold();
  hold.held(0);
  hold.released(2000);
  // A client reading slowly: held 500 ms, free 100 ms, again and again.
  let at = 2000;
  for (let i = 0; i < 9; i++) {
    at += 100;
    hold.held(at);
    at += 500;
    hold.released(at);
  }
  t.true(hold.blamesClient(at), `900 ms free in all, by ${at}`);
  t.true(hold.blamesClient(at + 99));
  t.false(hold.blamesClient(at + 100));
  hold.held(at + 50);
  t.true(hold.blamesClient(at + 5000), 'held again, long enough by itself');
});

test('after a long hold, more than the kernel could have queued (16 MiB) means the backend had its turn', (t) => {
  const hold = new ClientHold();
  hold.held(0);
  hold.released(1500);
  hold.sent(10 * 1024 * 1024);
  t.true(hold.blamesClient(1600), '10 MiB: what socket buffers can hold');
  hold.sent(6 * 1024 * 1024);
  t.false(hold.blamesClient(1700), '16 MiB within the second: sent on its own, then it died');
  hold.held(2000);
  hold.released(3500);
  t.true(hold.blamesClient(3600), 'a new long hold starts the count again');
});
