// `pulse token`: MQTT connect credentials (docs/protocol.md §Connect token): client id = username =
// device id, password = the 72-byte token as 144 lowercase hex characters.
import { parseArgs } from 'node:util';
import { CONNECT_TOKEN_HEX_LENGTH, DEFAULT_SKEW_MS } from '../../shared/protocol/constants.ts';
import { connectPassword, verifyConnectToken, type TokenContext } from '../../shared/protocol/connect-token.ts';
import { signerFor } from '../../shared/protocol/signer.ts';
import { PulseError } from '../../shared/errors.ts';
import type { TokenCode } from '../../shared/error-codes.ts';
import { fromHex } from '../../shared/hex.ts';
import { parseNetwork, parseNow, parseUint, usageErrors, verifierByName } from './hb.ts';
import { loadKeyFile } from './keys.ts';
import { dispatch, printHelp, problemLines } from '../subcommands.ts';

export const summary = 'MQTT connect credentials: make (client id, username, password), inspect';

const U64_MAX = (1n << 64n) - 1n;

const HELP = `Usage:
  pulse token make --key FILE [--ts MS] [--network N] [--json]
      Print the MQTT CONNECT credentials for a device: client id = username = device id,
      password = timestamp (u64) || signature, as ${CONNECT_TOKEN_HEX_LENGTH} lowercase hex characters.
      --ts defaults to this machine's clock; the broker refuses a token more than ±30 s from its own.

  pulse token inspect <PASSWORD> --device ID [--username U] [--network N] [--now MS|now]
                      [--skew MS] [--last MS] [--verifier native|noble] [--json]
      Check a password the way the broker does: encoding, client id, clock skew (against --now,
      default this machine's clock), freshness (newer than --last), key policy and signature.
      Exit status 0 only if the token would be accepted (registration is checked by the broker).`;

async function make(argv: string[]): Promise<number> {
  const { values } = usageErrors(() =>
    parseArgs({
      args: argv,
      options: { key: { type: 'string' }, ts: { type: 'string' }, network: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
      strict: true,
    }),
  );
  if (values.help) return printHelp(HELP);
  if (values.key === undefined) throw new PulseError('CLI_USAGE', '--key FILE is required');
  const timestamp = values.ts === undefined ? BigInt(Date.now()) : parseUint('ts', values.ts, 0n, U64_MAX);
  const networkId = parseNetwork(values.network);
  const key = loadKeyFile(values.key);
  const password = connectPassword(networkId, key.publicKey, timestamp, signerFor(key.secretKey));
  if (values.json) console.log(JSON.stringify({ clientId: key.deviceId, username: key.deviceId, password, networkId, timestamp: timestamp.toString() }, null, 2));
  else console.log(`client id  ${key.deviceId}\nusername   ${key.deviceId}\npassword   ${password}`);
  return 0;
}

async function inspect(argv: string[]): Promise<number> {
  const { values, positionals } = usageErrors(() =>
    parseArgs({
      args: argv,
      options: {
        device: { type: 'string' },
        username: { type: 'string' },
        network: { type: 'string' },
        now: { type: 'string' },
        skew: { type: 'string' },
        last: { type: 'string' },
        verifier: { type: 'string' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      allowPositionals: true,
      strict: true,
    }),
  );
  if (values.help) return printHelp(HELP);
  if (positionals.length !== 1) throw new PulseError('CLI_USAGE', 'token inspect takes exactly one password');
  if (values.device === undefined) throw new PulseError('CLI_USAGE', '--device ID (the MQTT client id) is required');
  const password = positionals[0]!;
  const ctx: TokenContext = {
    verifier: verifierByName(values.verifier),
    networkId: parseNetwork(values.network),
    now: values.now === undefined ? Date.now() : parseNow(values.now),
    skewMs: values.skew === undefined ? DEFAULT_SKEW_MS : Number(parseUint('skew', values.skew, 0n, BigInt(Number.MAX_SAFE_INTEGER))),
    ...(values.last === undefined ? {} : { lastAcceptedTimestamp: parseUint('last', values.last, 0n, U64_MAX) }),
  };
  const creds = { clientId: values.device, username: values.username ?? values.device, password };
  const problems: { code: TokenCode; message: string }[] = [];
  const first = verifyConnectToken(creds, ctx);
  if (!first.ok) {
    problems.push({ code: first.code, message: first.message });
    // The broker stops at the first problem; for a firmware engineer also show whether the
    // signature itself is good when only the clock rules failed (re-check at the token's own time).
    const raw = password.length === CONNECT_TOKEN_HEX_LENGTH ? fromHex(password) : undefined;
    if ((first.code === 'TOKEN_CLOCK_SKEW' || first.code === 'TOKEN_STALE') && raw !== undefined) {
      const ts = new DataView(raw.buffer, raw.byteOffset, 8).getBigUint64(0, false);
      const again = verifyConnectToken(creds, { verifier: ctx.verifier, networkId: ctx.networkId, now: Number(ts), skewMs: 0 });
      if (!again.ok) problems.push({ code: again.code, message: again.message });
    }
  }
  const raw = password.length === CONNECT_TOKEN_HEX_LENGTH ? fromHex(password) : undefined;
  const timestamp = raw === undefined ? undefined : new DataView(raw.buffer, raw.byteOffset, 8).getBigUint64(0, false);
  const valid = problems.length === 0;
  if (values.json) {
    console.log(JSON.stringify({ valid, clientId: creds.clientId, username: creds.username, networkId: ctx.networkId, timestamp: timestamp?.toString(), now: ctx.now, problems }, null, 2));
    return valid ? 0 : 1;
  }
  const lines = [
    `client id  ${creds.clientId}`,
    `username   ${creds.username}`,
    `network    ${ctx.networkId}`,
    `timestamp  ${timestamp === undefined ? '(unreadable)' : `${timestamp} (${timestamp - BigInt(ctx.now)} ms from ${ctx.now})`}`,
    '',
  ];
  lines.push(...problemLines(valid ? [] : problems, 'VALID: the broker would accept this token (if the device is registered and active)', 'the broker'));
  console.log(lines.join('\n'));
  return valid ? 0 : 1;
}

export async function run(argv: string[]): Promise<number> {
  return dispatch('token', HELP, { make, inspect }, argv);
}
