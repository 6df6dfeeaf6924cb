// Store.copyRows (oracle/store/store.ts, copy-text.ts) on both implementations: every value comes
// back exactly as sent (the text-format escapes: tab, newline, carriage return, backslash, and NULL
// apart from the string '\N'), identifiers are quoted, rows join the caller's transaction, and a bad
// row or a constraint aborts the COPY without breaking the connection.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { needs } from './support/services.ts';
import { backends } from '../oracle/store/testing.ts';
import type { Store } from '../oracle/store/store.ts';
import { copyField, copyStatement, copyTextChunks } from '../oracle/store/copy-text.ts';

const pgOk = await needs('postgres');

describe('COPY text encoding', () => {
  it('escapes exactly the four characters the text format gives a meaning to', () => {
    expect(copyField(null)).toBe('\\N');
    expect(copyField('\\N')).toBe('\\\\N');
    expect(copyField('a\tb\nc\rd\\e')).toBe('a\\tb\\nc\\rd\\\\e');
    expect(copyField('plain "quoted" \u00e9 \u0001')).toBe('plain "quoted" \u00e9 \u0001');
  });

  it('splits into whole rows and refuses a row of the wrong width', () => {
    const rows = Array.from({ length: 100 }, (_, i) => [String(i), `v${i}`]);
    const chunks = [...copyTextChunks(2, rows, 64)];
    expect(chunks.length).toBeGreaterThan(1);
    for (const c of chunks) expect(c.endsWith('\n')).toBe(true);
    expect(chunks.join('').split('\n').slice(0, -1)).toEqual(rows.map((r) => r.join('\t')));
    expect(() => [...copyTextChunks(2, [['1', 'x'], ['2']])]).toThrow(RangeError);
    expect(() => copyStatement('t', [], 'STDIN')).toThrow(RangeError);
    expect(copyStatement('a"b', ['c d'], 'STDIN')).toBe('COPY "a""b" ("c d") FROM STDIN');
  });
});

for (const backend of backends(pgOk)) {
  describe(`copyRows on ${backend.name}`, () => {
    let store: Store;
    let cleanup: () => Promise<void>;
    beforeAll(async () => {
      ({ store, cleanup } = await backend.open({ migrate: false }));
      await store.exec(`
        CREATE TABLE parent (id bigint PRIMARY KEY);
        INSERT INTO parent VALUES (1);
        CREATE TABLE child (
          parent bigint NOT NULL REFERENCES parent (id),
          k integer NOT NULL,
          s text,
          n numeric(78, 0) CHECK (n >= 0),
          b boolean,
          j jsonb,
          a text[],
          raw bytea,
          PRIMARY KEY (parent, k)
        );
        CREATE TABLE "odd ""name""" ("a column" text);`);
    });
    afterAll(async () => cleanup());

    const cols = ['parent', 'k', 's', 'n', 'b', 'j', 'a', 'raw'];

    it('stores every kind of value exactly, NULL apart from the string \\N', async () => {
      const tricky = ['a\tb', 'line\nbreak', 'cr\rhere', 'back\\slash', '\\N', '', 'null', '"q"', '\u00e9\u{1F600}', '\\\\t'];
      const rows = tricky.map((s, k) => ['1', String(k), s, k % 2 === 0 ? ((1n << 200n) + BigInt(k)).toString() : null, k % 2 === 0 ? 't' : 'f',
        JSON.stringify({ s, k }), `{"${s.replace(/["\\]/g, '\\$&')}",NULL}`, '\\x00ff5c09']);
      rows.push(['1', '100', null, null, null, null, null, null]);
      expect(await store.copyRows('child', cols, rows)).toBe(rows.length);
      const got = await store.query<{ k: number; s: string | null; n: string | null; b: boolean | null; j: unknown; a: (string | null)[] | null; raw: Uint8Array | null }>(
        'SELECT k, s, n::text AS n, b, j, a, raw FROM child ORDER BY k',
      );
      expect(got.map((r) => r.s)).toEqual([...tricky, null]);
      expect(got.map((r) => r.n)).toEqual(rows.map((r) => r[3]));
      expect(got.map((r) => r.b)).toEqual([...tricky.map((_, k) => k % 2 === 0), null]);
      expect(got.map((r) => r.j)).toEqual([...tricky.map((s, k) => ({ s, k })), null]);
      expect(got.map((r) => r.a)).toEqual([...tricky.map((s) => [s, null]), null]);
      expect(got.slice(0, -1).map((r) => [...r.raw!])).toEqual(tricky.map(() => [0, 255, 92, 9]));
      expect(got.at(-1)!.raw).toBeNull();
      await store.query('DELETE FROM child');
    });

    it('round-trips arbitrary strings (fast-check)', async () => {
      // PostgreSQL text cannot hold NUL (store-interface.test.ts); every other code point must survive.
      const text = fc.string({ unit: 'binary', maxLength: 40 }).filter((s) => !s.includes('\u0000'));
      await fc.assert(
        fc.asyncProperty(fc.array(fc.option(text), { minLength: 1, maxLength: 20 }), async (values) => {
          await store.query('DELETE FROM child');
          await store.copyRows('child', ['parent', 'k', 's'], values.map((s, k) => ['1', String(k), s]));
          const got = await store.query<{ s: string | null }>('SELECT s FROM child ORDER BY k');
          expect(got.map((r) => r.s)).toEqual(values);
        }),
        { numRuns: 60 },
      );
      await store.query('DELETE FROM child');
    });

    it('quotes identifiers and writes nothing for no rows', async () => {
      expect(await store.copyRows('odd "name"', ['a column'], [['x'], ['y']])).toBe(2);
      expect((await store.query<{ a: string }>('SELECT "a column" AS a FROM "odd ""name""" ORDER BY 1')).map((r) => r.a)).toEqual(['x', 'y']);
      expect(await store.copyRows('child', cols, [])).toBe(0);
    });

    it('streams many rows across chunks inside a transaction, and rolls back with it', async () => {
      const many = (from: number, n: number) => (function* () {
        for (let k = from; k < from + n; k++) yield ['1', String(k), `row ${k}\t${'x'.repeat(k % 50)}`];
      })();
      await expect(store.transaction(async (tx) => {
        expect(await tx.copyRows('child', ['parent', 'k', 's'], many(0, 20_000))).toBe(20_000);
        expect((await tx.query<{ c: string }>('SELECT count(*)::text AS c FROM child'))[0]!.c).toBe('20000');
        throw new Error('abort');
      })).rejects.toThrow('abort');
      expect((await store.query<{ c: string }>('SELECT count(*)::text AS c FROM child'))[0]!.c).toBe('0');
      await store.transaction(async (tx) => {
        await tx.copyRows('child', ['parent', 'k', 's'], many(0, 20_000));
      });
      const last = await store.query<{ s: string }>('SELECT s FROM child WHERE k = 19999');
      expect(last[0]!.s).toBe(`row 19999\t${'x'.repeat(19999 % 50)}`);
      await store.query('DELETE FROM child');
    });

    it('a foreign key, CHECK or row-width failure aborts the COPY and the transaction; the store stays usable', async () => {
      await expect(store.copyRows('child', ['parent', 'k'], [['1', '1'], ['2', '2']])).rejects.toMatchObject({ code: '23503' });
      await expect(store.copyRows('child', ['parent', 'k', 'n'], [['1', '1', '-1']])).rejects.toMatchObject({ code: '23514' });
      await expect(store.transaction(async (tx) => {
        await tx.query('INSERT INTO child (parent, k) VALUES (1, 500)');
        await tx.copyRows('child', ['parent', 'k'], [['1', '1'], ['1']]);
      })).rejects.toThrow(RangeError);
      await expect(store.transaction(async (tx) => tx.copyRows('child', ['parent', 'k'], [['1', 'not a number']]))).rejects.toMatchObject({ code: '22P02' });
      expect((await store.query<{ c: string }>('SELECT count(*)::text AS c FROM child'))[0]!.c).toBe('0');
      expect(await store.copyRows('child', ['parent', 'k'], [['1', '7']])).toBe(1);
      await store.query('DELETE FROM child');
    });
  });
}
