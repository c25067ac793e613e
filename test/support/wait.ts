// Polls until a probe yields a value, for things that become true a moment later (a scrape,
// a container answering). Errors from the probe count as "not yet".

export async function until<T>(
  what: string,
  timeoutMs: number,
  probe: () => Promise<T | undefined>,
  everyMs = 200,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline)
      throw new Error(`${what}: not within ${timeoutMs} ms (last error: ${String(last)})`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}
