// A stand-in for src/cluster/worker.ts, for the supervisor's own tests: it speaks the protocol
// and nothing else. FAKE_WORKER says how it behaves: `crash` exits (code 3) 50 ms after it says it
// listens, `broken` exits (code 4) when told to start, anything else runs until told to stop.
const mode = process.env.FAKE_WORKER ?? 'steady';
process.on('message', (message: { type: string }) => {
  if (message.type === 'start') {
    if (mode === 'broken') process.exit(4);
    process.send?.({ type: 'ready', port: 1 });
    if (mode === 'crash') setTimeout(() => process.exit(3), 50);
  }
  if (message.type === 'stop') process.exit(0);
});
process.on('disconnect', () => process.exit(0));
process.send?.({ type: 'hello' });
