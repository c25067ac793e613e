import test from 'ava';
import type { ProbeResultKind } from '../../../src/health/probe.ts';
import {
  BackendHealth,
  type BackendHealthOptions,
  ejectionAllowed,
  type Transition,
} from '../../../src/health/state.ts';

const pass = { result: 'success' as const, reason: 'HEAD / answered 200', durationMs: 1 };
const fail = { result: 'bad_status' as const, reason: 'HEAD / answered 503', durationMs: 1 };

function make(options: Partial<BackendHealthOptions> = {}, now = 0) {
  const transitions: Transition[] = [];
  const health = new BackendHealth(
    { rise: 2, fall: 3, onTransition: (t) => transitions.push(t), ...options },
    now,
  );
  return { health, transitions };
}

/** Feeds `fails` passive failures at `now`. */
function failPassive(health: BackendHealth, now: number, count = 5, canEject = () => true): void {
  for (let i = 0; i < count; i++) health.recordPassive(false, now, canEject);
}

test('starts up and routable by default, at full weight', (t) => {
  const { health, transitions } = make({}, 1000);
  t.is(health.state, 'up');
  t.is(health.since, 1000);
  t.true(health.routable(1000));
  t.is(health.weightFactor(1000), 1);
  t.is(health.lastResult, undefined);
  t.is(health.lastReason, undefined);
  t.deepEqual(transitions, []);
});

test('initial down waits for rise passes; initial slow_start ramps', (t) => {
  const down = make({ initial: 'down' }).health;
  t.is(down.state, 'down');
  t.false(down.routable(0));
  const ramp = make({ initial: 'slow_start' }, 0).health;
  t.is(ramp.state, 'slow_start');
  t.is(ramp.weightFactor(0), 0.1);
  t.is(ramp.weightFactor(10_000), 1);
  t.is(ramp.state, 'up');
});

test('fall 3: pass pass fail fail pass fail fail fail goes down at the 8th check', (t) => {
  const { health, transitions } = make({ fall: 3 });
  const sequence: ProbeResultKind[] = [
    'success',
    'success',
    'timeout',
    'refused',
    'success',
    'bad_status',
    'reset',
    'timeout',
  ];
  const states = sequence.map((result, i) => {
    health.recordProbe({ result, reason: `check ${i + 1}` }, (i + 1) * 2000);
    return health.state;
  });
  t.deepEqual(states, ['up', 'up', 'up', 'up', 'up', 'up', 'up', 'down']);
  t.deepEqual(transitions, [
    {
      from: 'up',
      to: 'down',
      reason: '3 consecutive failed checks, last: check 8',
      at: 16_000,
      cause: 'active',
    },
  ]);
  t.is(health.since, 16_000);
  t.is(health.lastResult, 'timeout');
  t.is(health.lastReason, 'check 8');
  t.false(health.routable(16_000));
});

test('changing is true while a fall or rise run is incomplete', (t) => {
  const { health } = make({ rise: 2, fall: 3 });
  t.false(health.changing);
  health.recordProbe(fail, 1);
  t.true(health.changing);
  health.recordProbe(pass, 2);
  t.false(health.changing);
  health.recordProbe(fail, 3);
  health.recordProbe(fail, 4);
  t.true(health.changing);
  health.recordProbe(fail, 5);
  t.is(health.state, 'down');
  t.false(health.changing);
  health.recordProbe(pass, 6);
  t.true(health.changing);
  health.recordProbe(fail, 7);
  t.false(health.changing);
});

test('rise 2 brings a down backend back in slow_start, then up after 10 s', (t) => {
  const { health, transitions } = make({ rise: 2, fall: 1 });
  health.recordProbe(fail, 0);
  t.is(health.state, 'down');
  health.recordProbe(pass, 2000);
  t.is(health.state, 'down');
  health.recordProbe(fail, 4000); // breaks the run
  health.recordProbe(pass, 6000);
  t.is(health.state, 'down');
  health.recordProbe(pass, 8000);
  t.is(health.state, 'slow_start');
  t.is(health.since, 8000);
  t.true(health.routable(8000));
  t.true(health.routable(17_999));
  t.is(health.state, 'slow_start');
  t.true(health.routable(18_000));
  t.is(health.state, 'up');
  t.is(health.since, 18_000);
  t.deepEqual(
    transitions.map(({ from, to, at, cause }) => ({ from, to, at, cause })),
    [
      { from: 'up', to: 'down', at: 0, cause: 'active' },
      { from: 'down', to: 'slow_start', at: 8000, cause: 'active' },
      { from: 'slow_start', to: 'up', at: 18_000, cause: 'timer' },
    ],
  );
  t.is(transitions[0]?.reason, 'failed check, last: HEAD / answered 503');
  t.is(transitions[1]?.reason, '2 consecutive passing checks, last: HEAD / answered 200');
  t.is(transitions[2]?.reason, 'slow start of 10 s done');
});

test('slow start weight factor ramps linearly from 0.1 to 1.0', (t) => {
  const { health } = make({ rise: 1, fall: 1 });
  health.recordProbe(fail, 0);
  health.recordProbe(pass, 100_000);
  t.is(health.state, 'slow_start');
  t.is(health.weightFactor(100_000), 0.1);
  t.is(health.weightFactor(102_500), 0.325);
  t.is(health.weightFactor(105_000), 0.55);
  t.is(health.state, 'slow_start');
  t.is(health.weightFactor(110_000), 1);
  t.is(health.state, 'up');
});

test('slow start of 0 comes back straight up', (t) => {
  const { health } = make({ rise: 1, fall: 1, slowStartMs: 0 });
  health.recordProbe(fail, 0);
  health.recordProbe(pass, 1);
  t.is(health.state, 'up');
});

test('a failure during slow start counts toward fall', (t) => {
  const { health } = make({ rise: 1, fall: 2 });
  health.recordProbe(fail, 0);
  health.recordProbe(fail, 1);
  health.recordProbe(pass, 2);
  t.is(health.state, 'slow_start');
  health.recordProbe(fail, 3);
  health.recordProbe(fail, 4);
  t.is(health.state, 'down');
});

test('5 consecutive passive failures eject; a success resets the run', (t) => {
  const { health, transitions } = make();
  failPassive(health, 1000, 4);
  t.is(health.consecutiveFailures, 4);
  health.recordPassive(true, 1000);
  t.is(health.consecutiveFailures, 0);
  failPassive(health, 1000, 4);
  t.is(health.state, 'up');
  health.recordPassive(false, 1000);
  t.is(health.state, 'ejected');
  t.false(health.routable(1000));
  t.is(health.ejections, 1);
  t.is(health.ejectedUntil, 31_000);
  t.is(health.consecutiveFailures, 0);
  t.deepEqual(transitions, [
    {
      from: 'up',
      to: 'ejected',
      reason: '5 consecutive failed requests, ejected for 30 s',
      at: 1000,
      cause: 'passive',
    },
  ]);
});

test('ejection durations double: 30, 60, 120, 240, 300, 300 s', (t) => {
  const { health, transitions } = make();
  let now = 0;
  const durations: number[] = [];
  for (let i = 0; i < 6; i++) {
    failPassive(health, now);
    t.is(health.state, 'ejected');
    const until = health.ejectedUntil as number;
    durations.push((until - now) / 1000);
    t.false(health.routable(until - 1));
    t.true(health.routable(until));
    t.is(health.state, 'slow_start');
    now = until;
  }
  t.deepEqual(durations, [30, 60, 120, 240, 300, 300]);
  t.is(health.ejections, 6);
  const back = transitions.filter((tr) => tr.to === 'slow_start');
  t.is(back.length, 6);
  t.deepEqual(back[0], {
    from: 'ejected',
    to: 'slow_start',
    reason: 'ejection of 30 s ended',
    at: 30_000,
    cause: 'timer',
  });
});

test('the ejection multiplier decays one step per 30 s not ejected', (t) => {
  const { health } = make();
  failPassive(health, 0); // 30 s
  health.advance(30_000);
  failPassive(health, 30_000); // 60 s
  t.is(health.ejectedUntil, 90_000);
  health.advance(90_000);
  failPassive(health, 90_000 + 29_999); // still within the first decay step: 120 s
  t.is((health.ejectedUntil as number) - 119_999, 120_000);
  health.advance(239_999);
  // Back at 239 999 with three levels; 60 s later two steps are gone: one level left, so 60 s.
  failPassive(health, 299_999);
  t.is((health.ejectedUntil as number) - 299_999, 60_000);
  health.advance(359_999);
  // A long healthy period resets it all the way to the base.
  failPassive(health, 359_999 + 3_600_000);
  t.is((health.ejectedUntil as number) - (359_999 + 3_600_000), 30_000);
});

test('canEject false refuses the ejection; the next failure asks again', (t) => {
  const { health, transitions } = make();
  let allow = false;
  let asked = 0;
  const canEject = () => {
    asked++;
    return allow;
  };
  failPassive(health, 0, 5, canEject);
  t.is(health.state, 'up');
  t.is(asked, 1);
  t.is(health.ejectionsRefused, 1);
  t.is(health.ejections, 0);
  t.deepEqual(transitions, []);
  allow = true;
  health.recordPassive(false, 1, canEject);
  t.is(health.state, 'ejected');
  t.is(asked, 2);
  t.is(health.ejectedUntil, 30_001);
});

test('a passing probe during ejection brings the backend back in slow start', (t) => {
  const { health, transitions } = make();
  failPassive(health, 1000);
  t.is(health.state, 'ejected');
  health.recordProbe(pass, 3000);
  t.is(health.state, 'slow_start');
  t.true(health.routable(3000));
  t.is(health.weightFactor(3000), 0.1);
  t.deepEqual(transitions.at(-1), {
    from: 'ejected',
    to: 'slow_start',
    reason: 'check passed while ejected: HEAD / answered 200',
    at: 3000,
    cause: 'active',
  });
});

test('a probe that started before the ejection does not end it', (t) => {
  const { health } = make();
  failPassive(health, 1000);
  health.recordProbe({ ...pass, durationMs: 500 }, 1200); // started at 700
  t.is(health.state, 'ejected');
  health.recordProbe({ ...pass, durationMs: 200 }, 1200); // started at 1000
  t.is(health.state, 'slow_start');
});

test('probeEndsEjection false keeps the ejection for its full time', (t) => {
  const { health } = make({ probeEndsEjection: false });
  failPassive(health, 0);
  health.recordProbe(pass, 5000);
  t.is(health.state, 'ejected');
  t.true(health.routable(30_000));
});

test('failing probes during ejection take the backend down', (t) => {
  const { health, transitions } = make({ fall: 2 });
  failPassive(health, 0);
  health.recordProbe(fail, 1000);
  t.is(health.state, 'ejected');
  health.recordProbe(fail, 2000);
  t.is(health.state, 'down');
  t.is(health.ejectedUntil, undefined);
  // Ejection time passing does not bring a down backend back.
  t.false(health.routable(60_000));
  t.is(transitions.at(-1)?.to, 'down');
});

test('passive failures do not count against down or ejected backends', (t) => {
  const { health } = make({ fall: 1 });
  health.recordProbe(fail, 0);
  failPassive(health, 0, 10);
  t.is(health.state, 'down');
  t.is(health.consecutiveFailures, 0);
  t.is(health.ejections, 0);
});

test('drain and undrain', (t) => {
  const { health, transitions } = make();
  health.drain(1000);
  t.is(health.state, 'draining');
  t.false(health.routable(1000));
  t.is(health.since, 1000);
  health.drain(1500); // no-op
  failPassive(health, 2000, 10); // no ejection while drained
  t.is(health.state, 'draining');
  health.undrain(5000);
  t.is(health.state, 'slow_start');
  t.true(health.routable(5000));
  t.is(health.weightFactor(5000), 0.1);
  health.undrain(6000); // no-op
  t.deepEqual(transitions, [
    { from: 'up', to: 'draining', reason: 'drained', at: 1000, cause: 'admin' },
    { from: 'draining', to: 'slow_start', reason: 'undrained', at: 5000, cause: 'admin' },
  ]);
});

test('checks keep running under a drain; undrain reveals the outcome', (t) => {
  const { health, transitions } = make({ fall: 2 });
  health.drain(0);
  health.recordProbe(fail, 1);
  health.recordProbe(fail, 2);
  t.is(health.state, 'draining');
  t.is(transitions.length, 1);
  health.undrain(3);
  t.is(health.state, 'down');
  t.deepEqual(transitions.at(-1), {
    from: 'draining',
    to: 'down',
    reason: 'undrained',
    at: 3,
    cause: 'admin',
  });
});

test('time never runs backwards', (t) => {
  const { health } = make({ rise: 1, fall: 1 });
  health.recordProbe(fail, 0);
  health.recordProbe(pass, 10_000);
  t.is(health.weightFactor(15_000), 0.55);
  t.is(health.weightFactor(12_500), 0.55);
});

test('a late advance applies each due change at its own time', (t) => {
  const { health, transitions } = make();
  failPassive(health, 0);
  health.advance(1_000_000);
  t.is(health.state, 'up');
  t.deepEqual(
    transitions.map(({ to, at }) => ({ to, at })),
    [
      { to: 'ejected', at: 0 },
      { to: 'slow_start', at: 30_000 },
      { to: 'up', at: 40_000 },
    ],
  );
});

test('snapshot', (t) => {
  const { health } = make();
  health.recordProbe(pass, 5);
  t.deepEqual(health.snapshot(10), {
    state: 'up',
    since: 0,
    routable: true,
    weightFactor: 1,
    lastResult: 'success',
    lastReason: 'HEAD / answered 200',
    consecutiveFailures: 0,
    ejections: 0,
    ejectedUntil: undefined,
  });
});

test('ejectionAllowed: never more than half a pool', (t) => {
  t.false(ejectionAllowed(0, 1));
  t.true(ejectionAllowed(0, 2));
  t.false(ejectionAllowed(1, 2));
  t.true(ejectionAllowed(0, 3));
  t.false(ejectionAllowed(1, 3));
  t.true(ejectionAllowed(1, 4));
  t.false(ejectionAllowed(2, 4));
  t.true(ejectionAllowed(2, 10, 30));
  t.false(ejectionAllowed(3, 10, 30));
});

test('a probe this machine could not make (EMFILE) leaves the state, the streak and the reason alone', (t) => {
  const { health, transitions } = make({ fall: 1 });
  const local = { result: 'local_error' as const, reason: 'local resource error: EMFILE', durationMs: 0 };
  for (let i = 0; i < 5; i++) health.recordProbe(local, 1000 + i);
  t.is(health.state, 'up');
  t.deepEqual(transitions, []);
  health.recordProbe(fail, 2000);
  t.is(health.state, 'down');
  health.recordProbe(pass, 3000);
  health.recordProbe(local, 3500);
  // rise 2: the local error neither counted as a pass nor broke the streak.
  health.recordProbe(pass, 4000);
  t.is(health.state, 'slow_start');
});
