// `pulse msg`: the four signed identity messages of docs/protocol.md §Identity messages (maker
// certificate, owner binding, owner transfer, key rotation): build and sign them, or decode and
// verify one and print every field and the reason code of any problem.
import { parseArgs } from 'node:util';
import { SIGNATURE_LENGTH } from '../../shared/protocol/constants.ts';
import { KeyRotation, MakerCertificate, OwnerBinding, OwnerTransfer, signIdentity, verifyIdentity } from '../../shared/protocol/identity.ts';
import { publicKeyOf } from '../../shared/protocol/device-id.ts';
import { signerFor } from '../../shared/protocol/signer.ts';
import { PulseError } from '../../shared/errors.ts';
import type { IdentityCode } from '../../shared/error-codes.ts';
import { fromHex, toHex } from '../../shared/hex.ts';
import { parseNetwork, parseNow, parseUint, readBytesArg, usageErrors, verifierByName } from './hb.ts';
import { loadKeyFile } from './keys.ts';
import { dispatch, printHelp } from '../subcommands.ts';

export const summary = 'Identity messages: make, inspect (maker certificate, owner binding, owner transfer, key rotation)';

const U64_MAX = (1n << 64n) - 1n;

const KINDS = ['maker-certificate', 'owner-binding', 'owner-transfer', 'key-rotation'] as const;
type KindName = (typeof KINDS)[number];
type AnySpec = { readonly name: string; readonly type: number; readonly fields: readonly (readonly [string, string])[]; readonly signedBy: string };

const SPECS: Readonly<Record<KindName, AnySpec>> = {
  'maker-certificate': MakerCertificate,
  'owner-binding': OwnerBinding,
  'owner-transfer': OwnerTransfer,
  'key-rotation': KeyRotation,
};

const HELP = `Usage:
  pulse msg make maker-certificate --key MAKER_KEY_FILE --device ID --model TEXT --issued-at MS|now [--network N]
  pulse msg make owner-binding     --key DEVICE_KEY_FILE --owner 0xADDRESS --nonce N [--network N]
  pulse msg make owner-transfer    --key DEVICE_KEY_FILE --new-owner 0xADDRESS --nonce N [--network N]
  pulse msg make key-rotation      --key OLD_KEY_FILE --new-key ID --nonce N [--network N]
      Build and sign the message; print it as lowercase hex. The signer is the maker key (maker
      certificate), the device key (owner binding and transfer) or the old key (key rotation).

  pulse msg inspect <HEX | @FILE | @-> [--kind KIND] [--network N] [--verifier native|noble] [--json]
      Decode and verify; the kind is read from the type byte unless --kind is given. Prints every
      field and the reason code of the first problem. Exit status 0 only if valid.

Kinds: ${KINDS.join(', ')} (type bytes 0x03 … 0x06). Byte layouts: docs/protocol.md.`;

function parseAddress(name: string, text: string | undefined): Uint8Array {
  if (text === undefined) throw new PulseError('CLI_USAGE', `--${name} 0xADDRESS is required`);
  const bytes = /^0x[0-9a-fA-F]{40}$/.test(text) ? fromHex(text.slice(2), true) : undefined;
  if (bytes === undefined) throw new PulseError('CLI_USAGE', `--${name} must be a 20-byte EVM address as 0x + 40 hex characters`);
  return bytes;
}

function parseDeviceKey(name: string, text: string | undefined): Uint8Array {
  if (text === undefined) throw new PulseError('CLI_USAGE', `--${name} ID is required`);
  const key = publicKeyOf(text);
  if (key === undefined) throw new PulseError('CLI_USAGE', `--${name} must be a device id (64 lowercase hex characters)`);
  return key;
}

function kindOf(text: string | undefined): KindName {
  if (text === undefined || !(KINDS as readonly string[]).includes(text))
    throw new PulseError('CLI_USAGE', `message kind must be one of ${KINDS.join(', ')}, got ${JSON.stringify(text ?? '')}`);
  return text as KindName;
}

async function make(argv: string[]): Promise<number> {
  const { values, positionals } = usageErrors(() =>
    parseArgs({
      args: argv,
      options: {
        key: { type: 'string' },
        network: { type: 'string' },
        device: { type: 'string' },
        model: { type: 'string' },
        'issued-at': { type: 'string' },
        owner: { type: 'string' },
        'new-owner': { type: 'string' },
        'new-key': { type: 'string' },
        nonce: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      allowPositionals: true,
      strict: true,
    }),
  );
  if (values.help) return printHelp(HELP);
  if (positionals.length !== 1) throw new PulseError('CLI_USAGE', `msg make takes one kind: ${KINDS.join(', ')}`);
  const kind = kindOf(positionals[0]);
  if (values.key === undefined) throw new PulseError('CLI_USAGE', '--key FILE (the signing key) is required');
  const networkId = parseNetwork(values.network);
  const nonce = () => parseUint('nonce', values.nonce, 0n, U64_MAX);
  // Validate every argument before reading the key file, so usage errors come first.
  let build: (key: ReturnType<typeof loadKeyFile>) => Uint8Array;
  switch (kind) {
    case 'maker-certificate': {
      const deviceKey = parseDeviceKey('device', values.device);
      const model = values.model;
      if (model === undefined) throw new PulseError('CLI_USAGE', '--model TEXT is required');
      const modelBytes = new TextEncoder().encode(model).length;
      if (modelBytes < 1 || modelBytes > 64) throw new PulseError('CLI_USAGE', `--model must be 1 … 64 UTF-8 bytes, got ${modelBytes}`);
      const issuedAt = values['issued-at'] === undefined ? undefined : BigInt(parseNow(values['issued-at']));
      if (issuedAt === undefined) throw new PulseError('CLI_USAGE', '--issued-at MS|now is required');
      build = (key) => signIdentity(MakerCertificate, { networkId, makerKey: key.publicKey, deviceKey, model, issuedAt }, signerFor(key.secretKey));
      break;
    }
    case 'owner-binding': {
      const owner = parseAddress('owner', values.owner);
      const n = nonce();
      build = (key) => signIdentity(OwnerBinding, { networkId, deviceKey: key.publicKey, owner, nonce: n }, signerFor(key.secretKey));
      break;
    }
    case 'owner-transfer': {
      const newOwner = parseAddress('new-owner', values['new-owner']);
      const n = nonce();
      build = (key) => signIdentity(OwnerTransfer, { networkId, deviceKey: key.publicKey, newOwner, nonce: n }, signerFor(key.secretKey));
      break;
    }
    case 'key-rotation': {
      const newKey = parseDeviceKey('new-key', values['new-key']);
      const n = nonce();
      build = (key) => signIdentity(KeyRotation, { networkId, oldKey: key.publicKey, newKey, nonce: n }, signerFor(key.secretKey));
      break;
    }
  }
  console.log(toHex(build(loadKeyFile(values.key))));
  return 0;
}

type Checked = { ok: true } | { ok: false; code: IdentityCode; message: string };

function verifyAs(kind: KindName, bytes: Uint8Array, ctx: Parameters<typeof verifyIdentity>[2]): Checked {
  switch (kind) {
    case 'maker-certificate':
      return verifyIdentity(MakerCertificate, bytes, ctx);
    case 'owner-binding':
      return verifyIdentity(OwnerBinding, bytes, ctx);
    case 'owner-transfer':
      return verifyIdentity(OwnerTransfer, bytes, ctx);
    case 'key-rotation':
      return verifyIdentity(KeyRotation, bytes, ctx);
  }
}

type FieldRow = { readonly name: string; readonly offset: number; readonly size: number; readonly value: string };

/** Every field present in the bytes, read at its layout offset whether or not the message is valid. */
function identityFieldRows(spec: AnySpec, bytes: Uint8Array): FieldRow[] {
  const rows: FieldRow[] = [];
  if (bytes.length >= 1) rows.push({ name: 'version', offset: 0, size: 1, value: `0x${toHex(bytes.subarray(0, 1))}` });
  if (bytes.length >= 2) rows.push({ name: 'type', offset: 1, size: 1, value: `0x${toHex(bytes.subarray(1, 2))}` });
  const bodyEnd = bytes.length - SIGNATURE_LENGTH;
  let off = 2;
  for (const [name, kind] of spec.fields) {
    const size = kind === 'u32' ? 4 : kind === 'u64' ? 8 : kind === 'key' ? 32 : kind === 'address' ? 20 : 1 + (bytes[off] ?? 0);
    if (off + size > bytes.length) return rows;
    const field = bytes.subarray(off, off + size);
    let value: string;
    if (kind === 'u32' || kind === 'u64') value = BigInt(`0x${toHex(field)}`).toString();
    else if (kind === 'address') value = `0x${toHex(field)}`;
    else if (kind === 'text') value = `${JSON.stringify(new TextDecoder('utf-8', { ignoreBOM: true }).decode(field.subarray(1)))} (${size - 1} bytes)`;
    else value = toHex(field);
    rows.push({ name: kind === 'key' && name === spec.signedBy ? `${name} (signer)` : name, offset: off, size, value });
    off += size;
  }
  if (bodyEnd >= off) {
    if (bodyEnd > off) rows.push({ name: 'unexpected', offset: off, size: bodyEnd - off, value: toHex(bytes.subarray(off, bodyEnd)) });
    rows.push({ name: 'signature R', offset: bodyEnd, size: 32, value: toHex(bytes.subarray(bodyEnd, bodyEnd + 32)) });
    rows.push({ name: 'signature S', offset: bodyEnd + 32, size: 32, value: toHex(bytes.subarray(bodyEnd + 32)) });
  }
  return rows;
}

async function inspect(argv: string[]): Promise<number> {
  const { values, positionals } = usageErrors(() =>
    parseArgs({
      args: argv,
      options: {
        kind: { type: 'string' },
        network: { type: 'string' },
        verifier: { type: 'string' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      allowPositionals: true,
      strict: true,
    }),
  );
  if (values.help) return printHelp(HELP);
  if (positionals.length !== 1) throw new PulseError('CLI_USAGE', 'msg inspect takes exactly one message: HEX, @FILE or @-');
  const bytes = readBytesArg(positionals[0]!);
  const verifier = verifierByName(values.verifier);
  const networkId = values.network === undefined ? undefined : parseNetwork(values.network);
  let kind: KindName | undefined = values.kind === undefined ? undefined : kindOf(values.kind);
  if (kind === undefined) kind = KINDS.find((k) => SPECS[k].type === bytes[1]);
  let check: Checked;
  if (kind === undefined) {
    const known = KINDS.map((k) => `0x0${SPECS[k].type} ${k}`).join(', ');
    check = bytes.length < 2
      ? { ok: false, code: 'MSG_TRUNCATED', message: `${bytes.length} bytes; not even a type byte` }
      : { ok: false, code: 'MSG_BAD_TYPE', message: `type byte 0x${toHex(bytes.subarray(1, 2))} is not an identity message (${known}); pass --kind to decode anyway` };
  } else {
    check = verifyAs(kind, bytes, { verifier, ...(networkId === undefined ? {} : { networkId }) });
  }
  const rows = kind === undefined ? [] : identityFieldRows(SPECS[kind], bytes);
  const problems = check.ok ? [] : [{ code: check.code, message: check.message }];
  if (values.json) {
    console.log(JSON.stringify({ valid: check.ok, kind: kind ?? null, length: bytes.length, fields: rows, problems }, null, 2));
    return check.ok ? 0 : 1;
  }
  const lines = [`${kind ?? 'unknown message'}: ${bytes.length} bytes, verifier ${verifier.name}`, '', 'offset  size  field              value'];
  for (const r of rows) lines.push(`${String(r.offset).padStart(6)}  ${String(r.size).padStart(4)}  ${r.name.padEnd(17)}  ${r.value}`);
  lines.push('');
  if (check.ok) lines.push('VALID: no problems found');
  else lines.push(`INVALID: ${check.code} ${check.message}`);
  console.log(lines.join('\n'));
  return check.ok ? 0 : 1;
}

export async function run(argv: string[]): Promise<number> {
  return dispatch('msg', HELP, { make, inspect }, argv);
}
