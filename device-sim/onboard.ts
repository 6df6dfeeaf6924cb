// Onboarding through the real path (issue 8 §1; docs/protocol.md §Identity messages): the maker
// signs a device certificate, the device signs a binding to its owner, and both go to the registry
// API in one call:
//   POST <api>/api/onboard  {"certificate": "<hex>", "binding": "<hex>"}
// The operator registers the maker's key beforehand (POST <api>/api/makers).
import { MakerCertificate, OwnerBinding, signIdentity } from '../shared/protocol/identity.ts';
import type { Signer } from '../shared/protocol/signer.ts';
import { fromHex, toHex } from '../shared/hex.ts';
import { PulseError } from '../shared/errors.ts';
import type { SimState } from './sim-state.ts';


export type MakerIdentity = { readonly publicKey: Uint8Array; readonly sign: Signer };

export type OnboardRequest = {
  readonly networkId: number;
  readonly maker: MakerIdentity;
  readonly devicePublicKey: Uint8Array;
  readonly deviceSign: Signer;
  /** 20-byte owner address. */
  readonly owner: Uint8Array;
  readonly model: string;
  /** Unix ms; also used as the binding nonce so a re-onboarding always carries a fresh nonce. */
  readonly now: number;
};

/** The two signed messages of an onboarding, as hex for the JSON body. */
export function onboardingBody(r: OnboardRequest): { certificate: string; binding: string } {
  const certificate = signIdentity(
    MakerCertificate,
    { networkId: r.networkId, makerKey: r.maker.publicKey, deviceKey: r.devicePublicKey, model: r.model, issuedAt: BigInt(r.now) },
    r.maker.sign,
  );
  const binding = signIdentity(OwnerBinding, { networkId: r.networkId, deviceKey: r.devicePublicKey, owner: r.owner, nonce: BigInt(r.now) }, r.deviceSign);
  return { certificate: toHex(certificate), binding: toHex(binding) };
}

export type OnboardOutcome =
  | { readonly ok: true; readonly already: boolean }
  /** `code` is the API's error code when its JSON body has one, else `HTTP_<status>` or `NETWORK`. */
  | { readonly ok: false; readonly code: string; readonly message: string; readonly retryable: boolean };

/**
 * POST one onboarding. 2xx is success; 409 REG_DEVICE_EXISTS (already registered) counts as success
 * so a restarted fleet whose state file missed the `onboarded` flag still starts. 5xx and network errors are
 * retryable; 4xx are not (the request itself is wrong: unknown maker, bad signature, …).
 */
export async function postOnboarding(apiUrl: string, body: { certificate: string; binding: string }, timeoutMs = 10_000): Promise<OnboardOutcome> {
  const url = new URL('api/onboard', apiUrl.endsWith('/') ? apiUrl : `${apiUrl}/`);
  let res: Response;
  try {
    res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (e) {
    return { ok: false, code: 'NETWORK', message: `${url.href}: ${(e as Error).message}`, retryable: true };
  }
  const text = await res.text().catch(() => '');
  if (res.ok) return { ok: true, already: false };
  let code = `HTTP_${res.status}`;
  let message = text.slice(0, 300);
  try {
    // The oracle API answers errors as {"error": {"code", "message"}} (oracle/http/router.ts).
    const j = JSON.parse(text) as { error?: { code?: unknown; message?: unknown } };
    if (typeof j.error?.code === 'string') code = j.error.code;
    if (typeof j.error?.message === 'string') message = j.error.message;
  } catch {
    // not JSON: keep the status and raw text
  }
  // Already registered (a restart whose state file missed the flag): the device can run.
  if (res.status === 409 && (code === 'REG_DEVICE_EXISTS' || code === 'HTTP_409')) return { ok: true, already: true };
  return { ok: false, code, message, retryable: res.status >= 500 };
}

/** Parse an owner address: 0x + 40 hex characters (any case). */
export function parseOwner(text: string): Uint8Array {
  const m = /^0x([0-9a-fA-F]{40})$/.exec(text.trim());
  const bytes = m ? fromHex(m[1]!, true) : undefined;
  if (bytes === undefined) throw new PulseError('CLI_USAGE', `--owner ${JSON.stringify(text)} is not an address (0x + 40 hex characters)`);
  if (bytes.every((b) => b === 0)) throw new PulseError('CLI_USAGE', '--owner must not be the zero address');
  return bytes;
}

export type OnboardOptions = {
  /** Base URL of the oracle API, e.g. http://127.0.0.1:8080 */
  readonly url: string;
  readonly maker: MakerIdentity;
  /** Owner addresses (20 bytes each), given to devices round-robin. */
  readonly owners: readonly Uint8Array[];
  /** Model string in the maker certificate (default "pulse-sim"). */
  readonly model?: string;
  /** Parallel onboarding requests (default 8). */
  readonly concurrency?: number;
};

/** Run `f` over `items` with at most `limit` calls in flight. */
export async function inParallel<T>(items: readonly T[], limit: number, f: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await f(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
}

/**
 * Onboard the first `count` devices of `state` that are not onboarded yet, recording success in the
 * state file. Retryable failures (5xx, network) are retried twice with a short backoff.
 */
export async function onboardAll(
  o: OnboardOptions,
  networkId: number,
  state: SimState,
  count: number,
  signers: readonly Signer[],
  report: (index: number, outcome: OnboardOutcome) => void,
): Promise<void> {
  if (o.owners.length === 0) throw new RangeError('onboarding needs at least one owner address');
  const todo = state.devices.slice(0, count).flatMap((r, i) => (r.onboarded ? [] : [i]));
  await inParallel(todo, o.concurrency ?? 8, async (i) => {
    const r = state.devices[i]!;
    for (let attempt = 1; ; attempt++) {
      const body = onboardingBody({
        networkId,
        maker: o.maker,
        devicePublicKey: r.publicKey,
        deviceSign: signers[i]!,
        owner: o.owners[i % o.owners.length]!,
        model: o.model ?? 'pulse-sim',
        now: Date.now(),
      });
      const outcome = await postOnboarding(o.url, body);
      if (outcome.ok) await state.markOnboarded(i);
      if (outcome.ok || !outcome.retryable || attempt >= 3) return report(i, outcome);
      await new Promise((res) => setTimeout(res, 250 * attempt));
    }
  });
}
