// Public HTTP routes of issue 6, self-contained so the oracle's server can mount them (docs/verify.md):
//   GET /api/epochs/:n/bundle              the epoch's bundle file (application/gzip, ETag = bundle hash)
//   GET /api/epochs/:n/proofs/:address     { amountThisEpoch, cumulative, proof, root, … }
//   GET /api/devices/:id/epochs/:n         slot-by-slot evidence, reason codes, score parts, reward, leaf, proof
// Two ways to mount them:
//   - `createEpochApi(opts).handle(req, res)` (the operator API's style, oracle/api/operator-api.ts):
//     resolves false for any other path, serves the binary bundle itself;
//   - `addEpochRoutes(router, opts)` on the oracle's Router (oracle/http/router.ts) for the two JSON
//     routes. The Router's responses are JSON or text, so the bundle route can only be served this way
//     once the Router accepts a binary body (a `bytes` response variant); until then mount createEpochApi.
// All three are public: bundles and proofs are what token holders check and claim with.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { Store } from '../store/store.ts';
import type { ErrorCode } from '../../shared/error-codes.ts';
import type { Router, ApiResponse } from '../http/router.ts';
import { epochBundleFile, epochProof, explainDeviceEpoch, parseEpoch, type QueryCode } from './epoch-queries.ts';

export type EpochApiOptions = {
  readonly store: Store;
  readonly log?: (event: Record<string, unknown>) => void;
};

type JsonReply = { readonly status: number; readonly body: unknown };

const STATUS: Record<QueryCode, number> = { API_BAD_REQUEST: 400, BUNDLE_NOT_CLOSED: 404, CLAIM_NO_LEAF: 404, API_UNKNOWN_DEVICE: 404, API_INTERNAL: 500 };

function errorBody(code: ErrorCode, message: string): { error: { code: ErrorCode; message: string } } {
  return { error: { code, message } };
}

async function proofRoute(opts: EpochApiOptions, n: string, address: string): Promise<JsonReply> {
  const epoch = parseEpoch(n);
  if (epoch === undefined) return { status: 400, body: errorBody('API_BAD_REQUEST', 'epoch must be a non-negative integer') };
  const r = await epochProof(opts.store, epoch, address);
  return r.ok ? { status: 200, body: r.value } : { status: STATUS[r.code], body: errorBody(r.code, r.message) };
}

async function explainRoute(opts: EpochApiOptions, id: string, n: string): Promise<JsonReply> {
  const epoch = parseEpoch(n);
  if (epoch === undefined) return { status: 400, body: errorBody('API_BAD_REQUEST', 'epoch must be a non-negative integer') };
  const r = await explainDeviceEpoch(opts.store, epoch, id);
  return r.ok ? { status: 200, body: r.value } : { status: STATUS[r.code], body: errorBody(r.code, r.message) };
}

const BUNDLE = /^\/api\/epochs\/([^/]+)\/bundle$/;
const PROOF = /^\/api\/epochs\/([^/]+)\/proofs\/([^/]+)$/;
const EXPLAIN = /^\/api\/devices\/([^/]+)\/epochs\/([^/]+)$/;

function sendJson(res: ServerResponse, r: JsonReply): void {
  const text = JSON.stringify(r.body);
  res.writeHead(r.status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  res.end(text);
}

export type EpochApi = {
  /** Handle the request if it is one of the routes above; resolves false (nothing written) otherwise. */
  handle(req: IncomingMessage, res: ServerResponse): Promise<boolean>;
};

export function createEpochApi(opts: EpochApiOptions): EpochApi {
  const serveBundle = async (req: IncomingMessage, res: ServerResponse, n: string): Promise<void> => {
    const epoch = parseEpoch(n);
    if (epoch === undefined) return sendJson(res, { status: 400, body: errorBody('API_BAD_REQUEST', 'epoch must be a non-negative integer') });
    const f = await epochBundleFile(opts.store, epoch);
    if (!f.ok) return sendJson(res, { status: STATUS[f.code], body: errorBody(f.code, f.message) });
    let size: number;
    try {
      size = (await stat(f.value.file)).size;
    } catch {
      return sendJson(res, { status: 404, body: errorBody('BUNDLE_UNAVAILABLE', `the bundle file of epoch ${epoch} is missing on this server`) });
    }
    // The ETag is the bundle hash: a mirror or a verifier can tell what it holds without the bytes.
    const etag = `"${f.value.hash}"`;
    const headers = {
      'content-type': 'application/gzip',
      'content-disposition': `attachment; filename="epoch-${epoch}.pulse.gz"`,
      'cache-control': 'public, max-age=31536000, immutable',
      etag,
      'x-pulse-bundle-hash': f.value.hash,
    };
    if (req.headers['if-none-match'] === etag) {
      res.writeHead(304, headers);
      res.end();
      return;
    }
    res.writeHead(200, { ...headers, 'content-length': size });
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    await new Promise<void>((resolve) => {
      const s = createReadStream(f.value.file);
      s.on('error', () => {
        res.destroy();
        resolve();
      });
      s.on('end', () => resolve());
      s.pipe(res);
    });
  };

  return {
    async handle(req, res) {
      const path = new URL(req.url ?? '/', 'http://localhost').pathname;
      const b = BUNDLE.exec(path), p = PROOF.exec(path), e = EXPLAIN.exec(path);
      if (b === null && p === null && e === null) return false;
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.setHeader('allow', 'GET, HEAD');
        sendJson(res, { status: 405, body: errorBody('API_METHOD_NOT_ALLOWED', `${req.method} is not allowed on ${path}`) });
        return true;
      }
      try {
        const dec = (s: string) => decodeURIComponent(s);
        if (b !== null) await serveBundle(req, res, dec(b[1]!));
        else if (p !== null) sendJson(res, await proofRoute(opts, dec(p[1]!), dec(p[2]!)));
        else sendJson(res, await explainRoute(opts, dec(e![1]!), dec(e![2]!)));
      } catch (err) {
        opts.log?.({ level: 'error', msg: 'epoch API error', path, error: (err as Error).stack ?? String(err) });
        if (!res.headersSent) sendJson(res, { status: 500, body: errorBody('API_INTERNAL', 'internal error; see the oracle log') });
        else res.destroy();
      }
      return true;
    },
  };
}

/** Register the JSON routes on the oracle's Router (see the header comment for the bundle route). */
export function addEpochRoutes(router: Router, opts: EpochApiOptions): void {
  const reply = (r: JsonReply): ApiResponse => ({ status: r.status, body: r.body });
  router.add('GET', '/api/epochs/:n/proofs/:address', async (req) => reply(await proofRoute(opts, req.params['n']!, req.params['address']!)));
  router.add('GET', '/api/devices/:id/epochs/:n', async (req) => reply(await explainRoute(opts, req.params['id']!, req.params['n']!)));
}
