// Every Prometheus metric defined in the code is documented in docs/operations.md (issue 7 §5: "the
// list of every metric"), and the Grafana dashboard only queries metrics that exist and charts every
// one of them. Scans the source, so a new metric anywhere fails this test until it is documented.
import { describe, expect, it } from 'vitest';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../', import.meta.url));

function sourceFiles(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const full = join(dir, name);
    if (statSync(full).isDirectory()) sourceFiles(full, out);
    else if (name.endsWith('.ts') && !name.endsWith('.test.ts')) out.push(full);
  }
  return out;
}

function definedMetrics(): Set<string> {
  const names = new Set<string>();
  for (const dir of ['broker', 'oracle', 'bus', 'device-sim', 'cli']) {
    let files: string[];
    try {
      files = sourceFiles(join(ROOT, dir));
    } catch {
      continue;
    }
    for (const f of files) {
      const text = readFileSync(f, 'utf8');
      if (!text.includes("from 'prom-client'")) continue;
      for (const m of text.matchAll(/name: '(pulse_[a-z0-9_]+)'/g)) names.add(m[1]!);
    }
  }
  return names;
}

describe('metrics documentation', () => {
  const metrics = definedMetrics();
  const doc = readFileSync(join(ROOT, 'docs/operations.md'), 'utf8');
  const dashboard = JSON.parse(readFileSync(join(ROOT, 'docs/grafana/pulse-dashboard.json'), 'utf8')) as { panels: { title: string; targets: { expr: string }[] }[] };
  const exprs = dashboard.panels.flatMap((p) => p.targets.map((t) => t.expr));

  it('finds the metrics (the scan works)', () => {
    expect(metrics.has('pulse_devices')).toBe(true);
    expect(metrics.has('pulse_ingest_rows_total')).toBe(true);
    expect(metrics.size).toBeGreaterThan(20);
  });

  it('lists every metric in docs/operations.md', () => {
    const missing = [...metrics].filter((m) => !doc.includes(`\`${m}\``));
    expect(missing).toEqual([]);
  });

  it('the Grafana dashboard charts every metric and queries nothing that does not exist', () => {
    const used = new Set(exprs.flatMap((e) => [...e.matchAll(/\b(pulse_[a-z0-9_]+)/g)].map((m) => m[1]!)));
    const known = (name: string): boolean =>
      metrics.has(name) ||
      metrics.has(name.replace(/_(bucket|sum|count)$/, '')) ||
      // prom-client default process/Node.js metrics, exported with these prefixes.
      /^pulse_(oracle|broker)_(process|nodejs)_/.test(name);
    expect([...used].filter((n) => !known(n))).toEqual([]);
    const charted = new Set([...used].map((n) => n.replace(/_(bucket|sum|count)$/, '')));
    expect([...metrics].filter((m) => !charted.has(m))).toEqual([]);
    for (const p of dashboard.panels) expect(p.targets.length, p.title).toBeGreaterThan(0);
  });
});
