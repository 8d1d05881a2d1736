// zod_check.mjs: the benchmark peer. Validates an NDJSON file of orders with the seed's zod 4
// schema, exactly as the seed wrote it (not .strict()), one JSON.parse + safeParse per line.
//
// usage: node zod_check.mjs FILE
// stdout: `N valid, M invalid` (same last line as `dmctl check`); stderr: records/s.
// exit: 0 all valid, 1 some invalid, 2 usage or I/O error.
import { openSync, readSync, closeSync } from 'node:fs';
import { z } from 'zod';

const OrderSchema = z.object({
  orderId: z.string().uuid(),
  customerId: z.string(),
  amount: z.number().positive(),
  status: z.enum(['created', 'paid', 'shipped', 'cancelled']),
  timestamp: z.string().datetime(),
});

// Read in large chunks and split on '\n' ourselves: readline is several times slower, and
// reading the whole file at once would hit V8's string length limit on big inputs.
const CHUNK_BYTES = 16 * 1024 * 1024;
const NEWLINE = 0x0a;

function checkLine(line, counts) {
  let value;
  try {
    value = JSON.parse(line);
  } catch {
    counts.invalid++;
    return;
  }
  if (OrderSchema.safeParse(value).success) counts.valid++;
  else counts.invalid++;
}

function checkFile(path) {
  const counts = { valid: 0, invalid: 0 };
  const fd = openSync(path, 'r');
  let buf = Buffer.allocUnsafe(CHUNK_BYTES);
  let carry = 0; // bytes of an unfinished line kept at the start of buf
  try {
    for (;;) {
      if (carry === buf.length) {
        // One line longer than the buffer: grow rather than split a record.
        const bigger = Buffer.allocUnsafe(buf.length * 2);
        buf.copy(bigger, 0, 0, carry);
        buf = bigger;
      }
      const n = readSync(fd, buf, carry, buf.length - carry, null);
      const end = carry + n;
      if (n === 0) {
        if (end > 0) checkLine(buf.toString('utf8', 0, end), counts);
        break;
      }
      const lastNl = buf.lastIndexOf(NEWLINE, end - 1);
      if (lastNl < 0) {
        carry = end;
        continue;
      }
      const lines = buf.toString('utf8', 0, lastNl).split('\n');
      for (const line of lines) checkLine(line, counts);
      carry = end - (lastNl + 1);
      buf.copy(buf, 0, lastNl + 1, end);
    }
  } finally {
    closeSync(fd);
  }
  return counts;
}

function zodVersion() {
  const v = z.core?.version;
  return v ? `${v.major}.${v.minor}.${v.patch}` : '4';
}

const args = process.argv.slice(2);
if (args.length !== 1 || args[0] === '-h' || args[0] === '--help') {
  const out = args.length === 1 ? console.log : console.error;
  out('usage: node zod_check.mjs FILE   (NDJSON orders; prints "N valid, M invalid")');
  process.exit(args.length === 1 ? 0 : 2);
}

const t0 = process.hrtime.bigint();
let counts;
try {
  counts = checkFile(args[0]);
} catch (err) {
  console.error(`zod_check: ${args[0]}: ${err.message}`);
  process.exit(2);
}
const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
const total = counts.valid + counts.invalid;
console.error(
  `zod_check: ${total} records in ${seconds.toFixed(3)} s, ` +
    `${Math.round(total / seconds)} records/s (zod ${zodVersion()})`,
);
console.log(`${counts.valid} valid, ${counts.invalid} invalid`);
process.exit(counts.invalid === 0 ? 0 : 1);
