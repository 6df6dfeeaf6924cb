// Connect token, wire format v1 (docs/protocol.md §Connect token). Sent as the MQTT CONNECT password,
// written as 144 lowercase hex characters because many MQTT clients take the password as a C string
// and the raw token starts with NUL bytes.
//
// token = timestamp (u64, unix ms) || signature (64)
// signed message = DOMAIN || 0x01 || 0x02 || network id (u32) || public key (32) || timestamp (u64)
import { CONNECT_TOKEN_HEX_LENGTH, CONNECT_TOKEN_LENGTH, DOMAIN, MessageType, PROTOCOL_VERSION } from './constants.ts';
import { view, writeU32, writeU64 } from './byte-view.ts';
import { publicKeyOf } from './device-id.ts';
import type { Signer } from './signer.ts';
import { fromHex, toHex } from '../hex.ts';
import type { Ed25519Verifier } from '../crypto/signature-check.ts';
import type { TokenCode } from '../error-codes.ts';
import { err, ok, type Result } from '../result.ts';

export function connectTokenSigningInput(networkId: number, publicKey: Uint8Array, timestamp: bigint): Uint8Array {
  const out = new Uint8Array(DOMAIN.length + 2 + 4 + 32 + 8);
  const dv = view(out);
  out.set(DOMAIN, 0);
  out[8] = PROTOCOL_VERSION;
  out[9] = MessageType.CONNECT_TOKEN;
  writeU32(dv, 10, networkId);
  out.set(publicKey, 14);
  writeU64(dv, 46, timestamp);
  return out;
}

/** The 72-byte token. */
export function makeConnectToken(networkId: number, publicKey: Uint8Array, timestamp: bigint, sign: Signer): Uint8Array {
  const token = new Uint8Array(CONNECT_TOKEN_LENGTH);
  writeU64(view(token), 0, timestamp);
  token.set(sign(connectTokenSigningInput(networkId, publicKey, timestamp)), 8);
  return token;
}

/** The MQTT password for a token: 144 lowercase hex characters. */
export function connectPassword(networkId: number, publicKey: Uint8Array, timestamp: bigint, sign: Signer): string {
  return toHex(makeConnectToken(networkId, publicKey, timestamp, sign));
}

export type ConnectCredentials = {
  readonly clientId: string;
  readonly username: string | undefined;
  /** The password as received; MQTT carries it as binary data. */
  readonly password: Uint8Array | string | undefined;
};

export type VerifiedToken = { readonly deviceId: string; readonly publicKey: Uint8Array; readonly timestamp: bigint };

export type TokenContext = {
  readonly verifier: Ed25519Verifier;
  readonly networkId: number;
  /** Receiver clock, unix ms. */
  readonly now: number;
  readonly skewMs: number;
  /** Timestamp of the last token accepted for this device, if any; a new token must be newer. */
  readonly lastAcceptedTimestamp?: bigint;
};

/**
 * Stateless checks of a CONNECT: client id = username = device id, the token's encoding, skew,
 * freshness against `lastAcceptedTimestamp`, key policy and signature. Registry checks (unknown,
 * revoked) belong to the broker, which has the registry.
 */
export function verifyConnectToken(creds: ConnectCredentials, ctx: TokenContext): Result<VerifiedToken, TokenCode> {
  const publicKey = publicKeyOf(creds.clientId);
  if (publicKey === undefined) return err('TOKEN_BAD_CLIENT_ID', 'client id must be the 64-character lowercase hex device id');
  if (creds.username !== creds.clientId) return err('TOKEN_BAD_CLIENT_ID', 'username must equal the client id (the device id)');
  const pw = typeof creds.password === 'string' ? creds.password : creds.password === undefined ? '' : Buffer.from(creds.password).toString('latin1');
  if (pw.length !== CONNECT_TOKEN_HEX_LENGTH) return err('TOKEN_BAD_ENCODING', `password must be ${CONNECT_TOKEN_HEX_LENGTH} lowercase hex characters, got ${pw.length}`);
  const token = fromHex(pw);
  if (token === undefined) return err('TOKEN_BAD_ENCODING', 'password must be lowercase hex');
  const timestamp = view(token).getBigUint64(0, false);
  // Math.floor: BigInt() throws on a fractional number, and a receiver clock may be one.
  const drift = timestamp - BigInt(Math.floor(ctx.now));
  if ((drift < 0n ? -drift : drift) > BigInt(Math.floor(ctx.skewMs))) return err('TOKEN_CLOCK_SKEW', `token time is ${drift} ms from the broker clock (window ±${ctx.skewMs} ms)`);
  if (ctx.lastAcceptedTimestamp !== undefined && timestamp <= ctx.lastAcceptedTimestamp)
    return err('TOKEN_STALE', 'token is not newer than the last one accepted for this device');
  const check = ctx.verifier.verify(token.subarray(8), connectTokenSigningInput(ctx.networkId, publicKey, timestamp), publicKey);
  if (check === 'weak-key') return err('TOKEN_WEAK_KEY', 'device key is small-order, mixed-order or non-canonical');
  if (check === 'non-canonical') return err('TOKEN_NON_CANONICAL_SIGNATURE', 'token signature S is not below L');
  if (check === 'bad') return err('TOKEN_BAD_SIGNATURE', 'token signature does not verify for this device and network');
  return ok({ deviceId: creds.clientId, publicKey, timestamp });
}
