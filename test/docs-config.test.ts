// docs/configuration.md and README's configuration section are generated from the config
// declarations; this fails when a key was added or changed without regenerating them.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { renderConfigDocs } from '../scripts/gen-config-docs.ts';

describe('configuration reference', () => {
  it('docs/configuration.md and README match the code (run npx tsx scripts/gen-config-docs.ts)', async () => {
    const { doc, readme } = await renderConfigDocs();
    expect(readFileSync(new URL('../docs/configuration.md', import.meta.url), 'utf8')).toBe(doc);
    expect(readFileSync(new URL('../README.md', import.meta.url), 'utf8')).toBe(readme);
    expect(readme).toContain('<!-- config:start -->');
  });
});
