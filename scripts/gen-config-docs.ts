// Writes docs/configuration.md and the configuration section of README.md from the config
// declarations (`defineConfig` in broker/config.ts, oracle/config.ts, device-sim/sim-config.ts,
// cli/dev-config.ts, …), so the reference cannot drift from the code. test/docs-config.test.ts
// regenerates and compares. Run: `npx tsx scripts/gen-config-docs.ts`.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { ConfigSection, KeySpec } from '../shared/config-schema.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const FOLDERS = ['cli', 'broker', 'oracle', 'device-sim'];

function isSection(v: unknown): v is ConfigSection {
  return typeof v === 'object' && v !== null && typeof (v as ConfigSection).title === 'string' && typeof (v as ConfigSection).schema === 'object';
}

/** Every exported config section, in folder order, each once. */
/** Source files (not tests) below `folder` that declare a config section. */
function declaringFiles(folder: string): string[] {
  let entries: string[];
  try {
    entries = readdirSync(`${root}${folder}`, { recursive: true }) as string[];
  } catch {
    return [];
  }
  return entries
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'))
    .sort()
    .map((f) => `${root}${folder}/${f}`)
    .filter((path) => /\bdefineConfig\(/.test(readFileSync(path, 'utf8')));
}

export async function collectSections(): Promise<ConfigSection[]> {
  const out: ConfigSection[] = [];
  for (const folder of FOLDERS) {
    for (const path of declaringFiles(folder)) {
      const mod = (await import(pathToFileURL(path).href)) as Record<string, unknown>;
      for (const v of Object.values(mod)) if (isSection(v) && !out.includes(v)) out.push(v);
    }
  }
  return out;
}

function showDefault(spec: KeySpec<unknown>): string {
  if (spec.defaultDoc !== undefined) return spec.defaultDoc;
  const d = spec.default;
  if (d === undefined) return '`off`';
  if (typeof d === 'string') return d === '' ? '(empty)' : `\`${d}\``;
  if (Array.isArray(d)) return d.length === 0 ? '(none)' : `\`${d.join(',')}\``;
  if (typeof d === 'number' || typeof d === 'boolean' || typeof d === 'bigint') return `\`${String(d)}\``;
  return `\`${JSON.stringify(d)}\``;
}

export function renderSections(sections: readonly ConfigSection[], headingLevel: number): string {
  const h = '#'.repeat(headingLevel);
  const parts: string[] = [];
  for (const s of sections) {
    parts.push(`${h} ${s.title}`, '', '| flag | environment | default | meaning |', '| --- | --- | --- | --- |');
    for (const spec of Object.values(s.schema)) parts.push(`| \`--${spec.flag}\` | \`${spec.env}\` | ${showDefault(spec)} | ${spec.doc.replace(/\|/g, '\\|')} |`);
    parts.push('');
  }
  return parts.join('\n');
}

export async function renderConfigDocs(): Promise<{ doc: string; readme: string }> {
  const sections = await collectSections();
  const doc = [
    '# Configuration',
    '',
    'Generated from the code by `npx tsx scripts/gen-config-docs.ts`; do not edit by hand.',
    'Every key can be given as a command-line flag or an environment variable; a flag beats the',
    'environment, which beats the default. Durations take `500ms`, `30s`, `5m`, `1h` or plain ms.',
    '',
    renderSections(sections, 2),
  ].join('\n');
  const current = readFileSync(`${root}README.md`, 'utf8');
  const block = `<!-- config:start -->\n${renderSections(sections, 3)}<!-- config:end -->`;
  const readme = current.includes('<!-- config:start -->')
    ? current.replace(/<!-- config:start -->[\s\S]*<!-- config:end -->/, block)
    : current;
  return { doc, readme };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const { doc, readme } = await renderConfigDocs();
  writeFileSync(`${root}docs/configuration.md`, doc);
  writeFileSync(`${root}README.md`, readme);
  console.log('wrote docs/configuration.md and the README configuration section');
}
