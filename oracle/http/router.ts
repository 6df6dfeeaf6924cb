// The oracle's HTTP routing in one small file so the API can grow without touching the server:
// `router.add('POST', '/api/devices/:id/revoke', handler, { auth: 'operator' })`. Handlers return
// { status, body } (JSON) or { status, text, contentType }; errors are JSON with a stable code
// (docs/errors.md): { "error": { "code": "REG_STALE_NONCE", "message": "…" } }.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createHash, timingSafeEqual } from 'node:crypto';
import type { ErrorCode } from '../../shared/error-codes.ts';
import { isPulseError } from '../../shared/errors.ts';

export const MAX_BODY_BYTES = 64 * 1024;

export type ApiRequest = {
  readonly method: string;
  readonly path: string;
  readonly params: Readonly<Record<string, string>>;
  readonly query: URLSearchParams;
  readonly headers: IncomingMessage['headers'];
  /** The parsed JSON body ({} when empty). */
  readonly body: Record<string, unknown>;
  readonly raw: IncomingMessage;
  /** The response, for handlers that write it themselves (streams, server-sent events, files) and then return { status: 0, handled: true }. */
  readonly res: ServerResponse;
};

export type ApiResponse =
  | { readonly status: number; readonly body: unknown; readonly headers?: Record<string, string> }
  | { readonly status: number; readonly text: string; readonly contentType: string; readonly headers?: Record<string, string> }
  /** The handler wrote the response itself (streams, server-sent events). */
  | { readonly status: 0; readonly handled: true };

export type Handler = (req: ApiRequest) => Promise<ApiResponse>;
export type RouteOptions = { readonly auth?: 'operator' };

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export function errorResponse(status: number, code: ErrorCode, message: string): ApiResponse {
  return { status, body: { error: { code, message } } };
}

type Route = { method: string; parts: string[]; handler: Handler; options: RouteOptions; name: string };

export type RouterOptions = {
  /** Operator token for write routes; empty disables them (every auth route answers 401). */
  readonly operatorToken: string;
  /** Called once per request with the route name (pattern) and status, for metrics. */
  readonly onResponse?: (route: string, method: string, status: number) => void;
  readonly log?: (event: Record<string, unknown>) => void;
};

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

export class Router {
  private readonly routes: Route[] = [];
  private readonly tokenDigest: Buffer | undefined;

  constructor(private readonly options: RouterOptions) {
    this.tokenDigest = options.operatorToken === '' ? undefined : digest(options.operatorToken);
  }

  add(method: string, pattern: string, handler: Handler, options: RouteOptions = {}): this {
    this.routes.push({ method, parts: pattern.split('/').filter((p) => p !== ''), handler, options, name: pattern });
    return this;
  }

  private match(method: string, path: string): { route: Route; params: Record<string, string> } | 'method' | undefined {
    const parts = path.split('/').filter((p) => p !== '');
    let wrongMethod = false;
    for (const route of this.routes) {
      if (route.parts.length !== parts.length) continue;
      const params: Record<string, string> = {};
      let ok = true;
      for (let i = 0; i < parts.length && ok; i++) {
        const want = route.parts[i]!;
        let got: string;
        try {
          got = decodeURIComponent(parts[i]!);
        } catch {
          ok = false;
          break;
        }
        if (want.startsWith(':')) params[want.slice(1)] = got;
        else ok = want === got;
      }
      if (!ok) continue;
      if (route.method !== method && !(route.method === 'GET' && method === 'HEAD')) {
        wrongMethod = true;
        continue;
      }
      return { route, params };
    }
    return wrongMethod ? 'method' : undefined;
  }

  /** Operator auth: `Authorization: Bearer <token>`, compared in constant time on digests. */
  private authorized(req: IncomingMessage): boolean {
    if (this.tokenDigest === undefined) return false;
    const h = req.headers.authorization;
    if (typeof h !== 'string' || !h.startsWith('Bearer ')) return false;
    return timingSafeEqual(digest(h.slice(7)), this.tokenDigest);
  }

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // Parse the request target as a path on our own origin: `new URL(target, base)` would read a
    // target starting with `//` as a scheme-relative URL with another host (and throw on "//%20/").
    const url = new URL(`http://localhost${(req.url ?? '/').startsWith('/') ? req.url : `/${req.url ?? ''}`}`);
    const method = req.method ?? 'GET';
    const found = this.match(method, url.pathname);
    let routeName = 'unmatched';
    let response: ApiResponse;
    try {
      if (found === undefined) throw new ApiError(404, 'API_NOT_FOUND', `no route for ${method} ${url.pathname}`);
      if (found === 'method') throw new ApiError(405, 'API_NOT_FOUND', `method ${method} is not allowed on ${url.pathname}`);
      routeName = found.route.name;
      if (found.route.options.auth === 'operator' && !this.authorized(req))
        throw new ApiError(401, 'API_UNAUTHORIZED', 'this route needs the operator token: Authorization: Bearer <token>');
      const body = method === 'POST' || method === 'PUT' || method === 'PATCH' ? await readJson(req) : {};
      response = await found.route.handler({ method, path: url.pathname, params: found.params, query: url.searchParams, headers: req.headers, body, raw: req, res });
    } catch (e) {
      if (e instanceof ApiError) response = errorResponse(e.status, e.code, e.message);
      else if (isPulseError(e, 'STORE_UNAVAILABLE')) response = errorResponse(503, 'STORE_UNAVAILABLE', 'the database is unavailable; retry later');
      else {
        this.options.log?.({ level: 'error', msg: 'unhandled API error', route: routeName, error: (e as Error).stack ?? String(e) });
        response = errorResponse(500, 'API_INTERNAL', 'internal error; see the oracle log');
      }
    }
    if ('handled' in response) {
      this.options.onResponse?.(routeName, method, res.statusCode);
      return;
    }
    this.options.onResponse?.(routeName, method, response.status);
    const headers: Record<string, string> = { ...(response.headers ?? {}) };
    let payload: string;
    if ('text' in response) {
      headers['content-type'] = response.contentType;
      payload = response.text;
    } else {
      headers['content-type'] = 'application/json; charset=utf-8';
      payload = JSON.stringify(response.body);
    }
    res.writeHead(response.status, headers);
    res.end(method === 'HEAD' ? undefined : payload);
  }
}

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new ApiError(413, 'API_PAYLOAD_TOO_LARGE', `request body exceeds ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk as Buffer);
  }
  if (size === 0) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new ApiError(400, 'API_BAD_REQUEST', 'request body is not valid JSON');
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new ApiError(400, 'API_BAD_REQUEST', 'request body must be a JSON object');
  return parsed as Record<string, unknown>;
}
