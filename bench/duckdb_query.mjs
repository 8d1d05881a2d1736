// duckdb_query.mjs: the analytic anchor of the SQL benchmark. Loads the
// same NDJSON into a DuckDB table, then runs the GROUP BY query and prints
// the best of N runs (load time reported separately).
//   node bench/duckdb_query.mjs FILE [RUNS]
import { DuckDBInstance } from '@duckdb/node-api';

const file = process.argv[2];
const runs = Number(process.argv[3] || 5);
if (!file) {
  console.error('usage: node bench/duckdb_query.mjs FILE [RUNS]');
  process.exit(2);
}
const inst = await DuckDBInstance.create(':memory:');
const con = await inst.connect();
let t0 = performance.now();
await con.run(`CREATE TABLE orders AS SELECT * FROM read_json('${file.replace(/'/g, "''")}',
  format='newline_delimited', columns={orderId:'VARCHAR', customerId:'VARCHAR',
  amount:'DOUBLE', status:'VARCHAR', timestamp:'VARCHAR'})`);
const loadMs = performance.now() - t0;
const sql = 'SELECT status, count(*), sum(amount) FROM orders GROUP BY status';
let best = Infinity;
for (let i = 0; i < runs; i++) {
  t0 = performance.now();
  await con.runAndReadAll(sql);
  best = Math.min(best, performance.now() - t0);
}
console.log(`duckdb load ${(loadMs / 1000).toFixed(3)} s; query best of ${runs} ${(best / 1000).toFixed(4)} s`);
