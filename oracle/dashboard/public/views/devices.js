/* global URLSearchParams, location, history -- browser globals; eslint.config.js declares the Node.js ones */
// Device list: search (device id, owner, model, maker), filters (status, owner, maker), pages of 50.
// Live status changes update the matching row in place.
import { h, badge, short, ago } from '../dom.js';
import { getJson } from '../api.js';

const PAGE = 50;

export function devicesView(params) {
  const state = {
    q: params.get('q') ?? '',
    status: params.get('status') ?? '',
    owner: params.get('owner') ?? '',
    maker: params.get('maker') ?? '',
    offset: Number(params.get('offset') ?? 0) || 0,
  };
  const search = h('input', { type: 'search', id: 'device-search', placeholder: 'Search device id, owner, model, maker', 'aria-label': 'Search devices', value: state.q });
  const status = h('select', { id: 'status-filter', 'aria-label': 'Status' },
    ['', 'online', 'offline', 'unseen', 'revoked', 'flapping'].map((s) => h('option', { value: s, selected: s === state.status }, s === '' ? 'any status' : s)));
  const owner = h('input', { type: 'text', id: 'owner-filter', placeholder: 'owner 0x…', 'aria-label': 'Owner address', value: state.owner, size: 14 });
  const maker = h('input', { type: 'text', id: 'maker-filter', placeholder: 'maker key', 'aria-label': 'Maker key', value: state.maker, size: 14 });
  const body = h('tbody', { id: 'device-rows' });
  const info = h('span', { class: 'muted', id: 'device-count' });
  const prev = h('button', { type: 'button', class: 'ghost', id: 'prev-page' }, '← Prev');
  const next = h('button', { type: 'button', class: 'ghost', id: 'next-page' }, 'Next →');
  const error = h('p', { class: 'error', role: 'alert' });
  const el = h('div', {},
    h('h1', {}, 'Devices'),
    h('div', { class: 'filters' }, search, status, owner, maker),
    error,
    h('section', { class: 'panel' },
      h('div', { class: 'table-wrap' },
        h('table', { 'data-table': 'devices' },
          h('thead', {}, h('tr', {}, h('th', {}, 'device'), h('th', {}, 'status'), h('th', {}, 'last seen'), h('th', { class: 'hide-sm' }, 'last seq'), h('th', { class: 'hide-sm' }, 'owner'), h('th', { class: 'hide-sm' }, 'model / maker'))),
          body)),
      h('div', { class: 'pager' }, info, prev, next)));

  const ctrl = new AbortController();
  let seq = 0;
  async function load() {
    const mine = ++seq;
    const q = new URLSearchParams();
    for (const k of ['q', 'status', 'owner', 'maker']) if (state[k]) q.set(k, state[k]);
    // Keep the filters in the address, so a filtered list can be bookmarked and shared.
    const hash = `#/devices${q.toString() ? `?${q}` : ''}`;
    if (location.hash !== hash && state.offset === 0) history.replaceState(null, '', hash);
    q.set('limit', String(PAGE));
    q.set('offset', String(state.offset));
    try {
      const page = await getJson(`/api/devices?${q}`, { operator: true, signal: ctrl.signal });
      if (mine !== seq) return;
      error.textContent = '';
      body.replaceChildren(...page.devices.map(row));
      if (page.devices.length === 0) body.append(h('tr', {}, h('td', { colspan: 6, class: 'muted' }, 'No device matches.')));
      const end = state.offset + page.devices.length;
      info.textContent = page.total === 0 ? '0 devices' : `${state.offset + 1}–${end} of ${page.total}`;
      prev.disabled = state.offset === 0;
      next.disabled = end >= page.total;
    } catch (e) {
      if (e.name !== 'AbortError' && mine === seq) error.textContent = `${e.code ?? ''}: ${e.message}`;
    }
  }

  function row(d) {
    const open = () => { location.hash = `#/devices/${d.deviceId}`; };
    return h('tr', { class: 'clickable', dataset: { deviceId: d.deviceId }, onclick: open },
      h('td', {}, h('a', { href: `#/devices/${d.deviceId}`, class: 'mono' }, short(d.deviceId))),
      h('td', { 'data-cell': 'status' }, badge(d.health, d.flapping)),
      h('td', { title: d.lastSeenMs ? new Date(d.lastSeenMs).toISOString() : '' }, ago(d.lastSeenMs)),
      h('td', { class: 'hide-sm mono' }, d.lastSeq ?? '—'),
      h('td', { class: 'hide-sm mono' }, d.owner ? short(d.owner, 8) : '—'),
      h('td', { class: 'hide-sm' }, [d.model, d.makerName].filter(Boolean).join(' · ') || '—'));
  }

  let typing;
  const changed = () => {
    clearTimeout(typing);
    typing = setTimeout(() => {
      state.q = search.value.trim();
      state.status = status.value;
      state.owner = owner.value.trim();
      state.maker = maker.value.trim();
      state.offset = 0;
      load();
    }, 250);
  };
  for (const input of [search, owner, maker]) input.addEventListener('input', changed);
  status.addEventListener('change', changed);
  prev.addEventListener('click', () => { state.offset = Math.max(0, state.offset - PAGE); load(); });
  next.addEventListener('click', () => { state.offset += PAGE; load(); });

  const onStatus = (ev) => {
    const e = ev.detail;
    const tr = body.querySelector(`tr[data-device-id="${e.deviceId}"]`);
    if (!tr) return;
    tr.querySelector('[data-cell="status"]').replaceChildren(badge(e.to, e.flapping));
    tr.classList.remove('flash');
    void tr.offsetWidth;
    tr.classList.add('flash');
  };
  window.addEventListener('pulse:device-status', onStatus);
  load();
  return { el, cleanup: () => { ctrl.abort(); clearTimeout(typing); window.removeEventListener('pulse:device-status', onStatus); } };
}
