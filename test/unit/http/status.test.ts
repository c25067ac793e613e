// Every status Sluice or its admin port writes itself goes out with its reason phrase (RFC 9110 15).
import test from 'ava';
import { reasonPhrase } from '../../../src/http/status.ts';

const written: [number, string][] = [
  [200, 'OK'],
  [202, 'Accepted'], // a rolling restart begun
  [400, 'Bad Request'],
  [401, 'Unauthorized'], // the admin token missing
  [403, 'Forbidden'], // an admin state change from a browser
  [404, 'Not Found'],
  [405, 'Method Not Allowed'],
  [408, 'Request Timeout'],
  [409, 'Conflict'], // a rolling restart already running
  [413, 'Content Too Large'],
  [414, 'URI Too Long'],
  [431, 'Request Header Fields Too Large'],
  [500, 'Internal Server Error'],
  [501, 'Not Implemented'],
  [502, 'Bad Gateway'],
  [503, 'Service Unavailable'],
  [504, 'Gateway Timeout'],
  [505, 'HTTP Version Not Supported'],
  [508, 'Loop Detected'], // a request that already passed this Sluice
];

for (const [status, reason] of written)
  test(`${status} goes out as ${status} ${reason}`, (t) => {
    t.is(reasonPhrase(status), reason);
  });
