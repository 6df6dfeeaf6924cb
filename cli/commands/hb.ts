// `pulse hb`: build and check heartbeats exactly as docs/protocol.md §Heartbeat defines them, so a
// firmware engineer can compare a device's output with a reference before it reaches a network.
// Also home of the small argument helpers the other protocol commands (keys, token, msg) share.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { nativeVerifier } from '../../shared/crypto/native.ts';
import { nobleVerifier } from '../../shared/crypto/noble.ts';
import type { Ed25519Verifier } from '../../shared/crypto/signature-check.ts';
import { DEFAULT_SKEW_MS, HEARTBEAT_HEADER_LENGTH, MAX_METRICS, MAX_SEQ, METRIC_LENGTH, SIGNATURE_LENGTH, heartbeatLength } from '../../shared/protocol/constants.ts';
import { inspectHeartbeat, signHeartbeat, withinSkew, type HeartbeatProblem, type Metric } from '../../shared/protocol/heartbeat.ts';
import { signerFor } from '../../shared/protocol/signer.ts';
import { heartbeatTopic } from '../../shared/protocol/topics.ts';
import { PulseError } from '../../shared/errors.ts';
import { fromHex, toHex } from '../../shared/hex.ts';
import { loadKeyFile } from './keys.ts';
import { dispatch, printHelp, problemLines } from '../subcommands.ts';

export const summary = 'Heartbeats: make (build and sign), inspect (decode, verify, list every problem)';

/** Network id the CLI uses when --network is not given. */
export const CLI_DEFAULT_NETWORK_ID = 1;
const U64_MAX = (1n << 64n) - 1n;
const U32_MAX = 0xffff_ffff;

const HELP = `Usage:
  pulse hb make --key FILE --seq N --ts MS [--metric ID=VALUE ...] [--network N]
      Build a heartbeat, sign DOMAIN || body with the key file's secret, print it as lowercase hex.
      --seq      sequence number, 1 … 2^63−1, strictly increasing per device
      --ts       device clock, unix milliseconds
      --metric   metric id (0 … 65535) = value (u64); repeat up to ${MAX_METRICS} times; sorted by id
      --network  network id (u32), default ${CLI_DEFAULT_NETWORK_ID}

  pulse hb inspect <HEX | @FILE | @-> [--network N] [--topic T] [--now MS|now] [--skew MS]
                   [--verifier native|noble] [--json]
      Decode and verify a heartbeat; print every field with its offset and every problem with its
      reason code (docs/errors.md). Exit status 0 only if no problem was found, 1 otherwise.
      @FILE reads hex text or raw binary from a file, @- from stdin.
      --network  also check the network id (HB_WRONG_NETWORK)
      --topic    also check the MQTT topic (HB_TOPIC_MISMATCH), e.g. devices/<deviceId>/heartbeat
      --now      also check the clock rule (HB_CLOCK_SKEW) against this receive time
      --skew     skew window in ms for --now, default ${DEFAULT_SKEW_MS}
      --verifier signature implementation: native (node:crypto, default) or noble

Replay and duplicate rules need the receiver's records and are checked by the broker and oracle.`;

// ---------------------------------------------------------------------------------------------
// Shared argument helpers (used by keys, token and msg too).

/** Run node:util parseArgs (or any parser) and turn its TypeErrors into CLI_USAGE. */
export function usageErrors<T>(parse: () => T): T {
  try {
    return parse();
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS')) throw new PulseError('CLI_USAGE', (e as Error).message);
    throw e;
  }
}

/** A decimal unsigned integer in [min, max]; CLI_USAGE otherwise. */
export function parseUint(name: string, text: string | undefined, min: bigint, max: bigint): bigint {
  if (text === undefined) throw new PulseError('CLI_USAGE', `--${name} is required`);
  if (!/^[0-9]+$/.test(text)) throw new PulseError('CLI_USAGE', `--${name} must be a decimal integer, got ${JSON.stringify(text)}`);
  const v = BigInt(text);
  if (v < min || v > max) throw new PulseError('CLI_USAGE', `--${name} must be in ${min} … ${max}, got ${text}`);
  return v;
}

export function parseNetwork(text: string | undefined): number {
  return text === undefined ? CLI_DEFAULT_NETWORK_ID : Number(parseUint('network', text, 0n, BigInt(U32_MAX)));
}

/** --now: unix ms or the word `now` (this machine's clock). */
export function parseNow(text: string): number {
  return text === 'now' ? Date.now() : Number(parseUint('now', text, 0n, BigInt(Number.MAX_SAFE_INTEGER)));
}

/**
 * A message given on the command line: hex (upper case, whitespace and a 0x prefix tolerated), or
 * @FILE / @- holding hex text or raw bytes. Raw protocol messages start with the version byte 0x01,
 * which is not a hex digit, so the two cannot be confused.
 */
export function readBytesArg(arg: string): Uint8Array {
  let data: Buffer;
  if (arg.startsWith('@')) {
    const path = arg.slice(1);
    try {
      data = readFileSync(path === '-' ? 0 : path);
    } catch (e) {
      throw new PulseError('CLI_INPUT', `cannot read ${path === '-' ? 'stdin' : path}: ${(e as Error).message}`);
    }
    const text = data.toString('latin1').replace(/\s+/g, '').replace(/^0x/i, '');
    if (text.length > 0 && /^[0-9a-fA-F]+$/.test(text) && text.length % 2 === 0) return fromHex(text, true)!;
    return new Uint8Array(data);
  }
  const text = arg.replace(/\s+/g, '').replace(/^0x/i, '');
  const bytes = fromHex(text, true);
  if (bytes === undefined) throw new PulseError('CLI_INPUT', 'argument is not hex (an even number of 0-9a-f characters); use @FILE for a file');
  return bytes;
}

export function verifierByName(name: string | undefined): Ed25519Verifier {
  if (name === undefined || name === 'native') return nativeVerifier;
  if (name === 'noble') return nobleVerifier;
  throw new PulseError('CLI_USAGE', `--verifier must be native or noble, got ${JSON.stringify(name)}`);
}

// ---------------------------------------------------------------------------------------------

function parseMetrics(specs: readonly string[]): Metric[] {
  if (specs.length > MAX_METRICS) throw new PulseError('CLI_USAGE', `at most ${MAX_METRICS} --metric options`);
  const metrics = specs.map((s) => {
    const m = /^([0-9]+)=([0-9]+)$/.exec(s);
    if (m === null) throw new PulseError('CLI_USAGE', `--metric must be ID=VALUE (decimal), got ${JSON.stringify(s)}`);
    return { id: Number(parseUint('metric id', m[1], 0n, 0xffffn)), value: parseUint('metric value', m[2], 0n, U64_MAX) };
  });
  // The wire format needs strictly increasing ids (docs/protocol.md §Heartbeat); sort for the user
  // but refuse a repeated id, which has no valid encoding.
  metrics.sort((a, b) => a.id - b.id);
  for (let i = 1; i < metrics.length; i++)
    if (metrics[i]!.id === metrics[i - 1]!.id) throw new PulseError('CLI_USAGE', `metric id ${metrics[i]!.id} given twice`);
  return metrics;
}

async function make(argv: string[]): Promise<number> {
  const { values } = usageErrors(() =>
    parseArgs({
      args: argv,
      options: {
        key: { type: 'string' },
        seq: { type: 'string' },
        ts: { type: 'string' },
        metric: { type: 'string', multiple: true },
        network: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }),
  );
  if (values.help) return printHelp(HELP);
  if (values.key === undefined) throw new PulseError('CLI_USAGE', '--key FILE is required');
  const seq = parseUint('seq', values.seq, 1n, MAX_SEQ);
  const timestamp = parseUint('ts', values.ts, 0n, U64_MAX);
  const networkId = parseNetwork(values.network);
  const metrics = parseMetrics(values.metric ?? []);
  const key = loadKeyFile(values.key);
  const bytes = signHeartbeat({ networkId, publicKey: key.publicKey, seq, timestamp, metrics }, signerFor(key.secretKey));
  console.log(toHex(bytes));
  return 0;
}

type FieldRow = { readonly name: string; readonly offset: number; readonly size: number; readonly value: string };

function u(bytes: Uint8Array, offset: number, size: number): bigint {
  let v = 0n;
  for (let i = 0; i < size; i++) v = (v << 8n) | BigInt(bytes[offset + i]!);
  return v;
}

function isoTime(ms: bigint): string {
  const d = new Date(Number(ms));
  return Number.isNaN(d.getTime()) ? 'not a valid date' : d.toISOString();
}

/**
 * Every field that is present in the bytes, read at its docs/protocol.md offset whether or not the
 * heartbeat is valid, so a firmware engineer sees what the device actually wrote.
 */
export function heartbeatFieldRows(bytes: Uint8Array): FieldRow[] {
  const rows: FieldRow[] = [];
  const add = (name: string, offset: number, size: number, render: () => string): boolean => {
    if (bytes.length < offset + size) return false;
    rows.push({ name, offset, size, value: render() });
    return true;
  };
  add('version', 0, 1, () => `0x${toHex(bytes.subarray(0, 1))}`);
  add('type', 1, 1, () => `0x${toHex(bytes.subarray(1, 2))}${bytes[1] === 1 ? ' (heartbeat)' : ''}`);
  add('network id', 2, 4, () => u(bytes, 2, 4).toString());
  add('public key', 6, 32, () => toHex(bytes.subarray(6, 38)));
  add('seq', 38, 8, () => u(bytes, 38, 8).toString());
  add('timestamp', 46, 8, () => `${u(bytes, 46, 8)} (${isoTime(u(bytes, 46, 8))})`);
  if (!add('n (metrics)', 54, 1, () => String(bytes[54]))) return rows;
  const n = bytes[54]!;
  for (let i = 0; i < Math.min(n, MAX_METRICS); i++) {
    const off = HEARTBEAT_HEADER_LENGTH + i * METRIC_LENGTH;
    if (!add(`metric[${i}]`, off, METRIC_LENGTH, () => `id ${u(bytes, off, 2)} = ${u(bytes, off + 2, 8)}`)) return rows;
  }
  if (n <= MAX_METRICS) {
    const off = heartbeatLength(n) - SIGNATURE_LENGTH;
    add('signature R', off, 32, () => toHex(bytes.subarray(off, off + 32)));
    add('signature S', off + 32, 32, () => toHex(bytes.subarray(off + 32, off + 64)));
    if (bytes.length > off + 64) rows.push({ name: 'trailing', offset: off + 64, size: bytes.length - off - 64, value: toHex(bytes.subarray(off + 64)) });
  }
  return rows;
}

async function inspect(argv: string[]): Promise<number> {
  const { values, positionals } = usageErrors(() =>
    parseArgs({
      args: argv,
      options: {
        network: { type: 'string' },
        topic: { type: 'string' },
        now: { type: 'string' },
        skew: { type: 'string' },
        verifier: { type: 'string' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      allowPositionals: true,
      strict: true,
    }),
  );
  if (values.help) return printHelp(HELP);
  if (positionals.length !== 1) throw new PulseError('CLI_USAGE', 'hb inspect takes exactly one heartbeat: HEX, @FILE or @-');
  const bytes = readBytesArg(positionals[0]!);
  const verifier = verifierByName(values.verifier);
  const networkId = values.network === undefined ? undefined : parseNetwork(values.network);
  const skewMs = values.skew === undefined ? DEFAULT_SKEW_MS : Number(parseUint('skew', values.skew, 0n, BigInt(Number.MAX_SAFE_INTEGER)));
  const now = values.now === undefined ? undefined : parseNow(values.now);

  const { heartbeat, problems } = inspectHeartbeat(bytes, {
    verifier,
    ...(networkId === undefined ? {} : { networkId }),
    ...(values.topic === undefined ? {} : { topic: values.topic }),
  });
  const all: HeartbeatProblem[] = [...problems];
  if (heartbeat !== undefined && now !== undefined && !withinSkew(heartbeat.timestamp, now, skewMs))
    all.push({ code: 'HB_CLOCK_SKEW', message: `timestamp is ${heartbeat.timestamp - BigInt(now)} ms from ${now} (window ±${skewMs} ms)` });
  const valid = all.length === 0;
  const rows = heartbeatFieldRows(bytes);

  if (values.json) {
    const out = {
      valid,
      length: bytes.length,
      fields: rows,
      ...(heartbeat === undefined
        ? {}
        : {
            heartbeat: {
              networkId: heartbeat.networkId,
              deviceId: heartbeat.deviceId,
              seq: heartbeat.seq.toString(),
              timestamp: heartbeat.timestamp.toString(),
              metrics: heartbeat.metrics.map((m) => ({ id: m.id, value: m.value.toString() })),
              signature: toHex(heartbeat.signature),
              topic: heartbeatTopic(heartbeat.deviceId),
            },
          }),
      problems: all,
    };
    console.log(JSON.stringify(out, null, 2));
    return valid ? 0 : 1;
  }

  const lines = [`heartbeat: ${bytes.length} bytes, verifier ${verifier.name}`, '', 'offset  size  field         value'];
  for (const r of rows) lines.push(`${String(r.offset).padStart(6)}  ${String(r.size).padStart(4)}  ${r.name.padEnd(12)}  ${r.value}`);
  if (heartbeat !== undefined) {
    lines.push('', `device id     ${heartbeat.deviceId}`, `topic         ${heartbeatTopic(heartbeat.deviceId)}`);
    lines.push(`signed bytes  DOMAIN "PULSE-V1" || bytes[0 .. ${bytes.length - SIGNATURE_LENGTH}) = ${8 + bytes.length - SIGNATURE_LENGTH} bytes`);
  }
  lines.push('');
  lines.push(...problemLines(valid ? [] : all, 'VALID: no problems found' + (now === undefined ? ' (clock not checked; pass --now)' : ''), 'a receiver'));
  console.log(lines.join('\n'));
  return valid ? 0 : 1;
}

export async function run(argv: string[]): Promise<number> {
  return dispatch('hb', HELP, { make, inspect }, argv);
}
