// Hand-drawn SVG charts: a bar chart of heartbeats per minute and an uptime strip by slot.
import { s } from '../dom.js';

/** Bars for [{t, heartbeats}] (one per minute, oldest first). */
export function rateChart(series) {
  const W = 600;
  const H = 160;
  const pad = { l: 34, r: 6, t: 8, b: 20 };
  const max = Math.max(1, ...series.map((p) => p.heartbeats));
  const bw = (W - pad.l - pad.r) / Math.max(1, series.length);
  const y = (v) => pad.t + (H - pad.t - pad.b) * (1 - v / max);
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img', 'aria-label': `Heartbeats per minute over the last hour, peak ${max}`, 'data-chart': 'rate' });
  svg.append(s('line', { x1: pad.l, x2: W - pad.r, y1: H - pad.b, y2: H - pad.b, class: 'axis' }));
  svg.append(s('text', { x: pad.l - 4, y: pad.t + 8, 'text-anchor': 'end' }, String(max)));
  svg.append(s('text', { x: pad.l - 4, y: H - pad.b, 'text-anchor': 'end' }, '0'));
  series.forEach((p, i) => {
    const top = y(p.heartbeats);
    const bar = s('rect', { x: pad.l + i * bw + 0.5, y: top, width: Math.max(1, bw - 1), height: H - pad.b - top, class: 'bar' });
    bar.append(s('title', {}, `${new Date(p.t).toISOString().slice(11, 16)}Z: ${p.heartbeats} heartbeats`));
    svg.append(bar);
  });
  if (series.length > 0) {
    const first = series[0];
    const last = series[series.length - 1];
    svg.append(s('text', { x: pad.l, y: H - 5 }, new Date(first.t).toISOString().slice(11, 16) + 'Z'));
    svg.append(s('text', { x: W - pad.r, y: H - 5, 'text-anchor': 'end' }, new Date(last.t).toISOString().slice(11, 16) + 'Z'));
  }
  return svg;
}

/** One cell per slot: '1' credited, 'r' rejected only, '0' nothing; wraps into rows of `perRow`. */
export function uptimeStrip(slots, perRow = 120) {
  const rows = Math.ceil(slots.length / perRow);
  const cw = 5;
  const ch = 8;
  const svg = s('svg', { viewBox: `0 0 ${perRow * cw} ${rows * (ch + 2)}`, class: 'timeline', preserveAspectRatio: 'none', role: 'img', 'aria-label': 'Uptime by slot over the last 24 hours', 'data-chart': 'timeline' });
  // Runs of equal cells are drawn as one rect: 1440 slots become a few dozen elements.
  for (let r = 0; r < rows; r++) {
    const row = slots.slice(r * perRow, (r + 1) * perRow);
    let start = 0;
    for (let i = 1; i <= row.length; i++) {
      if (i === row.length || row[i] !== row[start]) {
        const cls = row[start] === '1' ? 'c' : row[start] === 'r' ? 'r' : 'z';
        svg.append(s('rect', { x: start * cw, y: r * (ch + 2), width: (i - start) * cw - 0.5, height: ch, class: cls }));
        start = i;
      }
    }
  }
  return svg;
}
