// The worker's side of the shared health view: machines that follow the supervisor's records
// and route exactly as the supervisor's machines would, and passive outcomes sent on edges only.
import test from 'ava';
import { ReplicaHealth } from '../../../src/cluster/replica.ts';
import { BackendHealth, type Transition } from '../../../src/health/state.ts';

const fail = { result: 'refused' as const, reason: 'connect refused', durationMs: 1 };
const pass = { result: 'success' as const, reason: 'HEAD / answered 200', durationMs: 1 };

function pair() {
  const owner = new BackendHealth({ rise: 2, fall: 2 }, 0);
  const reports: boolean[] = [];
  const transitions: Transition[] = [];
  const replica = new ReplicaHealth({ rise: 2, fall: 2 }, 0, (ok) => reports.push(ok));
  replica.onTransition = (transition) => transitions.push(transition);
  return { owner, replica, reports, transitions };
}

test('a replica that adopted a record routes as the owner does, through ejection and slow start', (t) => {
  const { owner, replica, transitions } = pair();
  for (let i = 0; i < 5; i++) owner.recordPassive(false, 1_000);
  t.is(owner.state, 'ejected');
  replica.adopt(owner.record());
  t.is(replica.state, 'ejected');
  t.deepEqual(transitions, [], 'adopting is silent: the owner logs and counts');
  // Time alone ends the ejection (30 s) and then slow start (10 s), in both, at the same moments.
  for (const now of [1_000, 30_999, 31_000, 33_500, 36_000, 40_999, 41_000, 50_000]) {
    t.is(replica.routable(now), owner.routable(now), `routable at ${now}`);
    t.is(replica.weightFactor(now), owner.weightFactor(now), `weight at ${now}`);
    t.is(replica.state, owner.state, `state at ${now}`);
  }
  t.is(replica.state, 'up');
  t.deepEqual(transitions, [], 'what time does is reported by the owner alone');
});

test('a replica follows probes, drains and their ends as records', (t) => {
  const { owner, replica } = pair();
  owner.recordProbe(fail, 100);
  owner.recordProbe(fail, 200);
  replica.adopt(owner.record());
  t.is(replica.state, 'down');
  t.false(replica.routable(300));
  t.is(replica.lastReason, 'connect refused');
  owner.recordProbe(pass, 400);
  owner.recordProbe(pass, 500);
  owner.drain(600);
  replica.adopt(owner.record());
  t.is(replica.state, 'draining');
  owner.undrain(700);
  replica.adopt(owner.record());
  t.is(replica.state, 'slow_start');
  t.is(replica.weightFactor(700), owner.weightFactor(700));
});

test('passive outcomes: every failure is reported, a success only when it ends failures', (t) => {
  const { replica, reports } = pair();
  for (const ok of [true, true, false, false, true, true, false, true, true]) replica.recordPassive(ok);
  t.deepEqual(reports, [false, false, true, false, true]);
  t.is(replica.state, 'up', 'a replica never ejects by itself');
});

test('a replica drains a removed backend silently', (t) => {
  const { replica, transitions } = pair();
  replica.drain(5);
  t.is(replica.state, 'draining');
  t.false(replica.routable(6));
  t.deepEqual(transitions, []);
});
