// Small HTTP helpers shared by the operator API routes: JSON replies, errors as JSON with a stable code
// (shared/error-codes.ts, docs/errors.md), and the operator token check.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ErrorCode } from '../../shared/error-codes.ts';

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
    ...headers,
  });
  res.end(text);
}

/** Error body: {"error": {"code": "API_…", "message": "…"}}, the same shape on every route. */
export function sendError(res: ServerResponse, status: number, code: ErrorCode, message: string, headers: Record<string, string> = {}): void {
  sendJson(res, status, { error: { code, message } }, headers);
}

/** A query-parameter problem: a typed result, so a bad parameter is a 400 and never an exception. */
export class QueryError {
  constructor(readonly code: ErrorCode, readonly message: string) {}
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

/**
 * Operator token check. An empty configured token means auth is off (local `pulse dev`). The token
 * comes as `Authorization: Bearer <token>`; comparison is constant time over SHA-256 digests so the
 * response time does not reveal a matching prefix or the token length.
 */
export function isOperator(req: IncomingMessage, token: string): boolean {
  if (token === '') return true;
  const h = req.headers.authorization;
  if (typeof h !== 'string') return false;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(h);
  if (m === null) return false;
  return timingSafeEqual(digest(m[1]!), digest(token));
}
