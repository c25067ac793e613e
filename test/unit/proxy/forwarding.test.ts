import test from 'ava';
import type { HeaderField } from '../../../src/http/message.ts';
import { field } from '../../../src/http/serialize.ts';
import {
  addForwardingFields,
  plainAddress,
  requestIdOf,
  TrustedPeers,
} from '../../../src/proxy/forwarding.ts';

const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

function pairs(fields: readonly HeaderField[]): string[][] {
  return fields.map((header) => [header.name, header.value]);
}

const spoofing = [
  field('Host', 'shop.example'),
  field('X-Forwarded-For', '6.6.6.6'),
  field('Forwarded', 'for=6.6.6.6'),
  field('X-Forwarded-Proto', 'https'),
  field('X-Forwarded-Host', 'evil.example'),
  field('Via', '1.0 corp-proxy'),
  field('Accept', '*/*'),
];

test('an untrusted client cannot forge forwarding fields; Via is always appended', (t) => {
  const out = addForwardingFields(spoofing, {
    clientAddress: '203.0.113.7',
    trusted: false,
    host: 'shop.example',
    requestId: 'req-1',
  });
  t.deepEqual(pairs(out), [
    ['Host', 'shop.example'],
    ['Accept', '*/*'],
    ['X-Forwarded-For', '203.0.113.7'],
    ['X-Forwarded-Proto', 'http'],
    ['X-Forwarded-Host', 'shop.example'],
    ['Forwarded', 'for=203.0.113.7;host=shop.example;proto=http'],
    ['X-Real-IP', '203.0.113.7'],
    ['Via', '1.0 corp-proxy, 1.1 sluice'],
    ['X-Request-Id', 'req-1'],
  ]);
});

test('a trusted proxy keeps its chain and Sluice appends the client', (t) => {
  const out = addForwardingFields(spoofing, {
    clientAddress: '10.0.0.2',
    trusted: true,
    host: 'shop.example',
    requestId: 'req-2',
  });
  t.deepEqual(pairs(out), [
    ['Host', 'shop.example'],
    ['Accept', '*/*'],
    ['X-Forwarded-For', '6.6.6.6, 10.0.0.2'],
    ['X-Forwarded-Proto', 'https'],
    ['X-Forwarded-Host', 'evil.example'],
    ['Forwarded', 'for=6.6.6.6, for=10.0.0.2;host=shop.example;proto=http'],
    ['X-Real-IP', '10.0.0.2'],
    ['Via', '1.0 corp-proxy, 1.1 sluice'],
    ['X-Request-Id', 'req-2'],
  ]);
});

test('IPv6 clients and hosts with a port are quoted in Forwarded (RFC 7239 sections 4, 6)', (t) => {
  const out = addForwardingFields([], {
    clientAddress: '2001:db8::1',
    trusted: false,
    host: 'a.test:8080',
    requestId: 'r',
  });
  t.is(
    out.find((header) => header.lower === 'forwarded')?.value,
    'for="[2001:db8::1]";host="a.test:8080";proto=http',
  );
});

test('a host with characters outside a token is quoted in Forwarded', (t) => {
  const out = addForwardingFields([], {
    clientAddress: '127.0.0.1',
    trusted: false,
    host: '[::1]:8080',
    requestId: 'r',
  });
  t.is(
    out.find((header) => header.lower === 'forwarded')?.value,
    'for=127.0.0.1;host="[::1]:8080";proto=http',
  );
});

test('without Host there is no X-Forwarded-Host and no host= parameter', (t) => {
  const out = addForwardingFields([], {
    clientAddress: '127.0.0.1',
    trusted: false,
    host: undefined,
    requestId: 'r',
  });
  t.deepEqual(
    out.map((header) => header.name),
    ['X-Forwarded-For', 'X-Forwarded-Proto', 'Forwarded', 'X-Real-IP', 'Via', 'X-Request-Id'],
  );
  t.is(out.find((header) => header.lower === 'forwarded')?.value, 'for=127.0.0.1;proto=http');
});

test('a sane X-Request-Id is kept in place, a duplicate dropped', (t) => {
  const headers = [field('X-Request-Id', 'abc-123'), field('Accept', '*/*'), field('x-request-id', 'other')];
  t.is(requestIdOf(headers), 'abc-123');
  const out = addForwardingFields(headers, {
    clientAddress: '127.0.0.1',
    trusted: false,
    host: undefined,
    requestId: 'abc-123',
  });
  t.deepEqual(
    out.filter((header) => header.lower === 'x-request-id').map((header) => header.value),
    ['abc-123'],
  );
  t.is(out[0]?.lower, 'x-request-id');
});

test('a missing or insane X-Request-Id is replaced by a UUID', (t) => {
  t.regex(requestIdOf([]), uuid);
  t.regex(requestIdOf([field('X-Request-Id', 'has space')]), uuid);
  t.regex(requestIdOf([field('X-Request-Id', 'x'.repeat(201))]), uuid);
  t.is(requestIdOf([field('X-Request-Id', 'x'.repeat(200))]), 'x'.repeat(200));
});

test('trusted peers match addresses and CIDRs of both families', (t) => {
  const peers = new TrustedPeers(['10.0.0.0/8', '192.168.1.5', 'fd00::/8']);
  t.true(peers.has('10.20.30.40'));
  t.true(peers.has('192.168.1.5'));
  t.false(peers.has('192.168.1.6'));
  t.true(peers.has('fd12::1'));
  t.false(peers.has('2001:db8::1'));
  t.false(new TrustedPeers([]).has('127.0.0.1'));
});

test('IPv4-mapped IPv6 peers are shown as plain IPv4', (t) => {
  t.is(plainAddress('::ffff:127.0.0.1'), '127.0.0.1');
  t.is(plainAddress('::1'), '::1');
  t.is(plainAddress(undefined), 'unknown');
});
