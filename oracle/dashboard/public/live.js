/* global CustomEvent, TextDecoderStream -- browser globals; eslint.config.js declares the Node.js ones */
// The live feed: /api/events is server-sent events (text/event-stream). EventSource cannot send an
// Authorization header, so this reads the stream with fetch and parses the frames itself, reconnecting
// with Last-Event-ID so device status changes missed during a reconnect are replayed by the server.
import { token } from './api.js';

let controller;
let lastId;
let retryMs = 2000;
let state = 'off';

function setState(s) {
  state = s;
  window.dispatchEvent(new CustomEvent('pulse:live', { detail: s }));
}

export function liveState() {
  return state;
}

function dispatch(frame) {
  if (frame.id !== undefined) lastId = frame.id;
  if (frame.data === '') return;
  let data;
  try {
    data = JSON.parse(frame.data);
  } catch {
    return;
  }
  window.dispatchEvent(new CustomEvent(`pulse:${frame.event ?? 'message'}`, { detail: data }));
}

async function run(signal) {
  let attempt = 0;
  while (!signal.aborted) {
    if (!token()) {
      setState('off');
      return;
    }
    try {
      const headers = { accept: 'text/event-stream', authorization: `Bearer ${token()}` };
      if (lastId !== undefined) headers['last-event-id'] = lastId;
      const res = await fetch('/api/events', { headers, signal, cache: 'no-store' });
      if (res.status === 401) {
        setState('off');
        return;
      }
      if (!res.ok || res.body === null) throw new Error(`HTTP ${res.status}`);
      setState('on');
      attempt = 0;
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value;
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const frame = { data: '' };
          const data = [];
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) continue;
            const colon = line.indexOf(':');
            const field = colon < 0 ? line : line.slice(0, colon);
            const val = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
            if (field === 'data') data.push(val);
            else if (field === 'event') frame.event = val;
            else if (field === 'id') frame.id = val;
            else if (field === 'retry' && /^\d+$/.test(val)) retryMs = Number(val);
          }
          frame.data = data.join('\n');
          dispatch(frame);
        }
      }
    } catch {
      if (signal.aborted) return;
    }
    setState('retry');
    attempt += 1;
    await new Promise((r) => setTimeout(r, Math.min(30_000, retryMs * attempt)));
  }
}

/** (Re)start the feed, e.g. after the token changed. */
export function startLive() {
  controller?.abort();
  controller = new AbortController();
  run(controller.signal);
}
