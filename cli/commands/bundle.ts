// `pulse bundle`: build an epoch bundle from the oracle's database, or inspect a bundle file
// (docs/bundle.md). `pulse oracle` builds bundles itself after each close; `build` is for operators
// re-creating a missing file, `inspect` for anyone looking at a downloaded bundle.
import { parseArgs } from 'node:util';
import { mkdirSync } from 'node:fs';
import { PulseError } from '../../shared/errors.ts';
import { usageErrors } from './hb.ts';
import { readBundleSource } from '../../oracle/bundle/read-bundle.ts';
import { bundleHash, decodeBundle, uncompressBundle } from '../../oracle/bundle/bundle-format.ts';

export const summary = 'Epoch bundles: build one from the database, inspect a file (hash, header, counts, root)';

const HELP = `Usage:
  pulse bundle inspect FILE|URL [--json]
      Print the bundle hash (keccak256 of the uncompressed bytes = inputsHash on chain), the header
      (network, timing, scorer, parameters) and the record counts, root and cumulative total.
      Checks the format only; \`pulse verify\` checks the contents.

  pulse bundle build N [--database-url URL | --data-dir DIR] [--bundle-dir DIR] [--genesis T]
                       [--epoch LENGTH] [--epoch-grace D] [--slot-interval D] [--network-id N] [--skew D]
      Write <bundle-dir>/epoch-N.pulse.gz for closed epoch N and record its hash in the database
      (idempotent). The flags and their environment variables are those of \`pulse oracle\`.`;

async function inspect(argv: string[]): Promise<number> {
  const { values, positionals } = usageErrors(() => parseArgs({ args: argv, allowPositionals: true, options: { json: { type: 'boolean' } }, strict: true }));
  const source = positionals[0];
  if (source === undefined || positionals.length > 1) throw new PulseError('CLI_USAGE', 'pulse bundle inspect FILE|URL');
  const file = await readBundleSource(source);
  const raw = uncompressBundle(file);
  if (!raw.ok) throw new PulseError('BUNDLE_MALFORMED', raw.message);
  const hash = bundleHash(raw.value);
  const b = decodeBundle(raw.value);
  if (!b.ok) throw new PulseError('BUNDLE_MALFORMED', b.message);
  const h = b.value.header;
  const info = {
    hash,
    epoch: h.epoch,
    networkId: h.networkId,
    timing: h.timing,
    slots: [h.firstSlot, h.firstSlot + h.slotCount],
    scorerVersion: h.scorerVersion,
    paramsVersion: h.paramsVersion,
    paramsHash: h.paramsHash,
    counts: h.counts,
    root: b.value.result.root,
    cumulativeTotal: b.value.result.cumulativeTotal,
    allocated: b.value.result.allocated,
    bytes: { file: file.length, uncompressed: raw.value.length },
  };
  if (values.json === true) console.log(JSON.stringify(info));
  else {
    console.log(
      [
        `bundle      epoch ${h.epoch}, network ${h.networkId}, slots [${h.firstSlot}, ${h.firstSlot + h.slotCount}) of ${h.timing.slotMs} ms`,
        `hash        ${hash}`,
        `scorer      ${h.scorerVersion}; params v${h.paramsVersion} ${h.paramsHash}`,
        `records     ${h.counts.devices} devices, ${h.counts.heartbeats} heartbeats, ${h.counts.rejections} rejections, ${h.counts.scores} scores, ${h.counts.rewards} rewards, ${h.counts.previous} previous leaves`,
        `result      allocated ${info.allocated}, cumulativeTotal ${info.cumulativeTotal}, root ${info.root ?? '(none)'}`,
        `size        ${file.length} bytes (${raw.value.length} uncompressed)`,
      ].join('\n'),
    );
  }
  return 0;
}

async function build(argv: string[]): Promise<number> {
  const { values, positionals } = usageErrors(() =>
    parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        'database-url': { type: 'string' }, 'data-dir': { type: 'string' }, 'bundle-dir': { type: 'string' }, genesis: { type: 'string' },
        epoch: { type: 'string' }, 'epoch-grace': { type: 'string' }, 'slot-interval': { type: 'string' }, 'network-id': { type: 'string' }, skew: { type: 'string' },
      },
      strict: true,
    }),
  );
  const n = positionals[0];
  if (n === undefined || positionals.length > 1 || !/^\d{1,15}$/.test(n)) throw new PulseError('CLI_USAGE', 'pulse bundle build N (the epoch number)');
  const { loadOracleConfig } = await import('../../oracle/config.ts');
  const { loadEpochConfig, timingOf } = await import('../../oracle/epochs/epoch-config.ts');
  const { openStore } = await import('../../oracle/store/open-store.ts');
  const { buildEpochBundle } = await import('../../oracle/bundle/build-bundle.ts');
  const cfg = loadOracleConfig({ 'database-url': values['database-url'], 'data-dir': values['data-dir'], 'slot-interval': values['slot-interval'], 'network-id': values['network-id'], skew: values.skew });
  const ec = loadEpochConfig({ 'bundle-dir': values['bundle-dir'], genesis: values.genesis, epoch: values.epoch, 'epoch-grace': values['epoch-grace'] });
  if (cfg.databaseUrl === '' && cfg.dataDir !== 'memory://') mkdirSync(cfg.dataDir, { recursive: true });
  const store = await openStore({ databaseUrl: cfg.databaseUrl, dataDir: cfg.dataDir, maxConnections: 2 });
  try {
    const built = await buildEpochBundle(store, Number(n), { dir: ec.bundleDir, timing: timingOf(ec, cfg.slotIntervalMs), networkId: cfg.networkId, skewMs: cfg.skewMs });
    console.log(JSON.stringify(built));
    return 0;
  } finally {
    await store.close();
  }
}

export async function run(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === 'inspect') return inspect(rest);
  if (sub === 'build') return build(rest);
  console.log(HELP);
  return sub === undefined || sub === 'help' || sub === '--help' || sub === '-h' ? 0 : 2;
}
