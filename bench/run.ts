// `npm run bench [-- <name> ...] [--quick]`: runs benchmark workloads (bench/<name>.ts exporting
// `description` and `run`), prints each figure beside its same-run comparison as a ratio, writes
// bench/results/<name>.json, and refreshes the results table in bench/README.md.
import { readdirSync, readFileSync, writeFileSync, mkdirSync, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { machineInfo, type MachineInfo } from './machine.ts';
import type { BenchFigure, BenchWorkload } from './result.ts';

const here = fileURLToPath(new URL('.', import.meta.url));
const resultsDir = `${here}results/`;
/** Preferred order; any other workload file found in bench/ runs after these. */
const ORDER = ['verify', 'broker', 'connections', 'ingest', 'e2e', 'epoch', 'merkle', 'verify-epoch'];
const SUPPORT = new Set(['run', 'result', 'machine', 'openssl', 'table']);

type Stored = { readonly workload: string; readonly quick: boolean; readonly machine: MachineInfo; readonly figures: readonly BenchFigure[] };

async function discover(): Promise<Map<string, BenchWorkload>> {
  const found = new Map<string, BenchWorkload>();
  const names = readdirSync(here)
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'))
    .map((f) => f.slice(0, -3))
    .filter((n) => !SUPPORT.has(n) && !n.endsWith('-worker') && !n.endsWith('-loop') && !n.startsWith('_'));
  names.sort((a, b) => (ORDER.indexOf(a) + 1 || 99) - (ORDER.indexOf(b) + 1 || 99) || a.localeCompare(b));
  for (const n of names) {
    const m = (await import(`./${n}.ts`)) as Partial<BenchWorkload>;
    if (typeof m.run === 'function' && typeof m.description === 'string') found.set(n, m as BenchWorkload);
  }
  return found;
}

function fmt(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  if (Math.abs(n) >= 100) return Math.round(n).toLocaleString('en-US');
  return n.toPrecision(3);
}

function row(f: BenchFigure): string[] {
  const cmp = f.comparison;
  const ratio = cmp && cmp.figure > 0 ? `${(f.figure / cmp.figure).toFixed(2)}×` : '—';
  const target = f.target === undefined ? '—' : `${f.target} ${f.targetMet === true ? '✅' : f.targetMet === false ? '❌ missed' : ''}`.trim();
  return [f.name, `${fmt(f.figure)} ${f.unit}`, cmp ? `${cmp.name}: ${fmt(cmp.figure)} ${cmp.unit ?? f.unit}` : '—', ratio, target, f.note ?? ''];
}

function table(rows: string[][]): string {
  const head = ['workload', 'figure', 'same-run comparison', 'ratio', 'target', 'note'];
  return [head, head.map(() => '---'), ...rows].map((r) => `| ${r.join(' | ')} |`).join('\n');
}

function refreshReadme(): void {
  const readme = `${here}README.md`;
  if (!existsSync(readme)) return;
  const stored: Stored[] = readdirSync(resultsDir)
    .filter((f) => f.endsWith('.json'))
    .map((f) => JSON.parse(readFileSync(resultsDir + f, 'utf8')) as Stored)
    .sort((a, b) => (ORDER.indexOf(a.workload) + 1 || 99) - (ORDER.indexOf(b.workload) + 1 || 99));
  const machines = [...new Set(stored.map((s) => `${s.machine.cpu}, ${s.machine.cores} cores, ${s.machine.memoryGiB} GiB, Node ${s.machine.node}`))];
  const body = [
    `Machine: ${machines.join('; ')}. Runs: ${stored.map((s) => `${s.workload} ${s.machine.date.slice(0, 16)}Z${s.quick ? ' (quick)' : ''}`).join(', ')}.`,
    '',
    table(stored.flatMap((s) => s.figures.map(row))),
  ].join('\n');
  const text = readFileSync(readme, 'utf8');
  const next = text.replace(/<!-- results:start -->[\s\S]*<!-- results:end -->/, `<!-- results:start -->\n${body}\n<!-- results:end -->`);
  writeFileSync(readme, next);
}

export async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { quick: { type: 'boolean', default: false }, list: { type: 'boolean', default: false } } });
  const all = await discover();
  if (values.list) {
    for (const [n, w] of all) console.log(`${n.padEnd(14)} ${w.description}`);
    return 0;
  }
  const unknown = positionals.filter((p) => !all.has(p));
  if (unknown.length > 0) {
    console.error(`unknown workload(s): ${unknown.join(', ')}; available: ${[...all.keys()].join(', ')}`);
    return 2;
  }
  const selected = positionals.length > 0 ? positionals : [...all.keys()];
  mkdirSync(resultsDir, { recursive: true });
  const machine = machineInfo();
  console.log(`bench on ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB, Node ${machine.node}${values.quick ? ' (quick)' : ''}`);
  const rows: string[][] = [];
  let failed = 0;
  for (const name of selected) {
    const w = all.get(name)!;
    const started = Date.now();
    console.log(`\n▶ ${name}: ${w.description}`);
    try {
      const figures = await w.run({ quick: values.quick, log: (line) => console.log(`  [${name} +${((Date.now() - started) / 1000).toFixed(1)}s] ${line}`) });
      const stored: Stored = { workload: name, quick: values.quick, machine: machineInfo(), figures };
      writeFileSync(`${resultsDir}${name}.json`, JSON.stringify(stored, null, 2) + '\n');
      rows.push(...figures.map(row));
      for (const f of figures) console.log(`  ${row(f).slice(0, 4).join('  ·  ')}`);
    } catch (e) {
      failed++;
      console.error(`  ✖ ${name} failed: ${(e as Error).stack ?? String(e)}`);
    }
  }
  console.log(`\n${table(rows)}`);
  refreshReadme();
  return failed > 0 ? 1 : 0;
}
