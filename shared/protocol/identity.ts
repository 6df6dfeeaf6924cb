// Signed identity messages (docs/protocol.md §Identity messages): maker device certificate, owner
// binding, owner transfer and key rotation. Same conventions as heartbeats: the message is
// version || type || fields (big-endian, fixed order) || signature over DOMAIN || everything before it.
// One schema-driven codec serves all four so the byte layout is declared once per message.
import { DOMAIN, MessageType, PROTOCOL_VERSION, SIGNATURE_LENGTH } from './constants.ts';
import { view, writeU32, writeU64 } from './byte-view.ts';
import type { Signer } from './signer.ts';
import { concatBytes, toHex } from '../hex.ts';
import type { Ed25519Verifier } from '../crypto/signature-check.ts';
import { isAcceptablePublicKey } from '../crypto/noble.ts';
import type { IdentityCode } from '../error-codes.ts';
import { err, ok, type Result } from '../result.ts';

type Kind = 'u32' | 'u64' | 'key' | 'address' | 'text';
type KindValue<K extends Kind> = K extends 'u32' ? number : K extends 'u64' ? bigint : K extends 'text' ? string : Uint8Array;
type FieldSpec = readonly (readonly [string, Kind])[];
type FieldValues<S extends FieldSpec> = { readonly [F in S[number] as F[0]]: KindValue<F[1]> };

type MessageSpec<S extends FieldSpec> = {
  readonly name: string;
  readonly type: number;
  readonly fields: S;
  /** Which key field signs the message. */
  readonly signedBy: S[number][0];
};

const MAX_TEXT = 64;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function kindLength(kind: Kind, value: unknown): number {
  switch (kind) {
    case 'u32': return 4;
    case 'u64': return 8;
    case 'key': return 32;
    case 'address': return 20;
    case 'text': return 1 + new TextEncoder().encode(value as string).length;
  }
}

function define<const S extends FieldSpec>(spec: MessageSpec<S>): MessageSpec<S> {
  return spec;
}

export const MakerCertificate = define({
  name: 'maker certificate',
  type: MessageType.MAKER_CERTIFICATE,
  fields: [['networkId', 'u32'], ['makerKey', 'key'], ['deviceKey', 'key'], ['model', 'text'], ['issuedAt', 'u64']] as const,
  signedBy: 'makerKey',
});

export const OwnerBinding = define({
  name: 'owner binding',
  type: MessageType.OWNER_BINDING,
  fields: [['networkId', 'u32'], ['deviceKey', 'key'], ['owner', 'address'], ['nonce', 'u64']] as const,
  signedBy: 'deviceKey',
});

export const OwnerTransfer = define({
  name: 'owner transfer',
  type: MessageType.OWNER_TRANSFER,
  fields: [['networkId', 'u32'], ['deviceKey', 'key'], ['newOwner', 'address'], ['nonce', 'u64']] as const,
  signedBy: 'deviceKey',
});

export const KeyRotation = define({
  name: 'key rotation',
  type: MessageType.KEY_ROTATION,
  fields: [['networkId', 'u32'], ['oldKey', 'key'], ['newKey', 'key'], ['nonce', 'u64']] as const,
  signedBy: 'oldKey',
});

export type MakerCertificateFields = FieldValues<typeof MakerCertificate.fields>;
export type OwnerBindingFields = FieldValues<typeof OwnerBinding.fields>;
export type OwnerTransferFields = FieldValues<typeof OwnerTransfer.fields>;
export type KeyRotationFields = FieldValues<typeof KeyRotation.fields>;

/** Encode the unsigned body. Throws RangeError for values that cannot be encoded. */
export function encodeIdentityBody<S extends FieldSpec>(spec: MessageSpec<S>, values: FieldValues<S>): Uint8Array {
  const v = values as Record<string, unknown>;
  let len = 2;
  for (const [name, kind] of spec.fields) len += kindLength(kind, v[name]);
  const out = new Uint8Array(len);
  const dv = view(out);
  out[0] = PROTOCOL_VERSION;
  out[1] = spec.type;
  let off = 2;
  for (const [name, kind] of spec.fields) {
    const value = v[name];
    switch (kind) {
      case 'u32': writeU32(dv, off, value as number); off += 4; break;
      case 'u64': writeU64(dv, off, value as bigint); off += 8; break;
      case 'key':
      case 'address': {
        const bytes = value as Uint8Array;
        const size = kind === 'key' ? 32 : 20;
        if (bytes.length !== size) throw new RangeError(`${spec.name}.${name} must be ${size} bytes`);
        out.set(bytes, off);
        off += size;
        break;
      }
      case 'text': {
        // A lone surrogate would be silently replaced by U+FFFD, so the signed bytes would not be
        // the text the caller passed: refuse it instead.
        if (LONE_SURROGATE.test(value as string)) throw new RangeError(`${spec.name}.${name} is not well-formed Unicode`);
        const bytes = new TextEncoder().encode(value as string);
        if (bytes.length < 1 || bytes.length > MAX_TEXT) throw new RangeError(`${spec.name}.${name} must be 1…${MAX_TEXT} UTF-8 bytes`);
        out[off] = bytes.length;
        out.set(bytes, off + 1);
        off += 1 + bytes.length;
        break;
      }
    }
  }
  return out;
}

export function signIdentity<S extends FieldSpec>(spec: MessageSpec<S>, values: FieldValues<S>, sign: Signer): Uint8Array {
  const body = encodeIdentityBody(spec, values);
  return concatBytes(body, sign(concatBytes(DOMAIN, body)));
}

export type VerifiedIdentity<S extends FieldSpec> = {
  readonly values: FieldValues<S>;
  /** The key that signed it (the `signedBy` field). */
  readonly signerKey: Uint8Array;
  readonly raw: Uint8Array;
};

/** Decode and verify a signed identity message of the given kind. */
export function verifyIdentity<S extends FieldSpec>(
  spec: MessageSpec<S>,
  bytes: Uint8Array,
  ctx: { readonly verifier: Ed25519Verifier; readonly networkId?: number },
): Result<VerifiedIdentity<S>, IdentityCode> {
  if (bytes.length < 2 + SIGNATURE_LENGTH) return err('MSG_TRUNCATED', `${spec.name} is ${bytes.length} bytes, too short`);
  if (bytes[0] !== PROTOCOL_VERSION) return err('MSG_BAD_VERSION', `version byte is ${bytes[0]}, expected 1`);
  if (bytes[1] !== spec.type) return err('MSG_BAD_TYPE', `type byte is ${bytes[1]}, expected ${spec.type} (${spec.name})`);
  const dv = view(bytes);
  const values: Record<string, unknown> = {};
  const bodyEnd = bytes.length - SIGNATURE_LENGTH;
  let off = 2;
  for (const [name, kind] of spec.fields) {
    const size = kind === 'text' ? 1 + (bytes[off] ?? 0) : kindLength(kind, undefined);
    if (off + size > bodyEnd) return err('MSG_TRUNCATED', `${spec.name} ends inside field ${name}`);
    switch (kind) {
      case 'u32': values[name] = dv.getUint32(off, false); break;
      case 'u64': values[name] = dv.getBigUint64(off, false); break;
      // A copy even when `bytes` is a Buffer (Buffer#slice returns a view).
      case 'key':
      case 'address': values[name] = Uint8Array.prototype.slice.call(bytes, off, off + size); break;
      case 'text': {
        if (size === 1) return err('MSG_BAD_FIELD', `${spec.name}.${name} is empty`);
        // The encoder refuses text longer than MAX_TEXT, so the decoder must too: otherwise a message
        // no conforming signer can produce would be accepted.
        if (size - 1 > MAX_TEXT) return err('MSG_BAD_FIELD', `${spec.name}.${name} is ${size - 1} bytes, at most ${MAX_TEXT}`);
        try {
          // ignoreBOM: a leading U+FEFF is part of the signed text and must survive the round trip.
          values[name] = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes.subarray(off + 1, off + size));
        } catch {
          return err('MSG_BAD_FIELD', `${spec.name}.${name} is not valid UTF-8`);
        }
        break;
      }
    }
    off += size;
  }
  if (off !== bodyEnd) return err('MSG_BAD_LENGTH', `${spec.name} has ${bodyEnd - off} unexpected bytes before the signature`);
  for (const [name, kind] of spec.fields) {
    if (kind === 'address' && (values[name] as Uint8Array).every((b) => b === 0)) return err('MSG_BAD_FIELD', `${spec.name}.${name} is the zero address`);
  }
  if (ctx.networkId !== undefined && values['networkId'] !== ctx.networkId)
    return err('MSG_WRONG_NETWORK', `network id ${String(values['networkId'])}, this network is ${ctx.networkId}`);
  for (const [name, kind] of spec.fields) {
    if (kind === 'key' && name !== spec.signedBy && !isAcceptablePublicKey(values[name] as Uint8Array))
      return err('MSG_WEAK_KEY', `${spec.name}.${name} is not an acceptable public key`);
  }
  const signerKey = values[spec.signedBy] as Uint8Array;
  const check = ctx.verifier.verify(bytes.subarray(bodyEnd), concatBytes(DOMAIN, bytes.subarray(0, bodyEnd)), signerKey);
  if (check === 'weak-key') return err('MSG_WEAK_KEY', `${spec.signedBy} ${toHex(signerKey)} is not an acceptable public key`);
  if (check === 'non-canonical') return err('MSG_NON_CANONICAL_SIGNATURE', 'signature S is not below L');
  if (check === 'bad') return err('MSG_BAD_SIGNATURE', `signature does not verify for ${spec.signedBy}`);
  return ok({ values: values as FieldValues<S>, signerKey, raw: bytes });
}
