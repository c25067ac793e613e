import test from 'ava';
import { endToEndFields, isHopByHop } from '../../../src/http/hop-by-hop.ts';
import { field } from '../../../src/http/serialize.ts';

const hopByHop = [
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'content-length',
];

test('every hop-by-hop and framing field stops at this hop', (t) => {
  for (const name of hopByHop) t.true(isHopByHop(name, []), name);
});

test('end-to-end fields of the same lengths pass, as do near misses', (t) => {
  const passing = [
    'tf',
    'referer',
    'warning',
    'user-agent',
    'connections',
    'content-type',
    'content-language',
    'content-encoding',
    'proxy-connectionx',
    'x-forwarded-proto',
    'access-control-max',
    'proxy-authorisation',
    'host',
    '',
  ];
  for (const name of passing) t.false(isHopByHop(name, []), name);
});

test('a field named in Connection is hop-by-hop too', (t) => {
  t.true(isHopByHop('x-trace', ['x-trace']));
  t.false(isHopByHop('x-trace', ['x-other']));
});

test('endToEndFields drops exactly the hop-by-hop ones and keeps the order of the rest', (t) => {
  const fields = [
    field('Host', 'a'),
    field('Connection', 'keep-alive, X-Trace'),
    field('X-Trace', '1'),
    field('Accept', '*/*'),
    field('TE', 'trailers'),
    field('Content-Length', '3'),
    field('Via', '1.1 other'),
  ];
  t.deepEqual(
    endToEndFields(fields, ['keep-alive', 'x-trace']).map((f) => f.name),
    ['Host', 'Accept', 'Via'],
  );
  const clean = [field('Host', 'a'), field('Accept', '*/*')];
  t.is(endToEndFields(clean, []), clean);
});
