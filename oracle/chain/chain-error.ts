// Turns ethers/JSON-RPC failures into PulseErrors with stable codes (docs/contracts.md §Errors): a
// contract revert becomes CHAIN_REVERTED naming the decoded custom error and its arguments, so an
// operator reads "IncreaseOverCap(increase=…, cap=…)" instead of raw revert data.
import { type Interface } from 'ethers';
import { PulseError } from '../../shared/errors.ts';

/** Revert data carried by an ethers error (CALL_EXCEPTION), if any. */
export function revertData(e: unknown): string | undefined {
  let cur: unknown = e;
  for (let depth = 0; depth < 6 && cur !== null && typeof cur === 'object'; depth++) {
    const o = cur as { data?: unknown; info?: { error?: { data?: unknown } }; error?: unknown };
    if (typeof o.data === 'string' && o.data.startsWith('0x') && o.data.length >= 10) return o.data;
    const inner = o.info?.error?.data;
    if (typeof inner === 'string' && inner.startsWith('0x') && inner.length >= 10) return inner;
    cur = o.error;
  }
  return undefined;
}

/** "Name(arg=value, …)" for revert data of one of the interface's custom errors, else undefined. */
export function decodeRevert(iface: Interface, data: string | undefined): { name: string; text: string; args: readonly unknown[] } | undefined {
  if (data === undefined) return undefined;
  try {
    const parsed = iface.parseError(data);
    if (parsed === null) return undefined;
    const args = parsed.fragment.inputs.map((input, i) => `${input.name || i}=${String(parsed.args[i])}`);
    return { name: parsed.name, text: `${parsed.name}(${args.join(', ')})`, args: [...parsed.args] };
  } catch {
    return undefined;
  }
}

/** True for errors that mean "the endpoint did not answer" (worth retrying), not "the call failed". */
export function isTransient(e: unknown): boolean {
  const code = (e as { code?: unknown }).code;
  // A revert is an answer, never a transient failure.
  if (code === 'CALL_EXCEPTION') return false;
  if (code === 'NETWORK_ERROR' || code === 'TIMEOUT' || code === 'SERVER_ERROR' || code === 'ECONNREFUSED' || code === 'ECONNRESET') return true;
  const msg = String((e as { message?: unknown }).message ?? e);
  // Status codes as whole words only: error messages quote transaction data, and hex like
  // "…0002bc503f…" must not read as an HTTP 503 (that made reverts look transient, at random).
  return /ECONNREFUSED|ECONNRESET|socket hang up|fetch failed|\bnetwork\b|timeout|\b50[234]\b|EPIPE/i.test(msg);
}

export function chainReverted(iface: Interface, e: unknown, what: string): PulseError {
  const decoded = decodeRevert(iface, revertData(e));
  const why = decoded?.text ?? (e as { shortMessage?: string }).shortMessage ?? String((e as Error).message ?? e);
  return new PulseError('CHAIN_REVERTED', `${what}: ${why}`, { cause: e });
}
