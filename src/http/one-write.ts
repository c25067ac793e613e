// A head and the body bytes that came with it, as one buffer: one write (one syscall, no writev
// bookkeeping) per small message instead of two.

export function withHead<Head extends string | Buffer>(head: Head, body: readonly Buffer[]): Buffer | Head {
  if (body.length === 0) return head;
  let size = head.length;
  for (const part of body) size += part.length;
  const out = Buffer.allocUnsafe(size);
  let offset = typeof head === 'string' ? out.write(head, 0, 'latin1') : head.copy(out, 0);
  for (const part of body) offset += part.copy(out, offset);
  return out;
}
