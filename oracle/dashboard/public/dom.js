/* global Node -- browser globals; eslint.config.js declares the Node.js ones */
// DOM helpers. Every value from the API is set as text (textContent / attributes), never as HTML:
// model and maker names are outsider text and must not become markup.

/** h('div', { class: 'x', onclick: fn }, 'text', child) */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    // Through CSSOM: the page's CSP (style-src 'self') refuses style="" attributes but allows this.
    else if (k === 'style') el.style.cssText = String(v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

const SVG = 'http://www.w3.org/2000/svg';
export function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) el.setAttribute(k, String(v));
  for (const c of children.flat()) if (c !== undefined && c !== null) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

export function badge(health, flapping = false) {
  return h('span', { class: `badge ${health}`, dataset: { health } }, health, flapping ? ' · flapping' : '');
}

export function short(hex, n = 10) {
  if (typeof hex !== 'string') return '—';
  return hex.length > n * 2 + 1 ? `${hex.slice(0, n)}…${hex.slice(-6)}` : hex;
}

export function ago(ms, now = Date.now()) {
  if (ms === null || ms === undefined) return 'never';
  const d = Math.round((now - ms) / 1000);
  if (d < 0) return 'just now';
  if (d < 60) return `${d}s ago`;
  if (d < 3600) return `${Math.floor(d / 60)}m ago`;
  if (d < 86400) return `${Math.floor(d / 3600)}h ago`;
  return `${Math.floor(d / 86400)}d ago`;
}

export function time(ms) {
  if (ms === null || ms === undefined) return '—';
  return new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

export function pct(x) {
  return `${(x * 100).toFixed(1)} %`;
}

export function num(x, digits = 2) {
  return Number(x).toLocaleString('en-US', { maximumFractionDigits: digits });
}

/** Token amounts are uint256 decimal strings: group digits without turning them into floats. */
export function amount(s) {
  if (typeof s !== 'string' || !/^\d+$/.test(s)) return '—';
  return s.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

export function table(headers, rows, opts = {}) {
  return h('div', { class: 'table-wrap' },
    h('table', { 'data-table': opts.name },
      h('thead', {}, h('tr', {}, headers.map((x) => (typeof x === 'string' ? h('th', {}, x) : h('th', { class: x.class }, x.label))))),
      h('tbody', {}, rows)));
}
