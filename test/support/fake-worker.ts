// A stand-in for src/cluster/worker.ts, for the supervisor's own tests: it speaks the protocol
// and nothing else. Once it listens it pushes (empty) metrics every 100 ms, the supervisor's
// heartbeat. FAKE_WORKER says how it behaves: `crash` exits (code 3) 50 ms after it says it
// listens, `broken` exits (code 4) when told to start, `stubborn` never stops when told to,
// anything else runs until told to stop.
const mode = process.env.FAKE_WORKER ?? 'steady';
process.on('message', (message: { type: string }) => {
  if (message.type === 'start') {
    if (mode === 'broken') process.exit(4);
    process.send?.({ type: 'ready', port: 1 });
    setInterval(() => process.send?.({ type: 'metrics', values: new Float64Array(0) }), 100);
    if (mode === 'crash') setTimeout(() => process.exit(3), 50);
  }
  if (message.type === 'stop' && mode !== 'stubborn') process.exit(0);
});
process.on('disconnect', () => process.exit(0));
process.send?.({ type: 'hello' });
