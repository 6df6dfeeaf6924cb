/* global CustomEvent, localStorage -- browser globals; eslint.config.js declares the Node.js ones */
// API access. The operator token lives in localStorage and goes in the Authorization header; views
// that need it show the token form instead of sending a request that would fail (no 401 noise).
const KEY = 'pulse.operatorToken';

export function token() {
  return localStorage.getItem(KEY) ?? '';
}

export function setToken(t) {
  if (t) localStorage.setItem(KEY, t);
  else localStorage.removeItem(KEY);
  window.dispatchEvent(new CustomEvent('pulse:token'));
}

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** GET a JSON document; throws ApiError with the server's stable code on failure. */
export async function getJson(path, { operator = false, signal } = {}) {
  const headers = { accept: 'application/json' };
  if (operator && token()) headers.authorization = `Bearer ${token()}`;
  const res = await fetch(path, { headers, signal, cache: 'no-store' });
  let body;
  try {
    body = await res.json();
  } catch {
    body = undefined;
  }
  if (!res.ok) {
    const e = body?.error;
    if (res.status === 401) setToken('');
    throw new ApiError(res.status, e?.code ?? 'HTTP_' + res.status, e?.message ?? res.statusText);
  }
  return body;
}
