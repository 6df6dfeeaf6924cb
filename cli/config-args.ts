// Command-line flags from config declarations (shared/config-schema.ts): every key of a section is a
// `--flag value` option, booleans also as bare `--flag`; `--help` lists every key with its variable
// and default. Shared by the service commands so their flags and docs/configuration.md agree.
import { parseArgs } from 'node:util';
import type { ConfigSection, KeySpec } from '../shared/config-schema.ts';
import { PulseError } from '../shared/errors.ts';

export type ParsedFlags = { readonly flags: Record<string, string>; readonly help: boolean; readonly positionals: string[] };

/** Parse argv against the sections' flags; unknown flags are CLI_USAGE errors. */
export function parseConfigFlags(argv: string[], sections: readonly ConfigSection[], allowPositionals = false): ParsedFlags {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string }> = { help: { type: 'boolean', short: 'h' } };
  const booleans = new Set<string>();
  for (const s of sections)
    for (const spec of Object.values(s.schema) as KeySpec<unknown>[]) {
      if (typeof spec.default === 'boolean') booleans.add(spec.flag);
      options[spec.flag] = { type: 'string' };
    }
  // `--quiet` alone means true: rewrite bare boolean flags to `--flag=true` before parsing.
  const args = argv.map((a, i) => {
    const name = a.startsWith('--') ? a.slice(2) : '';
    const next = argv[i + 1];
    return booleans.has(name) && (next === undefined || next.startsWith('--')) ? `${a}=true` : a;
  });
  try {
    const { values, positionals } = parseArgs({ args, options, strict: true, allowPositionals });
    const flags = Object.fromEntries(Object.entries(values).filter(([, v]) => typeof v === 'string')) as Record<string, string>;
    return { flags, help: values['help'] === true, positionals };
  } catch (e) {
    throw new PulseError('CLI_USAGE', (e as Error).message);
  }
}

/** Help text listing every key of the sections. */
export function configHelp(usage: string, sections: readonly ConfigSection[], footer: string[] = []): string {
  const lines = [usage, ''];
  for (const s of sections) {
    lines.push(`${s.title} (each also an environment variable):`);
    for (const spec of Object.values(s.schema) as KeySpec<unknown>[]) {
      const d = spec.defaultDoc ?? (Array.isArray(spec.default) ? spec.default.join(',') : String(spec.default));
      lines.push(`  --${spec.flag.padEnd(20)} ${spec.doc} [${spec.env}; default ${d}]`);
    }
    lines.push('');
  }
  return [...lines, ...footer].join('\n');
}
