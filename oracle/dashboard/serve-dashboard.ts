// The dashboard's files (issue 7 §4): plain HTML, CSS and ES modules from oracle/dashboard/public,
// no build step. They are read once at startup into a map and requests are matched against its keys,
// so a path can never escape the folder (no "..", no symlinks followed at request time, no listing).
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createHash } from 'node:crypto';

export const DASHBOARD_DIR = fileURLToPath(new URL('./public/', import.meta.url));

const TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

/** Everything the page loads comes from this origin, including the API; no inline script. */
export const DASHBOARD_CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

export type DashboardAsset = { readonly text: string; readonly type: string; readonly etag: string };

/** Files keyed by their path under public/ ("index.html", "views/fleet.js"), one level of folders. */
export function loadDashboardAssets(dir = DASHBOARD_DIR): ReadonlyMap<string, DashboardAsset> {
  const out = new Map<string, DashboardAsset>();
  const walk = (d: string, prefix: string, depth: number): void => {
    for (const name of readdirSync(d).sort()) {
      const full = join(d, name);
      if (statSync(full).isDirectory()) {
        if (depth === 0) walk(full, `${prefix}${name}/`, depth + 1);
        continue;
      }
      const type = TYPES[extname(name)];
      if (type === undefined) continue;
      const text = readFileSync(full, 'utf8');
      out.set(`${prefix}${name}`, { text, type, etag: `"${createHash('sha256').update(text).digest('base64url').slice(0, 22)}"` });
    }
  };
  walk(dir, '', 0);
  return out;
}
