// One request and its response on an open connection: the head and the body are written
// (with backpressure) while the response is read, so an early answer (413, 401) is seen at
// once and the rest of the upload is dropped.
import { once } from 'node:events';
import type { Socket } from 'node:net';
import type { RequestBody } from './body.ts';
import { ClientError, describeNetError } from './errors.ts';
import {
  type ResponseHandler,
  type ResponseSummary,
  readResponse,
  type SocketChunks,
} from './response-reader.ts';

export interface ExchangeParams {
  socket: Socket;
  chunks: SocketChunks;
  /** Where the socket is connected, for error messages. */
  host: string;
  port: number;
  head: Buffer;
  body: RequestBody | undefined;
  method: string;
  /** The request carries Upgrade (a -H): a 101 is then its answer, else a malformed response. */
  upgradeAsked: boolean;
  handler: ResponseHandler;
}

export interface ExchangeResult extends ResponseSummary {
  /** Request body bytes written to the socket. */
  sentBodyBytes: number;
}

async function send(
  socket: Socket,
  head: Buffer,
  body: RequestBody | undefined,
  signal: AbortSignal,
  sent: { bytes: number },
): Promise<void> {
  let full = !socket.write(head);
  if (body === undefined || body.length === 0) return;
  for await (const chunk of body.chunks()) {
    if (full) await once(socket, 'drain', { signal });
    if (signal.aborted) return;
    full = !socket.write(chunk);
    sent.bytes += chunk.length;
  }
}

export async function exchange(params: ExchangeParams): Promise<ExchangeResult> {
  const { socket } = params;
  const stop = new AbortController();
  const sent = { bytes: 0 };
  const sending = send(socket, params.head, params.body, stop.signal, sent).catch((error: unknown) => {
    // A body that cannot be read is our failure: end the exchange with it. Network errors
    // show up on the reading side too (where a response may still have arrived first).
    if (error instanceof ClientError) socket.destroy(error);
  });
  try {
    const summary = await readResponse(params.chunks, params.method, params.handler, params.upgradeAsked);
    return { ...summary, sentBodyBytes: sent.bytes };
  } catch (error) {
    throw describeNetError(error, params.host, params.port, 'exchange');
  } finally {
    stop.abort();
    await sending;
  }
}
