import test from 'ava';
import { RetryBudget } from '../../../src/upstream/retry-budget.ts';

const options = { ratio: 0.2, minRetries: 3, windowMs: 10_000 };

test('a quiet pool may still retry up to the floor', (t) => {
  const budget = new RetryBudget(options);
  budget.recordRequest(1000);
  t.deepEqual(
    [1, 2, 3, 4].map(() => budget.tryAcquire(1000)),
    [true, true, true, false],
  );
});

test('retries are capped at 20% of the requests in the window', (t) => {
  const budget = new RetryBudget(options);
  for (let i = 0; i < 100; i++) budget.recordRequest(5000);
  let granted = 0;
  for (let i = 0; i < 50; i++) if (budget.tryAcquire(5000)) granted++;
  t.is(granted, 20);
  t.is(budget.refused, 30, 'every refusal is counted');
});

test('the window slides: after ten quiet seconds the budget is whole again', (t) => {
  const budget = new RetryBudget(options);
  for (let i = 0; i < 3; i++) t.true(budget.tryAcquire(0));
  t.false(budget.tryAcquire(9_999));
  t.true(budget.tryAcquire(10_000));
  t.true(budget.tryAcquire(25_000));
});

test('requests older than the window no longer count', (t) => {
  const budget = new RetryBudget(options);
  for (let i = 0; i < 100; i++) budget.recordRequest(0);
  let granted = 0;
  for (let i = 0; i < 50; i++) if (budget.tryAcquire(10_500)) granted++;
  t.is(granted, 3);
});
