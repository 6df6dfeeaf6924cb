// `pulse sim`: a simulated device fleet (device-sim/start-fleet.ts) or, with --load, a load run for
// benchmarks (device-sim/load-run.ts). Every option is also an environment variable
// (device-sim/sim-config.ts); docs/simulator.md explains the behaviours and the outbox log.
import { readFileSync } from 'node:fs';
import { PulseError } from '../../shared/errors.ts';
import { signerFor } from '../../shared/protocol/signer.ts';
import { fromHex } from '../../shared/hex.ts';
import { BEHAVIOURS, BEHAVIOUR_INFO } from '../../device-sim/behaviours.ts';
import { simConfigSection, loadSimConfig, type SimConfig } from '../../device-sim/sim-config.ts';
import { startFleet } from '../../device-sim/start-fleet.ts';
import { formatLoadReport, runLoad } from '../../device-sim/load-run.ts';
import { startSummary } from '../../device-sim/summary-reporter.ts';
import { parseOwner, type MakerIdentity, type OnboardOptions } from '../../device-sim/onboard.ts';
import { publicKeyFromSeed } from '../../device-sim/sim-state.ts';
import type { TransportOptions } from '../../device-sim/mqtt-transport.ts';
import { loadKeyFile } from './keys.ts';
import { configHelp, parseConfigFlags } from '../config-args.ts';

export const summary = 'simulated device fleet (behaviour mix, onboarding, outbox log) and --load benchmarks';

const SECTIONS = [simConfigSection];

function help(): string {
  const usage = [
    'Usage: pulse sim --devices N --broker mqtt://host:port [--interval 60s] [--mix honest=80,flaky=10,…]',
    '                 [--api URL --maker-key FILE --owner 0x…] [--state-dir DIR] [--network N] [--outbox FILE]',
    '       pulse sim --load --devices N --broker mqtt://host:port [--messages M] [--window W | --rate R]',
  ].join('\n');
  const footer = ['Behaviours for --mix:'];
  for (const b of BEHAVIOURS) {
    const e = BEHAVIOUR_INFO[b].expect;
    const outcome = e.outcome === 'accepted' ? 'accepted' : `rejected at ${e.stage}: ${e.reason}`;
    footer.push(`  ${b.padEnd(12)} ${BEHAVIOUR_INFO[b].summary} (${outcome})`);
  }
  return configHelp(usage, SECTIONS, footer);
}

/** Maker key: a `pulse keys new` file, or a file holding the 64-hex secret seed. */
function loadMaker(path: string, impl: 'native' | 'noble'): MakerIdentity {
  let text: string;
  try {
    text = readFileSync(path, 'utf8').trim();
  } catch (e) {
    throw new PulseError('CLI_INPUT', `cannot read maker key ${path}: ${(e as Error).message}`);
  }
  const raw = /^[0-9a-fA-F]{64}$/.test(text) ? fromHex(text, true) : undefined;
  const secret = raw ?? loadKeyFile(path).secretKey;
  return { publicKey: publicKeyFromSeed(secret), sign: signerFor(secret, impl) };
}

function transportOf(cfg: SimConfig): TransportOptions {
  let ca: Buffer | undefined;
  if (cfg.ca !== '') {
    try {
      ca = readFileSync(cfg.ca);
    } catch (e) {
      throw new PulseError('CLI_INPUT', `cannot read --ca ${cfg.ca}: ${(e as Error).message}`);
    }
  }
  return { rejectUnauthorized: !cfg.insecure, ...(ca !== undefined ? { ca } : {}) };
}

function onboardingOf(cfg: SimConfig): OnboardOptions | undefined {
  if (cfg.api === '') return undefined;
  if (cfg.makerKey === '') throw new PulseError('CLI_USAGE', '--api needs --maker-key (the maker that signs device certificates)');
  if (cfg.owners.length === 0) throw new PulseError('CLI_USAGE', '--api needs --owner 0x… (the address the devices are bound to)');
  return { url: cfg.api, maker: loadMaker(cfg.makerKey, cfg.signer), owners: cfg.owners.map(parseOwner), model: cfg.model };
}

// Socket and onboarding errors, each distinct message printed once (a broker that is down would
// otherwise print one line per device per reconnect); the summary line carries the counts.
const seenErrors = new Set<string>();
function reportOnce(deviceId: string, e: Error): void {
  const key = e.message.replace(/[0-9a-f]{64}/g, '<device>');
  if (seenErrors.has(key) || seenErrors.size > 50) return;
  seenErrors.add(key);
  process.stderr.write(`\nsim: device ${deviceId.slice(0, 12)}…: ${e.message}\n`);
}

export async function run(argv: string[]): Promise<number> {
  // Flags and --help from the config declaration (cli/config-args.ts); boolean keys (--load,
  // --insecure) also work bare.
  const { flags, help: wantsHelp } = parseConfigFlags(argv, SECTIONS);
  if (wantsHelp) {
    console.log(help());
    return 0;
  }
  const cfg = loadSimConfig(flags);
  const transport = transportOf(cfg);
  const onboard = onboardingOf(cfg);

  if (cfg.load) {
    const report = await runLoad({
      brokerUrl: cfg.broker,
      networkId: cfg.networkId,
      connections: cfg.devices,
      messagesPerConnection: cfg.messages,
      window: cfg.window,
      ...(cfg.rate !== undefined ? { rate: cfg.rate } : {}),
      ...(cfg.localAddresses !== undefined ? { localAddresses: cfg.localAddresses } : {}),
      stateDir: cfg.stateDir,
      signer: cfg.signer,
      ...(onboard !== undefined ? { onboard } : {}),
      transport,
      log: (line) => process.stderr.write(`sim: ${line}\n`),
    });
    console.log(formatLoadReport(report));
    console.log(JSON.stringify(report));
    return report.connected === report.connections && report.acknowledged === report.messages ? 0 : 1;
  }

  const fleet = await startFleet({
    devices: cfg.devices,
    brokerUrl: cfg.broker,
    networkId: cfg.networkId,
    intervalMs: cfg.intervalMs,
    mix: cfg.mix,
    stateDir: cfg.stateDir,
    signer: cfg.signer,
    ...(onboard !== undefined ? { onboard } : {}),
    ...(cfg.outbox !== '' ? { outboxPath: cfg.outbox } : {}),
    ...(cfg.seed !== undefined ? { seed: cfg.seed } : {}),
    connectRate: cfg.connectRate,
    transport,
    ...(cfg.localAddresses !== undefined ? { localAddresses: cfg.localAddresses } : {}),
    tuning: { skewMs: cfg.skewMs, misbehaveRate: cfg.misbehaveRate },
    onError: reportOnce,
  });
  const line = startSummary(() => fleet.stats());
  // Whichever ends the run first (a signal or --duration) clears the others, so Ctrl-C before the
  // duration is up exits at once instead of waiting for the timer.
  await new Promise<void>((resolve) => {
    const timer = cfg.durationMs !== undefined ? setTimeout(done, cfg.durationMs) : undefined;
    function done(): void {
      clearTimeout(timer);
      process.off('SIGINT', done);
      process.off('SIGTERM', done);
      resolve();
    }
    process.once('SIGINT', done);
    process.once('SIGTERM', done);
  });
  await fleet.stop();
  line.stop();
  return 0;
}
