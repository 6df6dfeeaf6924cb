/* global URLSearchParams, location, confirm -- browser globals; eslint.config.js declares the Node.js ones */
// Pulse dashboard: a hash router over four views. Plain ES modules, no build step (issue 7 §4).
import { h } from './dom.js';
import { token, setToken } from './api.js';
import { startLive } from './live.js';
import { fleetView } from './views/fleet.js';
import { devicesView } from './views/devices.js';
import { deviceView } from './views/device.js';
import { epochsView } from './views/epochs.js';

const view = document.getElementById('view');
const live = document.getElementById('live');
let cleanup = () => {};

/** The operator token form, shown instead of an operator view until a token is saved. */
export function tokenForm(message) {
  const input = h('input', { type: 'password', name: 'token', autocomplete: 'off', placeholder: 'operator token', 'aria-label': 'Operator token', id: 'token-input' });
  const form = h('form', { class: 'token-form', id: 'token-form', onsubmit: (e) => {
    e.preventDefault();
    setToken(input.value.trim());
  } }, input, h('button', { type: 'submit' }, 'Save token'));
  return h('section', { class: 'panel' }, h('h2', {}, 'Operator token needed'), h('p', { class: 'muted' }, message ?? 'Fleet-wide views and the live feed need the operator token (PULSE_OPERATOR_TOKEN). It is kept in this browser only.'), form);
}

function parseHash() {
  const raw = location.hash.replace(/^#/, '') || '/';
  const [path, query = ''] = raw.split('?');
  return { path, params: new URLSearchParams(query) };
}

function render() {
  cleanup();
  cleanup = () => {};
  const { path, params } = parseHash();
  let section = 'fleet';
  let mount;
  const m = /^\/devices\/([0-9a-f]{64})$/.exec(path);
  if (m) {
    section = 'devices';
    mount = () => deviceView(m[1]);
  } else if (path === '/devices') {
    section = 'devices';
    mount = () => (token() ? devicesView(params) : { el: tokenForm() });
  } else if (path === '/epochs') {
    section = 'epochs';
    mount = () => epochsView(params);
  } else {
    mount = () => (token() ? fleetView() : { el: tokenForm() });
  }
  for (const a of document.querySelectorAll('nav a[data-nav]')) {
    if (a.dataset.nav === section) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  const out = mount();
  view.replaceChildren(out.el);
  cleanup = out.cleanup ?? (() => {});
}

window.addEventListener('hashchange', render);
window.addEventListener('pulse:token', () => {
  render();
  startLive();
});
window.addEventListener('pulse:live', (e) => {
  live.dataset.state = e.detail;
  live.textContent = e.detail === 'on' ? 'live' : e.detail === 'retry' ? 'reconnecting…' : 'not live';
});
document.getElementById('token-button').addEventListener('click', () => {
  if (token() && confirm('Forget the operator token in this browser?')) setToken('');
  else if (!token()) {
    location.hash = '#/';
    render();
  }
});

render();
startLive();
