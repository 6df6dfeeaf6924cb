// COPY … FROM in text format, the encoding both Store implementations send (PostgreSQL 15 docs,
// SQL Commands › COPY › File Formats › Text Format): one line per row, columns separated by a tab,
// NULL written as \N, and a backslash, newline, carriage return or tab inside a value escaped with a
// backslash so it cannot end a field or a row. Pure; the IO is in pg-store.ts and pglite-store.ts.

/** One field of a COPY row: the value's text form (the ::text conventions of store.ts), or null. */
export type CopyValue = string | null;

// The four characters the text format gives a meaning to. Every other byte, including other
// control characters, is taken literally by COPY, so it needs no escape.
const SPECIAL = /[\\\n\r\t]/g;
const ESCAPES: Readonly<Record<string, string>> = { '\\': '\\\\', '\n': '\\n', '\r': '\\r', '\t': '\\t' };
const escapeChar = (c: string): string => ESCAPES[c]!;

/** A value as one text-format field. */
export function copyField(v: CopyValue): string {
  if (v === null) return '\\N';
  // A string test is much cheaper than replace's allocation, and almost no value needs an escape.
  return /[\\\n\r\t]/.test(v) ? v.replace(SPECIAL, escapeChar) : v;
}

/** An identifier as a quoted SQL name (PostgreSQL §4.1.1: double quotes, a quote inside doubled), so no name can change the statement. */
export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** `COPY "table" ("a", "b") FROM <source>`; `source` is STDIN (node-postgres) or '/dev/blob' (PGlite). */
export function copyStatement(table: string, columns: readonly string[], source: 'STDIN' | "'/dev/blob'"): string {
  if (columns.length === 0) throw new RangeError('copyRows: at least one column is needed');
  return `COPY ${quoteIdent(table)} (${columns.map(quoteIdent).join(', ')}) FROM ${source}`;
}

/**
 * Encode rows into text-format chunks of about `chunkChars` characters each (whole rows only), so a
 * large COPY streams while it is encoded instead of building one string of the whole table. Every
 * row must have one value per column: a short or long row would put values into the wrong columns,
 * so it throws (RangeError: a caller bug, not data), which aborts the COPY and with it the transaction.
 */
export function* copyTextChunks(columns: number, rows: Iterable<readonly CopyValue[]>, chunkChars = 1 << 16): Generator<string, void> {
  let n = 0;
  // Lines are collected and joined once per chunk: one flat string, where `chunk += line` would
  // build a rope of 100,000s of pieces that Buffer.from then has to flatten.
  let lines: string[] = [];
  let size = 0;
  for (const row of rows) {
    if (row.length !== columns) throw new RangeError(`copyRows: row ${n} has ${row.length} values for ${columns} columns`);
    let line = copyField(row[0]!);
    for (let i = 1; i < columns; i++) line += '\t' + copyField(row[i]!);
    lines.push(line);
    size += line.length + 1;
    n++;
    if (size >= chunkChars) {
      lines.push('');
      yield lines.join('\n');
      lines = [];
      size = 0;
    }
  }
  if (lines.length > 0) {
    lines.push('');
    yield lines.join('\n');
  }
}
