// Shared by the tests of a large import's term rows built after its load
// (tests/api/import-background.test.mjs, tests/reliability/import-terms-after.test.mjs): the
// import file, and the imported records' term rows read from the database with sqlite3.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

export async function sql(db, query) {
  const { stdout } = await execFileP('sqlite3', ['-json', db, query], { timeout: 60_000, maxBuffer: 64 << 20 });
  return stdout.trim() ? JSON.parse(stdout) : [];
}

// `rows` accounts `<prefix><i>x Trading`, customer code `<PREFIX><i>`, a phone and an e-mail at
// `domain` each.
export function csvOf(prefix, rows, domain) {
  let csv = 'name,customer_code,city,phones,emails\r\n';
  for (let i = 0; i < rows; i++) {
    csv += `${prefix}${i}x Trading,${prefix.toUpperCase()}${i},杭州,+86 139 ${String(10000000 + i).slice(0, 4)} ${String(10000000 + i).slice(4)},${prefix}${i}@${domain}\r\n`;
  }
  return csv;
}

export const imported = (prefix) => `SELECT id FROM account WHERE customer_code LIKE '${prefix.toUpperCase()}%'`;

// The imported records' term rows against their term lists: rows, listed terms, rows whose term
// the record's list does not name, and the term_build rows.
export async function termState(db, prefix) {
  const [s] = await sql(db, `SELECT
    (SELECT count(*) FROM account_terms WHERE id IN (${imported(prefix)})) AS rows,
    (SELECT coalesce(sum(length(terms) - length(replace(terms, char(10), '')) - 1), 0)
       FROM account_terms_of WHERE id IN (${imported(prefix)})) AS listed,
    (SELECT count(*) FROM account_terms t WHERE NOT EXISTS (SELECT 1 FROM account_terms_of o
       WHERE o.id = t.id AND instr(o.terms, char(10) || t.term || char(10)) > 0)) AS stale,
    (SELECT count(*) FROM term_build) AS pending`);
  return s;
}
