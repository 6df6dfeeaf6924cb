// The operator surface's HTTP routes (issue 7 §1, §4), registered on the oracle's Router
// (oracle/http/router.ts) next to /health, /metrics and the registry routes:
//
//   GET /api/fleet                  operator   fleet overview
//   GET /api/devices                operator   list, filter, search, paginate
//   GET /api/devices/:id/status     public     one device: health, uptime, heartbeats, rejections, history, rewards
//   GET /api/events                 operator   live feed (server-sent events)
//   GET /docs, /docs/openapi.json   public     API description
//   GET /, /dashboard/…             public     the dashboard (it asks for the token for operator views)
//
// "Operator token required for operator views": fleet-wide views and the feed reveal the whole
// network's state, so they need the token; a single device's page is what its owner checks, and a
// device id is public anyway (it is the key in every published epoch bundle).
//
// GET /api/devices/:id itself is the registry's route (oracle/http/registry-routes.ts, registered
// first). The status document is a superset of that registry record, so the registry route can be
// pointed at deviceStatusHandler without breaking a client.
import type { Server } from 'node:http';
import type { Store } from '../store/store.ts';
import type { Registry } from '../registry/registry.ts';
import type { ApiRequest, ApiResponse, Router } from '../http/router.ts';
import { errorResponse } from '../http/router.ts';
import { FleetSummarizer } from './fleet-query.ts';
import { deviceDetail, listDevices, parseDeviceFilter } from './device-query.ts';
import type { LiveFeed } from './live-feed.ts';
import { OPENAPI, openApiHtml } from './openapi.ts';
import { loadDashboardAssets, DASHBOARD_CSP } from '../dashboard/serve-dashboard.ts';
import { isDeviceId } from '../../shared/protocol/device-id.ts';

export type OperatorApiOptions = {
  readonly store: Store;
  readonly registry: Registry;
  readonly slotIntervalMs: number;
  readonly feed: LiveFeed;
  readonly now?: () => number;
  /** Serve the dashboard at / (default true). */
  readonly dashboard?: boolean;
};

/** What attachOperatorRoutes needs from the oracle's HTTP server (oracle/http/server.ts). */
export type HttpHost = { readonly router: Router; readonly server: Server };

/** The one-device status document (also usable as the handler of GET /api/devices/:id). */
export function deviceStatusHandler(opts: Pick<OperatorApiOptions, 'store' | 'registry' | 'slotIntervalMs' | 'now'>): (req: ApiRequest) => Promise<ApiResponse> {
  const now = opts.now ?? Date.now;
  return async (req) => {
    const id = req.params['id'] ?? '';
    if (!isDeviceId(id)) return errorResponse(400, 'REG_BAD_INPUT', 'device id must be 64 lowercase hex characters');
    const record = await opts.registry.getDevice(id);
    if (record === undefined) return errorResponse(404, 'API_UNKNOWN_DEVICE', `no registered device ${id}`);
    const detail = await deviceDetail(opts.store, id, now(), opts.slotIntervalMs);
    if (detail === undefined) return errorResponse(404, 'API_UNKNOWN_DEVICE', `no registered device ${id}`);
    return { status: 200, body: { ...record, ...detail } };
  };
}

export function attachOperatorRoutes(host: HttpHost, opts: OperatorApiOptions): void {
  const now = opts.now ?? Date.now;
  const { router } = host;


  const fleet = new FleetSummarizer(opts.store);
  router.add('GET', '/api/fleet', async () => ({ status: 200, body: await fleet.summary(now()), headers: { 'cache-control': 'no-store' } }), { auth: 'operator' });

  router.add(
    'GET',
    '/api/devices',
    async (req) => {
      const f = parseDeviceFilter(req.query);
      if (!f.ok) return errorResponse(400, f.code, f.message);
      return { status: 200, body: await listDevices(opts.store, f.value), headers: { 'cache-control': 'no-store' } };
    },
    { auth: 'operator' },
  );

  router.add('GET', '/api/devices/:id/status', deviceStatusHandler(opts));

  router.add(
    'GET',
    '/api/events',
    async (req) => {
      // The live feed writes the response stream itself (ApiResponse {status: 0, handled: true}).
      await opts.feed.handle(req.raw, req.res);
      return { status: 0, handled: true };
    },
    { auth: 'operator' },
  );

  const docsHtml = openApiHtml();
  router.add('GET', '/docs', async () => ({
    status: 200,
    text: docsHtml,
    contentType: 'text/html; charset=utf-8',
    headers: { 'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'" },
  }));
  router.add('GET', '/docs/openapi.json', async () => ({ status: 200, body: OPENAPI }));

  if (opts.dashboard !== false) {
    const assets = loadDashboardAssets();
    const serve = (path: string) => async (req: ApiRequest): Promise<ApiResponse> => {
      const asset = assets.get(path);
      if (asset === undefined) return errorResponse(404, 'API_NOT_FOUND', `no dashboard file ${path}`);
      const headers = { etag: asset.etag, 'cache-control': 'no-cache', 'x-content-type-options': 'nosniff', 'content-security-policy': DASHBOARD_CSP, 'referrer-policy': 'no-referrer' };
      if (req.headers['if-none-match'] === asset.etag) return { status: 304, text: '', contentType: asset.type, headers };
      return { status: 200, text: asset.text, contentType: asset.type, headers };
    };
    router.add('GET', '/', serve('index.html'));
    router.add('GET', '/dashboard/:file', (req) => serve(req.params['file'] ?? '')(req));
    router.add('GET', '/dashboard/:dir/:file', (req) => serve(`${req.params['dir'] ?? ''}/${req.params['file'] ?? ''}`)(req));
  }
}
