// Epochs: roots, totals, transaction, status, and how anyone can verify a root. Data comes from
// GET /api/epochs and GET /api/epochs/:n (the epochs module); epoch events on the live feed refresh it.
import { h, short, amount, time, table } from '../dom.js';
import { getJson } from '../api.js';

const STATUS_HELP = {
  open: 'still collecting heartbeats',
  closed: 'scored; root computed, not yet on chain',
  posted: 'root posted on chain',
  challengeable: 'on chain, inside the challenge period: a guardian can still veto',
  final: 'challenge period over: claimable',
  vetoed: 'vetoed by a guardian: not claimable',
  failed: 'posting failed: the oracle retries; operators are alerted',
};

export function epochsView(params) {
  const list = h('div', { id: 'epoch-list' }, h('p', { class: 'muted' }, 'loading…'));
  const detail = h('div', { id: 'epoch-detail' });
  const el = h('div', {},
    h('h1', {}, 'Epochs'),
    h('section', { class: 'panel' }, list),
    detail,
    h('section', { class: 'panel', id: 'how-to-verify' },
      h('h2', {}, 'How to verify a root'),
      h('ol', {},
        h('li', {}, 'Download the epoch bundle (the link on the epoch). Its SHA-256 hash must equal the inputs hash posted on chain with the root.'),
        h('li', {}, 'Run ', h('code', {}, 'pulse verify <bundle>'), ': it re-checks every device-signed heartbeat in the bundle, recomputes scores and rewards with the published parameters, rebuilds the merkle tree and prints the root.'),
        h('li', {}, 'Compare that root with the one here and with the contract (the transaction link). Any difference means the oracle posted a root its own inputs do not support.'),
        h('li', {}, 'Owners claim with a proof for (owner, cumulative amount); the contract pays cumulative minus what was already claimed.'))));

  const ctrl = new AbortController();
  async function load() {
    try {
      const { epochs } = await getJson('/api/epochs', { signal: ctrl.signal });
      list.replaceChildren(epochs.length === 0 ? h('p', { class: 'muted' }, 'No epoch yet.') :
        table(['epoch', 'window', 'status', 'root', 'allocated', 'cumulative', 'devices', 'transaction'], epochs.map((e) =>
          h('tr', { class: 'clickable', dataset: { epoch: e.epoch }, onclick: () => show(e.epoch) },
            h('td', {}, h('a', { href: `#/epochs?epoch=${e.epoch}` }, String(e.epoch))),
            h('td', {}, time(e.startMs), ' → ', time(e.endMs)),
            h('td', { title: STATUS_HELP[e.status] ?? '' }, h('span', { class: `badge ${e.status === 'final' || e.status === 'posted' ? 'online' : e.status === 'failed' || e.status === 'vetoed' ? 'offline' : 'unseen'}` }, e.status)),
            h('td', { class: 'mono', title: e.root ?? '' }, short(e.root, 8)),
            h('td', { class: 'mono' }, amount(e.allocated)),
            h('td', { class: 'mono' }, amount(e.cumulativeTotal)),
            h('td', {}, e.devices ?? '—'),
            h('td', { class: 'mono', title: e.txHash ?? '' }, e.txHash ? short(e.txHash, 8) : '—'))), { name: 'epochs' }));
    } catch (e) {
      if (e.name !== 'AbortError') list.replaceChildren(h('p', { class: 'error', role: 'alert' }, `${e.code ?? ''}: ${e.message}`));
    }
  }

  async function show(n) {
    try {
      const e = await getJson(`/api/epochs/${encodeURIComponent(n)}`, { signal: ctrl.signal });
      const kv = (k, v) => [h('dt', {}, k), h('dd', {}, v)];
      detail.replaceChildren(h('section', { class: 'panel', dataset: { epochDetail: e.epoch } },
        h('h2', {}, `Epoch ${e.epoch}`),
        h('dl', { class: 'kv' },
          kv('status', `${e.status} — ${STATUS_HELP[e.status] ?? ''}`),
          kv('window', `${time(e.startMs)} → ${time(e.endMs)}`),
          kv('root', h('code', {}, e.root ?? '—')),
          kv('cumulative total', h('code', {}, amount(e.cumulativeTotal))),
          kv('allocated', h('code', {}, amount(e.allocated))),
          kv('devices', String(e.devices ?? '—')),
          kv('transaction', h('code', {}, e.txHash ?? '—')),
          kv('posted', e.postedAt ? String(e.postedAt) : '—'),
          kv('bundle', e.bundleUrl ? h('a', { href: e.bundleUrl }, e.bundleUrl) : 'not published yet'),
          kv('parameters', h('pre', { class: 'mono' }, JSON.stringify(e.params ?? null, null, 2))))));
    } catch (err) {
      if (err.name !== 'AbortError') detail.replaceChildren(h('p', { class: 'error', role: 'alert' }, `${err.code ?? ''}: ${err.message}`));
    }
  }

  const onEpoch = () => load();
  window.addEventListener('pulse:epoch', onEpoch);
  load();
  const selected = params.get('epoch');
  if (selected !== null && /^\d+$/.test(selected)) show(selected);
  return { el, cleanup: () => { ctrl.abort(); window.removeEventListener('pulse:epoch', onEpoch); } };
}
