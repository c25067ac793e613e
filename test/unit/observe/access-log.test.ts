import { existsSync, mkdtempSync, readFileSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { AccessLog, type AccessRecord, lineBound, writeAccessLine } from '../../../src/observe/access-log.ts';
import { LogWriter, pipeChunks } from '../../../src/observe/log-writer.ts';

const T = '2026-11-28T09:00:00.123Z';
/** The line of `record` as text, stamped `timestamp`. */
function accessLine(record: AccessRecord, timestamp: string): string {
  const buf = Buffer.alloc(lineBound(record, timestamp));
  return buf.toString('utf8', 0, writeAccessLine(buf, 0, record, timestamp));
}
const lineAtT = (record: AccessRecord) => accessLine(record, T);

test('an access line: every field, in a fixed order, exact', (t) => {
  const line = lineAtT({
    type: 'access',
    requestId: 'r-1',
    client: '127.0.0.1',
    clientPort: 51234,
    method: 'GET',
    host: 'www.example.test',
    path: '/a?b=1',
    protocol: 'HTTP/1.1',
    status: 200,
    pool: 'web',
    backend: 'b1',
    backendAddress: '127.0.0.1:9001',
    backendStatus: 200,
    attempts: 1,
    bytesIn: 0,
    bytesOut: 1024,
    durationMs: 1.23456,
    upstreamMs: 0.5,
    cache: 'miss',
    userAgent: 'curl/8.0',
    referer: 'http://example.test/',
  });
  t.is(
    line,
    '{"timestamp":"2026-11-28T09:00:00.123Z","level":"info","message":"access","type":"access","requestId":"r-1",' +
      '"client":"127.0.0.1","clientPort":51234,"method":"GET","host":"www.example.test","path":"/a?b=1",' +
      '"protocol":"HTTP/1.1","status":200,"pool":"web","backend":"b1","backendAddress":"127.0.0.1:9001",' +
      '"backendStatus":200,"attempts":1,"bytesIn":0,"bytesOut":1024,"durationMs":1.235,"upstreamMs":0.500,' +
      '"cache":"miss","userAgent":"curl/8.0","referer":"http://example.test/"}\n',
  );
});

/** The fields every line has. */
const minimal = (type: AccessRecord['type'], status: number): AccessRecord => ({
  type,
  requestId: type === 'rejected' ? 'r-2' : 'x',
  client: type === 'rejected' ? '::1' : '127.0.0.1',
  clientPort: 4000,
  status,
});

test('a rejected line leaves out what Sluice never learnt', (t) => {
  const refused = minimal('rejected', 431);
  const line = lineAtT({ ...refused, error: 'header_too_large', detail: 'request head too large' });
  t.is(
    line,
    '{"timestamp":"2026-11-28T09:00:00.123Z","level":"info","message":"access","type":"rejected","requestId":"r-2",' +
      '"client":"::1","clientPort":4000,"status":431,"error":"header_too_large","detail":"request head too large"}\n',
  );
});

test('a backend keeps its address across a reload but gets a new name or pool: lines say the new one', (t) => {
  const answered = (pool: string, backend: string): AccessRecord => ({
    ...minimal('access', 200),
    pool,
    backend,
    backendAddress: '10.0.0.7:80',
  });
  const names = (line: string) => {
    const { pool, backend, backendAddress } = JSON.parse(line) as Record<string, string>;
    return [pool, backend, backendAddress];
  };
  t.deepEqual(names(lineAtT(answered('web', 'b1'))), ['web', 'b1', '10.0.0.7:80']);
  t.deepEqual(names(lineAtT(answered('web', 'b1'))), ['web', 'b1', '10.0.0.7:80']);
  t.deepEqual(names(lineAtT(answered('web', 'renamed'))), ['web', 'renamed', '10.0.0.7:80']);
  t.deepEqual(names(lineAtT(answered('api', 'renamed'))), ['api', 'renamed', '10.0.0.7:80']);
  t.deepEqual(names(lineAtT(answered('web', 'b1'))), ['web', 'b1', '10.0.0.7:80']);
  // Without a backend (a rejection), the line has none of the three.
  t.false(lineAtT(minimal('rejected', 404)).includes('"pool"'));
});

test('values a client controls are escaped: the line stays one valid JSON object', (t) => {
  const nasty = 'a"b\\c\u0001\u2028é';
  const line = accessLine(
    {
      type: 'access',
      requestId: 'x',
      client: '1.2.3.4',
      clientPort: 1,
      status: 200,
      path: nasty,
      userAgent: nasty,
    },
    T,
  );
  t.is(line.split('\n').length, 2);
  const parsed = JSON.parse(line) as Record<string, unknown>;
  t.is(parsed.path, nasty);
  t.is(parsed.userAgent, nasty);
});

function tempFile(): string {
  return join(mkdtempSync(join(tmpdir(), 'sluice-log-')), 'access.log');
}

const read = (path: string) => (existsSync(path) ? readFileSync(path, 'utf8') : '');

test('the writer holds lines until the buffer is full, then writes them in one go', (t) => {
  const path = tempFile();
  const writer = new LogWriter({ destination: { kind: 'file', path }, bufferBytes: 100, flushMs: 60_000 });
  const line = `${'x'.repeat(39)}\n`; // 40 characters
  writer.write(Buffer.from(line));
  writer.write(Buffer.from(line));
  t.is(read(path), '', 'two lines (80 bytes) stay buffered');
  writer.write(Buffer.from(line));
  t.is(read(path), line.repeat(3), 'the third line fills the buffer: all three written');
  writer.write(Buffer.from(line));
  t.is(read(path), line.repeat(3));
  writer.close();
  t.is(read(path), line.repeat(4), 'close flushes the rest');
  writer.write(Buffer.from(line));
  t.is(read(path), line.repeat(4), 'lines after close are dropped');
});

test('the writer flushes by time: a line waits at most flushMs', async (t) => {
  const path = tempFile();
  const writer = new LogWriter({ destination: { kind: 'file', path }, bufferBytes: 65536, flushMs: 100 });
  writer.write(Buffer.from('one\n'));
  await new Promise((resolve) => setTimeout(resolve, 30));
  t.is(read(path), '');
  await new Promise((resolve) => setTimeout(resolve, 200));
  t.is(read(path), 'one\n');
  writer.write(Buffer.from('two\n'));
  await new Promise((resolve) => setTimeout(resolve, 250));
  t.is(read(path), 'one\ntwo\n');
  writer.close();
});

test('reopen after logrotate renamed the file: old lines stay in the old file, new ones go to a new file', (t) => {
  const path = tempFile();
  const writer = new LogWriter({ destination: { kind: 'file', path }, bufferBytes: 65536, flushMs: 60_000 });
  writer.write(Buffer.from('before\n'));
  renameSync(path, `${path}.1`);
  writer.write(Buffer.from('still before\n'));
  writer.reopen();
  writer.write(Buffer.from('after\n'));
  writer.close();
  t.is(read(`${path}.1`), 'before\nstill before\n');
  t.is(read(path), 'after\n');
});

test('reopen into a directory that is gone keeps writing to the old file', (t) => {
  const path = tempFile();
  const writer = new LogWriter({ destination: { kind: 'file', path }, bufferBytes: 65536, flushMs: 60_000 });
  renameSync(join(path, '..'), `${join(path, '..')}-moved`);
  writer.write(Buffer.from('kept\n'));
  t.throws(() => writer.reopen(), { code: 'ENOENT' });
  writer.write(Buffer.from('still kept\n'));
  writer.close();
  t.is(read(join(`${join(path, '..')}-moved`, 'access.log')), 'kept\nstill kept\n');
});

test('the timestamp is the ISO time of the line, to the millisecond', (t) => {
  const path = tempFile();
  const log = new AccessLog(
    new LogWriter({ destination: { kind: 'file', path }, bufferBytes: 65536, flushMs: 60_000 }),
  );
  const windows: { before: number; after: number }[] = [];
  for (let i = 0; i < 2000; i++) {
    const before = Date.now();
    log.record({ type: 'access', requestId: String(i), client: '127.0.0.1', clientPort: 1, status: 200 });
    windows.push({ before, after: Date.now() });
  }
  log.writer.close();
  const lines = read(path).trim().split('\n');
  t.is(lines.length, 2000);
  for (const [i, line] of lines.entries()) {
    const stamp = (JSON.parse(line) as { timestamp: string }).timestamp;
    const at = Date.parse(stamp);
    const { before, after } = windows[i] as { before: number; after: number };
    if (!(new Date(at).toISOString() === stamp && at >= before && at <= after)) t.fail(`line ${i}: ${stamp}`);
  }
  t.pass();
});

test('durations: milliseconds with three decimals, rounded to the microsecond', (t) => {
  const base = minimal('access', 200);
  const durations = (durationMs: number) =>
    (JSON.parse(lineAtT({ ...base, durationMs })) as { durationMs: number }).durationMs;
  t.true(lineAtT({ ...base, durationMs: 0 }).includes('"durationMs":0.000}'));
  t.true(lineAtT({ ...base, durationMs: 12.0456 }).includes('"durationMs":12.046}'));
  t.true(lineAtT({ ...base, durationMs: 0.0094 }).includes('"durationMs":0.009}'));
  t.is(durations(30_000.0996), 30_000.1);
  t.is(durations(0.9999), 1);
});

test('stdout gets whole lines in writes of at most PIPE_BUF bytes; a longer line goes alone', (t) => {
  const line = (n: number, c: string) => `${c.repeat(n - 1)}\n`;
  const text = line(3000, 'a') + line(1000, 'b') + line(200, 'c') + line(5000, 'd') + line(10, 'e');
  const chunks = pipeChunks(Buffer.from(text), 4096).map((chunk) => chunk.toString());
  t.deepEqual(chunks, [line(3000, 'a') + line(1000, 'b'), line(200, 'c'), line(5000, 'd'), line(10, 'e')]);
  t.is(chunks.join(''), text);
  t.deepEqual(pipeChunks(Buffer.alloc(0), 4096), []);
});

test('non-ASCII in a field arrives as valid UTF-8 JSON, whatever the string holds', (t) => {
  const path = tempFile();
  const log = new AccessLog(
    new LogWriter({ destination: { kind: 'file', path }, bufferBytes: 65536, flushMs: 60_000 }),
  );
  // A client's UTF-8 bytes as the parser decodes them (latin1), text from the config, an emoji
  // (a surrogate pair) and a lone surrogate.
  const agents = [
    Buffer.from('Mozilla/5.0 (Linux; é ü) Ключ/1', 'utf8').toString('latin1'),
    'café 日本 😀',
    'a\ud800b',
  ];
  for (const userAgent of agents) log.record({ ...minimal('access', 200), userAgent, path: `/${userAgent}` });
  log.writer.close();
  const text = new TextDecoder('utf-8', { fatal: true }).decode(readFileSync(path));
  const parsed = text
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as { userAgent: string; path: string });
  t.deepEqual(
    parsed.map((line) => line.userAgent),
    [agents[0], agents[1], 'a\ufffdb'],
  );
  t.is(parsed[1]?.path, '/café 日本 😀');
});

test('a flush larger than the writer buffer, and a line larger than the buffer, arrive whole and in order', (t) => {
  const path = tempFile();
  const writer = new LogWriter({ destination: { kind: 'file', path }, bufferBytes: 4096, flushMs: 60_000 });
  const small = `${'s'.repeat(99)}\n`;
  const huge = `${'é日'.repeat(20_000)}\n`; // 100 kB of UTF-8 in 40,001 characters
  writer.write(Buffer.from(small));
  writer.write(Buffer.from(huge));
  writer.write(Buffer.from(small));
  writer.close();
  t.is(readFileSync(path, 'utf8'), small + huge + small);
});

/** `count` records of every shape: odd characters, huge strings, any numbers, fields left out. */
function randomRecords(howMany: number): AccessRecord[] {
  let seed = 12345;
  const random = () => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed / 2147483648;
  };
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
  const odd = ['"', '\\', '\u0000', '\u001f', '\u007f', 'é', '\u00ff', '日', '😀', '\u2028', '\t'];
  const text = () => {
    const length = random() < 0.02 ? 70_000 : Math.floor(random() * 40);
    let s = '';
    for (let i = 0; i < length; i++)
      s += random() < 0.8 ? String.fromCharCode(32 + Math.floor(random() * 95)) : pick(odd);
    return s;
  };
  const count = () =>
    pick([
      0,
      7,
      10,
      65_535,
      2 ** 31 - 1,
      2 ** 31,
      1e9,
      1e9 + 7,
      2 ** 40,
      Number.MAX_SAFE_INTEGER,
      Math.floor(random() * 1e9),
      Math.floor(random() * 1e15),
    ]);
  const duration = () => pick([0, 0.0004, 0.9999, 12.0456, random() * 1e6]);
  const maybe = <T>(make: () => T) => (random() < 0.3 ? undefined : make());
  const records: AccessRecord[] = [];
  for (let i = 0; i < howMany; i++) {
    const record: AccessRecord = {
      type: pick(['access', 'rejected'] as const),
      requestId: text(),
      client: pick(['127.0.0.1', '::1', '2001:db8::7']),
      clientPort: maybe(count),
      method: maybe(() => pick(['GET', 'POST', 'PURGE'])),
      host: maybe(text),
      path: maybe(text),
      protocol: maybe(() => pick(['HTTP/1.1', 'HTTP/1.0'])),
      status: pick([200, 404, 502]),
      pool: maybe(() => pick(['web', 'api.v2'])),
      backend: maybe(text),
      backendAddress: maybe(() => pick(['127.0.0.1:9001', '[::1]:80'])),
      backendStatus: maybe(count),
      attempts: maybe(count),
      bytesIn: maybe(count),
      bytesOut: maybe(count),
      durationMs: maybe(duration),
      upstreamMs: maybe(duration),
      cache: maybe(() => pick(['hit', 'miss'])),
      error: maybe(() => pick(['connect_refused', 'response_timeout'])),
      detail: maybe(text),
      userAgent: maybe(text),
      referer: maybe(text),
    };
    records.push(record);
  }
  return records;
}

test('any record: its line is one valid UTF-8 JSON object holding exactly its fields, in order', (t) => {
  const path = tempFile();
  const log = new AccessLog(
    new LogWriter({ destination: { kind: 'file', path }, bufferBytes: 4096, flushMs: 60_000 }),
  );
  const records = randomRecords(3000);
  for (const record of records) log.record(record);
  log.writer.close();
  const lines = new TextDecoder('utf-8', { fatal: true }).decode(readFileSync(path)).split('\n');
  t.is(lines.pop(), '');
  t.is(lines.length, records.length);
  const rounded = (ms: number | undefined) => (ms === undefined ? undefined : Math.round(ms * 1000) / 1000);
  for (const [i, line] of lines.entries()) {
    const record = records[i] as AccessRecord;
    const { timestamp, ...fields } = JSON.parse(line) as Record<string, unknown>;
    const expected = Object.fromEntries(
      Object.entries({
        level: 'info',
        message: 'access',
        ...record,
        durationMs: rounded(record.durationMs),
        upstreamMs: rounded(record.upstreamMs),
      }).filter(([, value]) => value !== undefined),
    );
    const order = Object.keys({ level: 0, message: 0, ...record }).filter((key) => key in expected);
    if (typeof timestamp !== 'string' || Object.keys(fields).join() !== order.join()) {
      t.fail(`line ${i}: keys ${Object.keys(fields).join()}`);
      return;
    }
    t.deepEqual(fields, expected, `line ${i}`);
  }
});

test('a line over maxLine bytes is cut in its client-shaped fields to fit, marked truncated; the rest untouched', (t) => {
  const path = tempFile();
  const maxLine = 4096;
  const log = new AccessLog(
    new LogWriter({ destination: { kind: 'file', path }, bufferBytes: 65536, flushMs: 60_000 }),
    maxLine,
  );
  // A backend's name comes from the config, not a client: it is never cut, and here it is short.
  const records = randomRecords(1000).map((record) => ({ ...record, backend: record.backend?.slice(0, 30) }));
  for (const record of records) log.record(record);
  log.writer.close();
  const lines = new TextDecoder('utf-8', { fatal: true }).decode(readFileSync(path)).split('\n');
  t.is(lines.pop(), '');
  t.is(lines.length, records.length);
  const cuttable = new Set(['path', 'userAgent', 'referer', 'detail', 'host', 'requestId']);
  const wrong: string[] = [];
  let cut = 0;
  for (const [i, line] of lines.entries()) {
    const record = records[i] as AccessRecord;
    const fields = JSON.parse(line) as Record<string, unknown>;
    const tooLong = Buffer.byteLength(lineAtT(record)) > maxLine;
    if (Buffer.byteLength(line) + 1 > maxLine) wrong.push(`line ${i}: ${Buffer.byteLength(line) + 1} bytes`);
    if (fields.truncated !== (tooLong ? true : undefined))
      wrong.push(`line ${i}: truncated ${fields.truncated}`);
    if (!tooLong) continue;
    cut++;
    for (const [key, value] of Object.entries(record)) {
      const got = fields[key];
      // A cut through a surrogate pair leaves half of it, which UTF-8 writes as U+FFFD.
      if (
        cuttable.has(key)
          ? !String(value).startsWith(String(got).replace(/\uFFFD$/, ''))
          : typeof value === 'string' && got !== value
      )
        wrong.push(`line ${i}: ${key}`);
    }
  }
  t.deepEqual(wrong, []);
  t.true(cut > 20, `${cut} lines were cut`);
});
