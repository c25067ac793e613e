// The byte scan of field lines (src/http/field-lines.ts) against the careful string path
// (parseFieldLine): for every block of lines, random and mutated, the scan either gives up or
// gives exactly the fields the careful path gives, and it gives up on no block of plain lines
// the careful path accepts. FUZZ_SEED=<seed> reproduces a failure.
import test from 'ava';
import { scanFieldLines } from '../../../src/http/field-lines.ts';
import { HttpError } from '../../../src/http/message.ts';
import { parseFieldLine } from '../../../src/http/parser.ts';
import { seeded } from '../../support/seeded.ts';

const seed = Number(process.env.FUZZ_SEED ?? Date.now() % 1_000_000);

/** The block as its fields by the careful path, or undefined when that path rejects a line. */
function careful(block: string): ReturnType<typeof parseFieldLine>[] | undefined {
  try {
    return block.split('\r\n').map((line) => parseFieldLine(line, 400));
  } catch (error) {
    if (error instanceof HttpError) return undefined;
    throw error;
  }
}

/** Scans `block` as the field lines of a head that starts with a request line. */
function scan(block: string, maxFields = 1000) {
  const head = `GET / HTTP/1.1\r\n${block}`;
  const buf = Buffer.from(`${head}\r\n\r\n`, 'latin1');
  return scanFieldLines(buf, head, 0, 16, head.length, maxFields);
}

const names = ['Host', 'host', 'Content-Type', 'X-A', 'x_b', 'ETag', 'Set-Cookie', "!#$%&'*+-.^_`|~09az"];
const values = ['', 'v', ' v', 'v ', '\tv\t', 'a b', 'é\xff', '"q"', 'a, b', '  ', 'x'.repeat(300)];
const noise = ['\r', '\n', '\0', '\x7f', ' ', '\t', ':', '(', '\x80', 'A', 'z', '\r\n'];

test('plain lines: the scan gives exactly the careful path’s fields, names lower-cased', (t) => {
  const random = seeded(seed);
  for (let round = 0; round < 3000; round++) {
    const lines = Array.from(
      { length: 1 + Math.floor(random() * 12) },
      () => `${names[Math.floor(random() * names.length)]}:${values[Math.floor(random() * values.length)]}`,
    );
    const block = lines.join('\r\n');
    const expected = careful(block);
    t.truthy(expected, `seed ${seed}: ${JSON.stringify(block)}`);
    t.deepEqual(scan(block), expected, `seed ${seed}: ${JSON.stringify(block)}`);
  }
});

test('mutated lines: the scan gives up or agrees, and gives up on nothing the careful path takes', (t) => {
  const random = seeded(seed + 1);
  let gaveUp = 0;
  for (let round = 0; round < 20000; round++) {
    let block = Array.from(
      { length: 1 + Math.floor(random() * 5) },
      () => `${names[Math.floor(random() * names.length)]}:${values[Math.floor(random() * values.length)]}`,
    ).join('\r\n');
    for (let m = 0; m < 1 + Math.floor(random() * 3); m++) {
      const at = Math.floor(random() * (block.length + 1));
      const piece = noise[Math.floor(random() * noise.length)] as string;
      block =
        random() < 0.5
          ? block.slice(0, at) + piece + block.slice(at)
          : block.slice(0, at) + piece + block.slice(at + 1);
    }
    // A head's field block never holds an empty line (that ends the head).
    if (block.split('\r\n').includes('')) continue;
    const scanned = scan(block);
    const expected = careful(block);
    if (scanned === undefined) {
      gaveUp++;
      t.is(expected, undefined, `seed ${seed}: scan gave up on ${JSON.stringify(block)}`);
    } else t.deepEqual(scanned, expected, `seed ${seed}: ${JSON.stringify(block)}`);
  }
  t.true(gaveUp > 1000, `only ${gaveUp} blocks were refused: the mutations did not bite`);
});

test('more lines than maxFields: the scan gives up (the careful path answers 431)', (t) => {
  const block = Array.from({ length: 5 }, (_, i) => `X-${i}: ${i}`).join('\r\n');
  t.is(scan(block, 4), undefined);
  t.is(scan(block, 5)?.length, 5);
});

test('names are lower-cased for lookups and keep their spelling', (t) => {
  const fields = scan('Content-Type: a\r\nX-Custom-Thing: b\r\nvary: c') ?? [];
  t.deepEqual(
    fields.map((f) => [f.name, f.lower, f.value]),
    [
      ['Content-Type', 'content-type', 'a'],
      ['X-Custom-Thing', 'x-custom-thing', 'b'],
      ['vary', 'vary', 'c'],
    ],
  );
});
