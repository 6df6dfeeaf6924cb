// Fleet overview: counts by health, rates, heartbeat-rate chart, rejections by reason, and the latest
// status changes as they arrive on the live feed.
import { h, num, short, time } from '../dom.js';
import { getJson } from '../api.js';
import { rateChart } from './chart.js';

export function fleetView() {
  const cards = h('div', { class: 'cards', id: 'fleet-cards' });
  const chart = h('div', { id: 'rate-chart' }, h('p', { class: 'muted' }, 'loading…'));
  const reasons = h('div', { id: 'rejection-reasons' });
  const changes = h('ul', { class: 'events', id: 'recent-changes' }, h('li', { class: 'muted', 'data-empty': '' }, 'No status change since this page opened.'));
  const error = h('p', { class: 'error', role: 'alert' });
  const el = h('div', {},
    h('h1', {}, 'Fleet'),
    error,
    cards,
    h('div', { class: 'grid2' },
      h('section', { class: 'panel' }, h('h2', {}, 'Heartbeats per minute (last hour)'), chart),
      h('section', { class: 'panel' }, h('h2', {}, 'Rejections by reason (24 h)'), reasons)),
    h('section', { class: 'panel' }, h('h2', {}, 'Live status changes'), changes));

  const ctrl = new AbortController();
  async function load() {
    try {
      const f = await getJson('/api/fleet', { operator: true, signal: ctrl.signal });
      error.textContent = '';
      const card = (key, label, value) => h('div', { class: 'card', dataset: { count: key } }, h('div', { class: 'value' }, value), h('div', { class: 'label' }, label));
      cards.replaceChildren(
        card('total', 'devices', f.devices.total),
        card('online', 'online', f.devices.online),
        card('offline', 'offline', f.devices.offline),
        card('unseen', 'never seen', f.devices.unseen),
        card('revoked', 'revoked', f.devices.revoked),
        card('flapping', 'flapping', f.devices.flapping),
        card('hbps', 'heartbeats / s', num(f.heartbeatsPerSecond)),
        card('rejps', 'rejections / s', num(Object.values(f.rejectionsPerSecond).reduce((a, b) => a + b, 0))),
      );
      chart.replaceChildren(rateChart(f.rate));
      const max = Math.max(1, ...f.rejectionsByReason.map((r) => r.count));
      reasons.replaceChildren(
        ...(f.rejectionsByReason.length === 0
          ? [h('p', { class: 'muted' }, 'No rejections in the last 24 hours.')]
          : f.rejectionsByReason.map((r) =>
              h('div', { class: 'hbar', dataset: { reason: r.reason } },
                h('code', {}, r.reason),
                h('div', { class: 'track' }, h('div', { class: 'fill', style: `width:${((100 * r.count) / max).toFixed(1)}%` })),
                h('span', {}, num(r.count, 0))))),
      );
    } catch (e) {
      if (e.name !== 'AbortError') error.textContent = `Could not load the fleet: ${e.code ?? ''} ${e.message}`;
    }
  }

  // A status change refreshes the counts (debounced: a mass outage is one refresh, not thousands).
  let pending;
  const onStatus = (ev) => {
    const e = ev.detail;
    changes.querySelector('[data-empty]')?.remove();
    const li = h('li', { class: 'flash', dataset: { deviceId: e.deviceId, event: e.event } },
      h('code', {}, time(e.atMs)), ' ',
      h('a', { href: `#/devices/${e.deviceId}` }, short(e.deviceId)), ' ',
      h('span', { class: `badge ${e.event === 'flapping' ? 'flapping' : e.to}` }, e.event), ' ',
      h('span', { class: 'muted' }, e.reason));
    changes.prepend(li);
    while (changes.children.length > 50) changes.lastElementChild.remove();
    clearTimeout(pending);
    pending = setTimeout(load, 500);
  };
  window.addEventListener('pulse:device-status', onStatus);
  const timer = setInterval(load, 30_000);
  load();
  return {
    el,
    cleanup: () => {
      ctrl.abort();
      clearInterval(timer);
      clearTimeout(pending);
      window.removeEventListener('pulse:device-status', onStatus);
    },
  };
}
