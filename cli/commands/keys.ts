// `pulse keys`: device key files (shared/protocol/keyfile.ts). A key file holds the 32-byte RFC 8032
// secret seed, so it is created with mode 0600 and never overwritten.
import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { randomSecretKey } from '../../shared/crypto/noble.ts';
import { deviceKeyFromSecret, formatKeyFile, parseKeyFile, type DeviceKey } from '../../shared/protocol/keyfile.ts';
import { heartbeatTopic } from '../../shared/protocol/topics.ts';
import { PulseError } from '../../shared/errors.ts';
import { toHex } from '../../shared/hex.ts';
import { usageErrors } from './hb.ts';
import { dispatch, printHelp } from '../subcommands.ts';

export const summary = 'Device key files: new, show';

const HELP = `Usage:
  pulse keys new [--out FILE]   make a device keypair (Ed25519). With --out, writes the key file with
                                mode 0600 (refuses to overwrite) and prints the device id; without it,
                                prints the key file JSON to stdout.
  pulse keys show --key FILE    print the device id, public key and MQTT topic of a key file.

A key file is JSON: {"kind":"pulse-device-key","version":1,"deviceId","publicKey","secretKey"};
secretKey is the 32-byte RFC 8032 seed in hex. The device id is the lowercase hex public key.`;

/** Read and parse a key file; CLI_INPUT when it is missing or malformed. */
export function loadKeyFile(path: string): DeviceKey {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new PulseError('CLI_INPUT', `cannot read key file ${path}: ${(e as Error).message}`);
  }
  const parsed = parseKeyFile(text);
  if (!parsed.ok) throw new PulseError('CLI_INPUT', `${path}: ${parsed.message}`);
  return parsed.value;
}

async function newKey(argv: string[]): Promise<number> {
  const { values } = usageErrors(() =>
    parseArgs({ args: argv, options: { out: { type: 'string' }, help: { type: 'boolean', short: 'h' } }, strict: true }),
  );
  if (values.help) return printHelp(HELP);
  const key = deviceKeyFromSecret(randomSecretKey());
  if (values.out === undefined) {
    process.stdout.write(formatKeyFile(key));
    return 0;
  }
  try {
    // 'wx': fail if the file exists, so an existing device identity is never destroyed.
    writeFileSync(values.out, formatKeyFile(key), { flag: 'wx', mode: 0o600 });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') throw new PulseError('CLI_INPUT', `${values.out} exists; refusing to overwrite a key file`);
    throw new PulseError('CLI_INPUT', `cannot write ${values.out}: ${(e as Error).message}`);
  }
  console.log(key.deviceId);
  return 0;
}

async function showKey(argv: string[]): Promise<number> {
  const { values } = usageErrors(() =>
    parseArgs({ args: argv, options: { key: { type: 'string' }, help: { type: 'boolean', short: 'h' } }, strict: true }),
  );
  if (values.help) return printHelp(HELP);
  if (values.key === undefined) throw new PulseError('CLI_USAGE', 'keys show needs --key FILE');
  const key = loadKeyFile(values.key);
  console.log(`device id   ${key.deviceId}\npublic key  ${toHex(key.publicKey)}\ntopic       ${heartbeatTopic(key.deviceId)}`);
  return 0;
}

export async function run(argv: string[]): Promise<number> {
  return dispatch('keys', HELP, { new: newKey, show: showKey }, argv);
}
