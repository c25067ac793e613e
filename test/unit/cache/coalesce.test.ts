import test from 'ava';
import { Coalescer, type Flight, type FlightOutcome } from '../../../src/cache/coalesce.ts';

function lead(flight: Flight): (outcome: FlightOutcome) => void {
  if (!flight.leader) throw new Error('expected to lead');
  return flight.finish;
}

function follow(flight: Flight): Promise<FlightOutcome> {
  if (flight.leader) throw new Error('expected to follow');
  return flight.wait;
}

test('the first miss leads, later ones follow and all learn the outcome', async (t) => {
  const flights = new Coalescer();
  const finish = lead(flights.join('k'));
  const waits = [follow(flights.join('k')), follow(flights.join('k')), follow(flights.join('k'))];
  t.is(flights.size, 1);
  t.is(flights.followers('k'), 3);
  finish('stored');
  t.deepEqual(await Promise.all(waits), ['stored', 'stored', 'stored']);
  t.is(flights.size, 0);
});

test('a failed or uncacheable leader releases followers to go to the backend themselves', async (t) => {
  const flights = new Coalescer();
  const finishA = lead(flights.join('a'));
  const a = follow(flights.join('a'));
  const finishB = lead(flights.join('b'));
  const b = follow(flights.join('b'));
  finishA('failed');
  finishB('uncacheable');
  t.is(await a, 'failed');
  t.is(await b, 'uncacheable');
});

test('keys are independent', async (t) => {
  const flights = new Coalescer();
  const finishA = lead(flights.join('a'));
  lead(flights.join('b'))('stored');
  t.is(flights.size, 1);
  t.is(flights.followers('b'), 0);
  const a = follow(flights.join('a'));
  finishA('stored');
  t.is(await a, 'stored');
});

test('after finish the next miss leads a new flight', async (t) => {
  const flights = new Coalescer();
  const first = lead(flights.join('k'));
  const early = follow(flights.join('k'));
  first('failed');
  const second = lead(flights.join('k'));
  const late = follow(flights.join('k'));
  second('stored');
  t.is(await early, 'failed');
  t.is(await late, 'stored');
});

test('finish is once: later calls are ignored and do not end a newer flight', async (t) => {
  const flights = new Coalescer();
  const first = lead(flights.join('k'));
  first('stored');
  const second = lead(flights.join('k'));
  const waiting = follow(flights.join('k'));
  first('failed'); // stale finish from the old leader
  t.is(flights.size, 1);
  t.is(flights.followers('k'), 1);
  second('uncacheable');
  t.is(await waiting, 'uncacheable');
});

test('a leader without followers finishes cleanly', (t) => {
  const flights = new Coalescer();
  lead(flights.join('k'))('stored');
  t.is(flights.size, 0);
  t.is(flights.followers('k'), 0);
});
