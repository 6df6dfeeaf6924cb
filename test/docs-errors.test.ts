// docs/errors.md must list exactly the codes in shared/error-codes.ts (CONTRIBUTING.md §Rules).
// If this fails after adding a code: npx tsx scripts/gen-error-docs.ts
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES } from '../shared/error-codes.ts';
import { ERRORS_DOC_PATH, renderErrorDocs } from '../scripts/gen-error-docs.ts';

describe('docs/errors.md', () => {
  const committed = readFileSync(ERRORS_DOC_PATH, 'utf8');

  it('is byte for byte what scripts/gen-error-docs.ts generates (run `npx tsx scripts/gen-error-docs.ts`)', () => {
    expect(committed).toBe(renderErrorDocs());
  });

  it('has one table row per code and no row for an unknown code', () => {
    const rows = [...committed.matchAll(/^\| `([A-Z0-9_]+)` \|/gm)].map((m) => m[1]);
    expect(rows.sort()).toEqual(Object.keys(ERROR_CODES).sort());
  });

  it('notices a code that is added to the catalogue', () => {
    const extended = { ...ERROR_CODES, HB_EXAMPLE_NEW: { area: 'heartbeat', summary: 'an | odd summary' } };
    const text = renderErrorDocs(extended);
    expect(text).not.toBe(committed);
    expect(text).toContain('| `HB_EXAMPLE_NEW` | an \\| odd summary |');
  });
});
