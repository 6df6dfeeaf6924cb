// The oracle's HTTP server (node:http): GET /health, GET /metrics (the oracle's own prom-client
// Registry) and the registry API. Routes live in a Router (oracle/http/router.ts) so the full API
// and dashboard can be added by registering more routes on `server.router`.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Registry as PromRegistry, collectDefaultMetrics } from 'prom-client';
import { Router, type Handler } from './router.ts';
import { addRegistryRoutes } from './registry-routes.ts';
import type { Registry } from '../registry/registry.ts';
import type { Store } from '../store/store.ts';
import { PulseError } from '../../shared/errors.ts';

export type OracleHttpOptions = {
  readonly store: Store;
  readonly registry: Registry;
  readonly operatorToken: string;
  /** The oracle's metrics registry (ingest metrics are registered on it too). */
  readonly metrics?: PromRegistry;
  readonly log?: (event: Record<string, unknown>) => void;
  /** Serves GET /api/devices/:id instead of the plain registry record (see addRegistryRoutes). */
  readonly deviceDocument?: Handler;
};

export type OracleHttpServer = {
  readonly router: Router;
  readonly metrics: PromRegistry;
  readonly server: Server;
  listen(port: number, host?: string): Promise<number>;
  close(): Promise<void>;
};

export function createOracleHttpServer(opts: OracleHttpOptions): OracleHttpServer {
  const metrics = opts.metrics ?? new PromRegistry();
  collectDefaultMetrics({ register: metrics, prefix: 'pulse_oracle_' });
  const requests = new Counter({ name: 'pulse_http_requests_total', help: 'HTTP requests by route pattern, method and status.', labelNames: ['route', 'method', 'status'], registers: [metrics] });
  const router = new Router({
    operatorToken: opts.operatorToken,
    onResponse: (route, method, status) => requests.inc({ route, method, status: String(status) }),
    ...(opts.log !== undefined ? { log: opts.log } : {}),
  });

  router.add('GET', '/health', async () => {
    try {
      await opts.store.query('SELECT 1');
      return { status: 200, body: { status: 'ok', store: opts.store.kind } };
    } catch (e) {
      return { status: 503, body: { status: 'unavailable', store: opts.store.kind, error: { code: 'STORE_UNAVAILABLE', message: (e as Error).message } } };
    }
  });
  router.add('GET', '/metrics', async () => ({ status: 200, text: await metrics.metrics(), contentType: metrics.contentType }));
  addRegistryRoutes(router, opts.registry, opts.deviceDocument);

  const server = createServer((req, res) => {
    router.handle(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(500);
      res.end();
    });
  });
  server.keepAliveTimeout = 5_000;

  return {
    router,
    metrics,
    server,
    listen: (port, host = '127.0.0.1') =>
      new Promise<number>((resolve, reject) => {
        const onError = (e: NodeJS.ErrnoException) =>
          reject(e.code === 'EADDRINUSE' ? new PulseError('PORT_IN_USE', `HTTP port ${port} is in use; change --http-port / PULSE_HTTP_PORT`) : e);
        server.once('error', onError);
        server.listen(port, host, () => {
          server.off('error', onError);
          resolve((server.address() as AddressInfo).port);
        });
      }),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      }),
  };
}
