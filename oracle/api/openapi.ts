// The OpenAPI 3.1 description of the oracle's HTTP API (issue 7 §1), served as JSON at
// /docs/openapi.json and as a small HTML page at /docs. Routes owned by other modules (registry
// writes, epochs) are described here too so operators find one document; the shapes follow
// docs/operations.md §API.

const error = { $ref: '#/components/schemas/Error' };
const json = (schema: unknown) => ({ 'application/json': { schema } });
const errorResponses = {
  '400': { description: 'Malformed parameter (API_BAD_QUERY, API_BAD_REQUEST, REG_BAD_INPUT …)', content: json(error) },
  '401': { description: 'Operator token missing or wrong (API_UNAUTHORIZED)', content: json(error) },
};
const operator = [{ operatorToken: [] }];

export const OPENAPI = Object.freeze({
  openapi: '3.1.0',
  info: {
    title: 'Pulse oracle API',
    version: '1',
    description:
      'Read API, live feed and registry of a Pulse oracle. Errors are JSON {"error":{"code","message"}} with a stable code from docs/errors.md. Operator views and every write need `Authorization: Bearer <operator token>`.',
  },
  components: {
    securitySchemes: { operatorToken: { type: 'http', scheme: 'bearer', description: 'The oracle operator token (PULSE_OPERATOR_TOKEN).' } },
    schemas: {
      Error: {
        type: 'object',
        required: ['error'],
        properties: { error: { type: 'object', required: ['code', 'message'], properties: { code: { type: 'string', example: 'API_BAD_QUERY' }, message: { type: 'string' } } } },
      },
      HealthStatus: { type: 'string', enum: ['unseen', 'online', 'offline', 'revoked'] },
      DeviceSummary: {
        type: 'object',
        properties: {
          deviceId: { type: 'string', pattern: '^[0-9a-f]{64}$' },
          status: { type: 'string', enum: ['active', 'revoked'], description: 'Registry status.' },
          health: { $ref: '#/components/schemas/HealthStatus' },
          flapping: { type: 'boolean' },
          healthSinceMs: { type: ['integer', 'null'] },
          owner: { type: ['string', 'null'], pattern: '^0x[0-9a-f]{40}$' },
          makerKey: { type: ['string', 'null'] },
          makerName: { type: ['string', 'null'] },
          model: { type: ['string', 'null'] },
          lastSeenMs: { type: ['integer', 'null'], description: 'Device timestamp of the latest accepted heartbeat (unix ms).' },
          lastSeq: { type: ['string', 'null'], description: 'Highest accepted seq, a decimal string (u64).' },
        },
      },
      UptimeWindow: {
        type: 'object',
        properties: {
          slots: { type: 'integer' },
          credited: { type: 'integer', description: 'Slots holding an accepted, signed heartbeat (what rewards count).' },
          seen: { type: 'integer', description: 'Slots in which anything arrived from the device, accepted or rejected.' },
          creditedRatio: { type: 'number' },
          seenRatio: { type: 'number' },
        },
      },
      HealthEvent: {
        type: 'object',
        properties: {
          id: { type: 'string' },
          deviceId: { type: 'string' },
          event: { type: 'string', enum: ['online', 'offline', 'revoked', 'flapping', 'stable'] },
          from: { $ref: '#/components/schemas/HealthStatus' },
          to: { $ref: '#/components/schemas/HealthStatus' },
          flapping: { type: 'boolean' },
          atMs: { type: 'integer', description: 'When the transition happened by the health rules (unix ms).' },
          lastSeq: { type: ['string', 'null'] },
          lastTs: { type: ['integer', 'null'] },
          reason: { type: 'string' },
        },
      },
      Epoch: {
        type: 'object',
        properties: {
          epoch: { type: 'integer' },
          startMs: { type: 'integer' },
          endMs: { type: 'integer' },
          status: { type: 'string', enum: ['open', 'closed', 'posted', 'challengeable', 'final', 'vetoed', 'failed'] },
          root: { type: ['string', 'null'] },
          cumulativeTotal: { type: ['string', 'null'] },
          allocated: { type: ['string', 'null'] },
          devices: { type: ['integer', 'null'] },
          txHash: { type: ['string', 'null'] },
          postedAt: { type: ['string', 'integer', 'null'] },
        },
      },
    },
  },
  paths: {
    '/health': { get: { summary: 'Liveness and readiness of this oracle process', responses: { '200': { description: 'OK' }, '503': { description: 'Not ready' } } } },
    '/metrics': { get: { summary: 'Prometheus metrics (text exposition format); every metric is listed in docs/operations.md', responses: { '200': { description: 'OK', content: { 'text/plain': {} } } } } },
    '/api/fleet': {
      get: {
        summary: 'Fleet overview: devices by health status, heartbeats/s, rejections/s by reason, per-minute heartbeat series',
        security: operator,
        responses: {
          '200': {
            description: 'OK',
            content: json({
              type: 'object',
              properties: {
                generatedAt: { type: 'integer' },
                devices: { type: 'object', properties: { total: { type: 'integer' }, unseen: { type: 'integer' }, online: { type: 'integer' }, offline: { type: 'integer' }, revoked: { type: 'integer' }, flapping: { type: 'integer' } } },
                windowSeconds: { type: 'integer' },
                heartbeatsPerSecond: { type: 'number' },
                rejectionsPerSecond: { type: 'object', additionalProperties: { type: 'number' } },
                rate: { type: 'array', items: { type: 'object', properties: { t: { type: 'integer' }, heartbeats: { type: 'integer' } } } },
                rejectionsByReason: { type: 'array', items: { type: 'object', properties: { reason: { type: 'string' }, count: { type: 'integer' } } } },
              },
            }),
          },
          ...errorResponses,
        },
      },
    },
    '/api/devices': {
      get: {
        summary: 'Devices, filtered and paginated (ordered by device id)',
        security: operator,
        parameters: [
          { name: 'status', in: 'query', schema: { type: 'string', enum: ['unseen', 'online', 'offline', 'revoked', 'flapping'] } },
          { name: 'owner', in: 'query', schema: { type: 'string', pattern: '^0x[0-9a-fA-F]{40}$' } },
          { name: 'maker', in: 'query', schema: { type: 'string', pattern: '^[0-9a-fA-F]{64}$' } },
          { name: 'q', in: 'query', description: 'Device id or owner prefix, model or maker name substring', schema: { type: 'string', maxLength: 100 } },
          { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 200, default: 50 } },
          { name: 'offset', in: 'query', schema: { type: 'integer', minimum: 0, default: 0 } },
        ],
        responses: {
          '200': {
            description: 'OK',
            content: json({ type: 'object', properties: { devices: { type: 'array', items: { $ref: '#/components/schemas/DeviceSummary' } }, total: { type: 'integer' }, limit: { type: 'integer' }, offset: { type: 'integer' } } }),
          },
          ...errorResponses,
        },
      },
      post: { summary: 'Register a device (operator; registry module)', security: operator, responses: { '201': { description: 'Created' }, ...errorResponses } },
    },
    '/api/devices/{id}': {
      get: {
        summary: 'The registry record of one device (registry module): owner, maker, model, status, keys',
        parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string', pattern: '^[0-9a-f]{64}$' } }],
        responses: { '200': { description: 'OK' }, '404': { description: 'No such device (REG_UNKNOWN_DEVICE)', content: json(error) } },
      },
    },
    '/api/devices/{id}/status': {
      get: {
        summary: 'One device (a superset of its registry record): health, last seen, last seq, credited vs seen uptime over 1 h / 24 h / 7 d, timeline by slot, last heartbeats, rejections, status and registry history',
        parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string', pattern: '^[0-9a-f]{64}$' } }],
        responses: {
          '200': {
            description: 'OK',
            content: json({
              allOf: [
                { $ref: '#/components/schemas/DeviceSummary' },
                {
                  type: 'object',
                  properties: {
                    keys: { type: 'array', items: { type: 'object' } },
                    uptime: { type: 'object', properties: { '1h': { $ref: '#/components/schemas/UptimeWindow' }, '24h': { $ref: '#/components/schemas/UptimeWindow' }, '7d': { $ref: '#/components/schemas/UptimeWindow' } } },
                    timeline: { type: 'object', properties: { fromSlot: { type: 'string' }, slots: { type: 'string', description: "One character per slot: '1' credited, 'r' rejected only, '0' nothing" } } },
                    statusHistory: { type: 'array', items: { $ref: '#/components/schemas/HealthEvent' } },
                    rewards: { type: 'array', items: { type: 'object', properties: { epoch: { type: 'integer' }, uptimeBps: { type: 'integer' }, eligible: { type: 'boolean' }, reasons: { type: 'array', items: { type: 'string' } }, total: { type: 'string' } } } },
                  },
                },
              ],
            }),
          },
          '400': { description: 'Not a device id (REG_BAD_INPUT)', content: json(error) },
          '404': { description: 'No such device (API_UNKNOWN_DEVICE)', content: json(error) },
        },
      },
    },
    '/api/events': {
      get: {
        summary: 'Live feed (text/event-stream): `device-status` events (with ids; resume with Last-Event-ID) and `epoch` events',
        security: operator,
        parameters: [{ name: 'Last-Event-ID', in: 'header', schema: { type: 'string' } }],
        responses: { '200': { description: 'Event stream', content: { 'text/event-stream': {} } }, '401': errorResponses['401'], '503': { description: 'Too many clients (API_FEED_FULL)', content: json(error) } },
      },
    },
    '/api/epochs': {
      get: { summary: 'Epochs with their roots, totals, transaction and status', responses: { '200': { description: 'OK', content: json({ type: 'object', properties: { epochs: { type: 'array', items: { $ref: '#/components/schemas/Epoch' } } } }) } } },
    },
    '/api/epochs/{n}': {
      get: {
        summary: 'One epoch, with its reward parameters and bundle URL',
        parameters: [{ name: 'n', in: 'path', required: true, schema: { type: 'integer', minimum: 0 } }],
        responses: { '200': { description: 'OK', content: json({ allOf: [{ $ref: '#/components/schemas/Epoch' }, { type: 'object', properties: { params: { type: 'object' }, bundleUrl: { type: ['string', 'null'] } } }] }) }, '404': { description: 'No such epoch' } },
      },
    },
  },
});

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** A dependency-free HTML rendering of the description: one block per route. */
export function openApiHtml(): string {
  const rows: string[] = [];
  for (const [path, ops] of Object.entries(OPENAPI.paths)) {
    for (const [method, op] of Object.entries(ops as Record<string, { summary: string; security?: unknown; parameters?: { name: string; in: string }[] }>)) {
      const params = (op.parameters ?? []).map((p) => `<code>${escapeHtml(p.name)}</code> (${p.in})`).join(', ');
      rows.push(
        `<tr><td><code>${method.toUpperCase()}</code></td><td><code>${escapeHtml(path)}</code></td><td>${escapeHtml(op.summary)}${params ? `<br><small>parameters: ${params}</small>` : ''}</td><td>${op.security ? 'operator token' : 'public'}</td></tr>`,
      );
    }
  }
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Pulse oracle API</title>
<style>body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:1rem auto;padding:0 1rem;color:#1d2433}table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:.4rem;text-align:left;vertical-align:top}code{background:#f3f4f7;padding:0 .2rem;border-radius:3px;word-break:break-all}</style>
</head><body>
<h1>Pulse oracle API</h1>
<p>${escapeHtml(OPENAPI.info.description)}</p>
<p>Machine-readable description: <a href="/docs/openapi.json">/docs/openapi.json</a> (OpenAPI ${OPENAPI.openapi}). Dashboard: <a href="/">/</a>.</p>
<table><thead><tr><th>method</th><th>path</th><th>what</th><th>auth</th></tr></thead><tbody>
${rows.join('\n')}
</tbody></table>
</body></html>
`;
}
