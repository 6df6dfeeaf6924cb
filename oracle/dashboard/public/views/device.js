// One device: health, uptime (credited vs seen) over 1 h / 24 h / 7 d, the 24 h timeline by slot,
// last heartbeats, rejection reasons, status and registry history, rewards per epoch. Public: a
// device owner can open it without the operator token. Live status changes update it in place.
import { h, badge, short, ago, time, pct, amount, table } from '../dom.js';
import { getJson } from '../api.js';
import { uptimeStrip } from './chart.js';

export function deviceView(id) {
  const el = h('div', {}, h('p', { class: 'muted' }, 'loading…'));
  const ctrl = new AbortController();
  let statusBox;
  let historyBody;

  async function load() {
    try {
      const d = await getJson(`/api/devices/${id}/status`, { signal: ctrl.signal });
      el.replaceChildren(render(d));
    } catch (e) {
      if (e.name === 'AbortError') return;
      el.replaceChildren(h('h1', {}, 'Device'), h('p', { class: 'error', role: 'alert' }, e.code === 'API_UNKNOWN_DEVICE' ? 'No registered device has this id.' : `${e.code ?? ''}: ${e.message}`));
    }
  }

  function render(d) {
    statusBox = h('span', { id: 'device-status' }, badge(d.health, d.flapping));
    const kv = (k, v) => [h('dt', {}, k), h('dd', {}, v)];
    const windows = ['1h', '24h', '7d'];
    historyBody = h('tbody', { id: 'status-history' }, d.statusHistory.map(historyRow));
    return h('div', {},
      h('h1', {}, 'Device ', h('code', { title: d.deviceId }, short(d.deviceId, 12)), ' ', statusBox),
      h('section', { class: 'panel' },
        h('dl', { class: 'kv' },
          kv('device id', h('code', {}, d.deviceId)),
          kv('registry', d.status),
          kv('health since', h('span', { id: 'health-since' }, d.healthSinceMs ? `${time(d.healthSinceMs)} (${ago(d.healthSinceMs)})` : '—')),
          kv('last seen', d.lastSeenMs ? `${time(d.lastSeenMs)} (${ago(d.lastSeenMs)})` : 'never'),
          kv('last seq', d.lastSeq ?? '—'),
          kv('owner', d.owner ? h('code', {}, d.owner) : 'not bound'),
          kv('maker', d.makerName ? `${d.makerName} (${short(d.makerKey, 8)})` : (d.makerKey ?? '—')),
          kv('model', d.model ?? '—'),
          kv('registered', `${d.registeredAt} via ${d.registeredVia}`),
          kv('current key', h('code', {}, d.currentKeyId ?? '—')))),
      h('div', { class: 'cards' }, windows.flatMap((w) => [
        h('div', { class: 'card', dataset: { uptime: w } }, h('div', { class: 'value' }, pct(d.uptime[w].creditedRatio)), h('div', { class: 'label' }, `credited uptime, ${w} (${d.uptime[w].credited}/${d.uptime[w].slots} slots)`)),
        h('div', { class: 'card' }, h('div', { class: 'value' }, pct(d.uptime[w].seenRatio)), h('div', { class: 'label' }, `seen, ${w} (accepted or rejected)`)),
      ])),
      h('section', { class: 'panel' },
        h('h2', {}, 'Uptime by slot, last 24 h'),
        uptimeStrip(d.timeline.slots),
        h('div', { class: 'legend' },
          h('span', {}, h('i', { style: 'background:var(--online)' }), 'credited (signed heartbeat accepted)'),
          h('span', {}, h('i', { style: 'background:var(--flap)' }), 'only rejected messages'),
          h('span', {}, h('i', { style: 'background:var(--line)' }), 'nothing')),
        h('p', { class: 'muted' }, 'Only credited slots earn rewards. Each slot is one interval of ', String(d.slotIntervalMs / 1000), ' s.')),
      h('div', { class: 'grid2' },
        h('section', { class: 'panel' }, h('h2', {}, 'Last heartbeats'),
          table(['seq', 'device time', 'received', 'metrics'], d.recentHeartbeats.map((b) =>
            h('tr', {}, h('td', { class: 'mono' }, b.seq), h('td', {}, time(b.ts)), h('td', {}, `${b.receivedAt - b.ts >= 0 ? '+' : ''}${b.receivedAt - b.ts} ms`),
              h('td', { class: 'mono' }, Object.entries(b.metrics).map(([k, v]) => `${k}=${v}`).join(' ') || '—'))), { name: 'heartbeats' })),
        h('section', { class: 'panel' }, h('h2', {}, 'Rejections (7 d)'),
          d.rejectionsByReason.length === 0 ? h('p', { class: 'muted' }, 'None.') :
            table(['reason', 'count'], d.rejectionsByReason.map((r) => h('tr', {}, h('td', {}, h('a', { href: '/docs' }, h('code', {}, r.reason))), h('td', {}, String(r.count)))), { name: 'rejection-reasons' }),
          d.recentRejections.length === 0 ? null : h('details', {}, h('summary', {}, 'Latest rejected messages'),
            table(['received', 'seq', 'reason', 'detail'], d.recentRejections.map((r) =>
              h('tr', {}, h('td', {}, time(r.receivedAt)), h('td', { class: 'mono' }, r.seq ?? '—'), h('td', {}, h('code', {}, r.reason)), h('td', {}, r.detail))))))),
      h('section', { class: 'panel' }, h('h2', {}, 'Status history'),
        h('div', { class: 'table-wrap' }, h('table', { 'data-table': 'status-history' }, h('thead', {}, h('tr', {}, h('th', {}, 'when'), h('th', {}, 'change'), h('th', {}, 'why'))), historyBody))),
      h('section', { class: 'panel' }, h('h2', {}, 'Rewards per epoch'),
        d.rewards === null || d.rewards.length === 0 ? h('p', { class: 'muted' }, 'No closed epoch has scored this device yet.') :
          table(['epoch', 'status', 'uptime', 'eligible', 'reward', 'reasons'], d.rewards.map((r) =>
            h('tr', {}, h('td', {}, h('a', { href: `#/epochs?epoch=${r.epoch}` }, String(r.epoch))), h('td', {}, r.epochStatus), h('td', {}, `${(r.uptimeBps / 100).toFixed(2)} %`),
              h('td', {}, r.eligible ? 'yes' : 'no'), h('td', { class: 'mono' }, amount(r.total)), h('td', {}, r.reasons.map((x) => h('code', {}, x, ' '))))), { name: 'rewards' })),
      h('section', { class: 'panel' }, h('h2', {}, 'Registry history'),
        table(['when', 'event', 'status', 'owner'], d.registryHistory.map((e) =>
          h('tr', {}, h('td', {}, e.at), h('td', {}, e.event), h('td', {}, e.status), h('td', { class: 'mono' }, e.owner ?? '—'))))));
  }

  function historyRow(e) {
    return h('tr', { dataset: { eventId: e.id } }, h('td', {}, time(e.atMs)),
      h('td', {}, e.event === 'flapping' || e.event === 'stable' ? h('span', { class: `badge ${e.event === 'flapping' ? 'flapping' : e.to}` }, e.event) : [badge(e.from), ' → ', badge(e.to)]),
      h('td', { class: 'muted' }, e.reason));
  }

  const onStatus = (ev) => {
    const e = ev.detail;
    if (e.deviceId !== id || !statusBox) return;
    statusBox.replaceChildren(badge(e.to, e.flapping));
    if (e.event !== 'flapping' && e.event !== 'stable') el.querySelector('#health-since')?.replaceChildren(`${time(e.atMs)} (${ago(e.atMs)})`);
    if (!historyBody.querySelector(`tr[data-event-id="${e.id}"]`)) {
      const tr = historyRow(e);
      tr.classList.add('flash');
      historyBody.prepend(tr);
    }
  };
  window.addEventListener('pulse:device-status', onStatus);
  load();
  return { el, cleanup: () => { ctrl.abort(); window.removeEventListener('pulse:device-status', onStatus); } };
}
