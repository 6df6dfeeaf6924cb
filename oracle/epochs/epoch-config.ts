// Epoch, reward and chain configuration of `pulse oracle` (issues 5 and 6). Every key has a flag, an
// environment variable, a default and a doc line (docs/configuration.md is generated from this).
import { readFileSync } from 'node:fs';
import { defineConfig, loadConfig, parse, type ConfigOf } from '../../shared/config-schema.ts';
import { PulseError } from '../../shared/errors.ts';
import type { RewardParams } from '../../shared/rewards/reward-params.ts';
import { validateTiming, type EpochTiming } from '../../shared/epoch-timing.ts';
import { DEFAULT_REWARD_PARAMS } from './default-params.ts';
import { paramsFromJson } from './params-json.ts';

function isoOrMs(raw: string): number {
  const n = /^\d+$/.test(raw) ? Number(raw) : Date.parse(raw);
  if (!Number.isSafeInteger(n) || n < 0) throw new Error('expected an ISO time (2026-01-01T00:00:00Z) or unix ms');
  return n;
}

export const epochConfigSection = defineConfig('Epochs, rewards and chain (`pulse oracle`)', {
  genesisMs: { flag: 'genesis', env: 'PULSE_GENESIS', default: undefined as number | undefined, doc: 'Network genesis (ISO time or unix ms): epoch 0 starts here; a multiple of the epoch length. Recorded in the database on first start, which refuses a different value later.', parse: isoOrMs, defaultDoc: '(the start of the current epoch at first start)' },
  epochMs: { flag: 'epoch', env: 'PULSE_EPOCH', default: 3_600_000, doc: 'Epoch length; a multiple of the slot interval.', parse: parse.durationMs, defaultDoc: '1h' },
  graceMs: { flag: 'epoch-grace', env: 'PULSE_EPOCH_GRACE', default: 120_000, doc: 'How long after an epoch ends late heartbeats are still accepted before it is closed; later ones are HB_EPOCH_CLOSED.', parse: parse.durationMs, defaultDoc: '2m' },
  epochTickMs: { flag: 'epoch-tick', env: 'PULSE_EPOCH_TICK', default: 5_000, doc: 'How often the epoch pipeline checks for epochs to close, bundle and post.', parse: parse.durationMs, defaultDoc: '5s' },
  rewardParamsFile: { flag: 'reward-params', env: 'PULSE_REWARD_PARAMS', default: '', doc: 'JSON file of reward parameters (docs/rewards.md §Parameters); a changed set needs a new version.', parse: parse.string, defaultDoc: '(built-in version 1)' },
  bundleDir: { flag: 'bundle-dir', env: 'PULSE_BUNDLE_DIR', default: 'data/bundles', doc: 'Directory of epoch bundle files (sync it to any object store or IPFS).', parse: parse.string },
  publicUrl: { flag: 'public-url', env: 'PULSE_PUBLIC_URL', default: '', doc: 'Public base URL of this API; the dataUri posted on chain is <public-url>/api/epochs/<n>/bundle.', parse: parse.string, defaultDoc: '(the HTTP listen address)' },
  rpcUrl: { flag: 'rpc-url', env: 'PULSE_RPC_URL', default: '', doc: 'EVM JSON-RPC endpoint for posting roots. Empty: epochs are closed and bundled but not posted.', parse: parse.string, defaultDoc: '(none: no posting)' },
  distributor: { flag: 'distributor', env: 'PULSE_DISTRIBUTOR', default: '', doc: 'RewardDistributor contract address (from `pulse chain deploy`).', parse: parse.string, defaultDoc: '(none)' },
  signerKeyFile: { flag: 'signer-key-file', env: 'PULSE_SIGNER_KEY_FILE', default: '', doc: 'File holding the oracle signer private key (hex); prefer this or a secret store over PULSE_SIGNER_KEY.', parse: parse.string, defaultDoc: '(none)' },
  signerKey: { flag: 'signer-key', env: 'PULSE_SIGNER_KEY', default: '', doc: 'Oracle signer private key (hex), when no key file is used.', parse: parse.string, defaultDoc: '(none)' },
  challengeSeconds: { flag: 'challenge-seconds', env: 'PULSE_CHALLENGE_SECONDS', default: 86_400, doc: 'Challenge period of the contract, used to show posted roots as challengeable or final.', parse: parse.int(0, 365 * 86_400) },
});

export type EpochConfig = ConfigOf<typeof epochConfigSection.schema>;

export function loadEpochConfig(flags: Readonly<Record<string, string | undefined>> = {}, env: Readonly<Record<string, string | undefined>> = process.env): EpochConfig {
  return loadConfig(epochConfigSection, flags, env);
}

/**
 * The network timing from the config and the slot interval; throws TIMING_INVALID. Without --genesis,
 * `recordedGenesisMs` (from the database) or else the start of the current epoch is used.
 */
export function timingOf(c: EpochConfig, slotMs: number, recordedGenesisMs?: number, nowMs = Date.now()): EpochTiming {
  if (c.epochMs % slotMs !== 0) throw new PulseError('TIMING_INVALID', `--epoch ${c.epochMs} ms is not a multiple of the slot interval ${slotMs} ms`);
  const genesisMs = c.genesisMs ?? recordedGenesisMs ?? Math.floor(nowMs / c.epochMs) * c.epochMs;
  const t: EpochTiming = { genesisMs, slotMs, epochSlots: c.epochMs / slotMs, graceMs: c.graceMs };
  const why = validateTiming(t);
  if (why !== undefined) throw new PulseError('TIMING_INVALID', why);
  return t;
}

/** The reward parameters: the --reward-params file, or the built-in set. */
export function rewardParamsOf(c: EpochConfig): RewardParams {
  if (c.rewardParamsFile === '') return DEFAULT_REWARD_PARAMS;
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(c.rewardParamsFile, 'utf8'));
  } catch (e) {
    throw new PulseError('CONFIG_INVALID', `--reward-params ${c.rewardParamsFile}: ${(e as Error).message}`);
  }
  const p = paramsFromJson(json);
  if (!p.ok) throw new PulseError('CONFIG_INVALID', `--reward-params ${c.rewardParamsFile}: ${p.message}`);
  return p.value;
}
